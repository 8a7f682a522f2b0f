"""Per-camera counters and the /diagnostics statuses (levels: diagnostic_levels.py).

The subscription callback and the worker thread count into CameraStats; the diagnostics timer
takes a window (rates and mean latencies since the previous report) plus running totals.
Key names are stable so monitoring tools and tools/bench_node.py can read them:

    input_rate_hz, processed_rate_hz, dropped_frames (this window), dropped_frames_total,
    skipped_frames_total, frames_received_total, frames_processed_total, annotated_frames_total,
    latency_<stage>_ms: the stages the core timed (detect, landmarks, embed, track, total with
        tracking; detect, landmarks, align, embed, match, total without) plus queue
        (subscription callback -> the worker picks the frame), convert (message -> RGB),
        publish (building and sending ~/faces and ~/events) and receive_to_publish (all of it),
    window_s (length of this window), image_age_s (seconds since the last image),
    embeddings_per_frame, faces_per_frame, gallery_people, gallery_samples,
    errors_<cause> (running totals, every cause in INPUT_PROBLEMS), errors_total.

Latencies and per-frame figures are means over the frames processed in the window; the
detector runs every tracking.detect_interval frames, so latency_detect_ms is its cost per frame.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..io.image_messages import Refusal
from .diagnostic_levels import Verdict

BLANK_FRAME = "blank_frame"  # all one colour (black, white, covered lens): processed, but flagged
PROCESSING_ERROR = "processing_error"  # an exception in the pipeline (a bug): the frame is skipped
# Every reason a frame can be refused (the decoder's causes) or flagged; each is counted and
# the first of each logged.
INPUT_PROBLEMS = (*(cause.value for cause in Refusal), BLANK_FRAME, PROCESSING_ERROR)
# Flagged but still processed; not a reason for a WARN level.
NOT_ERRORS = frozenset({BLANK_FRAME})


class CameraStats:
    """Thread-safe counters for one camera."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._window: Counter[str] = Counter()
        self._window_errors: Counter[str] = Counter()
        self._latency: defaultdict[str, float] = defaultdict(float)
        self._since = time.monotonic()
        self.last_image: float | None = None  # time.monotonic() of the last image received

    def received(self) -> None:
        with self._lock:
            self.last_image = time.monotonic()
            self.totals["received"] += 1
            self._window["received"] += 1

    def count(self, what: str) -> None:
        """'dropped' (overwritten before processing), 'skipped' (process_every_n) or
        'annotated'."""
        with self._lock:
            self.totals[what] += 1
            self._window[what] += 1

    def problem(self, cause: str) -> int:
        """Count an input problem; returns its running total (1 = first time: log it)."""
        with self._lock:
            self.errors[cause] += 1
            self._window_errors[cause] += 1
            return self.errors[cause]

    def processed(self, latencies_ms: dict[str, float], embedded: int, faces: int) -> None:
        with self._lock:
            self.totals["processed"] += 1
            self._window["processed"] += 1
            self._window["embedded"] += embedded
            self._window["faces"] += faces
            for stage, ms in latencies_ms.items():
                self._latency[stage] += ms

    def report(self) -> tuple[dict[str, float], Counter[str]]:
        """Window figures (rates, means) and problems since the last report; starts a new
        window."""
        with self._lock:
            now = time.monotonic()
            span = max(now - self._since, 1e-6)
            window, latency, problems = self._window, self._latency, self._window_errors
            self._window, self._latency, self._window_errors = (
                Counter(),
                defaultdict(float),
                Counter(),
            )
            self._since = now
            totals, errors = Counter(self.totals), Counter(self.errors)
        processed = window["processed"]
        values = {
            "input_rate_hz": window["received"] / span,
            "processed_rate_hz": processed / span,
            "window_s": span,
            "dropped_frames": float(window["dropped"]),
            "dropped_frames_total": float(totals["dropped"]),
            "skipped_frames_total": float(totals["skipped"]),
            "frames_received_total": float(totals["received"]),
            "frames_processed_total": float(totals["processed"]),
            "annotated_frames_total": float(totals["annotated"]),
            "embeddings_per_frame": window["embedded"] / processed if processed else 0.0,
            "faces_per_frame": window["faces"] / processed if processed else 0.0,
        }
        for stage, total_ms in sorted(latency.items()):
            values[f"latency_{stage}_ms"] = total_ms / processed if processed else 0.0
        for cause in INPUT_PROBLEMS:
            values[f"errors_{cause}"] = float(errors[cause])
        values["errors_total"] = float(sum(n for c, n in errors.items() if c not in NOT_ERRORS))
        return values, problems


def camera_status(name: str, hardware_id: str, verdict: Verdict, values: dict[str, float],
                  problems: Counter[str], extra: dict[str, float]) -> DiagnosticStatus:
    """One camera's DiagnosticStatus: the verdict's level and message, and every figure."""
    message = verdict.message
    if problems.get(BLANK_FRAME):
        message += "; blank frames (covered lens or failed exposure?)"
    return status(name, hardware_id, verdict.level, message, {**values, **extra})


def status(name: str, hardware_id: str, level: int, message: str,
           values: dict[str, float | str]) -> DiagnosticStatus:
    return DiagnosticStatus(level=bytes([level]), name=name, message=message,
                            hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()])


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
