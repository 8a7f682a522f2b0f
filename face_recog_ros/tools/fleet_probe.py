"""A fleet of face_recognition_node processes sharing their gallery (gallery.sync), and one probe
node watching and driving them. Used by tools/sync_fleet.py and test/test_gallery_sync.py.

Each node runs in its own process and namespace (/robot<i>), with its own gallery file, all in
one private ROS domain on loopback, in one sync group of their own. They all watch one camera
topic, which the probe publishes when asked. The probe calls their services, records what each
names in its frames (~/faces), and listens to the group's digests.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from face_recog_interfaces.msg import FaceArray, GalleryDigest
from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename
from face_recog_ros.gallery.model import Gallery
from face_recog_ros.gallery.store import load_gallery, save_gallery
from face_recog_ros.io import samples
from face_recog_ros.ros.conversion import rgb_to_image
from face_recog_ros.ros.gallery_sync import LATEST_READER_QOS, topic_prefix
from soak_node import DIM, SPACE, CallTimeout, NodeProcess

CAMERA = "/fleet_camera/image"
CAMERA_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST, depth=1)
SERVICES = {Enroll: "enroll", Forget: "forget", ListFaces: "list_faces", Rename: "rename"}


def populated(path: Path, people: int, seed: int = 3) -> None:
    """A gallery file of ``people`` people, one random sample each (what every robot starts
    with, as copies of one file: the same sample ids everywhere)."""
    rng = np.random.default_rng(seed)
    gallery = Gallery(SPACE, DIM, node_id="provisioning")
    for k in range(people):
        gallery.add(f"staff_{k:05d}", rng.normal(size=(1, DIM)))
    save_gallery(gallery, path)


def file_digest(path: Path) -> tuple[str, dict[str, int]]:
    """A gallery file's contents digest and people (name -> samples)."""
    gallery = load_gallery(path, SPACE, DIM)
    return gallery.digest(), {p.name: p.samples for p in gallery.people()}


@dataclass
class Seen:
    """What one robot named in its frames: first time each name appeared, and recent frames."""

    first: dict[str, float] = field(default_factory=dict)
    frames: deque[tuple[float, frozenset[str]]] = field(
        default_factory=lambda: deque(maxlen=3000))

    def gone(self, name: str, after: float) -> float | None:
        """The first frame after ``after`` from which on no frame names ``name``."""
        later = [(t, labels) for t, labels in list(self.frames) if t > after]
        last = max((i for i, (_, labels) in enumerate(later) if name in labels), default=-1)
        return later[last + 1][0] if last + 1 < len(later) else None


class Probe:
    """One rclpy node in this process: services of every robot, their ~/faces, the digests."""

    def __init__(self, domain: int, group: str, robots: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node(f"fleet_probe_{os.getpid()}", context=self.context)
        self.lock = threading.Lock()
        self.seen: dict[int, Seen] = {}
        self.digests: dict[str, tuple[str, float]] = {}  # sender -> (digest, time)
        self.history: dict[str, list[tuple[float, str]]] = {}  # sender -> every (time, digest)
        self.clients: dict[tuple[int, type], Any] = {}
        self.camera = self.node.create_publisher(Image, CAMERA, CAMERA_QOS)
        self.node.create_subscription(GalleryDigest, f"{topic_prefix(group)}/digests",
                                      self._digest, LATEST_READER_QOS)
        for i in range(robots):
            self.add_robot(i)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self._frames = threading.Event()
        self._camera_thread: threading.Thread | None = None

    def add_robot(self, i: int) -> None:
        ns = f"/robot{i}/face_recognition_node"
        self.seen[i] = Seen()
        for srv, name in SERVICES.items():
            self.clients[(i, srv)] = self.node.create_client(srv, f"{ns}/{name}")
        self.node.create_subscription(FaceArray, f"{ns}/faces", self._faces(i), 10)

    def _faces(self, i: int) -> Callable[[FaceArray], None]:
        def record(msg: FaceArray) -> None:
            now = time.monotonic()
            labels = frozenset(f.label for f in msg.faces)
            with self.lock:
                seen = self.seen[i]
                for label in labels:
                    seen.first.setdefault(label, now)
                seen.frames.append((now, labels))
        return record

    def _digest(self, msg: GalleryDigest) -> None:
        now = time.monotonic()
        with self.lock:
            self.digests[msg.sender] = (msg.digest, now)
            self.history.setdefault(msg.sender, []).append((now, msg.digest))

    def first_published(self, sender: str, digest: str, after: float) -> float | None:
        """When ``sender`` first published ``digest`` after ``after`` (its callback's time)."""
        with self.lock:
            return next((t for t, d in self.history.get(sender, []) if t > after and d == digest),
                        None)

    def published_after(self, sender: str, after: float, other_than: str | None) -> str | None:
        """The first digest ``sender`` published after ``after`` that is not ``other_than``."""
        with self.lock:
            return next((d for t, d in self.history.get(sender, [])
                         if t > after and d != other_than), None)

    def call(self, robot: int, request: Any, timeout: float = 30.0) -> tuple[Any, float]:
        """(response, the monotonic time it arrived)."""
        srv = {Enroll.Request: Enroll, Forget.Request: Forget, ListFaces.Request: ListFaces,
               Rename.Request: Rename}[type(request)]
        client = self.clients[(robot, srv)]
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            client.remove_pending_request(future)
            raise CallTimeout(f"robot{robot} did not answer {srv.__name__} in {timeout:g} s")
        return future.result(), time.monotonic()

    def digest_of(self, robot: int) -> str:
        """The robot's gallery digest now, from its ~/list_faces."""
        return self.call(robot, ListFaces.Request())[0].gallery_digest

    def drop(self, sender: str) -> None:
        """Forget what ``sender`` published (it was killed)."""
        with self.lock:
            self.digests.pop(sender, None)

    def fleet_digest(self, senders: list[str], max_age: float = 3.0) -> str | None:
        """The digest every one of ``senders`` published last, if they agree (and are alive)."""
        now = time.monotonic()
        with self.lock:
            found = [self.digests.get(s) for s in senders]
        if any(f is None or now - f[1] > max_age for f in found):
            return None
        values = {f[0] for f in found if f is not None}
        return values.pop() if len(values) == 1 else None

    def start_camera(self, photo: str = "astronaut", rate: float = 10.0) -> None:
        """Publish one photo on the robots' camera topic at ``rate`` until stop_camera."""
        msg = rgb_to_image(np.ascontiguousarray(samples.photo(photo)))
        self._frames.clear()

        def run() -> None:
            while not self._frames.wait(1.0 / rate):
                self.camera.publish(msg)
        self._camera_thread = threading.Thread(target=run, daemon=True)
        self._camera_thread.start()

    def stop_camera(self) -> None:
        self._frames.set()
        if self._camera_thread is not None:
            self._camera_thread.join(timeout=5)

    def close(self) -> None:
        self.stop_camera()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._spin.join(timeout=5)


class Fleet:
    """The node processes: start, kill, restart, stop; robot i is /robot<i>."""

    def __init__(self, workdir: Path, domain: int, group: str, *, seed_file: Path | None,
                 period: float = 1.0, frames: bool = True) -> None:
        self.workdir, self.domain, self.group = workdir, domain, group
        self.seed_file, self.period, self.frames = seed_file, period, frames
        self.nodes: dict[int, NodeProcess] = {}
        self.started: dict[int, float] = {}

    def gallery(self, i: int) -> Path:
        return self.workdir / f"robot{i}" / "gallery.npz"

    def node_id(self, i: int) -> str:
        return f"{os.uname().nodename}:/robot{i}/face_recognition_node"

    def start(self, i: int, *, fresh: bool = False, group: str | None = None) -> NodeProcess:
        """Start robot i (its gallery a copy of the seed file unless ``fresh`` or it has one
        already), in the fleet's sync group or in ``group``."""
        path = self.gallery(i)
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            if self.seed_file is not None and not fresh:
                shutil.copy(self.seed_file, path)
        params = {"gallery.sync": "true", "gallery.sync_group": group or self.group,
                  "gallery.sync_period": self.period, "publish_annotated": "false",
                  "publish_detections": "false", "tracking.enabled": "false",
                  "gallery_poll_period": 5.0, "detector.num_threads": 1,
                  "embedder.num_threads": 1}
        node = NodeProcess(self.workdir, path, self.domain,
                           ros_args=("-r", f"__ns:=/robot{i}", "-r", f"image:={CAMERA}"),
                           **params)
        self.nodes[i], self.started[i] = node, time.monotonic()
        return node

    def wait_ready(self, probe: Probe, i: int, timeout: float = 120.0) -> float:
        """The monotonic time robot i logged 'ready' and answered ~/list_faces."""
        node, deadline = self.nodes[i], time.monotonic() + timeout
        while "]: ready: " not in node.log():
            if not node.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"robot{i} did not come up:\n{node.log()[-3000:]}")
            time.sleep(0.05)
        while True:
            try:
                return probe.call(i, ListFaces.Request(), timeout=2.0)[1]
            except CallTimeout:
                if time.monotonic() > deadline:
                    raise

    def sync_started(self, i: int) -> float:
        """The monotonic time robot i had loaded its gallery and started to sync (its log)."""
        for line in self.nodes[i].log().splitlines():
            if "]: gallery sync: group" in line:
                wall = float(line.split("] [", 1)[1].split("]", 1)[0])
                return time.monotonic() - (time.time() - wall)
        raise RuntimeError(f"robot{i} never started to sync")

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def stop_all(self) -> dict[int, int | None]:
        return {i: node.stop() for i, node in self.nodes.items()}
