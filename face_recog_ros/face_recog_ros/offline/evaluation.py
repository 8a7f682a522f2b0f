"""Accuracy protocol for a folder of `DIR/<person>/<image>` photos.

One-shot rank-1 identification (each person's first usable photo enrolled, the rest queried),
best-threshold verification accuracy and TAR at FAR=1% over all pairs, and detection rate.
The protocol takes any `embed(rgb) -> vector | None` function, so the same code scores this
pipeline and the face_recognition (dlib) reference side by side.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.images import load_image


@dataclass
class EvalResult:
    method: str
    people: int
    images: int
    detected: int
    rank1: float  # over queries whose photo gave a face
    rank1_all: float  # counting photos without a face as errors
    queries: int
    verification_accuracy: float
    verification_threshold: float
    tar_at_far_1pct: float
    pairs: int
    ms_per_image: float

    @property
    def detection_rate(self) -> float:
        return self.detected / self.images if self.images else 0.0


def verification_metrics(scores: np.ndarray, same: np.ndarray) -> tuple[float, float, float]:
    """Best-threshold accuracy, that threshold, and TAR at FAR=1% for pair scores (higher =
    same)."""
    if len(scores) == 0 or same.all() or not same.any():
        return float("nan"), float("nan"), float("nan")
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # Threshold between s[i-1] and s[i]: pairs i.. are called "same".
    genuine_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    impostor_below = np.concatenate([[0], np.cumsum(~y)])
    correct = genuine_above + impostor_below
    best = int(np.argmax(correct))
    threshold = float(s[best]) if best < len(s) else float(s[-1] + 1e-6)
    impostors = np.sort(scores[~same])
    far_threshold = impostors[int(np.ceil(0.99 * len(impostors))) - 1]
    tar = float((scores[same] > far_threshold).mean())
    return float(correct[best] / len(s)), threshold, tar


def evaluate(
    method: str,
    people: dict[str, list[Path]],
    embed: Callable[[np.ndarray], np.ndarray | None],
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> EvalResult:
    """Run the protocol; `similarity(A, B)` returns the (len A, len B) score matrix, higher =
    same."""
    labels, vectors, per_person_first, queries_all = [], [], {}, 0
    start = time.perf_counter()
    n_images = 0
    for person, paths in people.items():
        queries_all += max(0, len(paths) - 1)
        for path in paths:
            n_images += 1
            vec = embed(load_image(path))
            if vec is None:
                continue
            if person not in per_person_first:
                per_person_first[person] = len(vectors)
            labels.append(person)
            vectors.append(np.asarray(vec, np.float32))
    elapsed = time.perf_counter() - start
    labels_arr = np.array(labels)
    detected = len(vectors)
    if detected == 0:
        return EvalResult(
            method,
            len(people),
            n_images,
            0,
            0.0,
            0.0,
            0,
            float("nan"),
            float("nan"),
            float("nan"),
            0,
            elapsed * 1e3 / max(n_images, 1),
        )
    mat = np.stack(vectors)
    # Rank-1: enrol each person's first usable photo, query the rest.
    enrolled = list(per_person_first.items())
    gallery_idx = np.array([i for _, i in enrolled])
    gallery_names = np.array([p for p, _ in enrolled])
    query_idx = np.array([i for i in range(detected) if i not in set(gallery_idx)], dtype=int)
    correct = 0
    if len(query_idx):
        scores = similarity(mat[query_idx], mat[gallery_idx])
        correct = int((gallery_names[scores.argmax(1)] == labels_arr[query_idx]).sum())
    # Verification over all pairs of usable photos.
    iu = np.triu_indices(detected, k=1)
    pair_scores = similarity(mat, mat)[iu]
    same = labels_arr[iu[0]] == labels_arr[iu[1]]
    acc, thr, tar = verification_metrics(pair_scores, same)
    return EvalResult(
        method=method, people=len(people), images=n_images, detected=detected,
        rank1=correct / len(query_idx) if len(query_idx) else float("nan"),
        rank1_all=correct / queries_all if queries_all else float("nan"), queries=len(query_idx),
        verification_accuracy=acc, verification_threshold=thr, tar_at_far_1pct=tar,
        pairs=len(pair_scores), ms_per_image=elapsed * 1e3 / max(n_images, 1))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def negative_euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """face_recognition compares raw dlib descriptors by Euclidean distance (0.6 threshold)."""
    return -np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)


def format_results(source: str, results: list[EvalResult]) -> str:
    lines = [f"== {source}",
             f"{'method':<22}{'people':>7}{'images':>7}{'detect':>8}{'rank-1':>8}{'rank-1*':>8}"
             f"{'verif':>8}{'TAR@1%':>8}{'ms/img':>8}"]
    for r in results:
        lines.append(
            f"{r.method:<22}{r.people:>7}{r.images:>7}{r.detection_rate:>8.1%}{r.rank1:>8.1%}"
            f"{r.rank1_all:>8.1%}{r.verification_accuracy:>8.1%}{r.tar_at_far_1pct:>8.1%}"
            f"{r.ms_per_image:>8.1f}"
        )
    return "\n".join(lines)
