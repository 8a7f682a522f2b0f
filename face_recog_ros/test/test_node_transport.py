"""face_recognition_node in its own process, as `ros2 run` starts it, with the camera in this one
and no environment variable: image_reliability auto against a reliable and a best-effort
publisher, ~/enroll of a photo from another process, and the CPU it uses while inactive.

Rates and latencies are benchmarks (tools/bench_node.py); these tests check the behaviour.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ros_domain
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from face_recog_interfaces.msg import FaceArray
from face_recog_interfaces.srv import Enroll
from face_recog_ros.io import samples
from face_recog_ros.ros.conversion import rgb_to_image

TIMEOUT_S = 30.0
NODE = "/face_recognition_node"
EXECUTABLE = shutil.which("face_recognition_node",
                          path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
pytestmark = pytest.mark.skipif(EXECUTABLE is None, reason="face_recognition_node is not "
                                "installed (./setup.sh install)")
QOS = {ReliabilityPolicy.RELIABLE: QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                                              history=HistoryPolicy.KEEP_LAST, depth=1),
       ReliabilityPolicy.BEST_EFFORT: QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                                                 history=HistoryPolicy.KEEP_LAST, depth=1)}


class Camera:
    """This process: a camera publisher, and a client of the node's services and topics."""

    def __init__(self, domain: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node("camera_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.faces: list[FaceArray] = []
        self.node.create_subscription(FaceArray, f"{NODE}/faces", self.faces.append, 100)

    def spin_until(self, done, what: str, timeout: float = TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while not (result := done()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.executor.spin_once(timeout_sec=0.02)
        return result

    def call(self, srv_type: type, name: str, request):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=TIMEOUT_S), name
        future = client.call_async(request)
        self.spin_until(future.done, f"{name} to answer")
        return future.result()

    def node_subscription(self) -> ReliabilityPolicy | None:
        info = self.node.get_subscriptions_info_by_topic("/image")
        return info[0].qos_profile.reliability if info else None

    def stream(self, reliability: ReliabilityPolicy, frames: int) -> int:
        """Publish `frames` 640x480 frames at 30 Hz; the number that got a ~/faces result."""
        publisher = self.node.create_publisher(Image, "/image", QOS[reliability])
        try:
            self.spin_until(lambda: publisher.get_subscription_count() > 0, "the node to match")
            # auto: the node re-subscribes to suit this publisher within about a second.
            self.spin_until(lambda: self.node_subscription() == reliability,
                            f"the node to subscribe {reliability.name}")
            time.sleep(0.5)  # the new subscription is matched on both sides
            self.faces.clear()
            msg = rgb_to_image(samples.scene(1))
            started = time.monotonic()
            for i in range(frames + 30):  # then 1 s for the last results
                if i < frames:
                    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i // 30, i % 30 * 10
                    publisher.publish(msg)
                while (wait := started + (i + 1) / 30 - time.monotonic()) > 0:
                    self.executor.spin_once(timeout_sec=wait)
            return len({(m.header.stamp.sec, m.header.stamp.nanosec) for m in self.faces})
        finally:
            self.node.destroy_publisher(publisher)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def domain() -> int:
    return ros_domain()


@pytest.fixture(scope="module")
def node_process(domain, tmp_path_factory) -> Iterator[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    env["ROS_DOMAIN_ID"] = str(domain)
    gallery = tmp_path_factory.mktemp("transport") / "gallery.npz"
    process = subprocess.Popen([EXECUTABLE, "--ros-args", "-r", "image:=/image",
                                "-p", f"gallery.path:={gallery}"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=TIMEOUT_S)[0]
    assert process.returncode == 0, output


@pytest.fixture(scope="module")
def camera(domain, node_process) -> Iterator[Camera]:
    cam = Camera(domain)
    yield cam
    cam.close()


def test_enrolment_of_a_photo_from_another_process(camera):
    photo = samples.photo("astronaut")
    response = camera.call(Enroll, f"{NODE}/enroll",
                           Enroll.Request(name="eileen_collins", image=rgb_to_image(photo)))
    assert response.success, response.message


@pytest.mark.parametrize("reliability", [ReliabilityPolicy.RELIABLE,
                                         ReliabilityPolicy.BEST_EFFORT,
                                         ReliabilityPolicy.RELIABLE])
def test_auto_reliability_follows_the_publisher_in_another_process(camera, reliability):
    processed = camera.stream(reliability, 60)
    assert camera.node_subscription() == reliability
    if reliability == ReliabilityPolicy.RELIABLE:
        # Reliable delivery of 921 KB frames between processes: frames arrive (the benchmark
        # counts them all); a best-effort subscriber got 6 of 300 here before.
        assert processed >= 30, f"{processed} of 60 frames processed"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_inactive_node_takes_no_frames_and_under_one_percent_cpu(camera, node_process):
    deactivate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE))
    assert camera.call(ChangeState, f"{NODE}/change_state", deactivate).success
    camera.spin_until(lambda: camera.node_subscription() is None, "the node to unsubscribe")
    publisher = camera.node.create_publisher(Image, "/image", QOS[ReliabilityPolicy.RELIABLE])
    msg = rgb_to_image(samples.scene(1))
    camera.faces.clear()
    before, started = cpu_seconds(node_process.pid), time.monotonic()
    while time.monotonic() - started < 5.0:  # a camera still streaming at 30 Hz
        publisher.publish(msg)
        camera.executor.spin_once(timeout_sec=1 / 30)
    share = (cpu_seconds(node_process.pid) - before) / (time.monotonic() - started)
    assert camera.faces == []
    print(f"inactive node: {share:.2%} of a core over 5 s")  # the figure for the notes (-s)
    assert share < 0.01, f"inactive node used {share:.1%} of a core"
    activate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
    assert camera.call(ChangeState, f"{NODE}/change_state", activate).success
    camera.spin_until(lambda: publisher.publish(msg) or camera.faces,
                      "frames processed again after activation")
    camera.node.destroy_publisher(publisher)
