"""gallery.sync between real face_recognition_node processes (one private ROS domain, one gallery
file each, no shared disk): the scenarios of tools/sync_fleet.py bounded in size and time, then
groups that stay apart, peers refused (another embedding model, malformed updates), the sample
cap shared by the group, and a forget that leaves no copy in any node's folder.

Timing goals are the tool's (it prints figures); these tests check behaviour.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import load_tool
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from face_recog_interfaces.msg import GalleryDigest, GalleryUpdate
from face_recog_interfaces.srv import Forget, ListFaces
from face_recog_ros.gallery.model import Gallery
from face_recog_ros.ros.gallery_messages import update_message
from face_recog_ros.ros.gallery_sync import LATEST_QOS, UPDATES_QOS, topic_prefix

sync_fleet = load_tool("sync_fleet")
fleet_probe = load_tool("fleet_probe")
soak_node = load_tool("soak_node")


def test_fleet_converges_catches_up_and_loses_nothing(tmp_path: Path) -> None:
    """Enrol -> named in a frame on every node; forget -> gone; SIGKILL, changes, restart ->
    caught up; concurrent enrolments of one name and of several -> identical galleries; a node
    started last with no file gets everything; every file identical, nothing acknowledged lost,
    no forgotten name in any file."""
    report = sync_fleet.run(tmp_path, nodes=3, people=300, trials=3, rounds=2)
    print(report.table())
    assert report.ok, report.table()
    assert len(report.converge_s) == 3 and len(report.forget_s) == 3
    assert len(report.concurrent_s) == 2
    assert report.catch_up_s == report.catch_up_s and report.newcomer_s == report.newcomer_s


def wait_for(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def names(probe, robot: int) -> dict[str, int]:
    listed, _ = probe.call(robot, ListFaces.Request())
    return dict(zip(listed.names, listed.sample_counts))


@pytest.fixture
def two_groups(tmp_path: Path):
    """robot0 and robot1 in group A, robot2 in group B; robot1's folder holds a corrupt
    moved-aside file and a save's temp file (both could hold anyone)."""
    domain = soak_node.run_domain()
    group = f"a{os.getpid()}"
    fleet = fleet_probe.Fleet(tmp_path, domain, group, seed_file=None)
    probe = fleet_probe.Probe(domain, group, 3)
    folder = fleet.gallery(1).parent
    folder.mkdir(parents=True)
    bad = folder / "gallery.npz.bad-20240101T000000Z"
    bad.write_bytes(b"PK damaged file that may hold alice")
    # A live pid (this test's): the node's start leaves it (a save may be in flight); a forget
    # deletes it (under the writers' lock).
    temp = folder / f".gallery.npz.tmp-{os.getpid()}-0badc0de"
    temp.write_bytes(b"half-written save holding alice")
    try:
        for i in range(3):
            fleet.start(i, group=None if i < 2 else f"b{os.getpid()}")
        for i in range(3):
            fleet.wait_ready(probe, i)
        yield fleet, probe, bad, temp
    finally:
        fleet.stop_all()
        probe.close()


def test_groups_refusals_cap_and_forget_privacy(two_groups) -> None:
    fleet, probe, bad, temp = two_groups
    request = soak_node.enroll_request("alice", "astronaut")
    assert probe.call(0, request)[0].success
    assert wait_for(lambda: "alice" in names(probe, 1))
    listed, _ = probe.call(1, ListFaces.Request())
    assert listed.enrolled_by == [fleet.node_id(0)] and listed.node_id == fleet.node_id(1)
    assert listed.peers == [fleet.node_id(0)] and listed.peers_in_sync == [True]
    assert listed.gallery_digest == probe.call(0, ListFaces.Request())[0].gallery_digest
    assert "alice" not in names(probe, 2)  # another group

    # A peer with another embedding model, and a malformed update: refused, logged once.
    prefix = topic_prefix(fleet.group)
    fake_updates = probe.node.create_publisher(GalleryUpdate, f"{prefix}/updates", UPDATES_QOS)
    fake_digests = probe.node.create_publisher(GalleryDigest, f"{prefix}/digests", LATEST_QOS)
    other = Gallery("facenet_512", 512, node_id="impostor")
    other.add("mallory", np.ones((1, 512)))
    alien = update_message(other.state(), "impostor", "facenet_512", 512)
    mine = Gallery(fleet_probe.SPACE, fleet_probe.DIM, node_id="broken")
    mine.add("trudy", np.ones((1, fleet_probe.DIM)))
    broken = update_message(mine.state(), "broken", fleet_probe.SPACE, fleet_probe.DIM)
    broken.embeddings[0] = 7.0  # no longer unit length
    assert wait_for(lambda: fake_updates.get_subscription_count() >= 2)
    for _ in range(3):
        fake_updates.publish(alien)
        fake_updates.publish(broken)
        fake_digests.publish(GalleryDigest(sender="impostor", embedding_space="facenet_512",
                                           dim=512, digest="x"))
    assert wait_for(lambda: "malformed update from broken" in fleet.nodes[0].log())
    log = fleet.nodes[0].log()
    assert log.count("refusing gallery sync with impostor") == 1, log[-3000:]
    assert log.count("malformed update from broken") == 1
    assert set(names(probe, 0)) == {"alice"}

    # The sample cap is the group's: set on robot0, robot1's parameter and gallery follow.
    params = AsyncParameterClient(probe.node, "/robot0/face_recognition_node")
    assert params.wait_for_services(timeout_sec=10)
    future = params.set_parameters([Parameter("gallery.max_samples_per_person", value=2)])
    assert wait_for(future.done) and future.result().results[0].successful
    for _ in range(3):
        assert probe.call(1, request)[0].success
    assert wait_for(lambda: names(probe, 0).get("alice") == 2 == names(probe, 1).get("alice"))
    remote = AsyncParameterClient(probe.node, "/robot1/face_recognition_node")
    assert remote.wait_for_services(timeout_sec=10)
    got = remote.get_parameters(["gallery.max_samples_per_person"])
    assert wait_for(got.done) and got.result().values[0].integer_value == 2

    # A forget on robot0 erases alice from robot1's file and leaves nothing in its folder.
    assert bad.exists() and temp.exists()
    assert probe.call(0, Forget.Request(name="alice"))[0].success
    assert wait_for(lambda: "alice" not in names(probe, 1))
    assert wait_for(lambda: not bad.exists() and not temp.exists())
    assert "deleted" in fleet.nodes[1].log()
    for i in range(2):
        assert b'"alice"' not in fleet.gallery(i).read_bytes()
