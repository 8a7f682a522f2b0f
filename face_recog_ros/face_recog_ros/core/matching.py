"""Open-set identification: query embeddings against a :class:`~.gallery.Gallery`.

A person's score is the best cosine similarity over their samples (several samples cover pose
and lighting; the max is robust to one bad sample). Everything is one matrix product plus a
segmented max, so 10,000 people cost about as much as reading the matrix once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..gallery.model import Gallery
from ..gallery.snapshot import Snapshot
from ..options import option
from ..types import UNKNOWN
from .aligner import QualityOptions

# Similarity assumed for the missing runner-up when only one person is enrolled: the cosine
# floor. So ``margin = similarity + 1`` then, i.e. never smaller than with a real competitor.
NO_COMPETITOR_SIMILARITY = -1.0


@dataclass
class RecognitionOptions(QualityOptions):
    """The `recognition.*` group: which faces are identified (the quality gate it extends) and
    how they are matched against the gallery."""

    threshold: float = option(-1.0, "Cosine similarity needed to name a face; -1 uses the model's "
                              "default", low=-1.0, high=1.0)
    each_once: bool = option(False, "Assign each enrolled person to at most one face per frame "
                             "(optimal assignment over the similarity matrix)")


@dataclass(frozen=True)
class Match:
    """Result for one query face (same order as the queries).

    ``similarity``/``candidate``/``index`` describe the reported candidate even when the face is
    UNKNOWN, so callers can log near misses. ``margin`` is ``similarity`` minus the best
    similarity of any *other* person (``NO_COMPETITOR_SIMILARITY`` if there is none); with
    ``each_once`` it can be negative when the assignment gave the face its second choice.
    Empty gallery: ``candidate=''``, ``similarity=0``, ``margin=0``, ``index=-1``.
    """

    label: str  # enrolled name, or types.UNKNOWN
    similarity: float
    candidate: str
    margin: float
    index: int  # person index of ``candidate`` in the gallery snapshot, -1 if none


def _as_snapshot(gallery: Gallery | Snapshot) -> Snapshot:
    return gallery.snapshot() if isinstance(gallery, Gallery) else gallery


def _as_queries(embeddings: np.ndarray, dim: int) -> np.ndarray:
    queries = np.asarray(embeddings, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise ValueError(
            f"query embeddings must have shape (N, {dim}), got {np.shape(embeddings)}"
        )
    return queries


def identity_similarities(embeddings: np.ndarray, gallery: Gallery | Snapshot) -> np.ndarray:
    """(N, P) float32: for each query, the max cosine similarity over each person's samples.

    Queries are expected L2-normalised (as the embedder returns them). Column ``p`` is person
    ``p`` of the snapshot, i.e. ``snapshot.names[p]``.
    """
    snap = _as_snapshot(gallery)
    queries = _as_queries(embeddings, snap.matrix.shape[1])
    num_people = len(snap.names)
    if num_people == 0 or queries.shape[0] == 0:
        return np.zeros((queries.shape[0], num_people), dtype=np.float32)
    # (M, N) rather than (N, M): the segmented max then runs over contiguous row blocks,
    # measurably faster for several queries; the result is returned as a transposed view.
    sample_sims = snap.matrix @ queries.T
    if sample_sims.shape[0] == num_people:  # one sample each: no reduction needed
        return sample_sims.T
    return np.maximum.reduceat(sample_sims, snap.starts, axis=0).T


def match(
    embeddings: np.ndarray,
    gallery: Gallery | Snapshot,
    threshold: float,
    *,
    each_once: bool = False,
) -> list[Match]:
    """Label each query with an enrolled name if its best similarity >= ``threshold``.

    ``each_once=True`` (several faces in one frame cannot be the same person): people are
    assigned to faces by the assignment maximising total similarity over all (face, person)
    pairs (Hungarian), then the threshold applies to each assigned pair. Faces left without a
    person are UNKNOWN but still report their best candidate.
    """
    snap = _as_snapshot(gallery)
    sims = identity_similarities(embeddings, snap)
    num_faces, num_people = sims.shape
    if num_people == 0:
        return [Match(UNKNOWN, 0.0, "", 0.0, -1) for _ in range(num_faces)]
    if num_faces == 0:
        return []

    rows = np.arange(num_faces)
    best = sims.argmax(axis=1)
    if each_once:
        chosen = best.copy()
        assigned = np.zeros(num_faces, dtype=bool)
        face_idx, person_idx = linear_sum_assignment(sims, maximize=True)
        chosen[face_idx] = person_idx
        assigned[face_idx] = True
    else:
        chosen, assigned = best, np.ones(num_faces, dtype=bool)

    chosen_sim = sims[rows, chosen]
    if num_people > 1:
        others = sims.copy()
        others[rows, chosen] = -np.inf
        runner_up = others.max(axis=1)
    else:
        runner_up = np.full(num_faces, NO_COMPETITOR_SIMILARITY, dtype=np.float32)
    margin = chosen_sim - runner_up
    known = assigned & (chosen_sim >= threshold)

    return [
        Match(
            label=snap.names[chosen[i]] if known[i] else UNKNOWN,
            similarity=float(chosen_sim[i]),
            candidate=snap.names[chosen[i]],
            margin=float(margin[i]),
            index=int(chosen[i]),
        )
        for i in range(num_faces)
    ]
