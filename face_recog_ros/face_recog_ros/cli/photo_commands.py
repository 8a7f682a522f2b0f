"""`face-recog` subcommands for photos and photo folders: look-alikes, group photos, clusters,
maps.

Parsing and printing only; the work is in offline/ (lookalike, group_photo, clustering,
embedding_map). Registered by app.build_parser.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.recognizer import FaceRecognizer
from ..io.images import load_image
from ..options import set_option
from ..types import UNKNOWN
from .common import Command, build_config, check_writable, make_recognizer, write_rgb


def cmd_lookalike(args: argparse.Namespace) -> int:
    from ..offline.lookalike import first_photo_faces, lookalikes, render
    if args.top < 1:
        raise ValueError("--top must be at least 1")
    recognizer = make_recognizer(args)
    rgb = load_image(args.image)
    face, ranked = lookalikes(recognizer, rgb, args.top)
    if args.json:
        print(
            json.dumps(
                [{"name": r.name, "similarity": round(r.similarity, 4)} for r in ranked], indent=2
            )
        )
    else:
        for rank, r in enumerate(ranked, 1):
            same = (
                "  (same person by the threshold)" if r.similarity >= recognizer.threshold else ""
            )
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
    from ..offline.clustering import (
        cluster_embeddings,
        collect_faces,
        score_clusters,
        write_clusters,
    )

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
    print(
        f"{len(collection.records)} faces from {collection.photos} photos in {len(sizes)} "
        "clusters "
        f"(similarity threshold {recognizer.threshold:.3f}); "
        f"{sum(s == 1 for s in sizes)} of them single faces"
    )
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
    from ..gallery.errors import GalleryError
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


def add_photo_commands(command: Command) -> None:
    """Register the photo commands with app.build_parser's `command` helper."""
    def no_progress(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    p = command("lookalike", cmd_lookalike, "the enrolled people a face looks most like")
    p.add_argument("image")
    p.add_argument("--top", type=int, default=5, help="how many people to list (default 5)")
    p.add_argument("--out", metavar="IMAGE", help="write the face next to a ranked bar list")
    p.add_argument(
        "--photos", metavar="DIR", help="DIR/<person>/<image>: show each listed person's face"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("group-photo", cmd_group_photo, "tag every face in a group photo")
    p.add_argument("image")
    p.add_argument(
        "--each-once",
        action="store_true",
        help="each enrolled person on at most one face "
        "(optimal assignment); also lists who was not found",
    )
    p.add_argument("--out", metavar="IMAGE", help="write an annotated copy")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--max-faces", type=int, default=100, help="most faces detected (default 100)")
    p = command(
        "cluster",
        cmd_cluster,
        "group the faces of a photo folder (recursively) by identity, "
        "without enrolment: thumbnails per cluster, index.html, clusters.npz",
    )
    p.add_argument("dir")
    p.add_argument("--out", default="clusters", help="output folder (default ./clusters)")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="score against DIR/<person>/<image> folders: purity, clusters vs identities",
    )
    p.add_argument(
        "--max-faces", type=int, default=100, help="most faces detected per photo (default 100)"
    )
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
