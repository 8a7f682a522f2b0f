"""Every request is answered: bursts of concurrent service calls from several clients while the
node streams frames (the real node process, another process for the camera).

The node's service queues keep all requests (ros/service_qos.py). Clients must keep all too: with
rclpy's default client QoS (keep-last 10 for the client's requests and for its answers), 4 clients
x 50 calls got 175 answers, and only 178 requests reached the node. With SERVICE_QOS on the
clients (soak_node.Client), every call is answered.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import load_tool
from diagnostic_msgs.msg import DiagnosticArray

from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename

soak_node = load_tool("soak_node")
CLIENTS, CALLS = 4, 50
SERVICE_TYPES = {Enroll.Request: Enroll, ListFaces.Request: ListFaces, Forget.Request: Forget,
                 Rename.Request: Rename}


def burst_requests(k: int, kind: str) -> list[Any]:
    """CALLS requests of client k: all ~/list_faces, or enrol / list / forget / rename in turn
    (some forget or rename a name another call enrolled, some a name that is not there)."""
    requests: list[Any] = []
    for i in range(CALLS):
        pick = kind if kind != "mixed" else ("enroll", "list", "forget", "rename")[i % 4]
        if pick == "enroll":
            photo = ("astronaut", "grace_hopper")[i % 2]
            requests.append(soak_node.enroll_request(f"c{k}_{i}", photo))
        elif pick == "list":
            requests.append(ListFaces.Request())
        elif pick == "forget":
            requests.append(Forget.Request(name=f"c{k}_{i - 2}"))
        else:
            requests.append(Rename.Request(old_name=f"c{k}_{i - 3}", new_name=f"r{k}_{i}"))
    return requests


def burst(client: Any, requests: list[Any]) -> list[Any]:
    """Send every request without waiting, then collect the answers (None: never answered)."""
    futures = [client.clients[SERVICE_TYPES[type(r)]].call_async(r) for r in requests]
    deadline = time.monotonic() + 120
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [f.result() if f.done() else None for f in futures]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["mixed", "list"])
def test_concurrent_bursts_are_all_answered(tmp_path: Path, kind: str) -> None:
    domain = soak_node.run_domain()
    node = soak_node.NodeProcess(tmp_path, tmp_path / "gallery.npz", domain,
                                 publish_annotated="false")
    clients = [soak_node.Client(domain) for _ in range(CLIENTS)]
    camera = None
    try:
        clients[0].wait_ready(node)
        node_answers = [0.0]  # the node's own count of answers (recognizer status, services_*)

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name.endswith(": recognizer"):
                    node_answers[0] = sum(float(v.value) for v in status.values
                                          if v.key.startswith("services_"))

        clients[0].node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        camera = subprocess.Popen(
            [sys.executable, str(soak_node.__file__), "--camera", str(domain), "--frames",
             "100000", "--rate", "30"],
            cwd=tmp_path, env=soak_node.ros_env(domain), stdout=subprocess.DEVNULL)
        wait_for(lambda: node_answers[0] > 0)  # wait_ready's ~/list_faces calls are counted
        before = node_answers[0]
        requests = {k: burst_requests(k, kind) for k in range(CLIENTS)}
        results: dict[int, list[Any]] = {}
        threads = [threading.Thread(target=lambda k=k: results.__setitem__(
            k, burst(clients[k], requests[k]))) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        answers = [a for k in range(CLIENTS) for a in results.get(k, [None] * CALLS)]
        wait_for(lambda: node_answers[0] - before >= CLIENTS * CALLS)
        print(f"{kind}: {sum(a is not None for a in answers)} of {len(answers)} answered; "
              f"the node counted {node_answers[0] - before:.0f} answers")
        assert all(a is not None for a in answers)
        for request, answer in zip([r for k in range(CLIENTS) for r in requests[k]], answers):
            if not answer.success:  # a refusal says why, and is an expected one
                assert answer.message and not answer.message.startswith("internal error"), (
                    request, answer)
        assert node_answers[0] - before == CLIENTS * CALLS
        if kind == "list":
            assert all(a.success for a in answers)
        else:  # every enrolment either succeeded or was refused as busy; both say so
            for request, answer in zip([r for k in range(CLIENTS) for r in requests[k]],
                                       answers):
                if isinstance(request, Enroll.Request) and not answer.success:
                    assert "another enrolment is in progress" in answer.message, answer.message
        assert node.alive()
    finally:
        if camera is not None:
            camera.kill()
            camera.wait(10)
        for client in clients:
            client.close()
        node.stop()
