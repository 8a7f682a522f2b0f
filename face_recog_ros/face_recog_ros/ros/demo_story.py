"""The demo's story, without ROS: who is in the room when, and the frames a camera would see.

Frames are composed from two public-domain photos (io/samples.py): Eileen Collins and Grace
Hopper walk in and out of a 640x480 room, moving, scaling and changing light.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..io import samples

SIZE = (640, 480)
EILEEN, GRACE = "astronaut", "grace_hopper"  # keys of samples.HEAD_BOXES
NAMES = {EILEEN: "eileen_collins", GRACE: "grace_hopper"}


@dataclass(frozen=True)
class Script:
    """When who is in the room and when the demo enrols whom, for a stream of `frames` frames."""

    frames: int
    present: dict[str, list[range]]  # person -> frame ranges in which the head is (partly) in view
    enroll_photo_at: int  # Eileen enrolled from her photo before this frame is sent (empty room)
    enroll_live_at: int  # Grace's live enrolment starts before this frame is sent

    @classmethod
    def for_frames(cls, frames: int) -> Script:
        at = lambda fraction: round(fraction * frames)  # noqa: E731
        return cls(frames, {EILEEN: [range(at(0.08), at(0.6)), range(at(0.72), at(0.9))],
                            GRACE: [range(at(0.3), at(0.85))]},
                   enroll_photo_at=max(1, at(0.04)), enroll_live_at=at(0.45))

    def in_view(self, person: str, i: int) -> bool:
        return any(i in r for r in self.present[person])

    def where(self, person: str, i: int) -> tuple[float, float, int] | None:
        """(centre x, centre y, head height) at frame i: walks in from the side, wanders,
        leaves."""
        span = next((r for r in self.present[person] if i in r), None)
        if span is None:
            return None
        ramp = max(3, min(20, len(span) // 5))  # frames to walk in (and out)
        side, home, edge = (-1, 190.0, -60.0) if person == EILEEN else (1, 470.0, SIZE[0] + 60.0)
        t = i - span.start
        x = home + side * 45 * math.sin(2 * math.pi * t / 150)
        if t < ramp:
            x = edge + (x - edge) * t / ramp
        elif span.stop - 1 - i < ramp:
            x = edge + (x - edge) * (span.stop - 1 - i) / ramp
        # Heads ~100 px tall as detected: a robot's camera at a few metres. (One enrolment photo
        # is matched less surely on much smaller faces.)
        height = (220 if person == EILEEN else 190) + int(
            15 * math.sin(i / 23 + (person == GRACE))
        )
        return x, 230 + 12 * math.sin(i / 17), height

    def frame(self, i: int) -> np.ndarray:
        rgb = samples.background(SIZE).copy()
        for person in (EILEEN, GRACE):
            where = self.where(person, i)
            if where is not None:
                x, y, height = where
                gain = 1.0 + 0.15 * math.sin(i / 13 + 2 * (person == GRACE))
                samples.place(rgb, person, (x, y), height, gain=gain)
        return rgb
