"""Tracked recognition over recorded frames (video files, bag topics): annotated video +
detections.

The same StreamRecognizer the robot runs, fed the recording's own timestamps, so a replay
labels faces exactly as the live node would have.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..io.draw import annotate
from ..tracking.stream import StreamRecognizer, StreamResult
from ..types import Face
from ..io.video import Frame, Progress, VideoSink

DETECTION_FIELDS = ("frame", "time", "track_id", "label", "similarity", "x1", "y1", "x2", "y2")


class DetectionLog:
    """Every reported face of every frame, one row each, as CSV or JSON (by the file's
    extension)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = self.path.suffix.lower().lstrip(".")
        if self.format not in ("csv", "json"):
            raise ValueError(f"detections file {self.path} must end in .csv or .json")
        try:
            self._file = self.path.open("w", newline="" if self.format == "csv" else None)
        except OSError as exc:
            raise ValueError(f"cannot write detections file {self.path}: {exc.strerror}") from None
        self._rows = 0
        if self.format == "csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(DETECTION_FIELDS)
        else:
            self._file.write("[")

    def write(self, frame: Frame, faces: list[Face]) -> None:
        for face in faces:
            box = [round(float(v), 1) for v in face.detection.box]
            row = [
                frame.index,
                round(frame.stamp, 4),
                face.track_id,
                face.label,
                round(face.similarity, 4),
            ]
            if self.format == "csv":
                self._csv.writerow(row + box)
            else:
                record = dict(zip(DETECTION_FIELDS[:5], row), box=box)
                self._file.write(("," if self._rows else "") + "\n" + json.dumps(record))
            self._rows += 1

    def close(self) -> None:
        if self.format == "json":
            self._file.write("\n]\n")
        self._file.close()


def recognize(stream: StreamRecognizer, frames: Iterable[Frame],
              progress: Progress | None = None) -> Iterator[tuple[Frame, StreamResult]]:
    """Run the stream over the frames in order, yielding each frame with its result."""
    try:
        for frame in frames:
            yield frame, stream.process(frame.rgb, frame.stamp)
            if progress is not None:
                progress.update()
    finally:
        if progress is not None:
            progress.close()


@dataclass
class LabelSummary:
    frames: int = 0
    seconds: float = 0.0  # wall time of the whole run
    frames_by_label: Counter = field(
        default_factory=Counter
    )  # frames in which each label was shown
    tracks_by_label: dict[str, set[int]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def label_frames(
    stream: StreamRecognizer,
    frames: Iterable[Frame],
    *,
    sink: VideoSink | None = None,
    log: DetectionLog | None = None,
    progress: Progress | None = None,
) -> LabelSummary:
    """Annotate every frame into ``sink`` and log every face into ``log``; both optional."""
    summary = LabelSummary()
    start = time.perf_counter()
    for frame, result in recognize(stream, frames, progress):
        if sink is not None:
            sink.write(annotate(frame.rgb, result.faces) if result.faces else frame.rgb)
        if log is not None:
            log.write(frame, result.faces)
        summary.frames += 1
        for face in result.faces:
            summary.frames_by_label[face.label] += 1
            summary.tracks_by_label.setdefault(face.label, set()).add(face.track_id)
    summary.seconds = time.perf_counter() - start
    return summary


def label_to_files(
    stream: StreamRecognizer,
    frames: Iterable[Frame],
    sink: VideoSink,
    detections: str | Path | None,
    progress: Progress | None,
) -> tuple[LabelSummary, str]:
    """label_frames with the files opened and closed around it; a failed run removes the video."""
    log = None
    try:
        log = DetectionLog(detections) if detections else None
        summary = label_frames(stream, frames, sink=sink, log=log, progress=progress)
    except BaseException:
        sink.abort()
        raise
    finally:
        if log is not None:
            log.close()
    return summary, sink.close()
