"""face_recog_demo: see face_recognition_node work in under two minutes, with no camera.

    ./setup.sh demo                      # or: face_recog_demo [--frames 300] [--out demo_output]

The real node runs in this process (its own executor threads) with a temporary gallery. A
built-in stream of 640x480 frames made from public-domain photos (Eileen Collins and Grace
Hopper, moved, scaled and re-lit over a blurred backdrop) goes to its `image` topic, and the
story is told through its real interface:

1. an empty room; Eileen Collins is enrolled through ~/enroll with a photo in the request;
2. she walks in and is named as soon as her track is confirmed;
3. Grace Hopper walks in, unknown, and is enrolled from the live stream (~/enroll with an
   empty image and her track id): the node collects samples of her face as she moves, and
   her track gets her name;
4. Eileen leaves and comes back (a new track, named again), Grace leaves, then Eileen; the
   node reports each track as left once it has been gone for a while.

Frames are stamped by a virtual 30 fps camera clock, and each waits for its result (~/faces)
before the next is sent (at most --fps per second), so the story is the same on any machine. Printed: one line whenever who-is-where changes, the
node's ~/events, the enrolment calls, and a summary; written: <out>/annotated.mp4 (the node's
~/image_annotated) and PNG snapshots of the moments people are first named.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: see ros/node.py

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import yaml  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from face_recog_interfaces.msg import FaceArray, FaceEvent  # noqa: E402
from face_recog_interfaces.srv import Enroll, ListFaces  # noqa: E402

from .. import samples  # noqa: E402
from ..types import UNKNOWN  # noqa: E402
from .conversion import image_to_rgb, rgb_to_image  # noqa: E402

NAMESPACE = "face_recog_demo"
NODE = "face_recognition_node"
SIZE = (640, 480)
EILEEN, GRACE = "astronaut", "grace_hopper"  # keys of samples.HEAD_BOXES
NAMES = {EILEEN: "eileen_collins", GRACE: "grace_hopper"}
LIVE_SAMPLES = 3
MIN_FRAMES = 40
FRAME_TIMEOUT_S = 5.0
EVENT_NAMES = {FaceEvent.APPEARED: "appeared", FaceEvent.IDENTIFIED: "identified",
               FaceEvent.LABEL_CHANGED: "label changed", FaceEvent.LEFT: "left"}
IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1)


# --- the story --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Script:
    """When who is in the room and when the demo enrols whom, for a stream of `frames` frames."""

    frames: int
    present: dict[str, list[range]]  # person key -> frame ranges in which the head is (partly) in view
    enroll_photo_at: int  # Eileen enrolled from her photo before this frame is sent (empty room)
    enroll_live_at: int  # Grace's live enrolment starts before this frame is sent

    @classmethod
    def for_frames(cls, frames: int) -> Script:
        at = lambda fraction: round(fraction * frames)  # noqa: E731
        return cls(frames, {EILEEN: [range(at(0.08), at(0.6)), range(at(0.72), at(0.9))],
                            GRACE: [range(at(0.3), at(0.85))]},
                   enroll_photo_at=max(1, at(0.04)), enroll_live_at=at(0.45))

    def in_view(self, person: str, i: int) -> bool:
        return any(i in r for r in self.present[person])

    def where(self, person: str, i: int) -> tuple[float, float, int] | None:
        """(centre x, centre y, head height) at frame i: walks in from the side, wanders, walks out."""
        span = next((r for r in self.present[person] if i in r), None)
        if span is None:
            return None
        ramp = max(3, min(20, len(span) // 5))  # frames to walk in (and out)
        side, home, edge = (-1, 190.0, -60.0) if person == EILEEN else (1, 470.0, SIZE[0] + 60.0)
        t = i - span.start
        x = home + side * 45 * math.sin(2 * math.pi * t / 150)
        if t < ramp:
            x = edge + (x - edge) * t / ramp
        elif span.stop - 1 - i < ramp:
            x = edge + (x - edge) * (span.stop - 1 - i) / ramp
        # Heads ~100 px tall as detected: a robot's camera at a few metres. (One enrolment photo
        # is matched less surely on much smaller faces.)
        height = (220 if person == EILEEN else 190) + int(15 * math.sin(i / 23 + (person == GRACE)))
        return x, 230 + 12 * math.sin(i / 17), height

    def frame(self, i: int) -> np.ndarray:
        rgb = samples.background(SIZE).copy()
        for person in (EILEEN, GRACE):
            where = self.where(person, i)
            if where is not None:
                x, y, height = where
                samples.place(rgb, person, (x, y), height, gain=1.0 + 0.15 * math.sin(i / 13 + 2 * (person == GRACE)))
        return rgb


# --- results ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeenFace:
    track_id: int
    label: str
    similarity: float
    center_x: float


@dataclass
class FrameResult:
    index: int
    faces: list[SeenFace]
    latency_ms: float  # image sent -> FaceArray received


@dataclass
class Enrolment:
    name: str
    frame: int  # sent before this frame
    how: str  # "photo" or "live"
    success: bool = False
    message: str = ""
    done_frame: int = -1


@dataclass
class DemoReport:
    """What happened; main() prints it, the tests check it."""

    script: Script
    results: list[FrameResult] = field(default_factory=list)
    events: list[tuple[int, FaceEvent]] = field(default_factory=list)  # (frame index, event)
    enrolments: list[Enrolment] = field(default_factory=list)
    gallery: dict[str, int] = field(default_factory=dict)  # ~/list_faces at the end
    duration_s: float = 0.0
    video: Path | None = None
    snapshots: list[Path] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return (not self.error and len(self.enrolments) == 2 and all(e.success for e in self.enrolments)
                and bool(self.results))


def stamp_key(stamp) -> tuple[int, int]:
    return stamp.sec, stamp.nanosec


class Client(Node):
    """The demo's side of the graph: publishes frames, collects results, calls the services."""

    def __init__(self, context: Context, *, want_annotated: bool) -> None:
        super().__init__("face_recog_demo_client", namespace=NAMESPACE, context=context)
        self.image_pub = self.create_publisher(Image, "image", IMAGE_QOS)
        self.enroll = self.create_client(Enroll, f"{NODE}/enroll")
        self.list_faces = self.create_client(ListFaces, f"{NODE}/list_faces")
        self._changed = threading.Condition()
        self.faces: dict[tuple[int, int], tuple[float, FaceArray]] = {}  # stamp -> (received, msg)
        self.annotated: dict[tuple[int, int], Image] = {}
        self.events: list[FaceEvent] = []
        self.create_subscription(FaceArray, f"{NODE}/faces", self._on_faces, 50)
        self.create_subscription(FaceEvent, f"{NODE}/events", self._on_event, 50)
        if want_annotated:
            self.create_subscription(Image, f"{NODE}/image_annotated", self._on_annotated, 10)

    def _on_faces(self, msg: FaceArray) -> None:
        with self._changed:
            self.faces[stamp_key(msg.header.stamp)] = (time.time(), msg)
            self._changed.notify_all()

    def _on_event(self, msg: FaceEvent) -> None:
        with self._changed:
            self.events.append(msg)

    def _on_annotated(self, msg: Image) -> None:
        with self._changed:
            self.annotated[stamp_key(msg.header.stamp)] = msg
            self._changed.notify_all()

    def send(self, rgb: np.ndarray, stamp: float) -> tuple[tuple[int, int], float]:
        """Publish a frame with this capture stamp; returns its key and the wall time it was sent."""
        msg = rgb_to_image(rgb)
        msg.header.frame_id = "demo_camera_optical_frame"
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(round((stamp % 1) * 1e9)) % 10**9
        sent = time.time()
        self.image_pub.publish(msg)
        return stamp_key(msg.header.stamp), sent

    def wait_result(self, key: tuple[int, int], timeout: float, annotated: bool
                    ) -> tuple[float, FaceArray, Image | None] | None:
        """The FaceArray (and annotated image) for the frame with this stamp, or None on timeout."""
        def ready() -> bool:
            return key in self.faces and (not annotated or key in self.annotated)
        with self._changed:
            self._changed.wait_for(ready, timeout)
            if key not in self.faces:
                return None
            received, msg = self.faces.pop(key)
            return received, msg, self.annotated.pop(key, None)

    def take_events(self) -> list[FaceEvent]:
        with self._changed:
            events, self.events = self.events, []
            return events


# --- running it -----------------------------------------------------------------------------------

class Printer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def line(self, frame: int, text: str) -> None:
        print(f"{time.monotonic() - self.start:6.1f}s  frame {frame:4d}  {text}", flush=True)


def faces_text(faces: list[SeenFace]) -> str:
    if not faces:
        return "faces: nobody"
    parts = []
    for f in sorted(faces, key=lambda f: f.center_x):
        part = f"#{f.track_id} {f.label}"
        if f.label != UNKNOWN and f.similarity:
            part += f" {f.similarity:.2f}"
        parts.append(part)
    return "faces: " + "   ".join(parts)


def event_text(event: FaceEvent) -> str:
    text = f"event: #{event.track_id} {EVENT_NAMES.get(event.type, str(event.type))} {event.label}"
    if event.type == FaceEvent.LABEL_CHANGED:
        text += f" (was {event.previous_label})"
    if event.type in (FaceEvent.IDENTIFIED, FaceEvent.LABEL_CHANGED) and event.similarity:
        text += f" {event.similarity:.2f}"
    return text


def seen_faces(msg: FaceArray) -> list[SeenFace]:
    return [SeenFace(f.track_id, f.label, f.similarity, f.x_min + f.width / 2) for f in msg.faces]


class Demo:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.script = Script.for_frames(options.frames)
        self.report = DemoReport(self.script)
        self.video = not options.no_video
        self.out = Path(options.out)
        self.printer = Printer()
        self.writer: cv2.VideoWriter | None = None
        self.snapshot_names: set[str] = set()

    def run(self) -> DemoReport:
        from .node import EXECUTOR_THREADS, FaceRecognitionNode, spin

        context = Context()
        rclpy.init(context=context)
        executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS + 1, context=context)
        node = client = None
        with tempfile.TemporaryDirectory(prefix="face_recog_demo_") as tmp:
            try:
                print(f"Starting {NODE} in /{NAMESPACE} (temporary gallery; loading models) ...", flush=True)
                overrides = {
                    "gallery.path": str(Path(tmp) / "gallery.npz"),
                    "process_every_n": 1,
                    "publish_annotated": True,
                    # The demo's frames are copies of one photo per person, so successive
                    # samples are more alike than a live camera's (with landmark alignment
                    # they embed at 0.993-0.999): relax the duplicate filter.
                    "tracking.enroll_max_similarity": 0.998,
                    **self.options.param,
                }
                try:
                    node = FaceRecognitionNode(context=context, namespace=NAMESPACE, parameter_overrides=[
                        Parameter(name, value=value) for name, value in overrides.items()])
                except Exception as exc:
                    raise RuntimeError(f"{NODE} could not start: {exc}") from exc
                client = Client(context, want_annotated=self.video)
                executor.add_node(client)
                spinner = threading.Thread(target=spin, args=(node, executor), daemon=True)
                spinner.start()
                self._stream(client)
                self._list_gallery(client)
            except Exception as exc:  # the node failed to start or broke: say so, exit non-zero
                self.report.error = str(exc) if isinstance(exc, (RuntimeError, TimeoutError)) \
                    else f"{type(exc).__name__}: {exc}"
            finally:
                if self.writer is not None:
                    self.writer.release()
                executor.shutdown(timeout_sec=5.0)
                for n in (client, node):
                    if n is not None:
                        n.destroy_node()
                rclpy.try_shutdown(context=context)
        return self.report

    def _wait_ready(self, client: Client) -> None:
        """Send empty-room frames until one comes back: the node is loaded and connected."""
        started = time.monotonic()
        empty = samples.background(SIZE).copy()
        while time.monotonic() - started < self.options.ready_timeout:
            if client.image_pub.get_subscription_count() and client.enroll.service_is_ready():
                key, _ = client.send(empty, time.time())
                if client.wait_result(key, 1.0, annotated=self.video) is not None:
                    client.take_events()
                    print(f"{NODE} is ready ({time.monotonic() - started:.1f} s). Streaming "
                          f"{self.script.frames} frames {SIZE[0]}x{SIZE[1]} to /{NAMESPACE}/image\n", flush=True)
                    return
            else:
                time.sleep(0.1)
        if not client.image_pub.get_subscription_count():
            why = f"nothing subscribes /{NAMESPACE}/image"
        elif not client.enroll.service_is_ready():
            why = f"/{NAMESPACE}/{NODE}/enroll is not available"
        else:
            why = f"no result on /{NAMESPACE}/{NODE}/faces for the frames sent"
        raise TimeoutError(f"{NODE} never answered within {self.options.ready_timeout:g} s: {why} "
                           "(see its log above)")

    def _stream(self, client: Client) -> None:
        self._wait_ready(client)
        script, period = self.script, 1.0 / self.options.fps
        live: tuple[Enrolment, object] | None = None
        last_faces: list[SeenFace] = []
        last_shown: set[tuple[int, str]] | None = None
        missed = 0
        self.printer = Printer()
        t_start = time.monotonic()
        # The virtual camera's clock: frame i was captured i / fps after the first, however long
        # the node or this machine takes, so the tracker sees the same motion on any machine.
        t0 = time.time()
        for i in range(script.frames):
            if i == script.enroll_photo_at:
                self._enroll_photo(client, i)
            if live is None and i >= script.enroll_live_at:
                live = self._start_live_enrolment(client, i, last_faces)
            if live is not None and live[1] is not None and live[1].done():
                self._finish_live_enrolment(live, i)
                live = (live[0], None)
            next_send = t_start + i * period
            time.sleep(max(0.0, next_send - time.monotonic()))
            key, sent = client.send(script.frame(i), t0 + i / self.options.fps)
            got = client.wait_result(key, FRAME_TIMEOUT_S, annotated=self.video)
            if got is None:
                missed += 1
                self.printer.line(i, "no result within "
                                  f"{FRAME_TIMEOUT_S:.0f} s (frame lost or node stalled)")
                if missed > max(3, script.frames // 10):
                    raise TimeoutError(f"{NODE} stopped answering ({missed} frames without a result)")
                continue
            received, msg, annotated = got
            faces = seen_faces(msg)
            self.report.results.append(FrameResult(i, faces, (received - sent) * 1e3))
            shown = {(f.track_id, f.label) for f in faces}
            if shown != last_shown:
                self.printer.line(i, faces_text(faces))
                last_shown = shown
            events = client.take_events()
            for event in events:
                self.report.events.append((i, event))
                self.printer.line(i, event_text(event))
            last_faces = faces
            if annotated is not None:
                self._record(i, image_to_rgb(annotated), faces, events)
        self.report.duration_s = time.monotonic() - t_start
        if live is not None and live[1] is not None:  # the stream ended first: last chance
            future = live[1]
            deadline = time.monotonic() + 5.0
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            self._finish_live_enrolment(live, script.frames)

    def _enroll_photo(self, client: Client, i: int) -> None:
        name = NAMES[EILEEN]
        photo = samples.photo(EILEEN)
        enrolment = Enrolment(name, i, "photo")
        self.report.enrolments.append(enrolment)
        self.printer.line(i, f"enroll: {name} from a photo ({photo.shape[1]}x{photo.shape[0]}) "
                          f"-> /{NAMESPACE}/{NODE}/enroll")
        future = client.enroll.call_async(Enroll.Request(name=name, image=rgb_to_image(np.ascontiguousarray(photo)),
                                                         track_id=-1, overwrite=True))
        deadline = time.monotonic() + 30.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        response = future.result() if future.done() else None
        enrolment.done_frame = i
        enrolment.success = bool(response and response.success)
        enrolment.message = response.message if response else "no answer within 30 s"
        self.printer.line(i, f"enroll: {'done' if enrolment.success else 'FAILED'}: {enrolment.message}")

    def _start_live_enrolment(self, client: Client, i: int, faces: list[SeenFace]):
        """Enrol the unknown face in view (Grace) from the stream; None: not in view yet, try later."""
        unknown = [f for f in faces if f.label == UNKNOWN and f.track_id >= 0]
        if not unknown and i < self.script.enroll_live_at + max(5, self.script.frames // 10):
            return None
        # The unknown face nearest to Grace's side; -1 (the largest face) if none is unknown.
        track = max(unknown, key=lambda f: f.center_x).track_id if unknown else -1
        name = NAMES[GRACE]
        enrolment = Enrolment(name, i, "live")
        self.report.enrolments.append(enrolment)
        self.printer.line(i, f"enroll: the unknown face #{track} as {name} from the live stream, "
                          f"{LIVE_SAMPLES} samples -> /{NAMESPACE}/{NODE}/enroll (empty image)")
        request = Enroll.Request(name=name, num_samples=LIVE_SAMPLES, track_id=track, overwrite=True)
        return enrolment, client.enroll.call_async(request)

    def _finish_live_enrolment(self, live, i: int) -> None:
        enrolment, future = live
        response = future.result() if future.done() else None
        enrolment.done_frame = i
        enrolment.success = bool(response and response.success)
        enrolment.message = response.message if response else "no answer before the stream ended"
        self.printer.line(i, f"enroll: {'done' if enrolment.success else 'FAILED'}: {enrolment.message}")

    def _list_gallery(self, client: Client) -> None:
        future = client.list_faces.call_async(ListFaces.Request())
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if future.done() and future.result().success:
            result = future.result()
            self.report.gallery = dict(zip(result.names, (int(n) for n in result.sample_counts)))

    def _record(self, i: int, rgb: np.ndarray, faces: list[SeenFace], events: list[FaceEvent]) -> None:
        """Append to the video; snapshot the first frame each person is named and both together."""
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.writer is None:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / "annotated.mp4"
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.options.fps,
                                          (rgb.shape[1], rgb.shape[0]))
            if not self.writer.isOpened():
                raise OSError(f"cannot write {path} (OpenCV has no mp4v encoder?); use --no-video")
            self.report.video = path
        self.writer.write(bgr)
        names = {f.label for f in faces if f.label in NAMES.values()}
        moments = sorted(n for n in names if n not in self.snapshot_names)
        if len(names) == 2 and "both" not in self.snapshot_names:
            self.snapshot_names.add("both")
            moments = moments or ["both"]  # a first naming with both in view shows both already
        for moment in moments:
            self.snapshot_names.add(moment)
            path = self.out / f"frame_{i:04d}_{moment}.png"
            cv2.imwrite(str(path), bgr)
            self.report.snapshots.append(path)


# --- summary and command line ---------------------------------------------------------------------

def summary(report: DemoReport, options: argparse.Namespace) -> str:
    lines = ["", "Summary"]
    results = report.results
    lines.append(f"  frames sent      {report.script.frames} ({SIZE[0]}x{SIZE[1]}, at most {options.fps:g} fps, "
                 "each waits for its result)")
    if results and report.duration_s > 0:
        latency = np.array([r.latency_ms for r in results])
        lines.append(f"  results          {len(results)} FaceArray messages in {report.duration_s:.1f} s: "
                     f"{len(results) / report.duration_s:.1f} frames/s processed")
        lines.append(f"  latency          image sent -> ~/faces received: p50 {np.percentile(latency, 50):.1f} ms, "
                     f"p95 {np.percentile(latency, 95):.1f} ms (this machine, demo and node sharing it)")
    tracks: dict[str, set[int]] = {}
    for r in results:
        for f in r.faces:
            tracks.setdefault(f.label, set()).add(f.track_id)
    seen = ", ".join(f"{label} (track{'s' if len(ids) > 1 else ''} {', '.join(f'#{t}' for t in sorted(ids))})"
                     for label, ids in sorted(tracks.items()))
    lines.append(f"  who was seen     {seen or 'nobody'}")
    counts = {name: sum(1 for _, e in report.events if EVENT_NAMES.get(e.type) == name)
              for name in EVENT_NAMES.values()}
    lines.append("  events           " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    for e in report.enrolments:
        lines.append(f"  enrolment        {e.name} ({e.how}, frame {e.frame}): "
                     f"{'ok' if e.success else 'FAILED'}: {e.message}")
    if report.gallery:
        lines.append("  gallery          " + ", ".join(f"{n}: {k} samples" for n, k in report.gallery.items())
                     + " (~/list_faces)")
    if report.video:
        lines.append(f"  video            {report.video} (open it with any player)")
    if report.snapshots:
        lines.append("  snapshots        " + ", ".join(str(p) for p in report.snapshots))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="face_recog_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help=f"frames in the story (>= {MIN_FRAMES}; default 300)")
    parser.add_argument("--fps", type=float, default=30.0, help="most frames per second to send (default 30)")
    parser.add_argument("--out", default="demo_output", help="folder for annotated.mp4 and snapshots")
    parser.add_argument("--no-video", action="store_true", help="write no video or snapshots")
    parser.add_argument("--ready-timeout", type=float, default=60.0, metavar="S",
                        help="seconds to wait for the node's first result (default 60)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a node parameter, e.g. --param detector.model_range=full (repeatable)")
    options = parser.parse_args(argv)
    params = {}
    for item in options.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--param takes NAME=VALUE, got {item!r}")
        params[name.strip()] = yaml.safe_load(value)  # 2 -> int, 0.5 -> float, true -> bool
    options.param = params
    if options.frames < MIN_FRAMES:
        parser.error(f"--frames must be at least {MIN_FRAMES} to tell the story")
    if options.fps <= 0:
        parser.error("--fps must be positive")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    report = Demo(options).run()
    if report.results:
        print(summary(report, options), flush=True)
    if report.error:
        print(f"\nface_recog_demo: error: {report.error}", file=sys.stderr)
    elif not report.ok:
        print("\nface_recog_demo: the story did not complete (see the enrolment lines above)", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
