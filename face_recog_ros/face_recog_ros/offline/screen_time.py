"""Screen time per person in a video: seconds visible, first/last seen, number of appearances.

A track is one appearance; a track's label is the name it carried most often (its first frames
are unknown until the evidence is in, so those do not count against it). Appearances of one
label less than ``merge_gap`` apart (a cut away and back, a missed detection) count as one.
Seconds are frames in view times the frame period, with overlapping tracks of one label
counted once. Strangers are grouped into unknown_1, unknown_2, ... so they get rows too.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..tracking.options import TrackingOptions
from ..types import UNKNOWN, Face
from ..io.video import Frame


def screen_time_tracking(config: TrackingOptions) -> TrackingOptions:
    """Tracking for counting: unknown clusters on, and tracks start on their first detection.

    ``min_hits`` normally hides a face until it was seen twice (a guard against one-frame
    false detections); offline, those are removed afterwards by a minimum track length
    instead, so real appearances are not cut short at their start.
    """
    return dataclasses.replace(config, enabled=True, cluster_unknowns=True, min_hits=1)


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)  # frame indices in which it was shown
    stamps: list[float] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)

    def label(self) -> str:
        named = [(n, label) for label, n in self.labels.items() if label != UNKNOWN]
        return max(named)[1] if named else UNKNOWN


@dataclass(frozen=True)
class PersonTime:
    label: str
    seconds: float  # time in view
    first: float  # stamp of the first frame in view
    last: float  # stamp of the last frame in view
    appearances: int
    share: float  # seconds / length of the video


class ScreenTimeCounter:
    """Feed it every frame's faces; :meth:`result` gives one :class:`PersonTime` per label."""

    def __init__(self, frame_period: float, *, merge_gap: float = 1.0,
                 min_track_seconds: float = 0.2) -> None:
        self.frame_period = frame_period
        self.merge_gap = merge_gap
        self.min_track_seconds = min_track_seconds
        self._tracks: dict[int, _Track] = {}
        self.frames = 0

    def add(self, frame: Frame, faces: list[Face]) -> None:
        self.frames += 1
        for face in faces:
            track = self._tracks.setdefault(face.track_id, _Track())
            track.frames.append(frame.index)
            track.stamps.append(frame.stamp)
            track.labels[face.label] += 1

    def result(self) -> list[PersonTime]:
        """Rows sorted by time in view, longest first."""
        by_label: dict[str, list[_Track]] = {}
        for track in self._tracks.values():
            if len(track.frames) * self.frame_period >= self.min_track_seconds:
                by_label.setdefault(track.label(), []).append(track)
        length = self.frames * self.frame_period
        rows = []
        for label, tracks in by_label.items():
            frames = set().union(*(t.frames for t in tracks))
            spans = sorted((t.stamps[0], t.stamps[-1]) for t in tracks)
            appearances, end = 0, float("-inf")
            for start, stop in spans:
                if start - end >= self.merge_gap:
                    appearances += 1
                end = max(end, stop + self.frame_period)
            seconds = len(frames) * self.frame_period
            rows.append(
                PersonTime(
                    label,
                    seconds,
                    spans[0][0],
                    max(s for _, s in spans),
                    appearances,
                    seconds / length if length else 0.0,
                )
            )
        return sorted(rows, key=lambda r: (-r.seconds, r.label))


def clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"


def format_table(rows: list[PersonTime]) -> str:
    lines = [f"{'person':<28}{'seconds':>9}{'share':>7}{'first':>9}{'last':>9}{'appearances':>13}"]
    for r in rows:
        lines.append(
            f"{r.label:<28}{r.seconds:>9.1f}{r.share:>7.0%}{clock(r.first):>9}{clock(r.last):>9}"
            f"{r.appearances:>13}"
        )
    return "\n".join(lines)


def bar_chart(rows: list[PersonTime], path: str | Path, title: str) -> None:
    """Horizontal bars of seconds in view, longest on top; strangers in grey."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, no display needed

    from ..io.draw import label_color
    figure = Figure(figsize=(8, 1.2 + 0.4 * max(len(rows), 1)), layout="constrained")
    axes = figure.add_subplot()
    ordered = rows[::-1]
    colors = [tuple(c / 255 for c in label_color(r.label)) for r in ordered]
    bars = axes.barh([r.label for r in ordered], [r.seconds for r in ordered], color=colors,
                     edgecolor="black", linewidth=0.5)
    axes.bar_label(
        bars, labels=[f"{r.seconds:.1f} s ({r.appearances}x)" for r in ordered], padding=3
    )
    axes.set_xlabel("seconds in view")
    axes.set_title(title)
    axes.margins(x=0.2)
    figure.savefig(path, dpi=120)
