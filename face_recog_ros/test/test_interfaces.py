"""face_recog_interfaces over a real rclpy graph: topics between two nodes, every service type."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ros_domain
import rclpy
from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from face_recog_interfaces.msg import Face, FaceArray, FaceEvent
from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename

TIMEOUT_S = 10.0


class Graph:
    """Two nodes in a private context and domain, so parallel test runs cannot cross-talk."""

    def __init__(self) -> None:
        self.context = Context()
        # Domain ids 1..101 are valid with the default port mapping on every platform.
        rclpy.init(context=self.context, domain_id=ros_domain())
        self.a = Node("iface_test_a", context=self.context)
        self.b = Node("iface_test_b", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.a)
        self.executor.add_node(self.b)

    def spin_until(
        self, done: Callable[[], bool], tick: Callable[[], None] = lambda: None
    ) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not done():
            assert time.monotonic() < deadline, "timed out waiting on the ROS graph"
            tick()
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.a.destroy_node()
        self.b.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def graph() -> Iterator[Graph]:
    g = Graph()
    yield g
    g.close()


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


def make_face(track_id: int, label: str) -> Face:
    face = Face(
        track_id=track_id,
        label=label,
        similarity=0.83,
        candidate=label,
        margin=0.21,
        detection_score=0.97,
        x_min=10.5,
        y_min=20.0,
        width=64.0,
        height=72.0,
        is_new_track=True,
        rejected="",
    )
    face.keypoints = [Point32(x=float(i), y=float(2 * i), z=0.0) for i in range(6)]
    face.embedding = [0.125 * i for i in range(128)]
    return face


def test_face_array_crosses_nodes(graph: Graph) -> None:
    topic = unique("faces")
    received: list[FaceArray] = []
    graph.b.create_subscription(FaceArray, topic, received.append, 10)
    pub = graph.a.create_publisher(FaceArray, topic, 10)

    msg = FaceArray(faces=[make_face(3, "ada"), make_face(-1, "unknown")])
    msg.header.frame_id = "camera_optical"
    msg.header.stamp = Time(sec=1700000000, nanosec=123)
    graph.spin_until(lambda: bool(received), tick=lambda: pub.publish(msg))

    got = received[0]
    assert got.header.frame_id == "camera_optical" and got.header.stamp.nanosec == 123
    assert [f.label for f in got.faces] == ["ada", "unknown"]
    assert [f.track_id for f in got.faces] == [3, -1]
    face = got.faces[0]
    assert face.similarity == pytest.approx(0.83) and face.margin == pytest.approx(0.21)
    assert (face.x_min, face.y_min, face.width, face.height) == (10.5, 20.0, 64.0, 72.0)
    assert [(p.x, p.y) for p in face.keypoints] == [(float(i), float(2 * i)) for i in range(6)]
    assert len(face.embedding) == 128 and face.embedding[5] == pytest.approx(0.625)
    assert face.is_new_track and face.rejected == ""


def test_face_event_constants_and_transport(graph: Graph) -> None:
    assert (FaceEvent.APPEARED, FaceEvent.IDENTIFIED, FaceEvent.LABEL_CHANGED, FaceEvent.LEFT) == (
        0,
        1,
        2,
        3,
    )
    topic = unique("face_events")
    received: list[FaceEvent] = []
    graph.b.create_subscription(FaceEvent, topic, received.append, 10)
    pub = graph.a.create_publisher(FaceEvent, topic, 10)
    event = FaceEvent(
        type=FaceEvent.LABEL_CHANGED,
        track_id=7,
        label="grace",
        previous_label="unknown",
        similarity=0.7,
    )
    graph.spin_until(lambda: bool(received), tick=lambda: pub.publish(event))
    got = received[0]
    assert (got.type, got.track_id, got.label, got.previous_label) == (2, 7, "grace", "unknown")


def _enroll(req: Enroll.Request, res: Enroll.Response) -> Enroll.Response:
    res.success = req.image.width > 0 and req.name != ""
    res.samples_added = 1 if res.success else 0
    res.total_samples = res.samples_added + (0 if req.overwrite else 4)
    res.message = f"{req.name}: image {req.image.width}x{req.image.height}, track {req.track_id}"
    return res


def _forget(req: Forget.Request, res: Forget.Response) -> Forget.Response:
    res.success, res.message = req.name == "ada", f"forgot {req.name}"
    return res


def _rename(req: Rename.Request, res: Rename.Response) -> Rename.Response:
    res.success, res.message = req.merge, f"{req.old_name}->{req.new_name}"
    return res


def _list(req: ListFaces.Request, res: ListFaces.Response) -> ListFaces.Response:
    res.names, res.sample_counts = ["ada", "grace"], [5, 2]
    res.enrolled_at = [Time(sec=100), Time(sec=200, nanosec=5)]
    res.success, res.message = True, "2 people"
    return res


def _enroll_request() -> Enroll.Request:
    image = Image(height=2, width=3, step=9, encoding="bgr8", data=bytes(range(18)))
    return Enroll.Request(name="ada", image=image, num_samples=0, track_id=-1, overwrite=False)


def _check_enroll(res: Enroll.Response) -> None:
    assert res.success and (res.samples_added, res.total_samples) == (1, 5)
    assert res.message == "ada: image 3x2, track -1"


def _check_list(res: ListFaces.Response) -> None:
    assert list(res.names) == ["ada", "grace"] and list(res.sample_counts) == [5, 2]
    assert [(t.sec, t.nanosec) for t in res.enrolled_at] == [(100, 0), (200, 5)]


SERVICES = [
    (Enroll, _enroll, _enroll_request, _check_enroll),
    (
        Forget,
        _forget,
        lambda: Forget.Request(name="ada"),
        lambda r: r.success and r.message == "forgot ada",
    ),
    (
        Rename,
        _rename,
        lambda: Rename.Request(old_name="ada", new_name="ada_l", merge=True),
        lambda r: r.success and r.message == "ada->ada_l",
    ),
    (ListFaces, _list, ListFaces.Request, _check_list),
]


@pytest.mark.parametrize(
    "srv_type,handler,make_request,check", SERVICES, ids=lambda v: getattr(v, "__name__", "")
)
def test_service_round_trip(graph: Graph, srv_type, handler, make_request, check) -> None:
    name = unique(srv_type.__name__.lower())
    server = graph.a.create_service(srv_type, name, handler)
    client = graph.b.create_client(srv_type, name)
    try:
        graph.spin_until(client.service_is_ready)
        future = client.call_async(make_request())
        graph.spin_until(future.done)
        result = check(future.result())
        assert result is None or result
    finally:
        graph.b.destroy_client(client)
        graph.a.destroy_service(server)


def test_package_share_is_registered() -> None:
    """Nodes find config/, launch/ and models/ through the ament index, as after a colcon build."""
    share = Path(get_package_share_directory("face_recog_ros"))
    source = Path(__file__).resolve().parents[1]
    assert (share / "package.xml").is_file()
    for folder in ("config", "launch", "models"):
        if (source / folder).is_dir() and any(
            (source / folder).iterdir()
        ):  # git keeps no empty folder
            assert sorted(p.name for p in (share / folder).iterdir()) == sorted(
                p.name for p in (source / folder).iterdir()
            ), folder
