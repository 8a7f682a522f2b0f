"""Frames in, results out: the node's image subscriptions, its worker thread and its publishers.

The subscription callback only parks the newest message per camera and wakes one worker
thread, so frames that arrive while one is processed replace each other (counted as dropped)
instead of queueing. Images come in on a node of their own ("<name>_image_input", spun by a
single-threaded executor, which keeps up with 30 Hz where a multi-threaded one does not). All
cameras share one FaceRecognizer (models and gallery are used under its lock), so one worker is
enough. Every refused or flagged frame is counted by cause, and the first of each cause logged.

An ImageInput lives for one activation of the node: created by on_activate, destroyed (with its
subscriptions, publishers and threads) by on_deactivate, so an inactive node takes no frames.
The subscription's reliability follows image_reliability (image_qos.py); with `auto` the node
calls recheck_qos() as publishers come and go, and a changed choice re-subscribes.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from face_recog_interfaces.msg import FaceArray, FaceEvent

from ..io.draw import annotate
from ..io.image_messages import ImageConversionError, compressed_to_rgb, image_to_rgb
from ..tracking.stream import StreamRecognizer
from .conversion import rgb_to_image
from .diagnostics import BLANK_FRAME, PROCESSING_ERROR, CameraStats
from .image_qos import BEST_EFFORT, RELIABLE, choose_reliability
from .messages import event_to_msg, faces_to_msg
from .standard_outputs import StandardOutputs

# Newest frame only: an old frame is worth nothing to a robot once a newer one exists.
IMAGE_QOS = {
    BEST_EFFORT: QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                            history=HistoryPolicy.KEEP_LAST, depth=1),
    RELIABLE: QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         depth=1),
}
OFFERED = {ReliabilityPolicy.RELIABLE: RELIABLE, ReliabilityPolicy.BEST_EFFORT: BEST_EFFORT}


def is_blank(rgb: np.ndarray) -> bool:
    """All one colour (black, white, lens cap), judged on a sparse grid so it costs
    microseconds."""
    grid = rgb[::16, ::16]
    return int(grid.max()) - int(grid.min()) <= 8


def stamp_seconds(msg: Image | CompressedImage, fallback: float) -> float:
    stamp = msg.header.stamp
    return stamp.sec + stamp.nanosec * 1e-9 if (stamp.sec or stamp.nanosec) else fallback


def camera_name(topic: str) -> str:
    return topic.strip("/").replace("/", "_")


@dataclass(eq=False)
class Camera:
    """One image topic: its tracker, the newest unprocessed frame, its publishers and counters."""

    topic: str
    stream: StreamRecognizer
    faces_pub: Any
    events_pub: Any
    annotated_pub: Any
    stats: CameraStats = field(default_factory=CameraStats)
    pending: tuple[Any, float] | None = None  # (message, time.monotonic() at receipt)
    received: int = 0
    subscription: Any = None
    reliability: str = ""  # of the subscription: RELIABLE or BEST_EFFORT


class ImageInput:
    """The cameras of ``node``: subscriptions on an input node of its own, and the worker.

    ``settings`` is the node's dict of node-level parameters, read as it is now.
    """

    def __init__(self, node: Node, settings: dict[str, Any],
                 outputs: StandardOutputs | None = None) -> None:
        self._node = node
        self._settings = settings
        self._outputs = outputs
        self.started = time.monotonic()
        self._wake = threading.Condition()  # guards every Camera.pending; wakes the worker
        self._stopping = False
        self._warned: set[str] = set()
        self.cameras: list[Camera] = []
        # No global arguments: launch's `-r __node:=<name>` would rename it to the node's name;
        # topics are resolved (remapped) by the node and handed over as absolute names.
        self._input = Node(f"{node.get_name()}_image_input", namespace=node.get_namespace(),
                           context=node.context, use_global_arguments=False,
                           start_parameter_services=False)
        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(self._input)
        self._worker = threading.Thread(
            target=self._work, name="face_recognition_worker", daemon=True
        )
        self._spinner = threading.Thread(
            target=self._spin, name="face_recognition_input", daemon=True
        )

    def add_camera(self, topic: str, stream: StreamRecognizer, prefix: str) -> Camera:
        """Subscribe ``topic`` (or its /compressed), with the outputs under ``prefix``."""
        node = self._node
        camera = Camera(topic, stream, node.create_publisher(FaceArray, prefix + "faces", 10),
                        node.create_publisher(FaceEvent, prefix + "events", 10),
                        node.create_publisher(Image, prefix + "image_annotated", 1))
        self._subscribe(camera)
        self.cameras.append(camera)
        return camera

    def topic_of(self, camera: Camera) -> str:
        """The absolute topic name subscribed (the image_transport /compressed suffix too)."""
        topic = self._node.resolve_topic_name(camera.topic)
        return topic + "/compressed" if self._settings["use_compressed"] else topic

    def _subscribe(self, camera: Camera) -> None:
        """(Re-)subscribe with the reliability image_reliability and the publishers call for."""
        topic = self.topic_of(camera)
        offered = [OFFERED.get(info.qos_profile.reliability, "unknown")
                   for info in self._input.get_publishers_info_by_topic(topic)]
        choice = choose_reliability(self._settings["image_reliability"], offered)
        if camera.subscription is not None:
            if choice.reliability == camera.reliability:
                return
            self._input.destroy_subscription(camera.subscription)
        msg_type = CompressedImage if self._settings["use_compressed"] else Image
        camera.subscription = self._input.create_subscription(
            msg_type, topic, lambda msg: self._on_image(camera, msg),
            IMAGE_QOS[choice.reliability])
        camera.reliability = choice.reliability
        log = self._node.get_logger()
        (log.warning if choice.warning else log.info)(f"{topic}: subscribing {choice.reason}")

    def recheck_qos(self) -> None:
        """Re-decide each camera's reliability from the publishers there now."""
        for camera in self.cameras:
            self._subscribe(camera)

    def start(self) -> None:
        self._worker.start()
        self._spinner.start()

    def stop(self) -> None:
        """Stop the worker and the input executor (idempotent)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
        if self._spinner.is_alive():
            self._executor.shutdown(timeout_sec=1.0)
            self._spinner.join(timeout=5.0)

    def destroy(self) -> None:
        """Stop, then remove the subscriptions and every publisher (deactivation)."""
        self.stop()
        self._input.destroy_node()
        if self._outputs is not None:
            self._outputs.close()
        for camera in self.cameras:
            for publisher in (camera.faces_pub, camera.events_pub, camera.annotated_pub):
                self._node.destroy_publisher(publisher)

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_image(self, camera: Camera, msg: Image | CompressedImage) -> None:
        """Park the newest frame and wake the worker; never processes here."""
        received = time.monotonic()
        camera.stats.received()
        camera.received += 1
        if (camera.received - 1) % self._settings["process_every_n"]:
            camera.stats.count("skipped")
            return
        with self._wake:
            if camera.pending is not None:
                camera.stats.count("dropped")
            camera.pending = (msg, received)
            self._wake.notify()

    def _work(self) -> None:
        """Worker thread: process the cameras' newest frames round-robin until stopped."""
        turn = 0
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stopping or any(c.pending for c in self.cameras))
                if self._stopping:
                    return
                order = self.cameras[turn:] + self.cameras[:turn]
                camera = next(c for c in order if c.pending)
                turn = (self.cameras.index(camera) + 1) % len(self.cameras)
                msg, received = camera.pending
                camera.pending = None
            try:
                self._process(camera, msg, received)
            except Exception as exc:  # a pipeline bug must not kill the worker
                self._problem(camera, PROCESSING_ERROR,
                              f"processing a frame failed: {exc}\n{traceback.format_exc()}")

    def _process(self, camera: Camera, msg: Image | CompressedImage, received: float) -> None:
        started = time.monotonic()
        rgb = self._to_rgb(camera, msg)
        if rgb is None:
            return
        converted = time.monotonic()
        result = camera.stream.process(rgb, stamp_seconds(msg, time.time()))
        processed = time.monotonic()
        camera.faces_pub.publish(
            faces_to_msg(
                result.faces, msg.header, with_embeddings=self._settings["publish_embeddings"]
            )
        )
        for event in result.events:
            camera.events_pub.publish(event_to_msg(event, msg.header))
        if self._outputs is not None:
            self._outputs.publish(self.cameras.index(camera), result, msg.header, rgb)
        published = time.monotonic()
        if (
            self._settings["publish_annotated"]
            and camera.annotated_pub.get_subscription_count() > 0
        ):
            camera.annotated_pub.publish(rgb_to_image(annotate(rgb, result.faces), msg.header))
            camera.stats.count("annotated")
        latencies = dict(result.timings)
        latencies.update(queue=(started - received) * 1e3, convert=(converted - started) * 1e3,
                         publish=(published - processed) * 1e3,
                         receive_to_publish=(published - received) * 1e3)
        camera.stats.processed(latencies, result.embedded, len(result.faces))

    def _to_rgb(self, camera: Camera, msg: Image | CompressedImage) -> np.ndarray | None:
        """The frame as RGB, or None after counting and (once) logging why it was refused."""
        limit = self._settings["max_input_pixels"]
        try:
            if isinstance(msg, CompressedImage):
                rgb = compressed_to_rgb(msg, limit)
            else:  # exact: bytes the sizes do not account for mean the message lies about them
                rgb = image_to_rgb(msg, limit, exact=True)
        except ImageConversionError as exc:
            self._problem(camera, exc.cause.value, str(exc))
            return None
        if is_blank(rgb):
            self._problem(
                camera,
                BLANK_FRAME,
                "the image is all one colour (lens covered, exposure "
                "failed?); processing it anyway",
            )
        return rgb

    def _problem(self, camera: Camera, cause: str, message: str) -> None:
        """Count a refused/flagged frame; log the first of each cause (the rest are in
        /diagnostics)."""
        camera.stats.problem(cause)
        key = f"{camera.topic}:{cause}"
        if key not in self._warned:
            self._warned.add(key)
            self._node.get_logger().warning(
                f"{camera.topic}: {cause}: {message} (further '{cause}' "
                "frames are only counted in /diagnostics)"
            )
