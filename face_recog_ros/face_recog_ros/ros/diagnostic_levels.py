"""OK / WARN / ERROR for the node's /diagnostics statuses: one per camera, one for the recognizer.

The rules, worst first (each status takes the worst that applies):
- camera ERROR: no image has arrived for `image_timeout` seconds (counted from activation until
  the first one), e.g. a stalled or unplugged camera, or a topic name that nobody publishes.
- camera WARN: frames were refused in the window (bad encoding, wrong sizes, corrupt JPEG), or
  the node processed fewer than `min_processed_ratio` of the frames it should have (all
  received frames, divided by process_every_n): the machine cannot keep up.
- recognizer ERROR: a model failed (could not be loaded, or the pipeline raised on a frame).
- recognizer WARN: the gallery is empty, so nobody can be named.
A node that is deliberately inactive or unconfigured is OK: nothing is expected of it.

Levels are the numbers of diagnostic_msgs/DiagnosticStatus (OK=0, WARN=1, ERROR=2); this module
does not import ROS, so the rules are tested without a graph. ros/diagnostics.py builds the
messages.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Level(enum.IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class Thresholds:
    """When a camera status leaves OK (node parameters diagnostics_*)."""

    image_timeout: float = 5.0  # seconds without an image before ERROR
    min_processed_ratio: float = 0.8  # processed / expected frames below this: WARN
    min_frames: int = 5  # fewer expected frames in a window than this: too few to judge the ratio


@dataclass(frozen=True)
class CameraWindow:
    """What one camera did in one diagnostics window."""

    topic: str
    active: bool  # subscribed (lifecycle state active)
    received: int  # frames received in the window
    processed: int  # frames processed in the window
    span: float  # window length, seconds
    image_age: float  # seconds since the last image, or since activation before the first one
    any_image: bool  # an image has arrived since activation
    process_every_n: int = 1
    refused: Mapping[str, int] | None = None  # cause -> frames refused in the window
    mean_latency_ms: float = 0.0


@dataclass(frozen=True)
class Verdict:
    level: Level
    message: str


def camera_verdict(window: CameraWindow, thresholds: Thresholds) -> Verdict:
    """The camera status's level and message for one window."""
    if not window.active:
        return Verdict(Level.OK, f"inactive: not subscribed to {window.topic}")
    if window.image_age > thresholds.image_timeout:
        what = "no image for" if window.any_image else "no image since activation,"
        return Verdict(Level.ERROR, f"{what} {window.image_age:.1f} s on {window.topic} "
                                    "(camera stalled, unplugged, or publishing elsewhere?)")
    if window.refused:
        causes = ", ".join(f"{cause} x{n}" for cause, n in sorted(window.refused.items()))
        return Verdict(Level.WARN, f"refused frames: {causes}")
    span = max(window.span, 1e-6)
    input_hz, processed_hz = window.received / span, window.processed / span
    if not window.any_image:
        return Verdict(Level.OK, f"waiting for the first image on {window.topic} (ERROR after "
                                 f"{thresholds.image_timeout:g} s)")
    expected = window.received / max(window.process_every_n, 1)
    ratio = thresholds.min_processed_ratio
    if expected >= thresholds.min_frames and window.processed < ratio * expected:
        return Verdict(Level.WARN, (
            f"falling behind: {processed_hz:.1f} of {input_hz:.1f} Hz processed "
            f"({window.processed} of {expected:.0f} frames, below {ratio:.0%}); "
            "a slower camera rate or process_every_n would help"))
    return Verdict(Level.OK, f"{processed_hz:.1f} of {input_hz:.1f} Hz processed, "
                             f"{window.mean_latency_ms:.1f} ms per frame")


@dataclass(frozen=True)
class RecognizerState:
    """The recognizer's condition at one diagnostics report."""

    lifecycle_state: str  # unconfigured, inactive, active, finalized
    model_error: str = ""  # why the models could not be loaded ("" = no failure)
    pipeline_errors: int = 0  # frames the pipeline raised on, in the window
    gallery_loaded: bool = False
    people: int = 0
    samples: int = 0


def recognizer_verdict(state: RecognizerState) -> Verdict:
    """The recognizer status's level and message."""
    if state.model_error:
        return Verdict(Level.ERROR, f"models failed: {state.model_error}")
    if state.pipeline_errors:
        return Verdict(Level.ERROR, f"the pipeline failed on {state.pipeline_errors} frame(s) "
                                    "in this window (see the log)")
    if not state.gallery_loaded:
        return Verdict(Level.OK, f"{state.lifecycle_state}: models and gallery not loaded")
    gallery = f"{state.people} people, {state.samples} samples"
    if state.people == 0:
        return Verdict(Level.WARN, f"{state.lifecycle_state}: the gallery is empty, so every face "
                                   "stays unknown (enrol people with ~/enroll)")
    return Verdict(Level.OK, f"{state.lifecycle_state}: {gallery}")
