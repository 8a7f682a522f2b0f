#!/usr/bin/env python3
"""face_recognition_node under a 30 Hz 640x480 camera stream: rate, ROS overhead, latency.

    python3 tools/bench_node.py                 # both parts (~1.5 min)
    python3 tools/bench_node.py --part a --seconds 20
    python3 tools/bench_node.py --part b --frames 1000
    python3 tools/bench_node.py --part a --transport default --publisher reliable
    python3 tools/bench_node.py --part a --profile config/fastdds_large_frames.xml

The node runs as its own process, as `ros2 run` starts it, with the package's default config
and a temporary gallery holding Eileen Collins and Grace Hopper (enrolled through ~/enroll).
This process publishes bgr8 frames with header.stamp = the time of publishing and takes the
time each ~/faces result arrives.

(a) Issue 3 goals, one moving face for --seconds: processed rate >= 25 Hz, and the latency
    that ROS adds (transport both ways, Image -> RGB conversion, FaceArray building) <= 2 ms a
    frame: node latency (FaceArray received - image stamp) minus the time the core
    (StreamRecognizer.process) takes on the same frames in this process, before the node starts.
(b) Issue 4 goal: end-to-end latency (image stamp -> FaceArray received) p50/p95/p99 over
    --frames frames at 30 Hz with 1 and with 5 faces; p95 <= 33 ms (one frame) with 1 face.

Frames that get no result (lost in transport, or replaced while the node was busy: it keeps
only the newest) are counted as dropped, not as latency. Timings depend on the machine and its
load, both printed.

Before the stream it times ~/enroll of each person's photo and of a 1 MP photo (1024x1024
rgb8, 3 MB) from this process: the request crosses the same transport as the frames.

--publisher chooses the image publisher's reliability (best_effort: a sensor-data camera;
reliable: most camera drivers). --node-param NAME:=VALUE passes a parameter to the node.
--profile FILE applies a Fast DDS XML profile to this process and the node, as the launch
files do (FASTDDS_DEFAULT_PROFILES_FILE).

Transport: with Fast DDS (the default RMW) this script sets FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
for itself and the node unless it is set already, or --transport default or --profile is
given. With Fast DDS's default transports a 921 KB best-effort image between two processes is
mostly lost (measured: 1 of 300 frames at 30 Hz); `--transport default` measures that case.
Every participant that exchanges the images must use the same setting (a LARGE_DATA participant
and a default one exchange no data).
"""
from __future__ import annotations

import os

from face_recog_ros.environment import limit_native_threads  # noqa: E402  (imports no numpy)

limit_native_threads()  # before numpy loads, like the package's own entry points

import argparse  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from face_recog_interfaces.msg import FaceArray  # noqa: E402
from face_recog_interfaces.srv import Enroll  # noqa: E402
from face_recog_ros import FaceRecognizer, RecognizerConfig, StreamRecognizer  # noqa: E402
from face_recog_ros.io import samples  # noqa: E402
from face_recog_ros.io.image_messages import image_to_rgb  # noqa: E402
from face_recog_ros.ros.conversion import rgb_to_image  # noqa: E402
from face_recog_ros.ros.service_qos import SERVICE_QOS  # noqa: E402
from face_recog_ros.core.runtime import package_share_dir  # noqa: E402

RATE_HZ = 30.0
SIZE = (640, 480)
CYCLE = 240  # frames in one loop of the moving scene (8 s); longer runs repeat it
NAMESPACE = "/bench"
NODE = "face_recognition_node"
GOAL_RATE_HZ = 25.0
GOAL_ADDED_MS = 2.0
GOAL_P95_MS = 33.0
PUBLISHER_QOS = {
    "best_effort": QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                              history=HistoryPolicy.KEEP_LAST, depth=1),
    # What most camera drivers offer (image_transport's default: reliable, keep last).
    "reliable": QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                           depth=1),
}
ENROLL_PHOTO_SIZE = (1024, 1024)  # a 1 MP photo


# --- frames -------------------------------------------------------------------------------------

def walking_frames(count: int) -> list[np.ndarray]:
    """One face (the astronaut) walking, bobbing and changing size and light."""
    cast = (samples.Appearance("astronaut", samples.walk_path),)
    return [
        f.rgb for f in samples.sequence(count, cast=cast, occluded={}, dropped=range(0), size=SIZE)
    ]


def crowd_frames(count: int, faces: int) -> list[np.ndarray]:
    """`faces` heads on a grid (as samples.scene lays them out), each swaying on its own."""
    cols = math.ceil(math.sqrt(faces * SIZE[0] / SIZE[1]))
    rows = math.ceil(faces / cols)
    cell_w, cell_h = SIZE[0] / cols, SIZE[1] / rows
    height = int(min(cell_h * 0.8, cell_w * 1.0))
    names = list(samples.HEAD_BOXES)
    frames = []
    for i in range(count):
        frame = samples.background(SIZE).copy()
        for k in range(faces):
            r, c = divmod(k, cols)
            phase = 2 * math.pi * i / count + k
            center = ((c + 0.5) * cell_w + 0.06 * cell_w * math.sin(phase),
                      (r + 0.5) * cell_h + 0.04 * cell_h * math.cos(2 * phase))
            samples.place(frame, names[k % 2], center, height, mirror=k % 3 == 2,
                          gain=1.0 + 0.1 * math.sin(phase))
        frames.append(frame)
    return frames


# --- the core alone-------------------------------------------------------------------------------

def enrolled_recognizer() -> FaceRecognizer:
    config = RecognizerConfig.from_yaml(package_share_dir() / "config" / "face_recognition.yaml")
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    for key, name in samples.PEOPLE.items():
        recognizer.enroll(name, [samples.photo(key)])
    return recognizer


def core_times(frames: list[np.ndarray], total: int) -> np.ndarray:
    """Milliseconds of StreamRecognizer.process per frame, frame i = frames[i % len], 30 Hz
    stamps."""
    stream = StreamRecognizer(enrolled_recognizer())
    for i in range(10):  # warm-up: interpreter allocations, caches
        stream.process(frames[i % len(frames)], i / RATE_HZ)
    stream = StreamRecognizer(stream.recognizer)
    times = np.empty(total)
    for i in range(total):
        t0 = time.perf_counter()
        stream.process(frames[i % len(frames)], i / RATE_HZ)
        times[i] = (time.perf_counter() - t0) * 1e3
    return times


def conversion_ms(frame: np.ndarray, repeats: int = 200) -> float:
    msg = rgb_to_image(frame)
    t0 = time.perf_counter()
    for _ in range(repeats):
        image_to_rgb(msg)
    return (time.perf_counter() - t0) * 1e3 / repeats


# --- the node -----------------------------------------------------------------------------------

class NodeProcess:
    """face_recognition_node in a child process (its own interpreter, as `ros2 run` starts it)."""

    def __init__(self, workdir: Path, node_params: list[str]) -> None:
        self.log_path = workdir / "node.log"
        params = package_share_dir() / "config" / "face_recognition.yaml"
        command = [sys.executable, "-c",
                   "import sys; from face_recog_ros.ros.node import main; sys.exit(main())",
                   "--ros-args", "-r", f"__ns:={NAMESPACE}", "--params-file", str(params),
                   "-p", f"gallery.path:={workdir / 'gallery.npz'}"]
        for param in node_params:
            command += ["-p", param]
        self.log = open(self.log_path, "w")
        # cwd: not the repository root, whose face_recog_ros/ folder would shadow the package.
        self.process = subprocess.Popen(
            command, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT
        )

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{NODE} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT, as Ctrl-C
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Client(Node):
    def __init__(self, context: Context, publisher_qos: QoSProfile) -> None:
        super().__init__("bench_node_client", namespace=NAMESPACE, context=context)
        self.pub = self.create_publisher(Image, "image", publisher_qos)
        self.enroll = self.create_client(Enroll, f"{NODE}/enroll", qos_profile=SERVICE_QOS)
        self.lock = threading.Lock()
        self.arrivals: dict[tuple[int, int], float] = (
            {}
        )  # image stamp -> time the FaceArray arrived
        self.face_counts: dict[tuple[int, int], int] = {}
        self.diagnostics: dict[str, float] = {}
        self.create_subscription(FaceArray, f"{NODE}/faces", self._on_faces, 100)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_faces(self, msg: FaceArray) -> None:
        now = time.time()
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self.lock:
            self.arrivals[key] = now
            self.face_counts[key] = len(msg.faces)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if f"{NODE}: camera " in status.name:  # not the recognizer status
                values = {}
                for kv in status.values:
                    try:
                        values[kv.key] = float(kv.value)
                    except ValueError:
                        pass
                # Keep the last window that saw frames: the reports after the stream ends
                # (while results settle) cover idle windows with no rates or latencies.
                if values.get("input_rate_hz", 0.0) > 0:
                    self.diagnostics = values

    def publish(self, msg: Image) -> tuple[int, int]:
        now = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
        self.pub.publish(msg)
        return msg.header.stamp.sec, msg.header.stamp.nanosec

    def call(self, request: Enroll.Request, timeout: float = 30.0) -> Enroll.Response:
        future = self.enroll.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError("~/enroll did not answer")
            time.sleep(0.01)
        return future.result()


@dataclass
class Run:
    sent: list[tuple[int, int]]  # stamps, in order
    latency_ms: np.ndarray  # per sent frame; NaN = no result
    duration_s: float
    diagnostics: dict[str, float]  # the node's last /diagnostics window
    node_received: int  # frames the node's subscription got during the run (its running totals)
    node_processed: int
    faces_seen: float  # mean faces per result

    @property
    def results(self) -> int:
        return int(np.sum(~np.isnan(self.latency_ms)))


def node_totals(client: Client) -> tuple[float, float]:
    d = client.diagnostics
    return d.get("frames_received_total", math.nan), d.get("frames_processed_total", math.nan)


def stream(client: Client, msgs: list[Image], total: int, settle_s: float = 1.5) -> Run:
    """Publish msgs cyclically at RATE_HZ on a fixed grid; collect the results.

    settle_s (> the node's diagnostics_period) lets the last results and a /diagnostics report
    with the node's totals arrive."""
    with client.lock:
        client.arrivals.clear()
        client.face_counts.clear()
    received0, processed0 = node_totals(client)
    period = 1.0 / RATE_HZ
    sent = []
    start = time.monotonic()
    for i in range(total):
        delay = start + i * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent.append(client.publish(msgs[i % len(msgs)]))
    duration = time.monotonic() - start
    time.sleep(settle_s)  # the last results
    with client.lock:
        arrivals, counts = dict(client.arrivals), list(client.face_counts.values())
    latency = np.array(
        [(arrivals[k] - (k[0] + k[1] * 1e-9)) * 1e3 if k in arrivals else np.nan for k in sent]
    )
    received1, processed1 = node_totals(client)

    def delta(after: float, before: float) -> int:  # -1: no /diagnostics totals (yet)
        return -1 if math.isnan(after - before) else int(after - before)

    return Run(sent, latency, duration, dict(client.diagnostics), delta(received1, received0),
               delta(processed1, processed0), float(np.mean(counts)) if counts else 0.0)


def losses(run: Run) -> str:
    """Where frames without a result went: lost before the node's callback, or replaced there."""
    sent = len(run.sent)
    if run.node_received < 0 or run.node_received > sent:  # totals missing or from another run
        return f"{sent - run.results} of {sent}"
    return (f"{sent - run.results} of {sent}: {sent - run.node_received} never reached the node, "
            f"{run.node_received - run.node_processed} replaced by a newer frame")


def timed_enroll(client: Client, name: str, rgb: np.ndarray) -> float:
    """Seconds from sending an ~/enroll request with `rgb` to its answer."""
    request = Enroll.Request(name=name, image=rgb_to_image(rgb), track_id=-1, overwrite=True)
    started = time.monotonic()
    response = client.call(request, timeout=120.0)
    elapsed = time.monotonic() - started
    if not response.success:
        raise RuntimeError(f"enrolling {name} failed: {response.message}")
    return elapsed


def enroll_photo_1mp() -> np.ndarray:
    """The astronaut photo scaled to 1024x1024 (1 MP; rgb8, 3 MB in an Image message)."""
    import cv2
    return cv2.resize(samples.photo("astronaut"), ENROLL_PHOTO_SIZE,
                      interpolation=cv2.INTER_LINEAR)


def wait_ready(client: Client, node: NodeProcess, frame: Image, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        node.check()
        if client.pub.get_subscription_count() and client.enroll.service_is_ready():
            key = client.publish(frame)
            time.sleep(0.3)
            with client.lock:
                if key in client.arrivals:
                    return time.monotonic() - started
        else:
            time.sleep(0.2)
    raise TimeoutError(f"{NODE} never answered within {timeout:g} s:\n{node.log_tail()}")


# --- report -------------------------------------------------------------------------------------

def pct(values: np.ndarray, q: float) -> float:
    values = values[~np.isnan(values)]
    return float(np.percentile(values, q)) if values.size else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def part_a(client: Client, seconds: float, frames: list[np.ndarray], msgs: list[Image]) -> None:
    total = int(seconds * RATE_HZ)
    print(
        f"\n(a) throughput and ROS overhead: one moving face, {total} frames at {RATE_HZ:g} Hz "
        f"({seconds:g} s)"
    )
    run = stream(client, msgs, total)
    core = CORE_TIMES[: len(run.latency_ms)]
    added = run.latency_ms - core  # per frame: node latency minus the core's time on that frame
    input_rate = len(run.sent) / run.duration_s
    processed_rate = run.results / run.duration_s
    rows = [
        ("input rate", f"{input_rate:.1f} Hz", ""),
        ("processed share", f"{100 * run.results / len(run.sent):.1f} %",
         f"{run.results} of {len(run.sent)} frames got a ~/faces result"),
        ("processed rate", f"{processed_rate:.1f} Hz", f"goal >= {GOAL_RATE_HZ:g} Hz  "
         f"{verdict(processed_rate >= GOAL_RATE_HZ)}"),
        ("no result", f"{100 * (1 - run.results / len(run.sent)):.1f} %", losses(run)),
        (
            "core time / frame",
            f"p50 {np.percentile(core, 50):.1f} ms  p95 {np.percentile(core, 95):.1f} ms",
            "StreamRecognizer.process, in-process, same frames",
        ),
        (
            "node latency",
            f"p50 {pct(run.latency_ms, 50):.1f} ms  p95 {pct(run.latency_ms, 95):.1f} ms",
            "FaceArray received - image stamp",
        ),
        (
            "added by ROS",
            f"p50 {pct(added, 50):.2f} ms  mean {np.nanmean(added):.2f} ms",
            f"goal <= {GOAL_ADDED_MS:g} ms (p50)  {verdict(pct(added, 50) <= GOAL_ADDED_MS)}",
        ),
        (
            "  of which Image->RGB",
            f"{CONVERSION_MS:.2f} ms",
            "conversion.image_to_rgb, bgr8 640x480",
        ),
    ]
    d = run.diagnostics
    if d:
        rows.append(
            (
                "node's /diagnostics",
                f"in {d.get('input_rate_hz', float('nan')):.1f} Hz, "
                f"processed {d.get('processed_rate_hz', float('nan')):.1f} Hz",
                f"convert {d.get('latency_convert_ms', float('nan')):.2f} ms, callback -> ~/faces "
                f"{d.get('latency_receive_to_publish_ms', float('nan')):.1f} ms (last window)",
            )
        )
    for name, value, note in rows:
        print(f"  {name:<22}{value:<34}{note}")


def part_b(client: Client, frames_total: int, cases: dict[int, list[Image]]) -> None:
    print(
        f"\n(b) end-to-end latency (image stamp -> FaceArray received), {frames_total} frames at "
        f"{RATE_HZ:g} Hz, {SIZE[0]}x{SIZE[1]}"
    )
    print(f"  {'faces':>5}  {'sent':>5}  {'results':>7}  {'faces/result':>12}  "
          f"{'p50 ms':>7}  {'p95 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  goal")
    notes = []
    for faces, msgs in cases.items():
        run = stream(client, msgs, frames_total)
        lat = run.latency_ms
        p95 = pct(lat, 95)
        goal = (
            f"p95 <= {GOAL_P95_MS:g} ms  {verdict(p95 <= GOAL_P95_MS)}"
            if faces == 1
            else "(no goal)"
        )
        print(
            f"  {faces:>5}  {len(run.sent):>5}  {run.results:>7}  {run.faces_seen:>12.2f}  "
            f"{pct(lat, 50):>7.1f}  {p95:>7.1f}  {pct(lat, 99):>7.1f}  {np.nanmax(lat):>7.1f}  "
            f"{goal}"
        )
        notes.append(f"  {faces} face{'s' if faces > 1 else ''}: no result for {losses(run)}; "
                     f"load average {os.getloadavg()[0]:.2f}")
    print("\n".join(notes))


CORE_TIMES = np.zeros(0)
CONVERSION_MS = 0.0


def main(argv: list[str] | None = None) -> int:
    global CORE_TIMES, CONVERSION_MS, SIZE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["a", "b", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of part (a) (default 10)")
    parser.add_argument("--frames", type=int, default=1000,
                        help="frames per case in part (b) (default 1000)")
    parser.add_argument("--transport", choices=["large_data", "default"], default="large_data",
                        help="Fast DDS builtin transports when FASTDDS_BUILTIN_TRANSPORTS is not "
                             "set and no --profile is given")
    parser.add_argument("--publisher", choices=sorted(PUBLISHER_QOS), default="best_effort",
                        help="reliability of the image publisher (default best_effort)")
    parser.add_argument("--size", default="640x480",
                        help="frame size WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--profile", type=Path,
                        help="Fast DDS XML profile for this process and the node")
    parser.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a parameter for the node (repeatable)")
    args = parser.parse_args(argv)
    try:
        SIZE = tuple(int(v) for v in args.size.lower().split("x"))  # type: ignore[assignment]
        assert len(SIZE) == 2 and min(SIZE) >= 64
    except (ValueError, AssertionError):
        parser.error(f"--size {args.size}: expected WIDTHxHEIGHT, e.g. 1280x720")
    if args.profile is not None:
        if not args.profile.is_file():
            parser.error(f"--profile {args.profile}: no such file")
        # Fast DDS 3 (these wheels, Kilted) reads FASTDDS_; 2.x (Humble, Jazzy) FASTRTPS_.
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(args.profile.resolve())
    elif "FASTDDS_BUILTIN_TRANSPORTS" not in os.environ and args.transport == "large_data":
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"

    # A private domain, so no other node on this machine sees the stream: ROS_DOMAIN_ID if set.
    domain = int(os.environ.get("ROS_DOMAIN_ID") or random.randint(1, 101))
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    load = os.getloadavg()
    print(f"face_recognition_node benchmark: {SIZE[0]}x{SIZE[1]} bgr8 at {RATE_HZ:g} Hz, default "
          f"config, gallery of {len(samples.PEOPLE)} people")
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / "
          f"{load[2]:.2f} (1/5/15 min) at start; ROS_DOMAIN_ID={domain}")
    transports = os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "(Fast DDS default)")
    print(f"RMW {os.environ.get('RMW_IMPLEMENTATION', 'default (rmw_fastrtps_cpp)')}, "
          f"FASTDDS_BUILTIN_TRANSPORTS={transports}, "
          f"profile {os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', '(none)')}")
    print(f"image publisher: {args.publisher}; "
          f"node parameters: {' '.join(args.node_param) or '(defaults)'}")

    walk = walking_frames(CYCLE)
    a_total = int(args.seconds * RATE_HZ)
    if args.part in ("a", "both"):
        print("measuring the core alone on the same frames ...", flush=True)
        CORE_TIMES = core_times(walk, a_total)
        CONVERSION_MS = conversion_ms(walk[0])
    walk_msgs = [rgb_to_image(f) for f in walk]

    context = Context()
    rclpy.init(args=[], context=context)  # not sys.argv: --node-param values look like remap rules
    with tempfile.TemporaryDirectory(prefix="bench_node_") as tmp:
        node = NodeProcess(Path(tmp), args.node_param)
        client = Client(context, PUBLISHER_QOS[args.publisher])
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(client)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        try:
            print(f"starting {NODE} (separate process) ...", flush=True)
            ready = wait_ready(client, node, walk_msgs[0])
            print(f"node ready after {ready:.1f} s (first frame answered)")
            for key, name in samples.PEOPLE.items():
                photo = samples.photo(key)
                elapsed = timed_enroll(client, name, photo)
                print(f"  ~/enroll {name} ({photo.shape[1]}x{photo.shape[0]}): {elapsed:.2f} s")
            # The same person again (overwrite), so the gallery keeps two people.
            elapsed = timed_enroll(client, samples.PEOPLE["astronaut"], enroll_photo_1mp())
            width, height = ENROLL_PHOTO_SIZE
            print(f"  ~/enroll of a 1 MP photo ({width}x{height} rgb8): {elapsed:.2f} s  "
                  f"goal < 1 s  {verdict(elapsed < 1.0)}")
            stream(client, walk_msgs, int(2 * RATE_HZ))  # warm-up, not reported
            if args.part in ("a", "both"):
                part_a(client, args.seconds, walk, walk_msgs)
            if args.part in ("b", "both"):
                del walk
                cases = {1: walk_msgs}
                cases[5] = [rgb_to_image(f) for f in crowd_frames(CYCLE, 5)]
                part_b(client, args.frames, cases)
            node.check()
        except (RuntimeError, TimeoutError) as exc:
            print(f"bench_node: error: {exc}", file=sys.stderr)
            return 1
        finally:
            executor.shutdown()
            client.destroy_node()
            rclpy.try_shutdown(context=context)
            node.stop()
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
