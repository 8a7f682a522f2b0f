"""`face-recog` subcommands for recorded media: videos, bags, group photos, photo folders.

Parsing and printing only; the work is in io/ (video, bag) and offline/ (labelling,
screen_time, lookalike, group_photo, clustering, embedding_map). Registered by app.build_parser.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2

from ..io.images import load_image
from ..core.recognizer import FaceRecognizer
from ..tracking.stream import StreamRecognizer
from ..options import set_option
from ..tracking.strangers import is_cluster_label
from ..types import UNKNOWN
from .common import build_config, make_recognizer

Command = Callable[[str, Callable, str], argparse.ArgumentParser]


def write_rgb(path: str, rgb) -> None:
    try:
        written = cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:  # an extension OpenCV has no writer for
        written = False
    if not written:
        raise ValueError(f"cannot write image {path} (folder missing, or not a .png/.jpg/... name)")


def check_writable(path: str | None) -> None:
    """Fail before a long run, not after it, when an output file cannot be created."""
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {Path(path).parent} does not exist")


def warn_if_empty(recognizer: FaceRecognizer) -> None:
    if not recognizer.gallery.names():
        print("warning: the gallery is empty, so every face is labelled unknown (enrol people first, "
              "or pass --cluster-unknowns to tell strangers apart)", file=sys.stderr)


def stream_for(recognizer: FaceRecognizer, cluster_unknowns: bool) -> StreamRecognizer:
    config = recognizer.config.tracking
    return StreamRecognizer(recognizer, dataclasses.replace(config, cluster_unknowns=True)
                            if cluster_unknowns else config)


def print_label_summary(out: str, summary, note: str, detections: str | None) -> None:
    print(f"wrote {out}: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} frame/s); "
          f"{note}")
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
        print(f"enrolled {cluster} as {result.name}: {result.added} sample(s) added, {result.total} in total")
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
    from ..offline.screen_time import ScreenTimeCounter, bar_chart, clock, format_table, screen_time_tracking
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
        people = [{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(r).items()} for r in rows]
        print(json.dumps({"video": args.input, "seconds": round(length, 3), "people": people}, indent=2))
    else:
        print(f"{args.input}: {clock(length)} ({counter.frames} frames)")
        print(format_table(rows) if rows else "no faces seen")
    if args.chart:
        bar_chart(rows, args.chart, f"screen time in {Path(args.input).name}")
        print(f"wrote {args.chart}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_lookalike(args: argparse.Namespace) -> int:
    from ..offline.lookalike import first_photo_faces, lookalikes, render
    if args.top < 1:
        raise ValueError("--top must be at least 1")
    recognizer = make_recognizer(args)
    rgb = load_image(args.image)
    face, ranked = lookalikes(recognizer, rgb, args.top)
    if args.json:
        print(json.dumps([{"name": r.name, "similarity": round(r.similarity, 4)} for r in ranked], indent=2))
    else:
        for rank, r in enumerate(ranked, 1):
            same = "  (same person by the threshold)" if r.similarity >= recognizer.threshold else ""
            print(f"{rank:>3}. {r.name:<28} {r.similarity:.3f}{same}")
    if args.out:
        thumbnails = (first_photo_faces(recognizer, args.photos, [r.name for r in ranked], 64)
                      if args.photos else None)
        write_rgb(args.out, render(rgb, face, ranked, recognizer.threshold, thumbnails))
        print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_group_photo(args: argparse.Namespace) -> int:
    from ..io.draw import annotate
    from ..offline.group_photo import tag_group
    config = build_config(args)
    set_option(config, "detector.max_faces", max(config.detector.max_faces, args.max_faces))
    recognizer = FaceRecognizer(config)
    rgb = load_image(args.image)
    each_once = args.each_once or config.recognition.each_once
    result = tag_group(recognizer, rgb, each_once=each_once)
    if args.json:
        print(json.dumps({"faces": result.rows(), "not_found": result.not_found}, indent=2))
    else:
        print(f"{len(result.faces)} face(s), left to right:" if result.faces else "no faces found")
        for row in result.rows():
            if row["rejected"]:
                what = row["rejected"]
            elif row["label"] != UNKNOWN:
                what = f"{row['label']} ({row['similarity']:.3f})"
            else:
                what = f"unknown (closest: {row['candidate'] or '-'} {row['similarity']:.3f})"
            x1, y1, x2, y2 = row["box"]
            print(f"  {what} at x={x1:.0f} y={y1:.0f} w={x2 - x1:.0f} h={y2 - y1:.0f}")
        if each_once:
            print(f"not found: {', '.join(result.not_found) or 'nobody'}")
    if args.out:
        write_rgb(args.out, annotate(rgb, result.faces))
        print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from ..offline.clustering import cluster_embeddings, collect_faces, score_clusters, write_clusters
    config = build_config(args)
    set_option(config, "detector.max_faces", max(config.detector.max_faces, args.max_faces))
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    collection = collect_faces(recognizer, args.dir, progress=not args.no_progress)
    for problem in collection.problems:
        print(f"  skipped {problem}", file=sys.stderr)
    if not collection.records:
        raise ValueError(f"no usable faces in the {collection.photos} photo(s) under {args.dir}")
    clusters = cluster_embeddings(collection.embeddings, recognizer.threshold)
    write_clusters(args.out, collection, clusters, recognizer, Path(args.dir))
    sizes = [int((clusters == k).sum()) for k in range(1, int(clusters.max()) + 1)]
    print(f"{len(collection.records)} faces from {collection.photos} photos in {len(sizes)} clusters "
          f"(similarity threshold {recognizer.threshold:.3f}); "
          f"{sum(s == 1 for s in sizes)} of them single faces")
    for k, size in enumerate(sizes[:20], 1):
        print(f"  cluster_{k}: {size} face(s)")
    if len(sizes) > 20:
        print(f"  ... and {len(sizes) - 20} more")
    print(f"wrote {Path(args.out) / 'index.html'}; enrol one with: face-recog enroll-cluster "
          f"{Path(args.out) / 'cluster_1'} NAME")
    if args.evaluate:
        score = score_clusters(collection, clusters)
        print(f"evaluation ({score.faces} photos' main faces): {score.clusters} clusters for "
              f"{score.identities} identities, purity {score.purity:.1%}, inverse purity "
              f"{score.inverse_purity:.1%}")
    return 0


def cmd_enroll_cluster(args: argparse.Namespace) -> int:
    from ..offline.clustering import cluster_samples
    recognizer = make_recognizer(args)
    result = recognizer.add_samples(args.name, cluster_samples(args.cluster_dir, recognizer),
                                    overwrite=args.overwrite)
    print(f"enrolled {result.name}: {result.added} new sample(s), {result.total} in total")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from ..offline.embedding_map import from_folder, from_gallery, plot_map, similar_pairs
    from ..core.embedding import EmbedderSpec
    from ..gallery.file_format import GalleryError
    from ..gallery.store import load_gallery
    from ..core.recognizer import resolve_spec_path
    check_writable(args.out)
    source = Path(args.source) if args.source else None
    if source is not None and source.is_dir():
        recognizer = make_recognizer(args, gallery=False)
        data, skipped = from_folder(recognizer, source)
        for message in skipped:
            print(f"  skipped {message}", file=sys.stderr)
        title = f"faces in {source.name}"
    else:
        config = build_config(args)
        path = source or (Path(config.gallery.path).expanduser() if config.gallery.path else None)
        if path is None or not path.is_file():
            raise ValueError(f"no gallery file or photo folder at {path}")
        spec = EmbedderSpec.from_yaml(resolve_spec_path(config.embedder.model))
        try:
            data = from_gallery(load_gallery(path, spec.embedding_space, spec.output_dim))
        except GalleryError as exc:
            raise ValueError(f"cannot use gallery {path}: {exc}") from None
        title = f"gallery {path.name}"
    print(f"{len(data.labels)} embeddings of {len(data.people())} people")
    pairs = similar_pairs(data, args.top)
    if pairs:
        print("most similar people (cosine of mean embeddings):")
        for a, b, similarity in pairs:
            print(f"  {a} ~ {b}: {similarity:.3f}")
    else:
        print("only one person: no pairs to compare")
    plot_map(data, args.out, title)
    print(f"wrote {args.out}")
    return 0


def add_offline_commands(command: Command) -> None:
    """Register the offline subcommands with cli.build_parser's `command` helper."""
    def no_progress(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def labelling(p: argparse.ArgumentParser) -> None:
        p.add_argument("--detections", metavar="FILE", help="also write every face of every frame "
                       "(frame, time, track_id, label, similarity, box) to FILE.csv or FILE.json")
        p.add_argument("--cluster-unknowns", action="store_true",
                       help="label strangers unknown_1, unknown_2, ... instead of unknown")
        p.add_argument("--enroll-unknown", type=stranger_name, action="append", default=[],
                       metavar="unknown_N=NAME", help="after labelling, enrol the stranger labelled "
                       "unknown_N as NAME (implies --cluster-unknowns; a rerun labels them alike)")
        p.add_argument("--merge", action="store_true", help="with --enroll-unknown: add to an "
                       "enrolled NAME's samples")
        no_progress(p)

    p = command("label-video", cmd_label_video, "label the faces in a video: annotated copy (audio kept "
                "when ffmpeg is on PATH) and optionally a detections file")
    p.add_argument("input", help="video file")
    p.add_argument("output", help="annotated video (.mp4, .mov, .mkv, .m4v or .avi)")
    labelling(p)
    p = command("from-bag", cmd_from_bag, "label-video for a sensor_msgs/Image or CompressedImage topic "
                "of a ROS 2 bag (.mcap or .db3; the bag folder or the file)")
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
    p = command("screen-time", cmd_screen_time, "seconds each person (and each stranger, as unknown_N) "
                "is in view in a video, first/last seen, number of appearances")
    p.add_argument("input", help="video file")
    p.add_argument("--chart", metavar="PNG", help="write a bar chart")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--merge-gap", type=float, default=1.0,
                   help="appearances closer than this many seconds count as one (default 1)")
    no_progress(p)
    p = command("lookalike", cmd_lookalike, "the enrolled people a face looks most like")
    p.add_argument("image")
    p.add_argument("--top", type=int, default=5, help="how many people to list (default 5)")
    p.add_argument("--out", metavar="IMAGE", help="write the face next to a ranked bar list")
    p.add_argument("--photos", metavar="DIR", help="DIR/<person>/<image>: show each listed person's face")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("group-photo", cmd_group_photo, "tag every face in a group photo")
    p.add_argument("image")
    p.add_argument("--each-once", action="store_true", help="each enrolled person on at most one face "
                   "(optimal assignment); also lists who was not found")
    p.add_argument("--out", metavar="IMAGE", help="write an annotated copy")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--max-faces", type=int, default=100, help="most faces detected (default 100)")
    p = command("cluster", cmd_cluster, "group the faces of a photo folder (recursively) by identity, "
                "without enrolment: thumbnails per cluster, index.html, clusters.npz")
    p.add_argument("dir")
    p.add_argument("--out", default="clusters", help="output folder (default ./clusters)")
    p.add_argument("--evaluate", action="store_true",
                   help="score against DIR/<person>/<image> folders: purity, clusters vs identities")
    p.add_argument("--max-faces", type=int, default=100, help="most faces detected per photo (default 100)")
    no_progress(p)
    p = command("enroll-cluster", cmd_enroll_cluster, "enrol the faces left in a cluster folder "
                "written by `cluster` (no detection needed)")
    p.add_argument("cluster_dir", help="OUT/cluster_N")
    p.add_argument("name")
    p.add_argument("--overwrite", action="store_true", help="replace this person's samples")
    p = command("map", cmd_map, "2-D map (PCA) of face embeddings: who looks like whom")
    p.add_argument("source", nargs="?", help="a DIR/<person>/<image> folder or a gallery .npz "
                   "(default: the gallery of --gallery or the config)")
    p.add_argument("--out", default="face_map.png", help="PNG to write (default face_map.png)")
    p.add_argument("--top", type=int, default=5, help="most similar pairs to print (default 5)")
