"""The demo's video and snapshots, written by a thread of their own.

Encoding a 640x480 frame costs milliseconds: done in the loop that feeds the node, it would slow
the stream and the demo would report its own pace as the node's. Frames are written in the
order they were sent; a frame whose annotated image never arrived is written as sent.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

WAIT_FOR_IMAGE_S = 5.0


class Recorder:
    """<out>/annotated.mp4 and a PNG of the first frame in which each name (and both) appear."""

    def __init__(self, out: Path, fps: float, names: set[str],
                 annotated: Callable[[tuple[int, int], float], np.ndarray | None],
                 plain: Callable[[int], np.ndarray]) -> None:
        """``annotated(key, timeout)``: the node's annotated image of the frame with that stamp,
        or None; ``plain(index)``: the frame as sent."""
        self.out, self.fps, self.names = out, fps, names
        self.video: Path | None = None
        self.snapshots: list[Path] = []
        self.error: Exception | None = None
        self._annotated, self._plain = annotated, plain
        self._queue: queue.Queue = queue.Queue()
        self._writer: cv2.VideoWriter | None = None
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="demo_recorder", daemon=True)
        self._thread.start()

    def add(self, index: int, key: tuple[int, int], labels: set[str]) -> None:
        """Record frame ``index`` (stamp ``key``) in which these labels were shown."""
        self._queue.put((index, key, labels))

    def close(self) -> None:
        """Write what is queued, then finish the file; raises what went wrong in the thread."""
        self._queue.put(None)
        self._thread.join()
        if self._writer is not None:
            self._writer.release()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._write(*item)
                except (OSError, cv2.error) as exc:
                    self.error = exc

    def _write(self, index: int, key: tuple[int, int], labels: set[str]) -> None:
        rgb = self._annotated(key, WAIT_FOR_IMAGE_S)
        bgr = cv2.cvtColor(self._plain(index) if rgb is None else rgb, cv2.COLOR_RGB2BGR)
        if self._writer is None:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / "annotated.mp4"
            self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (bgr.shape[1], bgr.shape[0]))
            if not self._writer.isOpened():
                raise OSError(f"cannot write {path} (OpenCV has no mp4v encoder?); use --no-video")
            self.video = path
        self._writer.write(bgr)
        named = labels & self.names
        moments = sorted(n for n in named if n not in self._seen)
        if len(named) == len(self.names) and "both" not in self._seen:
            self._seen.add("both")
            moments = moments or ["both"]  # a first naming with both in view shows both already
        for moment in moments:
            self._seen.add(moment)
            path = self.out / f"frame_{index:04d}_{moment}.png"
            cv2.imwrite(str(path), bgr)
            self.snapshots.append(path)
