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

Threading: images arrive on an input node of its own and one worker thread processes the newest
frame of each camera (image_input.py); services (services.py), parameters and timers run on a
MultiThreadedExecutor. The parameters are the recognizer's config: a change applies from the
next frame, because the recognizer and the streams read the config as it is.
"""

from __future__ import annotations

from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..config import RecognizerConfig
from ..core.detection import FaceDetector
from ..core.recognizer import FaceRecognizer
from ..gallery.file_format import GalleryError
from ..options import set_option
from ..tracking.stream import StreamRecognizer
from .diagnostics import camera_status
from .image_input import Camera, ImageInput, camera_name
from .parameters import NODE_PARAM_NAMES, declarations, load_defaults, validate_changes
from .services import GalleryServices

NODE_NAME = "face_recognition_node"
EXECUTOR_THREADS = 4  # a waiting live enrolment holds one; others serve frames, services, timers
_DETECTOR_LIVE = ("detector.min_score", "detector.nms_iou")


class FaceRecognitionNode(Node):
    """Parameters, cameras, services and diagnostics; see the module docstring."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.config = self._declare_parameters()
        self.recognizer = FaceRecognizer(self.config)
        if self.recognizer.gallery_warning:
            self.get_logger().warning(self.recognizer.gallery_warning)

        # Images arrive through a node of their own, spun by a SingleThreadedExecutor thread:
        # rclpy's MultiThreadedExecutor takes messages so slowly that best-effort, depth-1 frames
        # are overwritten inside DDS before it reads them (measured here: 10 of 300 raw frames at
        # 30 Hz, against 267 with a single-threaded executor).
        self._input = ImageInput(self, self.settings)
        topics = self.settings["image_topics"]
        for topic in topics:  # a stranger seen by two cameras is one unknown_<n>: shared strangers
            stream = StreamRecognizer(self.recognizer, strangers=(
                self.cameras[0].stream.strangers if self.cameras else None))
            self._input.add_camera(
                topic, stream, f"~/{camera_name(topic)}/" if len(topics) > 1 else "~/"
            )
        self._gallery_services = GalleryServices(
            self, self.recognizer, self.cameras[0].stream, self.settings
        )

        timers = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.settings["diagnostics_period"], self._publish_diagnostics,
                          callback_group=timers)
        if self.recognizer.gallery_path is not None:
            self.create_timer(self.settings["gallery_poll_period"], self._reload_gallery,
                              callback_group=timers)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._input.start()
        people = self.recognizer.gallery.names()
        self.get_logger().info(
            f"ready: {', '.join(self.resolve_topic_name(c.topic) for c in self.cameras)} -> "
            f"{self.cameras[0].faces_pub.topic_name}; gallery "
            f"{self.recognizer.gallery_path or '(memory)'} "
            f"with {len(people)} people"
        )

    @property
    def cameras(self) -> list[Camera]:
        return self._input.cameras

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
        validated = validate_changes(
            config, {n: v for n, v in values.items() if n in NODE_PARAM_NAMES}
        )
        self.settings = {n: v for n, v in values.items() if n in NODE_PARAM_NAMES}
        self.settings["image_topics"] = list(self.settings["image_topics"])
        return validated

    # --- timers -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        gallery = self.recognizer.gallery
        extra = {
            "gallery_people": float(len(gallery)),
            "gallery_samples": float(gallery.num_samples),
        }
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for camera in self.cameras:
            values, problems = camera.stats.report()
            msg.status.append(
                camera_status(
                    f"{self.get_name()}: {camera_name(camera.topic)}",
                    self.resolve_topic_name(camera.topic),
                    values,
                    problems,
                    extra,
                )
            )
        self._diagnostics_pub.publish(msg)

    def _reload_gallery(self) -> None:
        """Pick up a gallery file another node (or the CLI) replaced; our own saves are skipped."""
        try:
            if self.recognizer.reload_gallery():
                people = len(self.recognizer.gallery)
                self.get_logger().info(f"gallery changed on disk; reloaded {people} people")
        except (GalleryError, OSError) as exc:
            self.get_logger().warning(
                f"gallery file changed but cannot be used ({exc}); keeping the "
                "gallery in memory"
            )

    # --- parameters ---------------------------------------------------------------------
    def _check_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Reject a change (with the reason) before it is set; read-only and ranges rclpy
        checks."""
        changes = {p.name: p.value for p in params if p.name in self._declared}
        try:
            validate_changes(self.config, changes)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if not isinstance(self.recognizer.detector, FaceDetector):
            fixed = [n for n in _DETECTOR_LIVE if n in changes]
            if fixed:
                return SetParametersResult(
                    successful=False,
                    reason=(
                        f"{fixed[0]} is fixed when the {self.config.detector.backend} detector "
                        "backend starts; "
                        "set it in the params file and restart the node"
                    ),
                )
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
        self.get_logger().info(
            "parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in params)
        )

    # --- shutdown -----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the worker and cancel live enrolments, so no service waits out its timeout."""
        self._input.stop()
        for camera in self.cameras:
            camera.stream.cancel_enrollment()

    def destroy_node(self) -> None:
        if hasattr(self, "_input"):
            self.stop()
            self._input.destroy()
        super().destroy_node()


def spin(node: FaceRecognitionNode, executor: MultiThreadedExecutor | None = None) -> None:
    """Spin the node until its context shuts down (on `executor`, or on its own
    MultiThreadedExecutor);
    then stop its worker and cancel waiting enrolments, so no callback outlives the spin."""
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
