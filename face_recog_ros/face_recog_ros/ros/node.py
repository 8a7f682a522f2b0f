"""face_recognition_node: the ROS 2 face of FaceRecognizer / StreamRecognizer.

    ros2 run face_recog_ros face_recognition_node --ros-args -r image:=/camera/image_raw \
        --params-file config/face_recognition.yaml

Topics: subscribes `image` (sensor_msgs/Image; `image/compressed` with use_compressed), or each
of `image_topics`. Publishes ~/faces (FaceArray, header = the image's), ~/events (FaceEvent),
~/image_annotated (only drawn while subscribed) and /diagnostics. With several cameras the
outputs are ~/<camera>/faces, ... (<camera> = topic with '/' -> '_').
Services: ~/enroll, ~/forget, ~/rename, ~/list_faces (face_recog_interfaces/srv). ~/enroll with
an image enrols the one face in it; with an empty image it collects num_samples (default 5)
samples of the face in view of the first camera (track_id, or the largest face for -1 or 0, the
field's default) and answers when they are in. ~/rename of unknown_<n> enrols that cluster of a
returning stranger (tracking.cluster_unknowns). Bad requests answer success=false with the reason.

Threading: the subscription callback only parks the newest message per camera and wakes one
worker thread, so frames that arrive while one is processed replace each other (counted as
dropped) instead of queueing. Images come in on a node of their own ("<name>_image_input",
spun by a single-threaded executor, which keeps up with 30 Hz where a multi-threaded one does not);
services, parameters and timers run on a MultiThreadedExecutor. All cameras share one
FaceRecognizer (models and gallery are used under its lock), so one worker is enough.
"""
from __future__ import annotations

import os

# numpy's BLAS must not spin up threads that fight the TFLite threads for the same cores: a
# multi-threaded OpenBLAS matmul stalls ~20 ms on a loaded 2-core board. Before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses  # noqa: E402
import functools  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import SetParametersResult  # noqa: E402
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup  # noqa: E402
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from face_recog_interfaces.msg import FaceArray, FaceEvent  # noqa: E402
from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename  # noqa: E402

from ..config import RecognizerConfig, set_option  # noqa: E402
from ..detection import FaceDetector  # noqa: E402
from ..draw import annotate  # noqa: E402
from ..gallery import InvalidName, NameTaken, UnknownPerson, validate_name  # noqa: E402
from ..gallery_store import GalleryError, GalleryNotSaved  # noqa: E402
from ..pipeline import EnrollError, FaceRecognizer  # noqa: E402
from ..stream import ACTIVE_STATES, EnrollmentStatus, EnrollState, StreamRecognizer  # noqa: E402
from ..tracking import is_cluster_label  # noqa: E402
from .conversion import (ImageConversionError, UnsupportedEncoding, buffer_rows,  # noqa: E402
                         compressed_to_rgb, has_odd_size, image_to_rgb, rgb_to_image)
from .diagnostics import CameraStats, camera_status  # noqa: E402
from .messages import event_to_msg, faces_to_msg, iso_to_time  # noqa: E402
from .parameters import NODE_PARAM_NAMES, declarations, load_defaults, validate_changes  # noqa: E402

NODE_NAME = "face_recognition_node"
EXECUTOR_THREADS = 4  # a waiting live enrolment holds one; others serve frames, services, timers
DEFAULT_LIVE_SAMPLES = 5
# Newest frame only: an old frame is worth nothing to a robot once a newer one exists.
IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1)
RELIABLE_IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                                depth=1)
# Requests wait here while one is served; the default depth of 10 silently dropped the 11th.
SERVICE_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=64)
_DETECTOR_LIVE = ("detector.min_score", "detector.nms_iou")


def refusal_cause(msg: Image | CompressedImage, error: ImageConversionError, max_pixels: int) -> str:
    """Which INPUT_PROBLEMS cause made conversion refuse this message (judged from the message)."""
    if isinstance(error, UnsupportedEncoding):
        return "unsupported_encoding"
    if isinstance(msg, CompressedImage):
        if not msg.data:
            return "empty_data"
        return "too_large" if "max_pixels" in str(error) else "corrupt_compressed"
    if msg.width == 0 or msg.height == 0:
        return "zero_size"
    if msg.width * msg.height > max_pixels:
        return "too_large"
    if len(msg.data) < msg.step * buffer_rows(msg):
        return "data_too_short"
    if has_odd_size(msg):
        return "odd_size"
    return "step_too_small"


def surplus_bytes(msg: Image) -> int:
    """Bytes beyond step * rows: a message whose sizes or encoding do not describe its data."""
    return len(msg.data) - msg.step * buffer_rows(msg)


def is_blank(rgb: np.ndarray) -> bool:
    """All one colour (black, white, lens cap), judged on a sparse grid so it costs microseconds."""
    grid = rgb[::16, ::16]
    return int(grid.max()) - int(grid.min()) <= 8


def stamp_seconds(msg: Image | CompressedImage, fallback: float) -> float:
    stamp = msg.header.stamp
    return stamp.sec + stamp.nanosec * 1e-9 if (stamp.sec or stamp.nanosec) else fallback


def camera_name(topic: str) -> str:
    return topic.strip("/").replace("/", "_")


def status_text(status: EnrollmentStatus) -> str:
    text = f"{status.message} ({status.collected} of {status.needed} samples"
    if status.skipped:
        skipped = sorted(status.skipped.items())
        text += "; frames skipped: " + ", ".join(f"{reason} x{n}" for reason, n in skipped)
    return text + ")"


def service(func: Callable) -> Callable:
    """A service callback that answers success=false with the reason instead of raising."""
    @functools.wraps(func)
    def wrapper(self: FaceRecognitionNode, request: Any, response: Any) -> Any:
        try:
            return func(self, request, response)
        except Exception as exc:  # a bug or an I/O failure: answer, log, keep serving
            self.get_logger().error(f"{func.__name__} failed: {exc}\n{traceback.format_exc()}")
            response.success, response.message = False, f"internal error: {exc}"
            return response
    return wrapper


@dataclasses.dataclass(eq=False)
class Camera:
    """One image topic: its tracker, the newest unprocessed frame, its publishers and counters."""

    topic: str
    stream: StreamRecognizer
    faces_pub: Any
    events_pub: Any
    annotated_pub: Any
    stats: CameraStats = dataclasses.field(default_factory=CameraStats)
    pending: tuple[Any, float] | None = None  # (message, time.monotonic() at receipt)
    received: int = 0


class FaceRecognitionNode(Node):
    """Parameters, cameras, worker thread and services; see the module docstring."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._wake = threading.Condition()  # guards every Camera.pending; wakes the worker
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._input_thread: threading.Thread | None = None
        self.cameras: list[Camera] = []
        self.config = self._declare_parameters()
        self.recognizer = FaceRecognizer(self.config)
        if self.recognizer.gallery_warning:
            self.get_logger().warning(self.recognizer.gallery_warning)

        # Images arrive through a node of their own, spun by a SingleThreadedExecutor thread:
        # rclpy's MultiThreadedExecutor takes messages so slowly that best-effort, depth-1 frames
        # are overwritten inside DDS before it reads them (measured here: 10 of 300 raw frames at
        # 30 Hz, against 267 with a single-threaded executor).
        # No global arguments: launch's `-r __node:=<name>` would rename it to this node's name;
        # topics are resolved (remapped) by this node and handed over as absolute names.
        self._input = Node(f"{self.get_name()}_image_input", namespace=self.get_namespace(),
                           context=self.context, use_global_arguments=False,
                           start_parameter_services=False)
        self._input_executor = SingleThreadedExecutor(context=self.context)
        self._input_executor.add_node(self._input)
        self._service_group = ReentrantCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._warned: set[str] = set()
        self._enroll_lock = threading.Lock()
        self.cameras = [self._add_camera(topic, several=len(self.settings["image_topics"]) > 1)
                        for topic in self.settings["image_topics"]]
        for camera in self.cameras[1:]:  # a stranger seen by two cameras is one unknown_<n>
            camera.stream.clusters = self.cameras[0].stream.clusters

        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.settings["diagnostics_period"], self._publish_diagnostics,
                          callback_group=self._timer_group)
        if self.recognizer.gallery_path is not None:
            self.create_timer(self.settings["gallery_poll_period"], self._reload_gallery,
                              callback_group=self._timer_group)
        for srv_type, name, handler in ((Enroll, "~/enroll", self._enroll),
                                        (Forget, "~/forget", self._forget),
                                        (Rename, "~/rename", self._rename),
                                        (ListFaces, "~/list_faces", self._list_faces)):
            self.create_service(srv_type, name, handler, qos_profile=SERVICE_QOS,
                                callback_group=self._service_group)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        self._worker = threading.Thread(target=self._work, name="face_recognition_worker", daemon=True)
        self._worker.start()
        self._input_thread = threading.Thread(target=self._spin_input, name="face_recognition_input",
                                              daemon=True)
        self._input_thread.start()
        people = self.recognizer.gallery.names()
        self.get_logger().info(
            f"ready: {', '.join(self.resolve_topic_name(c.topic) for c in self.cameras)} -> "
            f"{self.cameras[0].faces_pub.topic_name}; gallery {self.recognizer.gallery_path or '(memory)'} "
            f"with {len(people)} people")

    # --- set-up -------------------------------------------------------------------------
    def _declare_parameters(self) -> RecognizerConfig:
        """Declare every option with the package YAML's value as default; build the config from
        the values in effect (params file / overrides). Raises ValueError for invalid values."""
        defaults, node_defaults = load_defaults()
        declared = declarations(defaults, node_defaults)
        for name, value, desc in declared:
            self.declare_parameter(name, value, desc)
        self._declared = frozenset(name for name, _, _ in declared)
        config = RecognizerConfig()
        values = {name: self.get_parameter(name).value for name in self._declared}
        for name, value in values.items():
            if name not in NODE_PARAM_NAMES:
                set_option(config, name, value)
        validated = validate_changes(config, {n: v for n, v in values.items() if n in NODE_PARAM_NAMES})
        self.settings = {n: v for n, v in values.items() if n in NODE_PARAM_NAMES}
        self.settings["image_topics"] = list(self.settings["image_topics"])
        return validated

    def _add_camera(self, topic: str, *, several: bool) -> Camera:
        prefix = f"~/{camera_name(topic)}/" if several else "~/"
        stream = StreamRecognizer(self.recognizer)
        camera = Camera(topic, stream, self.create_publisher(FaceArray, prefix + "faces", 10),
                        self.create_publisher(FaceEvent, prefix + "events", 10),
                        self.create_publisher(Image, prefix + "image_annotated", 1))
        qos = RELIABLE_IMAGE_QOS if self.settings["reliable_images"] else IMAGE_QOS
        if self.settings["use_compressed"]:
            # image_transport convention: remap the base topic, the transport suffix follows it.
            self._input.create_subscription(CompressedImage, self.resolve_topic_name(topic) + "/compressed",
                                            lambda msg: self._on_image(camera, msg), qos)
        else:
            self._input.create_subscription(Image, self.resolve_topic_name(topic),
                                            lambda msg: self._on_image(camera, msg), qos)
        return camera

    # --- frames -------------------------------------------------------------------------
    def _spin_input(self) -> None:
        try:
            self._input_executor.spin()
        except ExternalShutdownException:
            pass

    def _on_image(self, camera: Camera, msg: Image | CompressedImage) -> None:
        """Park the newest frame and wake the worker; never processes here."""
        received = time.monotonic()
        camera.stats.received()
        camera.received += 1
        if (camera.received - 1) % self.settings["process_every_n"]:
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
                self._problem(camera, "processing_error",
                              f"processing a frame failed: {exc}\n{traceback.format_exc()}")

    def _process(self, camera: Camera, msg: Image | CompressedImage, received: float) -> None:
        started = time.monotonic()
        rgb = self._to_rgb(camera, msg)
        if rgb is None:
            return
        converted = time.monotonic()
        result = camera.stream.process(rgb, stamp_seconds(msg, time.time()))
        processed = time.monotonic()
        camera.faces_pub.publish(faces_to_msg(result.faces, msg.header,
                                              with_embeddings=self.settings["publish_embeddings"]))
        for event in result.events:
            camera.events_pub.publish(event_to_msg(event, msg.header))
        published = time.monotonic()
        if self.settings["publish_annotated"] and camera.annotated_pub.get_subscription_count() > 0:
            camera.annotated_pub.publish(rgb_to_image(annotate(rgb, result.faces), msg.header))
            camera.stats.count("annotated")
        latencies = {k: v for k, v in result.timings.items() if k not in ("faces", "embedded")}
        latencies.update(queue=(started - received) * 1e3, convert=(converted - started) * 1e3,
                         publish=(published - processed) * 1e3,
                         receive_to_publish=(published - received) * 1e3)
        camera.stats.processed(latencies, result.embedded, len(result.faces))

    def _to_rgb(self, camera: Camera, msg: Image | CompressedImage) -> np.ndarray | None:
        """The frame as RGB, or None after counting and (once) logging why it was refused."""
        limit = self.settings["max_input_pixels"]
        try:
            if isinstance(msg, CompressedImage):
                rgb = compressed_to_rgb(msg, limit)
            else:
                rgb = image_to_rgb(msg, limit)
                surplus = surplus_bytes(msg)
                if surplus > 0:
                    self._problem(camera, "data_too_long", f"{msg.encoding} image {msg.width}x{msg.height}"
                                  f" with step {msg.step} has {surplus} bytes more than it needs; its "
                                  "sizes or encoding do not describe the data")
                    return None
        except ImageConversionError as exc:
            self._problem(camera, refusal_cause(msg, exc, limit), str(exc))
            return None
        if is_blank(rgb):
            self._problem(camera, "blank_frame", "the image is all one colour (lens covered, exposure "
                          "failed?); processing it anyway")
        return rgb

    def _problem(self, camera: Camera, cause: str, message: str) -> None:
        """Count a refused/flagged frame; log the first of each cause (the rest are in /diagnostics)."""
        camera.stats.problem(cause)
        key = f"{camera.topic}:{cause}"
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(f"{camera.topic}: {cause}: {message} (further '{cause}' frames are "
                                      "only counted in /diagnostics)")

    # --- timers -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        gallery = self.recognizer.gallery
        extra = {"gallery_people": float(len(gallery)), "gallery_samples": float(gallery.num_samples)}
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for camera in self.cameras:
            values, problems = camera.stats.report()
            msg.status.append(camera_status(f"{self.get_name()}: {camera_name(camera.topic)}",
                                            self.resolve_topic_name(camera.topic), values, problems, extra))
        self._diagnostics_pub.publish(msg)

    def _reload_gallery(self) -> None:
        """Pick up a gallery file another node (or the CLI) replaced; our own saves are skipped."""
        try:
            if self.recognizer.reload_gallery():
                people = len(self.recognizer.gallery)
                self.get_logger().info(f"gallery changed on disk; reloaded {people} people")
        except (GalleryError, OSError) as exc:
            self.get_logger().warning(f"gallery file changed but cannot be used ({exc}); keeping the "
                                      "gallery in memory")

    # --- services -----------------------------------------------------------------------
    @service
    def _enroll(self, request: Enroll.Request, response: Enroll.Response) -> Enroll.Response:
        if not self._enroll_lock.acquire(blocking=False):
            response.success, response.message = False, ("another enrolment is in progress; try again when "
                                                         "it has finished")
            return response
        try:
            name = validate_name(request.name)
            if request.image.width == 0 and request.image.height == 0:
                return self._enroll_live(name, request, response)
            return self._enroll_image(name, request, response)
        except InvalidName as exc:
            response.success, response.message = False, f"invalid name: {exc}"
            return response
        finally:
            self._enroll_lock.release()

    def _enroll_image(self, name: str, request: Enroll.Request,
                      response: Enroll.Response) -> Enroll.Response:
        try:
            rgb = image_to_rgb(request.image, self.settings["max_input_pixels"])
            result = self.recognizer.enroll(name, [rgb], overwrite=request.overwrite, require_single=True,
                                            labels=["the image"])
        except ImageConversionError as exc:
            response.success, response.message = False, f"cannot read the image: {exc}"
            return response
        except EnrollError as exc:
            response.success, response.message = False, str(exc)
            return response
        except GalleryNotSaved as exc:
            response.success, response.message = False, f"nothing was enrolled: {exc}"
            return response
        response.success, response.samples_added, response.total_samples = True, result.added, result.total
        response.message = f"enrolled {name!r} from the image; {name!r} now has {result.total} sample(s)"
        return response

    def _enroll_live(self, name: str, request: Enroll.Request,
                     response: Enroll.Response) -> Enroll.Response:
        """Collect samples of the face in view of the first camera; wait for the outcome."""
        stream = self.cameras[0].stream
        wanted = request.num_samples or DEFAULT_LIVE_SAMPLES
        # Track ids start at 1, so 0 (the field's default when a caller leaves it out) = largest face.
        track_id = request.track_id if request.track_id > 0 else -1
        try:
            stream.start_enrollment(name, wanted, track_id, request.overwrite)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        timeout = self.settings["enroll_timeout"]
        status = stream.wait_for_enrollment(timeout)
        if status.state in ACTIVE_STATES:
            status = stream.cancel_enrollment()
            response.success = False
            response.message = f"gave up after {timeout:g} s: " + status_text(status).replace(
                "cancelled; nothing was enrolled", "nothing was enrolled", 1)
            return response
        response.success = status.state == EnrollState.DONE
        response.message = status_text(status)
        if status.result is not None:
            response.samples_added, response.total_samples = status.result.added, status.result.total
        return response

    @service
    def _forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        try:
            name = validate_name(request.name)
            self.recognizer.forget(name)
        except (InvalidName, UnknownPerson, GalleryNotSaved) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, f"forgot {name!r}"
        return response

    @service
    def _rename(self, request: Rename.Request, response: Rename.Response) -> Rename.Response:
        old = request.old_name.strip()
        try:
            new = validate_name(request.new_name)
            if is_cluster_label(old):
                return self._promote(old, new, request.merge, response)
            self.recognizer.rename(validate_name(old), new, merge=request.merge)
        except (InvalidName, UnknownPerson, NameTaken, GalleryNotSaved) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, f"renamed {old!r} to {new!r}"
        return response

    def _promote(self, cluster: str, name: str, merge: bool, response: Rename.Response) -> Rename.Response:
        """Enrol the stranger cluster `cluster` (unknown_<n>) as `name`."""
        if name in self.recognizer.gallery and not merge:
            response.success = False
            response.message = (f"{name!r} is already enrolled; set merge to add {cluster}'s samples to it")
            return response
        try:
            result = self.cameras[0].stream.promote_unknown(cluster, name)
        except KeyError as exc:
            response.success, response.message = False, str(exc.args[0]) if exc.args else str(exc)
            return response
        response.success = True
        response.message = (f"enrolled {cluster} as {name!r}: {result.added} sample(s) added, "
                            f"{result.total} in total")
        return response

    @service
    def _list_faces(self, request: ListFaces.Request, response: ListFaces.Response) -> ListFaces.Response:
        people = sorted(self.recognizer.people(), key=lambda p: p.name)
        response.names = [p.name for p in people]
        response.sample_counts = [p.samples for p in people]
        response.enrolled_at = [iso_to_time(p.enrolled_at) for p in people]
        response.success = True
        response.message = f"{len(people)} people, {sum(p.samples for p in people)} samples"
        return response

    # --- parameters ---------------------------------------------------------------------
    def _check_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Reject a change (with the reason) before it is set; read-only and ranges rclpy checks."""
        changes = {p.name: p.value for p in params if p.name in self._declared}
        try:
            validate_changes(self.config, changes)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if not isinstance(self.recognizer.detector, FaceDetector):
            fixed = [n for n in _DETECTOR_LIVE if n in changes]
            if fixed:
                return SetParametersResult(successful=False, reason=(
                    f"{fixed[0]} is fixed when the {self.config.detector.backend} detector backend starts; "
                    "set it in the params file and restart the node"))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        """Apply accepted changes to the live objects (the config is shared by recognizer and streams)."""
        params = [p for p in params if p.name in self._declared]  # not use_sim_time and the like
        if not params:
            return
        for p in params:
            if p.name in NODE_PARAM_NAMES:
                self.settings[p.name] = p.value
            else:
                set_option(self.config, p.name, p.value)
        det = self.config.detector
        options = dataclasses.replace(self.recognizer.detector_options, min_score=det.min_score,
                                      nms_iou=det.nms_iou, max_faces=det.max_faces)
        self.recognizer.detector_options = self.recognizer.detector.options = options
        self.recognizer.gallery.max_samples_per_person = self.config.gallery.max_samples_per_person
        clusters = self.cameras[0].stream.clusters
        tracking = self.config.tracking
        clusters.threshold = (tracking.cluster_threshold if tracking.cluster_threshold >= 0
                              else self.recognizer.threshold)
        clusters.max_clusters = tracking.max_unknown_clusters
        self.get_logger().info("parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in params))

    # --- shutdown -----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the worker and cancel live enrolments, so no service waits out its timeout."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for camera in self.cameras:
            camera.stream.cancel_enrollment()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        if self._input_thread is not None:
            self._input_executor.shutdown(timeout_sec=1.0)
            self._input_thread.join(timeout=5.0)

    def destroy_node(self) -> None:
        self.stop()
        if hasattr(self, "_input"):
            self._input.destroy_node()
        super().destroy_node()


def spin(node: FaceRecognitionNode, executor: MultiThreadedExecutor | None = None) -> None:
    """Spin the node until its context shuts down (on `executor`, or on its own MultiThreadedExecutor);
    then stop its worker and cancel waiting enrolments, so no callback outlives the spin."""
    own = executor is None
    executor = executor or MultiThreadedExecutor(num_threads=EXECUTOR_THREADS, context=node.context)
    executor.add_node(node)
    try:
        executor.spin()
    finally:
        node.stop()
        if own:
            executor.shutdown()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = FaceRecognitionNode()
    except Exception as exc:  # bad parameters, missing models, unreadable config: say why, exit 1
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    try:
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
