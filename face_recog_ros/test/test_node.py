"""face_recognition_node over a real rclpy graph, with the real models and sample frames.

Two nodes run in this process on one MultiThreadedExecutor, in a private context and domain:
`main` (one raw camera on `image`) and `multi` (namespace /multi, two compressed cameras). A
probe node publishes frames and calls the services like any other ROS client would. Frame stamps
increase across tests, so the node's trackers see one continuous stream.
"""
from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import ros_domain
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from face_recog_interfaces.msg import FaceArray, FaceEvent
from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename
from face_recog_ros.io import samples
from face_recog_ros.ros.conversion import rgb_to_image
from face_recog_ros.ros.node import FaceRecognitionNode
from face_recog_ros.tracking.stream import EnrollState

TIMEOUT_S = 15.0
EILEEN, GRACE = samples.PEOPLE["astronaut"], samples.PEOPLE["grace_hopper"]
NODE = "/face_recognition_node"
MULTI = "/multi/face_recognition_node"


def wait_until(
    done: Callable[[], Any], timeout: float = TIMEOUT_S, what: str = "the ROS graph"
) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := done()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return result


class Graph:
    """The nodes under test and a probe node, spinning on a background executor."""

    def __init__(self, tmp: Path) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=ros_domain())
        self.main = FaceRecognitionNode(context=self.context, parameter_overrides=[
            Parameter("gallery.path", value=str(tmp / "main" / "gallery.npz")),
            Parameter("diagnostics_period", value=0.3),
            Parameter("enroll_timeout", value=20.0)])
        self.multi = FaceRecognitionNode(
            context=self.context,
            namespace="multi",
            parameter_overrides=[
                Parameter("gallery.path", value=str(tmp / "multi" / "gallery.npz")),
                Parameter("image_topics", value=["cam_a", "cam_b"]),
                Parameter("use_compressed", value=True),
            ],
        )
        self.probe = Node(f"probe_{uuid.uuid4().hex[:8]}", context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=6, context=self.context)
        for node in (self.main, self.multi, self.probe):
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.frame_index = 0
        self._publishers: dict[str, Any] = {}

    def close(self) -> None:
        self.executor.shutdown()
        for node in (self.main, self.multi, self.probe):
            node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)

    # --- topics -----------------------------------------------------------------------
    def collect(self, msg_type: type, topic: str) -> list:
        received: list = []
        self.probe.create_subscription(msg_type, topic, received.append, 50)
        return received

    def publisher(self, msg_type: type, topic: str) -> Any:
        if topic not in self._publishers:
            self._publishers[topic] = self.probe.create_publisher(msg_type, topic, 10)
            wait_until(lambda: self._publishers[topic].get_subscription_count() > 0,
                       what=f"a subscriber on {topic}")
        return self._publishers[topic]

    def next_header(self) -> Header:
        """Frames 1/30 s apart, continuing across tests."""
        self.frame_index += 1
        nanos = 1_000_000_000 * 1000 + self.frame_index * 33_333_333
        stamp = Time(sec=nanos // 10 ** 9, nanosec=nanos % 10 ** 9)
        return Header(stamp=stamp, frame_id="camera_optical")

    def feed(self, frames: list[np.ndarray], until: Callable[[], Any], *, topic: str = "image",
             compressed: bool = False, period: float = 1 / 30) -> Any:
        """Publish frames at ~30 Hz (cycling through them) until `until()` holds; returns its
        value."""
        pub = self.publisher(CompressedImage if compressed else Image, topic)
        deadline = time.monotonic() + TIMEOUT_S
        i = 0
        while True:
            if result := until():
                return result
            assert time.monotonic() < deadline, f"timed out feeding {topic}"
            pub.publish(frame_msg(frames[i % len(frames)], self.next_header(), compressed))
            i += 1
            time.sleep(period)

    def publish_until(self, msg: Image | CompressedImage, until: Callable[[], Any],
                      topic: str = "image") -> None:
        """Publish msg every 50 ms until `until()` holds (best-effort transport may lose one)."""
        pub = self.publisher(type(msg), topic)
        deadline = time.monotonic() + TIMEOUT_S
        while not until():
            assert time.monotonic() < deadline, f"timed out publishing to {topic}"
            pub.publish(msg)
            time.sleep(0.05)

    # --- services ---------------------------------------------------------------------
    def call(self, srv_type: type, name: str, request: Any, timeout: float = TIMEOUT_S) -> Any:
        return wait_until(
            self.call_async(srv_type, name, request).result, timeout, f"{name} to answer"
        )

    def call_async(self, srv_type: type, name: str, request: Any) -> Any:
        client = self.probe.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=TIMEOUT_S), name
        return client.call_async(request)

    def enroll(
        self, name: str, rgb: np.ndarray | None = None, node: str = NODE, **fields: Any
    ) -> Any:
        image = rgb_to_image(np.ascontiguousarray(rgb)) if rgb is not None else Image()
        return self.call(
            Enroll, f"{node}/enroll", Enroll.Request(name=name, image=image, **fields)
        )

    def forget(self, name: str, node: str = NODE) -> Any:
        return self.call(Forget, f"{node}/forget", Forget.Request(name=name))

    def rename(self, old: str, new: str, merge: bool = False, node: str = NODE) -> Any:
        return self.call(
            Rename, f"{node}/rename", Rename.Request(old_name=old, new_name=new, merge=merge)
        )

    def people(self, node: str = NODE) -> Any:
        return self.call(ListFaces, f"{node}/list_faces", ListFaces.Request())

    def names(self, node: str = NODE) -> list[str]:
        return list(self.people(node).names)


def frame_msg(
    rgb: np.ndarray, header: Header, compressed: bool = False
) -> Image | CompressedImage:
    if not compressed:
        return rgb_to_image(rgb, header)
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    return CompressedImage(header=header, format="jpeg", data=jpeg.tobytes())


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    g = Graph(tmp_path_factory.mktemp("node"))
    yield g
    g.close()


@pytest.fixture(scope="module")
def faces(graph: Graph) -> list[FaceArray]:
    return graph.collect(FaceArray, f"{NODE}/faces")


@pytest.fixture(scope="module")
def events(graph: Graph) -> list[FaceEvent]:
    return graph.collect(FaceEvent, f"{NODE}/events")


@pytest.fixture(scope="module")
def enrolled(graph: Graph) -> str:
    """Eileen Collins enrolled through ~/enroll from her photo."""
    response = graph.enroll(EILEEN, samples.photo("astronaut"))
    assert response.success, response.message
    return EILEEN


def latest_with_faces(received: list[FaceArray]) -> FaceArray | None:
    return next((m for m in reversed(received) if m.faces), None)


# --- recognition over topics ----------------------------------------------------------------

def test_faces_carry_the_image_header_and_name_after_enrolment(graph, faces, events, enrolled):
    frame = samples.scene(1)  # the astronaut, centred
    graph.feed(
        [frame], until=lambda: (m := latest_with_faces(faces)) and m.faces[0].label == EILEEN
    )
    msg = latest_with_faces(faces)
    assert msg.header.frame_id == "camera_optical"
    assert (
        msg.header.stamp.sec >= 1000 and msg.header.stamp.nanosec % 33_333_333 == 0
    )  # our stamps
    face = msg.faces[0]
    assert face.track_id >= 1 and face.rejected == "" and len(face.keypoints) == 6
    assert face.similarity > 0.9 and face.candidate == EILEEN and face.detection_score > 0.5
    assert 150 < face.x_min + face.width / 2 < 490 and face.width > 100
    assert len(face.embedding) == 0  # publish_embeddings is off
    # Events: each change once per track, in order.
    wait_until(
        lambda: any(e.type == FaceEvent.IDENTIFIED and e.track_id == face.track_id for e in events)
    )
    kinds = [e.type for e in events if e.track_id == face.track_id]
    assert kinds.count(FaceEvent.APPEARED) == 1 and kinds.count(FaceEvent.IDENTIFIED) == 1
    assert kinds.index(FaceEvent.APPEARED) < kinds.index(FaceEvent.IDENTIFIED)
    identified = next(
        e for e in events if e.type == FaceEvent.IDENTIFIED and e.track_id == face.track_id
    )
    assert identified.label == EILEEN and identified.header.frame_id == "camera_optical"


def test_annotated_image_only_while_subscribed(graph, enrolled):
    frame = samples.scene(1)
    stats = graph.main.cameras[0].stats
    before = stats.totals["processed"]
    graph.feed([frame], until=lambda: stats.totals["processed"] >= before + 5)
    assert stats.totals["annotated"] == 0  # nobody subscribed: never drawn
    annotated = graph.collect(Image, f"{NODE}/image_annotated")
    graph.feed([frame], until=lambda: annotated)
    msg = annotated[-1]
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (
        640,
        480,
        "bgr8",
        "camera_optical",
    )
    drawn = np.frombuffer(msg.data, np.uint8).reshape(480, 640, 3)
    assert not np.array_equal(
        cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB), frame
    )  # boxes and names drawn
    assert stats.totals["annotated"] >= 1


def test_diagnostics_report_rates_latencies_and_counters(graph, enrolled):
    diagnostics = graph.collect(DiagnosticArray, "/diagnostics")

    def busy_window() -> tuple[Any, dict[str, float]] | None:
        for msg in reversed(diagnostics):
            for status in msg.status:
                if status.name != "face_recognition_node: camera image":
                    continue
                values = {v.key: float(v.value) for v in status.values}
                if values["processed_rate_hz"] > 0:
                    return status, values
        return None

    status, values = graph.feed([samples.scene(1)], until=busy_window)
    for key in ("input_rate_hz", "processed_rate_hz", "dropped_frames", "dropped_frames_total",
                "latency_detect_ms", "latency_embed_ms", "latency_total_ms", "latency_convert_ms",
                "latency_receive_to_publish_ms", "embeddings_per_frame", "faces_per_frame",
                "gallery_people", "gallery_samples", "errors_total", "errors_corrupt_compressed",
                "errors_unsupported_encoding", "errors_blank_frame"):
        assert key in values, key
    assert values["gallery_people"] >= 1 and values["faces_per_frame"] > 0
    assert 0 < values["latency_total_ms"] < 1000 and status.hardware_id == "/image"


# --- services -----------------------------------------------------------------------------

BAD_NAMES = ["", "   ", "a" * 500, "../x", "/etc/passwd", "a\tb", "unknown", "unknown_3"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_are_refused_by_every_service(graph, enrolled, name):
    for answer in (graph.enroll(name, samples.photo("grace_hopper")), graph.forget(name),
                   graph.rename(EILEEN, name)):
        assert not answer.success and answer.message
    assert graph.names() == [EILEEN]


def test_a_nul_in_a_name_never_reaches_the_gallery(graph, enrolled):
    """ROS strings are C strings: 'a\x00b' arrives as 'a' (the node never sees the NUL)."""
    answer = graph.enroll("a\x00b", samples.photo("grace_hopper"))
    assert answer.success and "'a'" in answer.message
    assert graph.forget("a").success and graph.names() == [EILEEN]


def test_enrol_refuses_images_without_exactly_one_face(graph, enrolled):
    none = graph.enroll("Nobody", samples.background())
    assert not none.success and "no face" in none.message
    two = graph.enroll("Two", samples.scene(2))
    assert not two.success and "2 faces" in two.message
    broken = Image(width=10, height=10, step=3, encoding="bgr8", data=bytes(30))
    bad = graph.call(Enroll, f"{NODE}/enroll", Enroll.Request(name="Broken", image=broken))
    assert not bad.success and "cannot read the image" in bad.message


def test_forget_rename_and_list(graph, enrolled):
    grace = graph.enroll(GRACE, samples.photo("grace_hopper"))
    assert grace.success and (grace.samples_added, grace.total_samples) == (1, 1)
    listed = graph.people()
    assert list(listed.names) == sorted([EILEEN, GRACE]) and list(listed.sample_counts) == [1, 1]
    assert all(abs(t.sec - time.time()) < 3600 for t in listed.enrolled_at)

    onto = graph.rename(GRACE, EILEEN)
    assert not onto.success and "already enrolled" in onto.message
    missing = graph.rename("Nobody", "Somebody")
    assert not missing.success and "not enrolled" in missing.message
    cluster = graph.rename("unknown_7", "Somebody")
    assert not cluster.success and "unknown_7" in cluster.message
    renamed = graph.rename(GRACE, "Grace")
    assert renamed.success, renamed.message
    assert graph.forget("Grace").success
    again = graph.forget("Grace")
    assert not again.success and "not enrolled" in again.message
    assert graph.names() == [EILEEN]
    # Saved after every change: the file holds what the node holds.
    assert graph.main.recognizer.gallery_path.is_file()


def test_merge_onto_an_existing_name(graph, enrolled):
    assert graph.enroll("Eileen copy", samples.photo("astronaut")).success
    merged = graph.rename("Eileen copy", EILEEN, merge=True)
    assert merged.success, merged.message
    listed = graph.people()
    assert list(listed.names) == [EILEEN] and list(listed.sample_counts) == [2]


def grace_walking(frames: int = 240) -> list[np.ndarray]:
    """Grace Hopper walking to and fro; 240 frames are one seamless loop."""
    cast = (samples.Appearance("grace_hopper", samples.walk_path),)
    return [f.rgb for f in samples.sequence(frames, cast=cast, occluded={}, dropped=range(0))]


def test_live_enrolment_from_the_stream_refuses_a_second_one(graph, faces, enrolled):
    # Synthetic frames differ less than real ones: accept samples a little more alike (runtime
    # change), and show Grace Hopper in several looks (samples.looks).
    change = graph.main.set_parameters([Parameter("tracking.enroll_max_similarity", value=0.997)])
    assert change[0].successful
    live = graph.call_async(
        Enroll, f"{NODE}/enroll", Enroll.Request(name="Grace live", num_samples=3)
    )
    stream = graph.main.cameras[0].stream
    wait_until(
        lambda: stream.enrollment_status().state == EnrollState.WAITING,
        what="the enrolment to start",
    )
    second = graph.enroll("Other", samples.photo("grace_hopper"))
    assert not second.success and "in progress" in second.message
    # Frames keep coming while the service waits; it answers when the samples are in.
    looks = [f.rgb for f in samples.looks("grace_hopper", 120)]
    response = graph.feed(looks, until=lambda: live.done() and live.result())
    assert response.success, response.message
    assert (response.samples_added, response.total_samples) == (
        3,
        3,
    ) and "3 of 3" in response.message
    graph.feed(
        grace_walking()[-10:],
        until=lambda: latest_with_faces(faces).faces[0].label == "Grace live",
    )


def test_live_enrolment_gives_up_without_frames(graph, enrolled):
    graph.main.set_parameters([Parameter("enroll_timeout", value=1.0)])
    try:
        response = graph.enroll("Nobody", num_samples=2)
    finally:
        graph.main.set_parameters([Parameter("enroll_timeout", value=20.0)])
    assert not response.success
    assert "gave up after 1 s" in response.message and "0 of 2" in response.message
    assert graph.main.cameras[0].stream.enrollment_status().state == EnrollState.CANCELLED


# --- parameters ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def params(graph: Graph) -> AsyncParameterClient:
    client = AsyncParameterClient(graph.probe, NODE)
    assert client.wait_for_services(timeout_sec=TIMEOUT_S)
    return client


def set_remote(params: AsyncParameterClient, name: str, value: Any) -> Any:
    return wait_until(params.set_parameters([Parameter(name, value=value)]).result).results[0]


def test_every_option_is_declared_and_described(graph, params):
    names = [
        "recognition.threshold",
        "tracking.detect_interval",
        "embedder.model",
        "process_every_n",
    ]
    described = wait_until(params.describe_parameters(names).result).descriptors
    threshold, interval, model, every_n = described
    assert "similarity" in threshold.description.lower()
    span = threshold.floating_point_range[0]
    assert (span.from_value, span.to_value) == (-1.0, 1.0)
    assert (interval.integer_range[0].from_value, interval.integer_range[0].to_value) == (1, 30)
    assert model.read_only and not threshold.read_only and every_n.integer_range[0].from_value == 1
    from face_recog_ros.config import RecognizerConfig
    for name in RecognizerConfig().flat():
        assert graph.main.has_parameter(name), name


def test_runtime_change_is_applied(graph, faces, params, enrolled):
    assert set_remote(params, "recognition.min_eye_distance", 500.0).successful
    try:
        graph.feed(
            [samples.scene(1)],
            until=lambda: (m := latest_with_faces(faces)) and m.faces[0].rejected,
        )
        assert latest_with_faces(faces).faces[0].rejected.startswith("too small")
    finally:
        assert set_remote(params, "recognition.min_eye_distance", 12.0).successful
    assert graph.main.config.recognition.min_eye_distance == 12.0
    assert set_remote(params, "detector.max_faces", 3).successful
    assert graph.main.recognizer.detector.options.max_faces == 3


def test_node_parameters_change_at_run_time(graph, faces, params, enrolled):
    stats = graph.main.cameras[0].stats
    assert set_remote(params, "publish_embeddings", True).successful
    assert set_remote(params, "process_every_n", 3).successful
    try:
        skipped = stats.totals["skipped"]
        embedded = graph.feed(grace_walking()[:60], until=lambda: next(
            (f for m in faces[-5:] for f in m.faces if len(f.embedding)), None))
        assert len(embedded.embedding) == 128
        assert abs(float(np.linalg.norm(embedded.embedding)) - 1.0) < 1e-3
        assert stats.totals["skipped"] > skipped
    finally:
        assert set_remote(params, "process_every_n", 1).successful
        assert set_remote(params, "publish_embeddings", False).successful


@pytest.mark.parametrize("name,value,reason", [
    ("recognition.threshold", 2.0, ""),  # out of the declared range: rclpy refuses
    ("tracking.min_evidence", 20, "cannot exceed tracking.evidence_window"),
    ("embedder.model", "other", "read-only"),
    ("process_every_n", 0, ""),
    ("detector.max_faces", 1.5, ""),  # wrong type
])
def test_invalid_values_are_rejected_with_a_reason(graph, params, name, value, reason):
    before = graph.main.get_parameter(name).value
    result = set_remote(params, name, value)
    assert not result.successful and result.reason
    assert reason.lower() in result.reason.lower()
    assert graph.main.get_parameter(name).value == before


# --- bad input (issue 5) ------------------------------------------------------------------

def raw(width: int, height: int, encoding: str, step: int, size: int) -> Image:
    return Image(width=width, height=height, encoding=encoding, step=step, data=bytes(size))


BAD_IMAGES = {
    "zero_width": (raw(0, 480, "bgr8", 0, 0), "zero_size"),
    "zero_height": (raw(640, 0, "bgr8", 1920, 0), "zero_size"),
    "step_too_small": (raw(640, 480, "bgr8", 640, 640 * 480), "step_too_small"),
    "data_too_short": (raw(640, 480, "bgr8", 1920, 1920 * 100), "data_too_short"),
    "data_too_long": (raw(64, 48, "bgr8", 192, 192 * 48 + 1000), "data_too_long"),
    "says_bgr8_is_mono": (raw(64, 48, "bgr8", 64 * 3, 64 * 48), "data_too_short"),
    "says_mono_is_bgr8": (raw(64, 48, "mono8", 64, 64 * 48 * 3), "data_too_long"),
    "unknown_encoding": (raw(64, 48, "banana", 192, 192 * 48), "unsupported_encoding"),
    "16UC1": (raw(64, 48, "16UC1", 128, 128 * 48), "unsupported_encoding"),
    "32FC1": (raw(64, 48, "32FC1", 256, 256 * 48), "unsupported_encoding"),
    "odd_yuv": (raw(63, 48, "yuv422", 126, 126 * 48), "odd_size"),
    "odd_nv12": (raw(64, 47, "nv12", 64, 64 * 71), "odd_size"),
    "huge": (raw(100_000, 100_000, "bgr8", 300_000, 16), "too_large"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_images_are_counted_and_the_node_keeps_working(graph, faces, enrolled, case):
    msg, cause = BAD_IMAGES[case]
    stats = graph.main.cameras[0].stats
    before = stats.errors[cause]
    msg.header = graph.next_header()
    graph.publish_until(msg, lambda: stats.errors[cause] > before)
    count = len(faces)
    graph.feed([samples.scene(1)], until=lambda: len(faces) > count and faces[-1].faces)
    assert msg.header.stamp not in [m.header.stamp for m in faces]  # refused, not processed


@pytest.mark.parametrize("value", [0, 255])
def test_blank_frames_are_flagged_and_processed(graph, faces, value):
    stats = graph.main.cameras[0].stats
    before, processed = stats.errors["blank_frame"], stats.totals["processed"]
    graph.feed(
        [np.full((480, 640, 3), value, np.uint8)],
        until=lambda: stats.errors["blank_frame"] > before,
    )
    wait_until(
        lambda: stats.totals["processed"] > processed, what="the blank frame to be processed"
    )


# --- several cameras, compressed input ----------------------------------------------------

def test_two_compressed_cameras_have_their_own_outputs_and_track_ids(graph):
    a = graph.collect(FaceArray, f"{MULTI}/cam_a/faces")
    b = graph.collect(FaceArray, f"{MULTI}/cam_b/faces")
    frame = samples.scene(1)
    for topic, received in (("/multi/cam_a/compressed", a), ("/multi/cam_b/compressed", b)):
        graph.feed(
            [frame], until=lambda: latest_with_faces(received), topic=topic, compressed=True
        )
    ids_a = {f.track_id for m in a for f in m.faces}
    ids_b = {f.track_id for m in b for f in m.faces}
    assert ids_a == {1} and ids_b == {1}  # each camera's tracker numbers its own faces
    assert latest_with_faces(a).header.frame_id == "camera_optical"
    assert [c.stats.totals["processed"] > 0 for c in graph.multi.cameras] == [True, True]


def test_a_returning_stranger_is_enrolled_by_renaming_its_cluster(graph):
    received = graph.collect(FaceArray, f"{MULTI}/cam_b/faces")
    assert graph.multi.set_parameters([Parameter("tracking.cluster_unknowns", value=True)])[
        0
    ].successful
    topic = "/multi/cam_b/compressed"
    graph.feed([samples.scene(1)], until=lambda: (m := latest_with_faces(received))
               and m.faces[0].label.startswith("unknown_"), topic=topic, compressed=True)
    cluster = latest_with_faces(received).faces[0].label
    assert graph.enroll("Taken", samples.photo("grace_hopper"), node=MULTI).success
    refused = graph.rename(cluster, "Taken", node=MULTI)
    assert not refused.success and "merge" in refused.message
    promoted = graph.rename(cluster, "Stranger", node=MULTI)
    assert promoted.success and promoted.message.startswith(f"enrolled {cluster} as 'Stranger'")
    graph.feed(
        [samples.scene(1)],
        until=lambda: latest_with_faces(received).faces[0].label == "Stranger",
        topic=topic,
        compressed=True,
    )


HUGE_PNG_HEADER = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + struct.pack(">II", 100_000, 100_000) + bytes(20)
)


@pytest.mark.parametrize("data,fmt,cause", [
    (b"\xff\xd8\xff\xe0" + bytes(200), "jpeg", "corrupt_compressed"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "png", "corrupt_compressed"),
    (b"", "jpeg", "empty_data"),
    (HUGE_PNG_HEADER, "png", "too_large"),
    (b"\x00" * 64, "16UC1; compressedDepth", "unsupported_encoding"),
])
def test_corrupt_compressed_images_are_counted(graph, data, fmt, cause):
    stats = graph.multi.cameras[0].stats
    before = stats.errors[cause]
    graph.publish_until(CompressedImage(header=graph.next_header(), format=fmt, data=data),
                        lambda: stats.errors[cause] > before, "/multi/cam_a/compressed")
    received = graph.collect(FaceArray, f"{MULTI}/cam_a/faces")
    graph.feed(
        [samples.scene(1)],
        until=lambda: latest_with_faces(received),
        topic="/multi/cam_a/compressed",
        compressed=True,
    )


# --- a gallery shared with other processes ---------------------------------------------------

def test_gallery_written_by_another_process_is_picked_up(graph, enrolled):
    """Another node or the face-recog CLI enrols into the same file; this node reloads it."""
    from face_recog_ros import FaceRecognizer, RecognizerConfig
    config = RecognizerConfig()
    config.gallery.path = str(graph.main.recognizer.gallery_path)
    other = FaceRecognizer(config)
    other.enroll("Shared Grace", [samples.photo("grace_hopper")])
    wait_until(lambda: "Shared Grace" in graph.names(), what="the node to reload the gallery")
    assert graph.forget("Shared Grace").success


def test_image_reliability_reliable_subscribes_reliably(graph, tmp_path):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    node = FaceRecognitionNode(context=graph.context, namespace="reliable", parameter_overrides=[
        Parameter("gallery.path", value=""), Parameter("image_reliability", value="reliable")])
    try:
        graph.executor.add_node(node)
        info = node.get_subscriptions_info_by_topic("/reliable/image")
        assert [i.qos_profile.reliability for i in info] == [ReliabilityPolicy.RELIABLE]
        received = graph.collect(FaceArray, "/reliable/face_recognition_node/faces")
        publisher = graph.probe.create_publisher(Image, "/reliable/image", QoSProfile(depth=1))
        wait_until(lambda: publisher.get_subscription_count() > 0, what="the reliable subscriber")
        frame = samples.scene(1)
        wait_until(lambda: publisher.publish(frame_msg(frame, graph.next_header())) or received,
                   what="faces from reliably delivered frames")
    finally:
        graph.executor.remove_node(node)
        node.destroy_node()
