"""camera_publisher over a real rclpy graph, reading a video file made from the sample sequence."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ros_domain
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from face_recog_ros.io import samples
from face_recog_ros.ros.camera_publisher import (
    CameraPublisher,
    CaptureOpenError,
    main,
    parse_device,
)
from face_recog_ros.io.image_messages import compressed_to_rgb, image_to_rgb

TIMEOUT_S = 20.0
N_FRAMES = 24


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """An MJPG file of the walk-through and its frames as OpenCV decodes them (the reference)."""
    path = tmp_path_factory.mktemp("video") / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    assert writer.isOpened()
    for frame in samples.sequence(N_FRAMES, dropped=range(0)):
        writer.write(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    reference = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        reference.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert len(reference) == N_FRAMES
    return path, reference


class Graph:
    """A camera_publisher and a listener in a private context and domain."""

    def __init__(self, parameters: dict, cli_args: list[str] | None = None, topic: str = "image",
                 msg_type: type = Image) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=ros_domain())
        self.camera = CameraPublisher(
            context=self.context, cli_args=cli_args,
            parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
        self.listener = Node("camera_test_listener", context=self.context)
        self.received: list[tuple[float, object]] = []  # (wall time received, message)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.listener.create_subscription(
            msg_type, topic, lambda m: self.received.append((time.time(), m)), qos
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.camera)
        self.executor.add_node(self.listener)
        # Start publishing only once the listener is matched, so no frame goes to nobody.
        publisher = (
            self.camera.compressed_publisher
            if msg_type is CompressedImage
            else self.camera.publisher
        )
        self.spin_until(lambda: publisher.get_subscription_count() > 0)
        self.started = time.time()
        self.camera.start()

    def spin_until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not done():
            assert time.monotonic() < deadline, "timed out waiting on the ROS graph"
            self.executor.spin_once(timeout_sec=0.02)

    def close(self) -> None:
        self.camera.stop()
        self.executor.shutdown()
        self.camera.destroy_node()
        self.listener.destroy_node()
        rclpy.shutdown(context=self.context)


def graph(parameters: dict, **kwargs) -> Iterator[Graph]:
    g = Graph(parameters, **kwargs)
    try:
        yield g
    finally:
        g.close()


def frame_index(rgb: np.ndarray, reference: list[np.ndarray]) -> int:
    """Which reference frame this is: the publisher must send decoded frames unchanged."""
    matches = [i for i, ref in enumerate(reference) if np.array_equal(rgb, ref)]
    assert matches, "a published frame is not any frame of the video"
    return matches[0]


def test_file_frames_are_published_unchanged_in_order_with_stamp_and_frame_id(video) -> None:
    path, reference = video
    for g in graph({"device": str(path), "fps": 60.0, "frame_id": "test_optical_frame"}):
        g.spin_until(g.camera.finished.is_set)
        g.spin_until(lambda: len(g.received) >= N_FRAMES or time.time() - g.started > 3.0)
        ended = time.time()
        assert g.camera.published == N_FRAMES and g.camera.error is None
        msgs = [m for _, m in g.received]
        # Best-effort transport may drop a frame under load, never reorder or alter one.
        assert len(msgs) >= N_FRAMES * 0.8
        indices = [frame_index(image_to_rgb(m), reference) for m in msgs]
        assert indices == sorted(set(indices))
        assert all(m.encoding == "bgr8" and (m.width, m.height) == (640, 480) for m in msgs)
        assert {m.header.frame_id for m in msgs} == {"test_optical_frame"}
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
        assert g.started - 0.5 <= stamps[0] and stamps[-1] <= ended  # capture time, wall clock
        for (received, _), stamp in zip(g.received, stamps):
            assert stamp <= received


def test_fps_limits_the_rate_and_loop_restarts_the_file(video) -> None:
    path, reference = video
    fps = 20.0
    for g in graph({"device": str(path), "fps": fps, "loop": True}):
        g.spin_until(lambda: g.camera.published >= N_FRAMES + 6)
        assert not g.camera.finished.is_set()
        msgs = [m for _, m in g.received]
        indices = [frame_index(image_to_rgb(m), reference) for m in msgs]
        restart = next(i for i in range(1, len(indices)) if indices[i] < indices[i - 1])
        assert indices[restart] <= 2  # from the top again (a dropped message may hide frame 0)
        stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs])
        # Frames are captured on a 1/fps grid, so any received subset spans at least that
        # (a functional check of the limiter, not a timing goal).
        assert stamps[-1] - stamps[0] >= (len(stamps) - 1) / fps - 0.02


def test_compressed_stream_follows_the_remapped_topic(video) -> None:
    path, reference = video
    params = {"device": str(path), "fps": 60.0, "publish_compressed": True, "jpeg_quality": 95}
    for g in graph(params, cli_args=["--ros-args", "-r", "image:=cam/image_raw"],
                   topic="cam/image_raw/compressed", msg_type=CompressedImage):
        g.spin_until(g.camera.finished.is_set)
        g.spin_until(lambda: len(g.received) >= N_FRAMES * 0.8)
        assert g.camera.publisher.topic_name == "/cam/image_raw"
        msgs = [m for _, m in g.received]
        assert all(m.format.endswith("jpeg compressed bgr8") for m in msgs)
        assert all(m.header.frame_id == "camera_optical_frame" for m in msgs)
        first = compressed_to_rgb(msgs[0]).astype(np.int16)
        errors = [np.abs(first - ref.astype(np.int16)).mean() for ref in reference]
        assert int(np.argmin(errors)) == 0 and min(errors) < 3.0  # JPEG of the first frame


def test_missing_file_and_camera_fail_with_a_clear_message(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.mp4"
    assert main(["--ros-args", "-p", f"device:={missing}"]) == 1
    assert f"video file '{missing}' does not exist" in capsys.readouterr().err

    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    context = Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(CaptureOpenError, match="cannot read its format"):
            CameraPublisher(
                context=context, parameter_overrides=[Parameter("device", value=str(not_video))]
            )
        # An index with no camera behind it (integer parameter, as `-p device:=63` gives).
        with pytest.raises(CaptureOpenError, match=r"/dev/video63.*connected"):
            CameraPublisher(context=context, parameter_overrides=[Parameter("device", value=63)])
    finally:
        rclpy.shutdown(context=context)


def test_parse_device() -> None:
    assert parse_device("0") == 0 and parse_device(2) == 2 and parse_device(" 1 ") == 1
    assert parse_device("/dev/video2") == "/dev/video2"
    assert parse_device("~/walk.mp4") == "~/walk.mp4"
