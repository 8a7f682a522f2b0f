"""The demo's side of the ROS graph: sends frames, collects results, reads the node's
diagnostics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from face_recog_interfaces.msg import FaceArray, FaceEvent
from face_recog_interfaces.srv import Enroll, ListFaces

from ..io.image_messages import image_to_rgb
from .conversion import rgb_to_image
from .service_qos import SERVICE_QOS

NAMESPACE = "face_recog_demo"
NODE = "face_recognition_node"
IMAGE_QOS = QoSProfile(
    reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1
)

StampKey = tuple[int, int]


@dataclass(frozen=True)
class SeenFace:
    track_id: int
    label: str
    similarity: float
    center_x: float


@dataclass(frozen=True)
class NodeFigures:
    """What the node itself reported about the streamed frames (its /diagnostics windows)."""

    processed: int
    dropped: int
    receive_to_publish_ms: float  # mean, from the subscription callback to ~/faces sent
    recognise_ms: float  # mean time in the stream's process() (detect, embed, track)


def wait_for(future: Any, timeout: float) -> Any:
    """The future's result, or None when it is not done within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    return future.result() if future.done() else None


def stamp_key(stamp: Any) -> StampKey:
    return stamp.sec, stamp.nanosec


def seen_faces(msg: FaceArray) -> list[SeenFace]:
    return [SeenFace(f.track_id, f.label, f.similarity, f.x_min + f.width / 2) for f in msg.faces]


class Client(Node):
    """Publishes frames, collects ~/faces, ~/events, ~/image_annotated and /diagnostics."""

    def __init__(self, context: Context, *, want_annotated: bool) -> None:
        super().__init__("face_recog_demo_client", namespace=NAMESPACE, context=context)
        self.image_pub = self.create_publisher(Image, "image", IMAGE_QOS)
        self.enroll = self.create_client(Enroll, f"{NODE}/enroll", qos_profile=SERVICE_QOS)
        self.list_faces = self.create_client(
            ListFaces, f"{NODE}/list_faces", qos_profile=SERVICE_QOS
        )
        self._changed = threading.Condition()
        self._faces: dict[StampKey, tuple[float, FaceArray]] = {}  # stamp -> (received, msg)
        self._annotated: dict[StampKey, Image] = {}
        self._events: list[FaceEvent] = []
        self._diagnostics: list[dict[str, float]] = []  # our camera's values, one per message
        self.create_subscription(FaceArray, f"{NODE}/faces", self._on_faces, 50)
        self.create_subscription(FaceEvent, f"{NODE}/events", self._on_event, 50)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        if want_annotated:
            self.create_subscription(Image, f"{NODE}/image_annotated", self._on_annotated, 10)

    def _on_faces(self, msg: FaceArray) -> None:
        with self._changed:
            self._faces[stamp_key(msg.header.stamp)] = (time.time(), msg)
            self._changed.notify_all()

    def _on_event(self, msg: FaceEvent) -> None:
        with self._changed:
            self._events.append(msg)

    def _on_annotated(self, msg: Image) -> None:
        with self._changed:
            self._annotated[stamp_key(msg.header.stamp)] = msg
            self._changed.notify_all()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id == f"/{NAMESPACE}/image":
                with self._changed:
                    self._diagnostics.append({kv.key: float(kv.value) for kv in status.values})
                    self._changed.notify_all()

    def send(self, rgb: np.ndarray, stamp: float) -> tuple[StampKey, float]:
        """Publish a frame with this capture stamp; returns its key and the wall time it was
        sent."""
        msg = rgb_to_image(rgb)
        msg.header.frame_id = "demo_camera_optical_frame"
        msg.header.stamp.sec, msg.header.stamp.nanosec = (
            int(stamp),
            int(round((stamp % 1) * 1e9)) % 10**9,
        )
        sent = time.time()
        self.image_pub.publish(msg)
        return stamp_key(msg.header.stamp), sent

    def result(
        self, key: StampKey, timeout: float, later_than: Iterable[tuple[StampKey, float]] = ()
    ) -> tuple[float, list[SeenFace]] | None:
        """(wall time received, faces) for the frame with this stamp; None after ``timeout``, or
        at once when a frame sent after it has its result already (this one was lost)."""
        later = [k for k, _ in later_than]
        with self._changed:
            self._changed.wait_for(
                lambda: key in self._faces or any(k in self._faces for k in later), timeout
            )
            if key not in self._faces:
                return None
            received, msg = self._faces.pop(key)
            return received, seen_faces(msg)

    def annotated_rgb(self, key: StampKey, timeout: float) -> np.ndarray | None:
        with self._changed:
            self._changed.wait_for(lambda: key in self._annotated, timeout)
            msg = self._annotated.pop(key, None)
        return None if msg is None else image_to_rgb(msg)

    def take_events(self) -> list[FaceEvent]:
        with self._changed:
            events, self._events = self._events, []
            return events

    def next_diagnostics(self, timeout: float) -> None:
        """Wait for the node's next /diagnostics report (it closes the current window)."""
        with self._changed:
            count = len(self._diagnostics)
            self._changed.wait_for(lambda: len(self._diagnostics) > count, timeout)

    def node_figures(self, processed: int, since: int, timeout: float = 3.0) -> NodeFigures | None:
        """The node's figures over its reports after the ``since``-th, once they cover
        ``processed`` frames (or ``timeout`` passed)."""
        def covered() -> bool:
            windows = self._diagnostics[since:]
            return (
                bool(windows)
                and windows[-1]["frames_processed_total"] - self._baseline(since) >= processed
            )
        with self._changed:
            self._changed.wait_for(covered, timeout)
            windows = self._diagnostics[since:]
            baseline = self._baseline(since)
        if not windows:
            return None
        counts = np.diff([baseline] + [w["frames_processed_total"] for w in windows])
        total = max(int(counts.sum()), 1)
        mean = {key: float(np.dot(counts, [w.get(key, 0.0) for w in windows])) / total
                for key in ("latency_receive_to_publish_ms", "latency_total_ms")}
        return NodeFigures(int(counts.sum()), int(sum(w["dropped_frames"] for w in windows)),
                           mean["latency_receive_to_publish_ms"], mean["latency_total_ms"])

    def reports(self) -> int:
        with self._changed:
            return len(self._diagnostics)

    def _baseline(self, since: int) -> float:
        return self._diagnostics[since - 1]["frames_processed_total"] if since > 0 else 0.0
