"""Alignment fidelity: how close this pipeline's face chips come to the ones face_recognition cuts.

dlib's ResNet was trained on chips from dlib's 5 landmarks and ``get_face_chip(150, 0.25)``.
face_recognition (the reference) finds the face with dlib's HOG detector, its 5 landmarks, then
cuts that chip. For the subject of each photo, both chips are embedded with the float32 model
and compared by cosine similarity: 1.0 means the same chip. Rank-1 on easy sets saturates at
100%; this figure still shows how much alignment moves embeddings (int8 quantisation alone
costs a mean of 0.9992).

    face-recog evaluate DIR [DIR ...] --alignment-fidelity
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.embedding import Embedder, EmbedderSpec
from ..core.recognizer import FaceRecognizer, main_face, resolve_spec_path
from ..io.images import identity_folders, load_image

REFERENCE_SPACE = "dlib_resnet_v1"  # the reference chips are dlib's: only its ResNet applies
FLOAT_MODEL = "dlib_resnet_v1_float32"


@dataclass
class Fidelity:
    source: str
    photos: int
    cosines: np.ndarray  # one per photo where both pipelines found the same subject
    unmatched: int  # the reference found no face, or another face than this pipeline

    def summary(self) -> dict[str, float]:
        c = self.cosines
        if not len(c):
            return dict.fromkeys(("mean", "p5", "min", "below_0.95"), float("nan"))
        return {"mean": float(c.mean()), "p5": float(np.percentile(c, 5)), "min": float(c.min()),
                "below_0.95": float((c < 0.95).mean())}


def same_face(location: tuple[int, int, int, int], box: np.ndarray) -> bool:
    top, right, bottom, left = location
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])


def alignment_fidelity(recognizer: FaceRecognizer, root: str | Path, reference) -> Fidelity:
    """Cosines between float embeddings of our chip and face_recognition's, per subject photo."""
    if recognizer.spec.embedding_space != REFERENCE_SPACE:
        raise ValueError(f"alignment fidelity compares with dlib's chips: it needs the embedding "
                         f"space {REFERENCE_SPACE!r}, not {recognizer.spec.embedding_space!r}")
    float_embedder = Embedder(EmbedderSpec.from_yaml(resolve_spec_path(FLOAT_MODEL)))
    cosines, photos, unmatched = [], 0, 0
    for paths in identity_folders(root).values():
        for path in paths:
            photos += 1
            rgb = load_image(path)
            location = reference.largest(rgb)
            detections = recognizer.detect_photo(rgb)
            if location is None or not detections:
                unmatched += 1
                continue
            face = main_face(detections)
            if not same_face(location, face.box):
                unmatched += 1
                continue
            geometry = recognizer.geometry(rgb, [face])[0]
            ours = recognizer.aligner.chip(rgb, face, geometry)
            a, b = float_embedder.embed(np.stack([ours, reference.chip(rgb, location)]))
            cosines.append(float(a @ b))
    return Fidelity(str(root), photos, np.array(cosines), unmatched)


def format_fidelity(method: str, results: list[Fidelity]) -> str:
    lines = [f"alignment fidelity ({method}): cosine of float embeddings, our chip vs "
             "face_recognition's",
             f"{'set':<40}{'faces':>6}{'mean':>8}{'p5':>8}{'min':>8}{'<0.95':>7}{'unmatched':>10}"]
    for r in results:
        s = r.summary()
        lines.append(f"{Path(r.source).name[:39]:<40}{len(r.cosines):>6}{s['mean']:>8.4f}"
                     f"{s['p5']:>8.4f}{s['min']:>8.4f}{s['below_0.95']:>7.1%}{r.unmatched:>10}")
    return "\n".join(lines)
