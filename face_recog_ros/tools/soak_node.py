#!/usr/bin/env python3
"""Soak test of face_recognition_node: frames as fast as they can be published, services
throughout.

    python3 tools/soak_node.py                   # 10,000 frames (a few minutes)
    python3 tools/soak_node.py --frames 600 --rate 30

The node runs as its own process (as `ros2 run` starts it) on a private ROS domain on loopback,
with a gallery file in a temporary folder. A camera process publishes 640x480 bgr8 frames of a
moving two-person scene (--rate 0: as fast as the publisher can) while a thread of this process
calls ~/enroll (with an image), ~/list_faces and ~/forget in a loop. (The camera is a process of
its own, as on a robot: publishing thousands of frames a second from the client's process would
starve the client's own executor and measure the client, not the node.) Reported: frames published
and answered, service latency p50/p99/max, the node's RSS (/proc/<pid>/status, sampled every
second) at the start and end and its slope over the second half (least squares, MB/min), and
whether the gallery file agrees with ~/list_faces and with the acknowledged calls at the end.

Exit status 0 when the node survived, every call was answered within --max-latency seconds and
the gallery is consistent. test/test_robustness_soak.py runs a short version; NodeProcess and
Client are also used by test/test_robustness_node.py.
"""

from __future__ import annotations

import os

from face_recog_ros.environment import limit_native_threads  # noqa: E402  (imports no numpy)

limit_native_threads()  # before numpy loads, like the package's own entry points

import argparse  # noqa: E402
import itertools  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from face_recog_interfaces.msg import FaceArray  # noqa: E402
from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename  # noqa: E402
from face_recog_ros.io import samples  # noqa: E402
from face_recog_ros.gallery.store import load_gallery  # noqa: E402
from face_recog_ros.ros.conversion import rgb_to_image  # noqa: E402
from face_recog_ros.ros.service_qos import SERVICE_QOS  # noqa: E402

NODE = "/face_recognition_node"
SPACE, DIM = "dlib_resnet_v1", 128  # the default embedder's embedding space
IMAGE_QOS = QoSProfile(
    reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1
)


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment for a node on a private domain, discovery on this machine only."""
    return dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
        RCUTILS_LOGGING_BUFFERED_STREAM="0",
    )


def run_domain() -> int:
    """The ROS domain of a test or tool run: ROS_DOMAIN_ID when set (each worktree and machine
    user keeps its own), else a random one (1-101: valid with the default port mapping)."""
    return int(os.environ.get("ROS_DOMAIN_ID") or random.SystemRandom().randint(1, 101))


def memory_mb(pid: int, key: str = "VmRSS") -> float | None:
    """A memory figure of a process from /proc/<pid>/status (VmRSS now, VmHWM its peak), in MB;
    None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class NodeProcess:
    """face_recognition_node in its own process (own session, so a kill reaches only it)."""

    def __init__(self, workdir: Path, gallery: Path, domain_id: int, *,
                 command_prefix: Sequence[str] = (), ros_args: tuple[str, ...] = (),
                 **params: Any) -> None:
        """command_prefix: what the node is started through (e.g. unshare, to give it a mount
        namespace of its own); it must exec the node, so that the pid is the node's.
        ``ros_args``: more --ros-args arguments (a namespace, remappings)."""
        self.workdir = workdir
        params = {"gallery.path": str(gallery), "diagnostics_period": 1.0, **params}
        command = [*command_prefix, sys.executable, "-m", "face_recog_ros.ros.node", "--ros-args",
                   *ros_args]
        for name, value in params.items():
            command += ["-p", f"{name}:={value}"]
        self.log_path = workdir / f"node-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        # cwd = workdir: `-m` puts the cwd on sys.path; the repo root would shadow the package.
        self.process = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=ros_env(domain_id),
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float | None:
        return memory_mb(self.pid, "VmRSS")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, as a power cut or the OOM killer would."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (Ctrl-C, what ros2 launch sends), then SIGKILL if it does not exit; the exit
        code."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


PROBE_NUMBERS = itertools.count()  # several probes in one process get distinct node names


class CallTimeout(Exception):
    """A service did not answer in time."""


class Client:
    """A probe node in this process: publishes frames, counts ~/faces, calls the node's
    services."""

    def __init__(self, domain_id: int, node: str = NODE) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(f"soak_probe_{os.getpid()}_{next(PROBE_NUMBERS)}", context=self.context)
        self.image_pub = self.node.create_publisher(Image, "image", IMAGE_QOS)
        self.faces_received = 0
        self.faces_with_labels = 0
        self.node.create_subscription(FaceArray, f"{node}/faces", self._on_faces, 50)
        self.clients = {
            srv: self.node.create_client(srv, f"{node}/{name}", qos_profile=SERVICE_QOS)
            for srv, name in (
                (Enroll, "enroll"),
                (Forget, "forget"),
                (ListFaces, "list_faces"),
                (Rename, "rename"),
            )
        }
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_faces(self, msg: FaceArray) -> None:
        self.faces_received += 1
        self.faces_with_labels += any(f.label != "unknown" for f in msg.faces)

    def wait_ready(self, node: NodeProcess, timeout: float = 60.0) -> float:
        """Seconds until `node` has logged 'ready', subscribes `image` and answers ~/list_faces.

        Graph checks alone are not enough after a SIGKILL: the dead node's endpoints stay in DDS
        discovery until their lease expires, so a service looks available and requests vanish.
        """
        start = time.monotonic()

        def check() -> None:
            if not node.alive():
                raise RuntimeError(
                    f"the node exited with {node.process.returncode}:\n{node.log()[-3000:]}"
                )
            if time.monotonic() - start > timeout:
                raise TimeoutError(
                    f"the node did not come up in {timeout:g} s:\n{node.log()[-3000:]}"
                )

        while "]: ready: " not in node.log() or self.image_pub.get_subscription_count() == 0:
            check()
            time.sleep(0.05)
        while True:
            check()
            try:
                self.call(ListFaces.Request(), timeout=1.0)
                return time.monotonic() - start
            except CallTimeout:
                continue

    def call(
        self, request: Any, timeout: float = 10.0, abort: threading.Event | None = None
    ) -> tuple[Any, float]:
        """(response, seconds); CallTimeout when no answer comes in time (or `abort` is set
        first)."""
        srv = {Enroll.Request: Enroll, Forget.Request: Forget, ListFaces.Request: ListFaces,
               Rename.Request: Rename}[type(request)]
        done = threading.Event()
        start = time.monotonic()
        future = self.clients[srv].call_async(request)
        future.add_done_callback(lambda _: done.set())
        while not done.wait(0.05):
            if time.monotonic() - start > timeout or (abort is not None and abort.is_set()):
                self.clients[srv].remove_pending_request(future)
                raise CallTimeout(
                    f"{srv.__name__} not answered in {time.monotonic() - start:.1f} s"
                )
        return future.result(), time.monotonic() - start

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


def enroll_request(name: str, photo: str) -> Enroll.Request:
    return Enroll.Request(
        name=name, image=rgb_to_image(np.ascontiguousarray(samples.photo(photo))), track_id=-1
    )


def gallery_file_people(path: Path) -> dict[str, int]:
    gallery = load_gallery(path, SPACE, DIM)
    return {p.name: p.samples for p in gallery.people()}


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else float("nan")


def slope_mb_per_min(samples_: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over the second half of the samples."""
    half = samples_[len(samples_) // 2:]
    if len(half) < 3:
        return float("nan")
    t, mb = np.array(half).T
    return float(np.polyfit(t / 60.0, mb, 1)[0])


@dataclass
class ServiceLoad:
    """Enrol / list / forget in a loop from a thread, checking every answer."""

    client: Client
    max_latency: float
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"enroll": [], "list_faces": [], "forget": []}
    )
    failures: list[str] = field(default_factory=list)
    expected: dict[str, int] = field(
        default_factory=dict
    )  # name -> samples, from acknowledged answers
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="service_load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _timed(self, kind: str, request: Any) -> Any:
        try:
            response, seconds = self.client.call(request, timeout=max(10.0, 5 * self.max_latency))
        except CallTimeout as exc:
            self.failures.append(str(exc))
            return None
        self.latencies[kind].append(seconds)
        if seconds > self.max_latency:
            self.failures.append(f"{kind} #{len(self.latencies[kind])} took {seconds:.2f} s")
        return response

    def _run(self) -> None:
        requests = {p: enroll_request("x", p) for p in ("astronaut", "grace_hopper")}
        i = 0
        while not self._stop.is_set():
            name = f"person_{i % 6}"
            request = requests["astronaut" if i % 2 else "grace_hopper"]
            request.name = name
            response = self._timed("enroll", request)
            if response is not None:
                if response.success:
                    self.expected[name] = response.total_samples
                else:
                    self.failures.append(f"enroll {name}: {response.message}")
            listed = self._timed("list_faces", ListFaces.Request())
            if listed is not None and not listed.success:
                self.failures.append(f"list_faces: {listed.message}")
            if i % 4 == 3:
                victim = f"person_{(i + 3) % 6}"
                response = self._timed("forget", Forget.Request(name=victim))
                if response is not None:
                    if response.success:
                        self.expected.pop(victim, None)
                    elif victim in self.expected:
                        self.failures.append(f"forget {victim}: {response.message}")
            i += 1


@dataclass
class SoakReport:
    frames: int
    seconds: float
    publish_hz: float
    answered: int
    labelled: int
    calls: dict[str, int]
    latency_ms: dict[str, tuple[float, float, float]]  # p50, p99, max
    rss_start_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    slope_mb_per_min: float
    failures: list[str]
    node_alive: bool
    exit_code: int | None
    gallery_listed: dict[str, int]
    gallery_file: dict[str, int]
    gallery_expected: dict[str, int]

    @property
    def gallery_consistent(self) -> bool:
        return self.gallery_listed == self.gallery_file == self.gallery_expected

    @property
    def ok(self) -> bool:
        return (
            self.node_alive
            and not self.failures
            and self.gallery_consistent
            and self.exit_code == 0
        )

    def table(self) -> str:
        rows = [
            (
                "frames published",
                f"{self.frames} in {self.seconds:.1f} s ({self.publish_hz:.0f} Hz)",
            ),
            ("~/faces messages", f"{self.answered} ({self.labelled} naming someone)"),
            ("node alive at end", f"{self.node_alive} (exit code after SIGINT: {self.exit_code})"),
        ]
        for kind, (p50, p99, worst) in self.latency_ms.items():
            rows.append(
                (
                    f"{kind} latency",
                    f"n={self.calls[kind]}  p50 {p50:.0f} ms  p99 {p99:.0f} ms  "
                    f"max {worst:.0f} ms",
                )
            )
        rows += [
            (
                "node RSS",
                f"start {self.rss_start_mb:.1f} MB (after warm-up), end {self.rss_end_mb:.1f} MB, "
                f"peak {self.rss_peak_mb:.1f} MB",
            ),
            ("RSS slope (2nd half)", f"{self.slope_mb_per_min:+.2f} MB/min"),
            (
                "gallery consistent",
                f"{self.gallery_consistent} (list_faces {sorted(self.gallery_listed.items())}"
                f" / file {sorted(self.gallery_file.items())})",
            ),
            (
                "failures",
                f"{len(self.failures)}" + (f": {self.failures[:5]}" if self.failures else ""),
            ),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def scene_messages(count: int = 60) -> list[Image]:
    return [rgb_to_image(f.rgb) for f in samples.sequence(count)]


def camera(domain_id: int, frames: int, rate: float, wait_s: float = 60.0) -> int:
    """Publish `frames` frames on `image` (once the node subscribes); print 'published N S'."""
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = Node(f"soak_camera_{os.getpid()}", context=context)
    try:
        pub = node.create_publisher(Image, "image", IMAGE_QOS)
        msgs = scene_messages()
        deadline = time.monotonic() + wait_s
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.05)
        period = 1.0 / rate if rate > 0 else 0.0
        start = time.monotonic()
        for i in range(frames):
            msg = msgs[i % len(msgs)]
            now = time.time_ns()
            msg.header.stamp = Time(sec=now // 10**9, nanosec=now % 10**9)
            pub.publish(msg)
            if period:
                time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
        print(f"published {frames} {time.monotonic() - start:.3f}", flush=True)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def soak(
    workdir: Path,
    frames: int,
    rate: float = 0.0,
    max_latency: float = 1.0,
    warmup_s: float = 5.0,
    progress: Callable[[str], None] = lambda _: None,
) -> SoakReport:
    """Run the soak and return its figures; the node is always stopped."""
    domain = run_domain()
    gallery = workdir / "gallery" / "gallery.npz"
    node = NodeProcess(workdir, gallery, domain, publish_annotated="false")
    client: Client | None = None
    cam: subprocess.Popen | None = None
    rss: list[tuple[float, float]] = []
    load = None
    try:
        client = Client(domain)
        progress(
            f"node pid {node.pid} ready after {client.wait_ready(node):.1f} s; domain {domain}"
        )
        sampling = threading.Event()
        t0 = time.monotonic()

        def sample_rss() -> None:
            while not sampling.wait(1.0):
                mb = node.rss_mb()
                if mb is not None:
                    rss.append((time.monotonic() - t0, mb))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        load = ServiceLoad(client, max_latency)
        load.start()
        cam = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--camera",
                str(domain),
                "--frames",
                str(frames),
                "--rate",
                str(rate),
            ],
            cwd=workdir,
            env=ros_env(domain),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        limit = time.monotonic() + 120 + (frames / rate if rate > 0 else frames / 50)
        while cam.poll() is None and node.alive() and time.monotonic() < limit:
            time.sleep(1.0)
            progress(f"{client.faces_received} answered, RSS {node.rss_mb():.1f} MB, "
                     f"{sum(map(len, load.latencies.values()))} calls")
        if cam.poll() is None:
            cam.kill()
        out = (cam.communicate(timeout=10)[0] or "").split()
        published, seconds = (
            (int(out[1]), float(out[2])) if out[:1] == ["published"] else (0, float("nan"))
        )
        time.sleep(1.0)  # the last frames and calls settle
        load.stop()
        sampling.set()
        sampler.join(timeout=5)
        alive = node.alive()
        listed: dict[str, int] = {}
        if alive:
            response, _ = client.call(ListFaces.Request(), timeout=10)
            listed = dict(
                zip(response.names, (int(n) for n in response.sample_counts), strict=True)
            )
        exit_code = node.stop()
        on_disk = gallery_file_people(gallery) if gallery.exists() else {}
        warm = [mb for t, mb in rss if t >= warmup_s] or [mb for _, mb in rss] or [float("nan")]
        return SoakReport(
            frames=published,
            seconds=seconds,
            publish_hz=published / seconds,
            answered=client.faces_received,
            labelled=client.faces_with_labels,
            calls={k: len(v) for k, v in load.latencies.items()},
            latency_ms={
                k: (percentile_ms(v, 50), percentile_ms(v, 99), max(v, default=float("nan")) * 1e3)
                for k, v in load.latencies.items()
            },
            rss_start_mb=warm[0],
            rss_end_mb=warm[-1],
            rss_peak_mb=max(warm),
            slope_mb_per_min=slope_mb_per_min(rss),
            failures=load.failures,
            node_alive=alive,
            exit_code=exit_code,
            gallery_listed=listed,
            gallery_file=on_disk,
            gallery_expected=dict(load.expected),
        )
    finally:
        if cam is not None and cam.poll() is None:
            cam.kill()
            cam.wait(timeout=10)
        if load is not None:
            load.stop()
        node.stop()
        if client is not None:
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="frames per second; 0 = as fast as possible"
    )
    parser.add_argument(
        "--max-latency", type=float, default=1.0, help="seconds a service may take"
    )
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before the RSS start figure"
    )
    parser.add_argument(
        "--camera", type=int, metavar="DOMAIN", help=argparse.SUPPRESS
    )  # the camera process
    args = parser.parse_args(argv)
    if args.camera is not None:
        return camera(args.camera, args.frames, args.rate)
    with tempfile.TemporaryDirectory(prefix="soak_node_") as tmp:
        report = soak(Path(tmp), args.frames, args.rate, args.max_latency, args.warmup,
                      progress=lambda text: print(text, flush=True))
    print(report.table())
    print("PASS" if report.ok else "FAIL")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
