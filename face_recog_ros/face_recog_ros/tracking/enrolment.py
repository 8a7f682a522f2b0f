"""Live enrolment: collect several diverse samples of one face in view, then enrol them.

The state machine of one enrolment (waiting for the face, collecting, done / failed /
cancelled), the rules for taking a sample, and the texts that report progress. The stream
(stream.py) feeds it every frame's tracked faces and commits the samples to the gallery.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import cv2
import numpy as np

from ..core.aligner import FaceGeometry
from ..core.recognizer import EnrollResult
from ..types import Detection
from .options import TrackingOptions
from .tracker import Track


class EnrollState(str, Enum):
    IDLE = "idle"  # no live enrolment was started
    WAITING = "waiting"  # started; waiting for the face to enrol to be in view
    COLLECTING = "collecting"
    DONE = "done"  # samples were added to the gallery
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = (EnrollState.WAITING, EnrollState.COLLECTING)


@dataclass(frozen=True)
class EnrollmentStatus:
    state: EnrollState
    name: str = ""
    collected: int = 0
    needed: int = 0
    track_id: int = -1  # the track being enrolled (-1 while waiting)
    message: str = ""
    skipped: dict[str, int] = field(default_factory=dict)  # frames not taken, by reason
    result: EnrollResult | None = None  # set when DONE

    def text(self) -> str:
        """One line for a person: the message, the samples and why frames were skipped."""
        text = f"{self.message} ({self.collected} of {self.needed} samples"
        if self.skipped:
            skipped = sorted(self.skipped.items())
            text += "; frames skipped: " + ", ".join(f"{reason} x{n}" for reason, n in skipped)
        return text + ")"


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the grey chip: low for blurred (motion, focus) faces."""
    return float(cv2.Laplacian(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@dataclass(eq=False)
class LiveEnrolment:
    """One enrolment from the stream. ``changed`` is notified whenever it finishes."""

    name: str
    needed: int
    requested_track: int  # -1: the largest face in the first frame
    overwrite: bool
    changed: threading.Condition
    state: EnrollState = EnrollState.WAITING
    track: Track | None = None
    started: float | None = None  # stamp of the first frame processed after start
    samples: list[np.ndarray] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    message: str = "waiting for the face to enrol"
    result: EnrollResult | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def status(self) -> EnrollmentStatus:
        track_id = self.track.id if self.track is not None else -1
        return EnrollmentStatus(self.state, self.name, len(self.samples), self.needed, track_id,
                                self.message, dict(self.skipped), self.result)

    def finish(self, state: EnrollState, message: str) -> None:
        self.state, self.message = state, message
        self.changed.notify_all()

    def progress(self) -> str:
        return f"{len(self.samples)} of {self.needed} samples"

    def follow(self, pairs: list[tuple[Track, Detection]], tracks: set[Track], stamp: float,
               timeout: float) -> None:
        """Fail on timeout or when the face left the tracks; else pick the face (once)."""
        if self.started is None:
            self.started = stamp
        if stamp - self.started > timeout:
            self.finish(
                EnrollState.FAILED, f"timed out after {timeout:g} s with {self.progress()}"
            )
            return
        if self.track is not None and self.track not in tracks:
            self.finish(
                EnrollState.FAILED, f"the face being enrolled was lost after {self.progress()}"
            )
            return
        if self.track is not None or not pairs:
            return
        if self.requested_track < 0:
            self.track = max(pairs, key=lambda p: p[1].width * p[1].height)[0]
        else:
            self.track = next((t for t, _ in pairs if t.id == self.requested_track), None)
        if self.track is not None:
            self.state, self.message = EnrollState.COLLECTING, "collecting samples"

    def consider(self, geometry: FaceGeometry, embedding: np.ndarray | None, refused: str,
                 chip: Callable[[], np.ndarray], options: TrackingOptions) -> bool:
        """Take this frame's sample of the face, or count why not; True when all are in.

        ``refused`` is why the face was not embedded (the recognition quality checks; '' when
        it was usable), ``chip`` makes its aligned chip (only needed for the sharpness check).
        """
        if embedding is None:
            self.skipped[refused.split(":")[0] or "over the frame's embedding budget"] += 1
        elif abs(geometry.pose.yaw) > options.enroll_max_yaw_deg:
            self.skipped["turned away"] += 1
        elif sharpness(chip()) < options.enroll_min_sharpness:
            self.skipped["blurred"] += 1
        elif (
            self.samples
            and float(np.max(np.stack(self.samples) @ embedding)) > options.enroll_max_similarity
        ):
            self.skipped["near duplicate"] += 1
        else:
            self.samples.append(embedding)
            self.message = f"collected {self.progress()}"
        return len(self.samples) >= self.needed
