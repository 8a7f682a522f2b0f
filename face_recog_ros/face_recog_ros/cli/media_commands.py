"""`face-recog` subcommands for recorded media: videos and bags.

Parsing and printing only; the work is in io/ (video, bag), offline/ (labelling, screen_time)
and the stream (live enrolment, strangers). Registered by app.build_parser.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ..core.recognizer import FaceRecognizer
from ..tracking.stream import StreamRecognizer
from ..tracking.strangers import is_cluster_label
from .common import Command, check_writable, make_recognizer


def warn_if_empty(recognizer: FaceRecognizer) -> None:
    if not recognizer.gallery.names():
        print(
            "warning: the gallery is empty, so every face is labelled unknown (enrol people "
            "first, "
            "or pass --cluster-unknowns to tell strangers apart)",
            file=sys.stderr,
        )


def stream_for(recognizer: FaceRecognizer, cluster_unknowns: bool) -> StreamRecognizer:
    config = recognizer.config.tracking
    return StreamRecognizer(recognizer, dataclasses.replace(config, cluster_unknowns=True)
                            if cluster_unknowns else config)


def print_label_summary(out: str, summary, note: str, detections: str | None) -> None:
    print(
        f"wrote {out}: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} "
        "frame/s); "
        f"{note}"
    )
    if detections:
        print(f"wrote {detections}")
    for label, frames in summary.frames_by_label.most_common():
        tracks = ", ".join(f"#{t}" for t in sorted(summary.tracks_by_label[label]))
        print(f"  {label:<28} {frames:>6} frames  tracks {tracks}")


def label_recording(args: argparse.Namespace, source, sink, note: str | None) -> int:
    """label-video and from-bag: label every frame into ``sink`` (and the detections file), then
    enrol the strangers named with --enroll-unknown, as the node's ~/rename of unknown_<n> does."""
    from ..io.video import Progress
    from ..offline.labelling import label_to_files
    recognizer = make_recognizer(args)
    stream = stream_for(recognizer, args.cluster_unknowns or bool(args.enroll_unknown))
    if not args.enroll_unknown:
        warn_if_empty(recognizer)
    progress = Progress(source.frame_count, args.command, enabled=not args.no_progress)
    summary, audio = label_to_files(stream, source, sink, args.detections, progress)
    print_label_summary(args.output, summary, note or audio, args.detections)
    for cluster, name in args.enroll_unknown:
        result = stream.promote_unknown(cluster, name, merge=args.merge)
        print(
            f"enrolled {cluster} as {result.name}: {result.added} sample(s) added, {result.total} "
            "in total"
        )
    return 0


def cmd_label_video(args: argparse.Namespace) -> int:
    from ..io.video import VideoSink, VideoSource
    check_writable(args.detections)
    source = VideoSource(args.input)
    sink = VideoSink(args.output, source.fps, source.size, audio_from=args.input)
    return label_recording(args, source, sink, None)


def cmd_from_bag(args: argparse.Namespace) -> int:
    from ..io.bag import BagSource
    from ..io.video import VideoSink
    check_writable(args.detections)
    source = BagSource(args.bag, args.topic)
    sink = VideoSink(args.output, source.fps, source.size)
    return label_recording(args, source, sink, f"{source.fps:.1f} fps from the message stamps")


def cmd_enroll_video(args: argparse.Namespace) -> int:
    """Live enrolment, as the node's ~/enroll with an empty image does, from a recorded clip."""
    from ..io.video import VideoSource
    from ..tracking.enrolment import ACTIVE_STATES, EnrollState
    source = VideoSource(args.video)
    stream = StreamRecognizer(make_recognizer(args))
    stream.start_enrollment(args.name, args.samples, overwrite=args.overwrite)
    for frame in source:
        stream.process(frame.rgb, frame.stamp)
        if stream.enrollment_status().state not in ACTIVE_STATES:
            break
    status = stream.cancel_enrollment("the video ended first; nothing was enrolled")
    print(status.text(), file=sys.stdout if status.state == EnrollState.DONE else sys.stderr)
    return 0 if status.state == EnrollState.DONE else 1


def stranger_name(text: str) -> tuple[str, str]:
    """--enroll-unknown's value: unknown_<n>=NAME."""
    cluster, sep, name = text.partition("=")
    if not sep or not is_cluster_label(cluster.strip()) or not name.strip():
        raise argparse.ArgumentTypeError(f"expected unknown_<n>=NAME, got {text!r}")
    return cluster.strip(), name.strip()


def cmd_screen_time(args: argparse.Namespace) -> int:
    from ..offline.labelling import recognize
    from ..offline.screen_time import (
        ScreenTimeCounter,
        bar_chart,
        clock,
        format_table,
        screen_time_tracking,
    )
    from ..io.video import Progress, VideoSource
    check_writable(args.chart)
    source = VideoSource(args.input)
    recognizer = make_recognizer(args)
    stream = StreamRecognizer(recognizer, screen_time_tracking(recognizer.config.tracking))
    counter = ScreenTimeCounter(source.frame_period, merge_gap=args.merge_gap)
    progress = Progress(source.frame_count, "screen-time", enabled=not args.no_progress)
    for frame, result in recognize(stream, source, progress):
        counter.add(frame, result.faces)
    rows = counter.result()
    length = counter.frames * source.frame_period
    if args.json:
        people = [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(r).items()}
            for r in rows
        ]
        print(
            json.dumps(
                {"video": args.input, "seconds": round(length, 3), "people": people}, indent=2
            )
        )
    else:
        print(f"{args.input}: {clock(length)} ({counter.frames} frames)")
        print(format_table(rows) if rows else "no faces seen")
    if args.chart:
        bar_chart(rows, args.chart, f"screen time in {Path(args.input).name}")
        print(f"wrote {args.chart}", file=sys.stderr if args.json else sys.stdout)
    return 0


def add_media_commands(command: Command) -> None:
    """Register the commands for videos and bags with app.build_parser's `command` helper."""
    def no_progress(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def labelling(p: argparse.ArgumentParser) -> None:
        p.add_argument("--detections", metavar="FILE", help="also write every face of every frame "
                       "(frame, time, track_id, label, similarity, box) to FILE.csv or FILE.json")
        p.add_argument("--cluster-unknowns", action="store_true",
                       help="label strangers unknown_1, unknown_2, ... instead of unknown")
        p.add_argument(
            "--enroll-unknown",
            type=stranger_name,
            action="append",
            default=[],
            metavar="unknown_N=NAME",
            help="after labelling, enrol the stranger labelled "
            "unknown_N as NAME (implies --cluster-unknowns; a rerun labels them alike)",
        )
        p.add_argument("--merge", action="store_true", help="with --enroll-unknown: add to an "
                       "enrolled NAME's samples")
        no_progress(p)

    p = command(
        "label-video",
        cmd_label_video,
        "label the faces in a video: annotated copy (audio kept "
        "when ffmpeg is on PATH) and optionally a detections file",
    )
    p.add_argument("input", help="video file")
    p.add_argument("output", help="annotated video (.mp4, .mov, .mkv, .m4v or .avi)")
    labelling(p)
    p = command(
        "from-bag",
        cmd_from_bag,
        "label-video for a sensor_msgs/Image or CompressedImage topic "
        "of a ROS 2 bag (.mcap or .db3; the bag folder or the file)",
    )
    p.add_argument("bag")
    p.add_argument("topic")
    p.add_argument("output", help="annotated video (.mp4, .mov, .mkv, .m4v or .avi)")
    labelling(p)
    p = command("enroll-video", cmd_enroll_video, "enrol the largest face of a video clip from "
                "several diverse frames (live enrolment, as the node does from its camera)")
    p.add_argument("name")
    p.add_argument("video", help="video file")
    p.add_argument("--samples", type=int, default=5, help="samples to collect (default 5)")
    p.add_argument("--overwrite", action="store_true", help="replace this person's samples")
    p = command(
        "screen-time",
        cmd_screen_time,
        "seconds each person (and each stranger, as unknown_N) "
        "is in view in a video, first/last seen, number of appearances",
    )
    p.add_argument("input", help="video file")
    p.add_argument("--chart", metavar="PNG", help="write a bar chart")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--merge-gap", type=float, default=1.0,
                   help="appearances closer than this many seconds count as one (default 1)")
    no_progress(p)
