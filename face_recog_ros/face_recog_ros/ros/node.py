"""face_recognition_node: the ROS 2 face of FaceRecognizer / StreamRecognizer, a managed
(lifecycle) node.

    ros2 run face_recog_ros face_recognition_node --ros-args -r image:=/camera/image_raw \
        --params-file config/face_recognition.yaml

Lifecycle (rclpy.lifecycle; `autostart`, default true, configures and activates it at start):
- configure: load the models and the gallery; cleanup releases them.
- activate: subscribe the cameras and publish; deactivate unsubscribes (no frame is taken, and
  the node idles at well under 1% of a core) and withdraws the outputs.
- shutdown works from every state. The services answer in every state: ~/enroll needs the node
  active, ~/forget, ~/rename and ~/list_faces need it configured; otherwise they say so.
/diagnostics reports in every state: one status per camera and one for the recognizer, each
with a level (diagnostic_levels.py).

Topics while active: subscribes `image` (sensor_msgs/Image; `image/compressed` with
use_compressed), or each of `image_topics`, with the reliability image_reliability picks
(image_qos.py). Publishes ~/faces (FaceArray, header = the image's), ~/events (FaceEvent),
~/image_annotated (only drawn while subscribed), ~/detections (vision_msgs/Detection2DArray) and,
with publish_rep155, the REP-155 face topics (rep155.py). With several cameras the outputs are
~/<camera>/faces, ... (<camera> = topic with '/' -> '_').
Services: ~/enroll, ~/forget, ~/rename, ~/list_faces (services.py). With gallery.sync, the
gallery is shared with the other nodes of gallery.sync_group while configured (gallery_sync.py).

Threading: images arrive on an input node of its own and one worker thread processes the newest
frame of each camera (image_input.py); services, parameters, transitions and timers run on a
MultiThreadedExecutor. The parameters are the recognizer's config: a change applies from the
next frame, because the recognizer and the streams read the config as it is.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ..config import RecognizerConfig
from ..core.detection import FaceDetector
from ..core.recognizer import FaceRecognizer
from ..gallery.errors import GalleryError
from ..options import set_option
from ..tracking.stream import StreamRecognizer
from .diagnostics import NOT_ERRORS, PROCESSING_ERROR, camera_status, status
from .diagnostic_levels import (CameraWindow, RecognizerState, Thresholds, camera_verdict,
                                recognizer_verdict)
from .gallery_sync import GallerySync, share_gallery
from .image_input import ImageInput, camera_name
from .image_qos import AUTO, RELIABLE
from .parameters import (NODE_PARAM_NAMES, declarations, declare_all, load_defaults,
                         refuse_unknown_parameters, validate_changes)
from .services import GalleryServices
from .standard_outputs import StandardOutputs

NODE_NAME = "face_recognition_node"
EXECUTOR_THREADS = 4  # a waiting live enrolment holds one; others serve frames, services, timers
QOS_CHECK_PERIOD = 1.0  # seconds between looks at the image publishers (image_reliability auto)
_DETECTOR_LIVE = ("detector.min_score", "detector.nms_iou")
CAP_PARAM = "gallery.max_samples_per_person"
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class StartError(RuntimeError):
    """autostart could not bring the node up (the reason was logged)."""


class FaceRecognitionNode(LifecycleNode):
    """Parameters, lifecycle, cameras, services and diagnostics; see the module docstring."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.config = self._declare_parameters()
        self.state_label = "unconfigured"
        self.recognizer: FaceRecognizer | None = None
        self.gallery_sync: GallerySync | None = None
        # Who makes this node's gallery changes, in the gallery and for the sync group.
        self.node_id = f"{socket.gethostname()}:{self.get_fully_qualified_name()}"
        self.streams: list[StreamRecognizer] = []
        self.model_error = ""
        self._input: ImageInput | None = None
        self._transition = threading.Lock()  # the worker's view of the state changes atomically
        self._active_timers: list[Any] = []
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._gallery_services = GalleryServices(self, self.settings)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.settings["diagnostics_period"], self._publish_diagnostics,
                          callback_group=self._timer_group)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        if self.settings["autostart"]:
            self.trigger_configure()
            if self.state_label != "inactive":
                raise StartError(f"configuring failed: {self.model_error}")
            self.trigger_activate()
            if self.state_label != "active":
                raise StartError("activating failed (see the log)")

    @property
    def live_stream(self) -> StreamRecognizer:
        """The first camera's stream: live enrolment and stranger promotion happen there."""
        return self.streams[0]

    @property
    def cameras(self) -> list:
        """The active cameras (none while inactive)."""
        return self._input.cameras if self._input is not None else []

    @property
    def several_cameras(self) -> bool:
        return len(self.settings["image_topics"]) > 1

    # --- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the models and the gallery; one tracker (stream) per camera."""
        try:
            recognizer = FaceRecognizer(self.config, node_id=self.node_id)
        except Exception as exc:  # missing or broken model, unreadable gallery folder
            self.model_error = str(exc)
            self.get_logger().error(f"cannot configure: {exc}")
            return FAILURE
        self.model_error = ""
        for message in (recognizer.gallery_warning, recognizer.alignment_notice,
                        *recognizer.model_warnings):
            if message:
                self.get_logger().warning(message)
        streams: list[StreamRecognizer] = []
        for _ in self.settings["image_topics"]:  # a stranger seen by two cameras is one unknown_n
            streams.append(StreamRecognizer(
                recognizer, strangers=streams[0].strangers if streams else None))
        self.recognizer, self.streams = recognizer, streams
        if recognizer.gallery_path is not None:
            self._gallery_timer = self.create_timer(
                self.settings["gallery_poll_period"], self._reload_gallery,
                callback_group=self._timer_group)
        self._follow_gallery_cap(recognizer.gallery.cap.value)
        self.gallery_sync = share_gallery(self, recognizer, self.node_id, self.config.gallery,
                                          self._follow_gallery_cap)
        self.state_label = "inactive"
        self.get_logger().info(
            f"configured: gallery {recognizer.gallery_path or '(memory)'} with "
            f"{len(recognizer.gallery)} people")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe the cameras and publish."""
        topics = self.settings["image_topics"]
        prefixes = [f"~/{camera_name(t)}/" if self.several_cameras else "~/" for t in topics]
        outputs = StandardOutputs(self, self.settings, prefixes, self.recognizer.chip)
        image_input = ImageInput(self, self.settings, outputs)
        for topic, stream, prefix in zip(topics, self.streams, prefixes):
            image_input.add_camera(topic, stream, prefix)
        with self._transition:
            self._input = image_input
            self.state_label = "active"
        image_input.start()
        if self.settings["image_reliability"] == AUTO:
            self._active_timers.append(self.create_timer(
                QOS_CHECK_PERIOD, image_input.recheck_qos, callback_group=self._timer_group))
        self.get_logger().info(
            f"ready: {', '.join(image_input.topic_of(c) for c in image_input.cameras)} -> "
            f"{image_input.cameras[0].faces_pub.topic_name} (active)")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop publishing; the models and the gallery stay loaded."""
        self._stop_input()
        self.state_label = "inactive"
        self.get_logger().info("inactive: not subscribed")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the models and the gallery (they are loaded again by configure)."""
        self._release()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        self.state_label = "finalized"
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in a transition from {state.label}; releasing everything")
        self._stop_input()
        self._release()
        return SUCCESS

    def _stop_input(self) -> None:
        for stream in self.streams:  # no live enrolment waits out its timeout
            stream.cancel_enrollment()
        with self._transition:
            image_input, self._input = self._input, None
        for timer in self._active_timers:
            self.destroy_timer(timer)
        self._active_timers = []
        if image_input is not None:
            image_input.destroy()

    def _release(self) -> None:
        if self.gallery_sync is not None:
            self.gallery_sync.close()
            self.gallery_sync = None
        timer = getattr(self, "_gallery_timer", None)
        if timer is not None:
            self.destroy_timer(timer)
            self._gallery_timer = None
        self.recognizer, self.streams = None, []
        self.state_label = "unconfigured"
        gc.collect()  # the interpreters' buffers go now, not at some later collection

    # --- set-up -------------------------------------------------------------------------
    def _declare_parameters(self) -> RecognizerConfig:
        """Declare every option with the package YAML's value as default; build the config from
        the values in effect (params file / overrides). Raises ValueError for invalid values."""
        defaults, node_defaults = load_defaults()
        declared = declarations(defaults, node_defaults)
        declare_all(self, declared)
        self._declared = frozenset(name for name, _, _ in declared)
        for warning in refuse_unknown_parameters(list(self._parameter_overrides), self._declared):
            self.get_logger().warning(warning)
        config = RecognizerConfig()
        values = {name: self.get_parameter(name).value for name in self._declared}
        for name, value in values.items():
            if name not in NODE_PARAM_NAMES:
                set_option(config, name, value)
        validated = validate_changes(
            config, {n: v for n, v in values.items() if n in NODE_PARAM_NAMES}
        )
        self.settings = {n: v for n, v in values.items() if n in NODE_PARAM_NAMES}
        self.settings["image_topics"] = list(self.settings["image_topics"])
        return validated

    # --- timers -------------------------------------------------------------------------
    def _thresholds(self) -> Thresholds:
        return Thresholds(image_timeout=self.settings["diagnostics_image_timeout"],
                          min_processed_ratio=self.settings["diagnostics_min_processed_ratio"])

    def _publish_diagnostics(self) -> None:
        """One status per camera (inactive ones too) and one for the recognizer."""
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        name, thresholds = self.get_name(), self._thresholds()
        recognizer, image_input = self.recognizer, self._input
        gallery = {"gallery_people": float(len(recognizer.gallery)),
                   "gallery_samples": float(recognizer.gallery.num_samples)} if recognizer else {}
        pipeline_errors = 0
        now = time.monotonic()
        for topic in self.settings["image_topics"]:
            camera = next((c for c in image_input.cameras if c.topic == topic), None) \
                if image_input is not None else None
            hardware_id = self.resolve_topic_name(topic)
            label = f"{name}: camera {camera_name(topic)}"
            if camera is None:
                window = CameraWindow(hardware_id, False, 0, 0, 1.0, 0.0, False)
                verdict = camera_verdict(window, thresholds)
                msg.status.append(status(label, hardware_id, verdict.level, verdict.message, {}))
                continue
            values, problems = camera.stats.report()
            last = camera.stats.last_image
            age = now - (last if last is not None else image_input.started)
            values["image_age_s"] = age
            pipeline_errors += problems.get(PROCESSING_ERROR, 0)
            refused = {c: n for c, n in problems.items()
                       if c not in NOT_ERRORS and c != PROCESSING_ERROR}
            span = values["window_s"]
            window = CameraWindow(
                image_input.topic_of(camera), True, round(values["input_rate_hz"] * span),
                round(values["processed_rate_hz"] * span), span, age, last is not None,
                self.settings["process_every_n"], refused, values.get("latency_total_ms", 0.0))
            extra = {**gallery, "reliable_subscription": float(camera.reliability == RELIABLE)}
            msg.status.append(camera_status(label, hardware_id, camera_verdict(window, thresholds),
                                            values, problems, extra))
        verdict = recognizer_verdict(RecognizerState(
            self.state_label, self.model_error, pipeline_errors, recognizer is not None,
            len(recognizer.gallery) if recognizer else 0,
            recognizer.gallery.num_samples if recognizer else 0))
        msg.status.append(status(f"{name}: recognizer", self.get_fully_qualified_name(),
                                 verdict.level, verdict.message,
                                 {**gallery, **self._gallery_services.answers()}))
        self._diagnostics_pub.publish(msg)

    def _reload_gallery(self) -> None:
        """Pick up a gallery file another node (or the CLI) replaced; our own saves are skipped."""
        recognizer = self.recognizer
        if recognizer is None:
            return
        try:
            if recognizer.reload_gallery():
                people = len(recognizer.gallery)
                self.get_logger().info(f"gallery changed on disk; reloaded {people} people")
        except (GalleryError, OSError) as exc:
            self.get_logger().warning(
                f"gallery file changed but cannot be used ({exc}); keeping the "
                "gallery in memory"
            )

    def _follow_gallery_cap(self, value: int) -> None:
        """The gallery's sample cap (set in the file, or by another node of the sync group)
        differs from the parameter: the parameter follows, so ``ros2 param get`` tells."""
        if value and value != self.config.gallery.max_samples_per_person:
            self.get_logger().info(
                f"{CAP_PARAM} is {value} in the gallery (parameter: "
                f"{self.config.gallery.max_samples_per_person}); following the gallery")
            self.set_parameters([Parameter(CAP_PARAM, value=value)])

    # --- parameters ---------------------------------------------------------------------
    def _check_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Reject a change (with the reason) before it is set; read-only and ranges rclpy
        checks."""
        changes = {p.name: p.value for p in params if p.name in self._declared}
        try:
            validate_changes(self.config, changes)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if self.recognizer is not None and not isinstance(self.recognizer.detector, FaceDetector):
            fixed = [n for n in _DETECTOR_LIVE if n in changes]
            if fixed:
                return SetParametersResult(successful=False, reason=(
                    f"{fixed[0]} is fixed when the {self.config.detector.backend} detector "
                    "backend starts; set it in the params file and restart the node"))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        """Apply accepted changes to the live objects (the config is shared by recognizer and
        streams)."""
        params = [p for p in params if p.name in self._declared]  # not use_sim_time and the like
        if not params:
            return
        for p in params:
            if p.name in NODE_PARAM_NAMES:
                self.settings[p.name] = p.value
            else:  # the recognizer, its gallery and the streams read the config as it is now
                set_option(self.config, p.name, p.value)
            if p.name == CAP_PARAM and self.recognizer is not None:
                try:  # a setting of the gallery (and of the sync group): saved like a change
                    self.recognizer.set_sample_cap(p.value)
                except (GalleryError, OSError) as exc:
                    self.get_logger().error(f"{CAP_PARAM} = {p.value} not saved: {exc}")
        self.get_logger().info(
            "parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in params)
        )

    # --- shutdown -----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the worker and cancel live enrolments, so no service waits out its timeout."""
        self._stop_input()

    def destroy_node(self) -> None:
        if hasattr(self, "_transition"):
            self._stop_input()
        super().destroy_node()


def spin(node: FaceRecognitionNode, executor: MultiThreadedExecutor | None = None) -> None:
    """Spin the node until its context shuts down (on `executor`, or on its own
    MultiThreadedExecutor); then stop its worker and cancel waiting enrolments, so no callback
    outlives the spin."""
    own = executor is None
    executor = executor or MultiThreadedExecutor(
        num_threads=EXECUTOR_THREADS, context=node.context
    )
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
