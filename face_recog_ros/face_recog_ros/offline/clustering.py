"""Group the faces of a photo folder by identity, without enrolment, then enrol a group by name.

Every face of every photo is embedded and the faces are clustered agglomeratively (scipy,
average linkage on cosine distance): two groups merge while their mean pairwise similarity is
at least the recognition threshold, the same bar the recognizer uses to call two faces one
person. The output folder gets one sub-folder of face thumbnails per cluster (largest cluster
first), an index.html contact sheet, and clusters.npz with every face's embedding, so
`enroll-cluster OUT/cluster_3 NAME` enrols without detecting anything again. The thumbnails
still in a cluster folder decide what is enrolled: delete a wrong face's thumbnail (or move it
to the right cluster folder) before enrolling.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..io.images import load_image, photos_under
from .photo_faces import crop_face, photo_faces
from ..core.recognizer import FaceRecognizer
from ..io.video import Progress

INDEX_FILE = "clusters.npz"
THUMBNAIL_SIZE = 112
_CLUSTER_DIR = re.compile(r"cluster_(\d+)")


@dataclass
class FaceRecord:
    path: str  # photo, relative to the clustered folder
    box: np.ndarray  # (4,) x1 y1 x2 y2 in the photo
    main: bool  # the photo's subject (core.recognizer.main_face)
    thumbnail: np.ndarray  # RGB crop, THUMBNAIL_SIZE square


@dataclass
class FaceCollection:
    records: list[FaceRecord]
    embeddings: np.ndarray  # (faces, D) L2-normalised, same order as records
    photos: int
    problems: list[str]  # photos that could not be read, faces that could not be embedded


def collect_faces(
    recognizer: FaceRecognizer, root: str | Path, *, progress: bool = True
) -> FaceCollection:
    """Embed every usable face in every photo under ``root`` (recursively)."""
    root = Path(root)
    paths = photos_under(root)
    records, rows, problems = [], [], []
    bar = Progress(len(paths), "faces", enabled=progress)
    for path in paths:
        bar.update()
        relative = str(path.relative_to(root))
        try:
            rgb = load_image(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        found = photo_faces(recognizer, rgb)
        for i, (detection, reason) in enumerate(zip(found.detections, found.reasons)):
            if reason:
                problems.append(f"{relative}: a face was skipped ({reason})")
                continue
            records.append(FaceRecord(relative, detection.box.copy(), i == found.main,
                                      crop_face(rgb, detection.box, THUMBNAIL_SIZE)))
        rows.extend(found.embeddings)
    bar.close()
    dim = recognizer.spec.output_dim
    embeddings = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return FaceCollection(records, embeddings, len(paths), problems)


def cluster_embeddings(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster number per face, 1 = the largest cluster (ties: the one seen first)."""
    if len(embeddings) == 0:
        return np.zeros(0, np.int32)
    if len(embeddings) == 1:
        return np.ones(1, np.int32)
    from scipy.cluster.hierarchy import fcluster, linkage
    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    raw = fcluster(tree, t=1.0 - threshold, criterion="distance")
    sizes = Counter(raw)
    first = {c: i for i, c in reversed(list(enumerate(raw)))}
    order = sorted(sizes, key=lambda c: (-sizes[c], first[c]))
    renumber = {c: k + 1 for k, c in enumerate(order)}
    return np.array([renumber[c] for c in raw], np.int32)


def thumbnail_name(index: int) -> str:
    return f"face_{index:05d}.jpg"


def prepare_output(out: Path) -> None:
    """Create ``out``, or clear a previous cluster run there; never touches a folder of other
    files."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / INDEX_FILE).is_file():
            raise ValueError(
                f"{out} is not empty and holds no earlier cluster output; choose a new folder"
            )
        for child in out.iterdir():
            if child.is_dir() and _CLUSTER_DIR.fullmatch(child.name):
                shutil.rmtree(child)
        for name in (INDEX_FILE, "index.html"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def write_clusters(out: str | Path, collection: FaceCollection, clusters: np.ndarray,
                   recognizer: FaceRecognizer, source: Path) -> None:
    """Thumbnails per cluster folder, clusters.npz (embeddings and where each face came from),
    index.html."""
    out = Path(out)
    prepare_output(out)
    names = [thumbnail_name(i) for i in range(len(collection.records))]
    for record, cluster, name in zip(collection.records, clusters, names):
        folder = out / f"cluster_{cluster}"
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / name), cv2.cvtColor(record.thumbnail, cv2.COLOR_RGB2BGR))
    meta = {"embedding_space": recognizer.spec.embedding_space, "model": recognizer.spec.id,
            "threshold": recognizer.threshold, "source": str(source.resolve())}
    np.savez(out / INDEX_FILE, embeddings=collection.embeddings, cluster=clusters,
             thumbnail=np.array(names, dtype=str),
             path=np.array([r.path for r in collection.records], dtype=str),
             box=np.array([r.box for r in collection.records], np.float32).reshape(-1, 4),
             main=np.array([r.main for r in collection.records], bool),
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    (out / "index.html").write_text(contact_sheet(collection, clusters, names, out))


def contact_sheet(
    collection: FaceCollection, clusters: np.ndarray, names: list[str], out: Path
) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>face clusters</title>",
        "<style>body{font-family:sans-serif}img{margin:2px;width:96px;height:96px}"
        "h2{margin-bottom:4px}code{background:#eee}</style>",
        f"<h1>{len(collection.records)} faces in {int(clusters.max(initial=0))} clusters</h1>",
        "<p>Enrol a cluster with <code>face-recog enroll-cluster "
        f"{html.escape(str(out))}/cluster_N NAME</code>. Only the thumbnails still in the "
        "cluster folder are enrolled: delete wrong faces first.</p>",
    ]
    for cluster in range(1, int(clusters.max(initial=0)) + 1):
        members = np.flatnonzero(clusters == cluster)
        plural = "s" if len(members) > 1 else ""
        parts.append(f"<h2>cluster_{cluster} ({len(members)} face{plural})</h2><div>")
        for i in members:
            title = html.escape(collection.records[i].path, quote=True)
            parts.append(f"<img src='cluster_{cluster}/{names[i]}' title='{title}' alt='{title}'>")
        parts.append("</div>")
    return "\n".join(parts) + "\n"


def cluster_samples(cluster_dir: str | Path, recognizer: FaceRecognizer) -> np.ndarray:
    """Embeddings of the faces whose thumbnails are in ``cluster_dir`` (from its parent's
    clusters.npz)."""
    folder = Path(cluster_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    index = folder.parent / INDEX_FILE
    if not index.is_file():
        raise ValueError(
            f"{index} not found: pass a cluster_N folder written by `face-recog cluster`"
        )
    with np.load(index, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        names, embeddings = list(data["thumbnail"]), data["embeddings"]
    spec = recognizer.spec
    if meta["embedding_space"] != spec.embedding_space or embeddings.shape[1] != spec.output_dim:
        raise ValueError(
            f"the clusters were made with model {meta['model']}, whose embeddings the "
            f"current model ({spec.id}) cannot compare with"
        )
    row = {name: i for i, name in enumerate(names)}
    present = sorted(row[p.name] for p in folder.iterdir() if p.name in row)
    if not present:
        raise ValueError(f"{folder} holds none of the face thumbnails listed in {index}")
    return embeddings[present]


@dataclass(frozen=True)
class ClusterScore:
    faces: int  # labelled faces scored (the main face of each photo in DIR/<person>/)
    identities: int
    clusters: int  # clusters holding labelled faces
    purity: float  # share of faces in their cluster's majority identity
    inverse_purity: float  # share of faces in their identity's majority cluster (1 = nobody split)


def score_clusters(collection: FaceCollection, clusters: np.ndarray) -> ClusterScore:
    """Purity against the folder layout DIR/<person>/<image>: only each photo's main face has a
    known identity (other faces in a photo may be anyone); folders named '_*' or 'group' are
    skipped.
    """
    truth, found = [], []
    for record, cluster in zip(collection.records, clusters):
        parts = Path(record.path).parts
        if (
            record.main
            and len(parts) >= 2
            and not parts[0].startswith("_")
            and parts[0] != "group"
        ):
            truth.append(parts[0])
            found.append(int(cluster))
    if not truth:
        raise ValueError("no photos in DIR/<person>/<image> folders to score the clusters against")
    pairs = Counter(zip(found, truth))
    best_per_cluster = Counter()
    best_per_identity = Counter()
    for (cluster, person), n in pairs.items():
        best_per_cluster[cluster] = max(best_per_cluster[cluster], n)
        best_per_identity[person] = max(best_per_identity[person], n)
    total = len(truth)
    return ClusterScore(
        total,
        len(set(truth)),
        len(set(found)),
        sum(best_per_cluster.values()) / total,
        sum(best_per_identity.values()) / total,
    )
