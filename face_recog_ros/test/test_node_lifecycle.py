"""The managed (lifecycle) node over a real rclpy graph: transitions through lifecycle_msgs
services, what each state serves, the standard outputs' content, diagnostics levels.

One node per test, in a private context and domain, with a probe node that drives it the way
`ros2 lifecycle set` and any ROS client would.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from conftest import ros_domain
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from face_recog_interfaces.msg import FaceArray
from face_recog_interfaces.srv import Enroll, ListFaces
from face_recog_ros.io import samples
from face_recog_ros.ros.conversion import rgb_to_image
from face_recog_ros.ros.node import FaceRecognitionNode
from test_node import wait_until

TIMEOUT_S = 15.0
NODE = "/face_recognition_node"
EILEEN = samples.PEOPLE["astronaut"]


class Graph:
    """A face_recognition_node (parameters given) and a probe, on a background executor."""

    def __init__(self, *params: Parameter) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=ros_domain())
        self.node = FaceRecognitionNode(context=self.context, parameter_overrides=[
            Parameter("gallery.path", value=""), Parameter("diagnostics_period", value=0.2),
            *params])
        self.probe = Node(f"probe_{uuid.uuid4().hex[:8]}", context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=6, context=self.context)
        for node in (self.node, self.probe):
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.image_pub = self.probe.create_publisher(Image, "/image", 10)
        self.frame = 0

    def close(self) -> None:
        self.executor.shutdown()
        for node in (self.node, self.probe):
            node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)

    def call(self, srv_type: type, name: str, request: Any) -> Any:
        client = self.probe.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=TIMEOUT_S), name
        return wait_until(client.call_async(request).result, what=f"{name} to answer")

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.call(ChangeState, f"{NODE}/change_state", request).success

    def state(self) -> str:
        return self.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state.label

    def collect(self, msg_type: type, topic: str) -> list:
        received: list = []
        self.probe.create_subscription(msg_type, topic, received.append, 50)
        return received

    def publish_frame(self, rgb: np.ndarray) -> Header:
        self.frame += 1
        nanos = 1_000_000_000 * 1000 + self.frame * 33_333_333
        header = Header(stamp=Time(sec=nanos // 10 ** 9, nanosec=nanos % 10 ** 9),
                        frame_id="camera_optical")
        self.image_pub.publish(rgb_to_image(rgb, header))
        return header

    def feed(self, rgb: np.ndarray, until: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + TIMEOUT_S
        while not (result := until()):
            assert time.monotonic() < deadline, f"timed out feeding frames: {what}"
            self.publish_frame(rgb)
            time.sleep(1 / 30)
        return result

    def statuses(self, diagnostics: list[DiagnosticArray], suffix: str) -> list[DiagnosticStatus]:
        return [s for msg in list(diagnostics) for s in msg.status if s.name.endswith(suffix)]


@pytest.fixture
def manual() -> Iterator[Graph]:
    """A node started with autostart:=false: it waits, unconfigured, for transitions."""
    graph = Graph(Parameter("autostart", value=False))
    yield graph
    graph.close()


def test_transitions_through_lifecycle_services_and_what_each_state_serves(manual):
    g = manual
    assert g.state() == "unconfigured"
    listed = g.call(ListFaces, f"{NODE}/list_faces", ListFaces.Request())
    assert not listed.success and "the gallery is not loaded: the node is unconfigured" in \
        listed.message
    assert g.probe.count_subscribers("/image") == 0

    assert g.transition(Transition.TRANSITION_CONFIGURE) and g.state() == "inactive"
    assert g.call(ListFaces, f"{NODE}/list_faces", ListFaces.Request()).success
    photo = rgb_to_image(samples.photo("astronaut"))
    refused = g.call(Enroll, f"{NODE}/enroll", Enroll.Request(name=EILEEN, image=photo))
    assert not refused.success
    assert refused.message.startswith("cannot enrol: the node is inactive")
    assert g.probe.count_subscribers("/image") == 0  # inactive: nothing subscribed

    assert g.transition(Transition.TRANSITION_ACTIVATE) and g.state() == "active"
    wait_until(lambda: g.image_pub.get_subscription_count() == 1, what="the image subscription")
    assert g.call(Enroll, f"{NODE}/enroll", Enroll.Request(name=EILEEN, image=photo)).success
    faces = g.collect(FaceArray, f"{NODE}/faces")
    g.feed(samples.photo("astronaut"), lambda: any(f.label == EILEEN for m in faces
                                                   for f in m.faces), "Eileen named")

    assert g.transition(Transition.TRANSITION_DEACTIVATE) and g.state() == "inactive"
    wait_until(lambda: g.image_pub.get_subscription_count() == 0, what="the unsubscription")
    wait_until(lambda: g.probe.count_publishers(f"{NODE}/faces") == 0, what="~/faces withdrawn")
    listed = g.call(ListFaces, f"{NODE}/list_faces", ListFaces.Request())
    assert listed.success and list(listed.names) == [EILEEN]  # the gallery stays loaded

    assert g.transition(Transition.TRANSITION_CLEANUP) and g.state() == "unconfigured"
    assert g.node.recognizer is None and g.node.streams == []  # the models are released
    assert g.transition(Transition.TRANSITION_CONFIGURE)
    assert g.transition(Transition.TRANSITION_ACTIVATE) and g.state() == "active"
    assert g.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN) and g.state() == "finalized"
    assert g.node.recognizer is None and g.probe.count_subscribers("/image") == 0


@pytest.mark.parametrize("transitions", [
    [], [Transition.TRANSITION_CONFIGURE],
    [Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE]])
def test_shutdown_from_every_state(manual, transitions):
    for transition in transitions:
        assert manual.transition(transition)
    shutdown = {0: Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
                1: Transition.TRANSITION_INACTIVE_SHUTDOWN,
                2: Transition.TRANSITION_ACTIVE_SHUTDOWN}[len(transitions)]
    assert manual.transition(shutdown)
    assert manual.state() == "finalized"
    assert manual.node.recognizer is None


def test_a_failed_configure_is_an_error_in_diagnostics_and_the_node_stays_up():
    graph = Graph(Parameter("autostart", value=False),
                  Parameter("embedder.model", value="/nonexistent/model.yaml"))
    try:
        diagnostics = graph.collect(DiagnosticArray, "/diagnostics")
        assert not graph.transition(Transition.TRANSITION_CONFIGURE)
        assert graph.state() == "unconfigured"
        error = wait_until(lambda: [s for s in graph.statuses(diagnostics, ": recognizer")
                                    if s.level == DiagnosticStatus.ERROR],
                           what="an ERROR recognizer status")[0]
        assert error.message.startswith("models failed:") and "model.yaml" in error.message
    finally:
        graph.close()


def test_autostart_failure_raises_with_the_reason():
    context = Context()
    rclpy.init(context=context, domain_id=ros_domain())
    try:
        with pytest.raises(RuntimeError, match="configuring failed"):
            FaceRecognitionNode(context=context, parameter_overrides=[
                Parameter("gallery.path", value=""),
                Parameter("embedder.model", value="/nonexistent/model.yaml")])
    finally:
        rclpy.shutdown(context=context)


def test_a_stalled_camera_goes_from_ok_to_error():
    graph = Graph(Parameter("diagnostics_image_timeout", value=1.0))
    try:
        diagnostics = graph.collect(DiagnosticArray, "/diagnostics")
        frame = samples.scene(1)
        graph.feed(frame, lambda: [s for s in graph.statuses(diagnostics, ": camera image")
                                   if s.level == DiagnosticStatus.OK
                                   and "Hz processed" in s.message], "an OK camera status")
        # The camera stalls: no frame for longer than diagnostics_image_timeout.
        error = wait_until(lambda: [s for s in graph.statuses(diagnostics, ": camera image")
                                    if s.level == DiagnosticStatus.ERROR], timeout=5.0,
                           what="an ERROR camera status")[0]
        assert error.message.startswith("no image for ") and "on /image" in error.message
        assert error.hardware_id == "/image"
        values = {kv.key: kv.value for kv in error.values}
        assert float(values["image_age_s"]) > 1.0
        # The recognizer warns: nobody is enrolled.
        recognizer = graph.statuses(diagnostics, ": recognizer")[-1]
        assert recognizer.level == DiagnosticStatus.WARN and "gallery is empty" in \
            recognizer.message
    finally:
        graph.close()
