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

Frames go out like a camera's, --fps per second, stamped by that virtual camera's clock; a frame
is sent once the previous one's result is back (the node keeps only the newest frame, so one
sent earlier could replace one not yet processed), so every frame is processed and the story is
the same on any machine. The demo's own work stays off the node's path: the video is written by
a thread of its own, the sample photos are loaded before the stream starts, and the summary
gives the node's own figures from its /diagnostics. Printed: one line whenever who-is-where
changes, the node's ~/events, the enrolment calls, and that summary; written:
<out>/annotated.mp4 (the node's ~/image_annotated) and PNG snapshots of the moments people are
first named.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

from face_recog_interfaces.srv import Enroll, ListFaces

from ..io import samples
from ..types import UNKNOWN
from .conversion import rgb_to_image
from .demo_client import NAMESPACE, NODE, Client, SeenFace, wait_for
from .demo_recording import Recorder
from .demo_report import DemoReport, Enrolment, event_text, faces_text, summary
from .demo_story import EILEEN, GRACE, NAMES, SIZE, Script

__all__ = ["EILEEN", "GRACE", "LIVE_SAMPLES", "NAMES", "Script", "main", "parse_args"]

LIVE_SAMPLES = 3
MIN_FRAMES = 40
FRAME_TIMEOUT_S = 5.0
# Frames in the node at once. With two, a frame sent while the node still publishes the result of
# the one before the previous would replace the previous one, waiting unprocessed (measured: 3 of
# 300 dropped); one costs a transport round trip per frame, within a 30 fps camera's 33 ms.
IN_FLIGHT = 1


class Printer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def line(self, frame: int, text: str) -> None:
        print(f"{time.monotonic() - self.start:6.1f}s  frame {frame:4d}  {text}", flush=True)


class Demo:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.script = Script.for_frames(options.frames)
        self.report = DemoReport(self.script, options.fps)
        self.printer = Printer()
        self.recorder: Recorder | None = None
        self.live: Enrolment | None = None
        self.last_shown: set[tuple[int, str]] | None = None
        self.last_faces: list[SeenFace] = []
        self._missed = 0
        self._reports_before = 0  # the node's /diagnostics reports before the stream

    def run(self) -> DemoReport:
        from .node import EXECUTOR_THREADS, FaceRecognitionNode, spin

        context = Context()
        rclpy.init(context=context)
        executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS + 1, context=context)
        node = client = None
        with tempfile.TemporaryDirectory(prefix="face_recog_demo_") as tmp:
            try:
                print(
                    f"Starting {NODE} in /{NAMESPACE} (temporary gallery; loading models) ...",
                    flush=True,
                )
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
                    node = FaceRecognitionNode(
                        context=context,
                        namespace=NAMESPACE,
                        parameter_overrides=[
                            Parameter(name, value=value) for name, value in overrides.items()
                        ],
                    )
                except Exception as exc:
                    raise RuntimeError(f"{NODE} could not start: {exc}") from exc
                client = Client(context, want_annotated=not self.options.no_video)
                executor.add_node(client)
                threading.Thread(target=spin, args=(node, executor), daemon=True).start()
                self._stream(client)
                self.report.node = client.node_figures(
                    len(self.report.latencies_ms), self._reports_before
                )
                self._list_gallery(client)
            except Exception as exc:  # the node failed to start or broke: say so, exit non-zero
                self.report.error = str(exc) if isinstance(exc, (RuntimeError, TimeoutError)) \
                    else f"{type(exc).__name__}: {exc}"
            finally:
                self._close_recorder()
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
        self.script.frame(0)  # loads the sample photos now, not in the middle of the stream
        while time.monotonic() - started < self.options.ready_timeout:
            if client.image_pub.get_subscription_count() and client.enroll.service_is_ready():
                key, _ = client.send(empty, time.time())
                if client.result(key, 1.0) is not None:
                    client.take_events()
                    # The stream's figures start with the node's next report: the first frames
                    # (models warming up) are not part of them.
                    client.next_diagnostics(timeout=5.0)
                    self._reports_before = client.reports()
                    print(
                        f"{NODE} is ready ({time.monotonic() - started:.1f} s). Streaming "
                        f"{self.script.frames} frames {SIZE[0]}x{SIZE[1]} at {self.options.fps:g} "
                        f"frames/s to /{NAMESPACE}/image\n",
                        flush=True,
                    )
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
        script, fps = self.script, self.options.fps
        if not self.options.no_video:
            self.recorder = Recorder(Path(self.options.out), fps, set(NAMES.values()),
                                     client.annotated_rgb, script.frame)
        sent: list[tuple[tuple[int, int], float]] = []  # (stamp key, wall time sent) per frame
        self.printer = Printer()
        paused = 0.0
        t_start = time.monotonic()
        # The virtual camera's clock: frame i was captured i / fps after the first, whenever it
        # is sent, so the tracker sees the same motion on any machine.
        t0 = time.time()
        for i in range(script.frames):
            self._handle_results(client, sent, upto=i - IN_FLIGHT)
            if i == script.enroll_photo_at:  # the story waits here for the empty room's enrolment
                self._handle_results(client, sent, upto=i - 1)
                before = time.monotonic()
                self._enroll_photo(client, i)
                paused += time.monotonic() - before
            self._follow_live_enrolment(client, i)
            time.sleep(max(0.0, t_start + paused + i / fps - time.monotonic()))
            sent.append(client.send(script.frame(i), t0 + i / fps))
        self._handle_results(client, sent, upto=script.frames - 1)
        self.report.streamed_s = time.monotonic() - t_start - paused
        if self.live is not None and self.live.call is not None:  # the stream ended first:
            wait_for(self.live.call, 5.0)  # last chance for the answer
            self._follow_live_enrolment(client, script.frames)

    def _handle_results(self, client: Client, sent: list, upto: int) -> None:
        """Take the results of the frames up to ``upto`` in order: print, record, report."""
        for index in range(len(self.report.seen) + self._missed, upto + 1):
            key, sent_at = sent[index]
            got = client.result(key, FRAME_TIMEOUT_S, later_than=sent[index + 1:])
            if got is None:
                self._missed += 1
                self.printer.line(index, "no result (frame lost in transport or node stalled)")
                if self._missed > max(3, self.script.frames // 10):
                    raise TimeoutError(
                        f"{NODE} stopped answering ({self._missed} frames without a result)"
                    )
                continue
            received, faces = got
            self.report.latencies_ms.append((received - sent_at) * 1e3)
            self.report.seen.append((index, faces))
            shown = {(f.track_id, f.label) for f in faces}
            if shown != self.last_shown:
                self.printer.line(index, faces_text(faces))
                self.last_shown = shown
            for event in client.take_events():
                self.report.events.append((index, event))
                self.printer.line(index, event_text(event))
            self.last_faces = faces
            if self.recorder is not None:
                self.recorder.add(index, key, {f.label for f in faces})

    def _enroll_photo(self, client: Client, i: int) -> None:
        name, photo = NAMES[EILEEN], samples.photo(EILEEN)
        enrolment = Enrolment(name, i, "photo")
        self.report.enrolments.append(enrolment)
        self.printer.line(i, f"enroll: {name} from a photo ({photo.shape[1]}x{photo.shape[0]}) "
                          f"-> /{NAMESPACE}/{NODE}/enroll")
        request = Enroll.Request(
            name=name, image=rgb_to_image(np.ascontiguousarray(photo)), track_id=-1, overwrite=True
        )
        enrolment.finish(
            wait_for(client.enroll.call_async(request), 30.0), i, "no answer within 30 s"
        )
        self.printer.line(
            i, f"enroll: {'done' if enrolment.success else 'FAILED'}: {enrolment.message}"
        )

    def _follow_live_enrolment(self, client: Client, i: int) -> None:
        """Start Grace's live enrolment once she is in view unknown; report it when it answers."""
        live = self.live
        if live is None and i >= self.script.enroll_live_at:
            unknown = [f for f in self.last_faces if f.label == UNKNOWN and f.track_id >= 0]
            if not unknown and i < self.script.enroll_live_at + max(5, self.script.frames // 10):
                return  # not in view yet
            # The unknown face nearest to Grace's side; -1 (the largest face) if none is unknown.
            track = max(unknown, key=lambda f: f.center_x).track_id if unknown else -1
            self.live = Enrolment(NAMES[GRACE], i, "live")
            self.report.enrolments.append(self.live)
            self.printer.line(
                i,
                f"enroll: the unknown face #{track} as {NAMES[GRACE]} from the live "
                f"stream, {LIVE_SAMPLES} samples -> /{NAMESPACE}/{NODE}/enroll (empty image)",
            )
            request = Enroll.Request(name=NAMES[GRACE], num_samples=LIVE_SAMPLES, track_id=track,
                                     overwrite=True)
            self.live.call = client.enroll.call_async(request)
        elif (
            live is not None
            and live.call is not None
            and (live.call.done() or i >= self.script.frames)
        ):
            live.finish(live.call.result() if live.call.done() else None, i,
                        "no answer before the stream ended")
            self.printer.line(i, f"enroll: {'done' if live.success else 'FAILED'}: {live.message}")

    def _list_gallery(self, client: Client) -> None:
        response = wait_for(client.list_faces.call_async(ListFaces.Request()), 10.0)
        if response is not None and response.success:
            self.report.gallery = dict(
                zip(response.names, (int(n) for n in response.sample_counts))
            )

    def _close_recorder(self) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.close()
        except (OSError, ValueError) as exc:
            self.report.error = self.report.error or str(exc)
        self.report.video, self.report.snapshots = self.recorder.video, self.recorder.snapshots


# --- command line---------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="face_recog_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames",
        type=int,
        default=300,
        help=f"frames in the story (>= {MIN_FRAMES}; default 300)",
    )
    parser.add_argument(
        "--fps", type=float, default=30.0, help="frames per second to send (default 30)"
    )
    parser.add_argument(
        "--out", default="demo_output", help="folder for annotated.mp4 and snapshots"
    )
    parser.add_argument("--no-video", action="store_true", help="write no video or snapshots")
    parser.add_argument("--ready-timeout", type=float, default=60.0, metavar="S",
                        help="seconds to wait for the node's first result (default 60)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a node parameter, e.g. --param detector.model_range=full (repeatable)",
    )
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
    if report.seen:
        print(summary(report), flush=True)
    if report.error:
        print(f"\nface_recog_demo: error: {report.error}", file=sys.stderr)
    elif not report.ok:
        print(
            "\nface_recog_demo: the story did not complete (see the enrolment lines above)",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
