"""`face-recog`: the library from the command line, no ROS needed.

face-recog enroll alice alice1.jpg alice2.jpg
face-recog enroll-dir photos/            # photos/<person>/<image>
face-recog identify group.jpg --draw out.jpg
face-recog evaluate faces/ --compare     # side by side with face_recognition (dlib)
face-recog evaluate faces/ --alignment-fidelity   # our chips vs face_recognition's
face-recog benchmark
face-recog benchmark-tracking            # tracking off vs on, same frames
face-recog label-video in.mp4 out.mp4    # also: screen-time, lookalike, group-photo, cluster, map,
                                         # from-bag (docs/offline_tools.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from ..core.recognizer import EnrollError, FaceRecognizer
from ..gallery.errors import GalleryError
from ..io.images import identity_folders, image_paths, load_image
from .common import add_common, build_config, make_recognizer
from .media_commands import add_media_commands
from .photo_commands import add_photo_commands


def enroll_paths(recognizer: FaceRecognizer, name: str, paths: list[Path], overwrite: bool) -> int:
    images, labels, skipped = [], [], []
    for path in paths:
        try:
            images.append(load_image(path))
            labels.append(str(path))
        except ValueError as exc:
            skipped.append(str(exc))
    try:
        result = recognizer.enroll(name, images, overwrite=overwrite, labels=labels)
    except EnrollError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for message in skipped + result.skipped:
        print(f"  skipped {message}", file=sys.stderr)
    print(f"enrolled {name}: {result.added} new sample(s), {result.total} in total")
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    return enroll_paths(make_recognizer(args), args.name, image_paths(args.images), args.overwrite)


def cmd_enroll_dir(args: argparse.Namespace) -> int:
    recognizer = make_recognizer(args)
    status = 0
    for person, paths in identity_folders(args.dir).items():
        status |= enroll_paths(recognizer, person, paths, args.overwrite)
    return status


def cmd_identify(args: argparse.Namespace) -> int:
    from ..io.draw import annotate
    recognizer = make_recognizer(args)
    rgb = load_image(args.image)
    faces = recognizer.process(rgb)
    rows = [{"label": f.label, "similarity": round(f.similarity, 4), "candidate": f.candidate,
             "margin": round(f.margin, 4), "box": [round(float(v), 1) for v in f.detection.box],
             "score": round(f.detection.score, 3), "rejected": f.rejected} for f in faces]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        if not faces:
            print("no faces found")
        for row in rows:
            x1, y1, x2, y2 = row["box"]
            what = row["rejected"] or f"{row['label']} (similarity {row['similarity']:.3f})"
            print(f"{what} at x={x1:.0f} y={y1:.0f} w={x2 - x1:.0f} h={y2 - y1:.0f}")
    if args.draw:
        cv2.imwrite(args.draw, cv2.cvtColor(annotate(rgb, faces), cv2.COLOR_RGB2BGR))
        print(f"wrote {args.draw}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    people = make_recognizer(args).people()
    if not people:
        print("the gallery is empty")
    for person in people:
        print(f"{person.name:<32} {person.samples:>4} samples  enrolled {person.enrolled_at}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    make_recognizer(args).forget(args.name)
    print(f"forgot {args.name}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    make_recognizer(args).rename(args.old, args.new, merge=args.merge)
    print(f"renamed {args.old} -> {args.new}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..offline import reference
    from ..offline.evaluation import (
        cosine_similarity,
        evaluate,
        format_results,
        negative_euclidean,
    )

    recognizer = make_recognizer(args, gallery=False)

    def embed(rgb):
        try:
            return recognizer.embed_for_enrollment(rgb)
        except ValueError:
            return None

    roots = [Path(d) for d in args.dirs]
    if args.alignment_fidelity:
        from ..offline.fidelity import alignment_fidelity, format_fidelity
        if not reference.available():
            print("error: --alignment-fidelity needs face_recognition (pip install "
                  "face_recognition)", file=sys.stderr)
            return 2
        ref = reference.FaceRecognitionReference()
        results = [alignment_fidelity(recognizer, root, ref) for root in roots]
        print(format_fidelity(recognizer.aligner.method, results), flush=True)
        return 0
    compare = args.compare and reference.available()
    if args.compare and not compare:
        print(
            "warning: face_recognition is not installed; evaluating this pipeline only",
            file=sys.stderr,
        )
    ref = reference.FaceRecognitionReference() if compare else None
    name = f"face_recog_ros ({recognizer.spec.id}, {recognizer.aligner.method})"
    for root in roots:
        people = identity_folders(root)
        results = [evaluate(name, people, embed, cosine_similarity)]
        if ref is not None:
            results.append(evaluate(ref.name, people, ref.embed_largest, negative_euclidean))
        print(format_results(str(root), results), flush=True)
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from ..offline.benchmark import run_benchmark
    return run_benchmark(build_config(args), frames=args.frames, compare=not args.no_compare)


def cmd_benchmark_tracking(args: argparse.Namespace) -> int:
    from ..offline.benchmark_tracking import run_tracking_benchmark
    return run_tracking_benchmark(build_config(args), frames=args.frames)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="face-recog", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        # help= is %-formatted by argparse, description= is printed as written.
        p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        add_common(p)
        p.set_defaults(func=func)
        return p

    p = command("enroll", cmd_enroll, "enrol one person from photos (the largest face in each)")
    p.add_argument("name")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--overwrite", action="store_true", help="replace this person's samples")
    p = command("enroll-dir", cmd_enroll_dir, "enrol everyone in DIR/<person>/<image>")
    p.add_argument("dir")
    p.add_argument("--overwrite", action="store_true")
    p = command("identify", cmd_identify, "name the faces in a photo")
    p.add_argument("image")
    p.add_argument("--draw", metavar="OUT", help="write an annotated copy of the image")
    p.add_argument("--json", action="store_true", help="print JSON")
    command("list", cmd_list, "list enrolled people")
    p = command("forget", cmd_forget, "remove a person")
    p.add_argument("name")
    p = command("rename", cmd_rename, "rename a person")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--merge", action="store_true", help="merge into an existing person")
    p = command(
        "evaluate",
        cmd_evaluate,
        "accuracy on DIR/<person>/<image> folders (one-shot rank-1, "
        "verification, TAR@FAR=1%, detection rate); folders named _*, group or unlabeled* "
        "are not people",
    )
    p.add_argument("dirs", nargs="+")
    p.add_argument("--compare", action="store_true", help="also score face_recognition (dlib)")
    p.add_argument("--alignment-fidelity", action="store_true",
                   help="instead: how close our face chips come to face_recognition's (cosine "
                   "of float embeddings per subject photo; needs face_recognition)")
    p = command(
        "benchmark",
        cmd_benchmark,
        "per-stage latency on 640x480 frames, side by side with face_recognition",
    )
    p.add_argument("--frames", type=int, default=30, help="timed runs per case")
    p.add_argument("--no-compare", action="store_true", help="skip face_recognition")
    p = command(
        "benchmark-tracking",
        cmd_benchmark_tracking,
        "tracking off vs on over a synthetic "
        "walk-through: CPU per frame, embeddings per frame, label flips, frames to first label "
        "(tracking.* options come from --config)",
    )
    p.add_argument("--frames", type=int, default=240, help="length of the sequence at 30 fps")
    add_media_commands(command)  # videos, bags
    add_photo_commands(command)  # group photos, photo folders
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, OSError, GalleryError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2
