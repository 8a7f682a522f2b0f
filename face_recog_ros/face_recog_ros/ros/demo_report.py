"""What the demo saw, and how it says so: the story lines and the summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from face_recog_interfaces.msg import FaceEvent

from ..types import UNKNOWN
from .demo_client import NodeFigures, SeenFace
from .demo_story import SIZE, Script

EVENT_NAMES = {FaceEvent.APPEARED: "appeared", FaceEvent.IDENTIFIED: "identified",
               FaceEvent.LABEL_CHANGED: "label changed", FaceEvent.LEFT: "left"}


@dataclass
class Enrolment:
    name: str
    frame: int  # sent before this frame
    how: str  # "photo" or "live"
    success: bool = False
    message: str = ""
    done_frame: int = -1
    call: Any = None  # the ~/enroll future while a live enrolment runs

    def finish(self, response: Any, frame: int, missing: str) -> None:
        self.done_frame = frame
        self.success = bool(response and response.success)
        self.message = response.message if response else missing
        self.call = None


@dataclass
class DemoReport:
    """What happened; main() prints it, the tests check it."""

    script: Script
    fps: float
    latencies_ms: list[float] = field(default_factory=list)  # image sent -> ~/faces received
    seen: list[tuple[int, list[SeenFace]]] = field(default_factory=list)  # (frame, faces)
    events: list[tuple[int, FaceEvent]] = field(default_factory=list)  # (frame index, event)
    enrolments: list[Enrolment] = field(default_factory=list)
    gallery: dict[str, int] = field(default_factory=dict)  # ~/list_faces at the end
    node: NodeFigures | None = None  # the node's own figures, from its /diagnostics
    streamed_s: float = 0.0  # sending time, without the pause for the photo enrolment
    video: Path | None = None
    snapshots: list[Path] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and len(self.enrolments) == 2
            and all(e.success for e in self.enrolments)
            and bool(self.seen)
        )


def faces_text(faces: list[SeenFace]) -> str:
    if not faces:
        return "faces: nobody"
    parts = []
    for f in sorted(faces, key=lambda f: f.center_x):
        part = f"#{f.track_id} {f.label}"
        if f.label != UNKNOWN and f.similarity:
            part += f" {f.similarity:.2f}"
        parts.append(part)
    return "faces: " + "   ".join(parts)


def event_text(event: FaceEvent) -> str:
    text = f"event: #{event.track_id} {EVENT_NAMES.get(event.type, str(event.type))} {event.label}"
    if event.type == FaceEvent.LABEL_CHANGED:
        text += f" (was {event.previous_label})"
    if event.type in (FaceEvent.IDENTIFIED, FaceEvent.LABEL_CHANGED) and event.similarity:
        text += f" {event.similarity:.2f}"
    return text


def summary(report: DemoReport) -> str:
    frames = report.script.frames
    lines = [
        "",
        "Summary",
        f"  frames sent      {frames} ({SIZE[0]}x{SIZE[1]}), at most {report.fps:g} a second like "
        "a "
        "camera, each once the previous one's result is back",
    ]
    node = report.node
    if node is not None and node.processed:
        lines.append(
            f"  node             {node.processed} of {frames} frames processed "
            f"({node.dropped} dropped), {node.processed / report.streamed_s:.1f} frames/s; "
            f"{node.receive_to_publish_ms:.1f} ms a frame from receipt to publish, "
            f"{node.recognise_ms:.1f} ms of it recognising (its /diagnostics)"
        )
    if report.latencies_ms:
        latency = np.array(report.latencies_ms)
        lines.append(
            "  latency          image sent -> ~/faces received: p50 "
            f"{np.percentile(latency, 50):.1f} "
            f"ms, p95 {np.percentile(latency, 95):.1f} ms (ROS transport both ways included)"
        )
    tracks: dict[str, set[int]] = {}
    for _, faces in report.seen:
        for f in faces:
            tracks.setdefault(f.label, set()).add(f.track_id)
    seen = ", ".join(
        f"{label} (track{'s' if len(ids) > 1 else ''} {', '.join(f'#{t}' for t in sorted(ids))})"
        for label, ids in sorted(tracks.items())
    )
    lines.append(f"  who was seen     {seen or 'nobody'}")
    counts = {name: sum(1 for _, e in report.events if EVENT_NAMES.get(e.type) == name)
              for name in EVENT_NAMES.values()}
    lines.append("  events           " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    for e in report.enrolments:
        lines.append(f"  enrolment        {e.name} ({e.how}, frame {e.frame}): "
                     f"{'ok' if e.success else 'FAILED'}: {e.message}")
    if report.gallery:
        lines.append(
            "  gallery          "
            + ", ".join(f"{n}: {k} samples" for n, k in report.gallery.items())
            + " (~/list_faces)"
        )
    if report.video:
        lines.append(f"  video            {report.video} (open it with any player)")
    if report.snapshots:
        lines.append("  snapshots        " + ", ".join(str(p) for p in report.snapshots))
    return "\n".join(lines)
