"""Open-set matching: per-identity scores, threshold/unknown, margin, one-face-per-person
assignment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from face_recog_ros.gallery.model import Gallery
from face_recog_ros.core.matching import (
    NO_COMPETITOR_SIMILARITY,
    Match,
    identity_similarities,
    match,
)
from face_recog_ros.types import UNKNOWN

DIM = 128
SPACE = "test-model-v1"


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def basis(i: int) -> np.ndarray:
    e = np.zeros(DIM, dtype=np.float32)
    e[i] = 1.0
    return e


def with_cosines(*cosines: float) -> np.ndarray:
    """A unit vector whose cosine with basis(i) is cosines[i]; the rest goes to an unused axis."""
    assert np.sum(np.square(cosines)) <= 1.0, "not realisable by a unit vector"
    v = np.zeros(DIM, dtype=np.float64)
    v[: len(cosines)] = cosines
    v[DIM - 1] = np.sqrt(1.0 - np.sum(np.square(cosines)))
    return v.astype(np.float32)


def random_gallery(rng: np.random.Generator, people: int, max_samples: int) -> Gallery:
    g = Gallery(SPACE, DIM)
    for p in range(people):
        g.add(f"person{p}", unit(rng, int(rng.integers(1, max_samples + 1))))
    return g


@pytest.mark.parametrize("people, max_samples", [(1, 1), (1, 6), (7, 1), (40, 6), (300, 3)])
def test_identity_similarities_equal_naive_loop(people: int, max_samples: int) -> None:
    rng = np.random.default_rng(people * 10 + max_samples)
    g = random_gallery(rng, people, max_samples)
    queries = unit(rng, 9)
    naive = np.array(
        [[max(float(q @ s) for s in g.embeddings(name)) for name in g.names()] for q in queries]
    )
    fast = identity_similarities(queries, g)
    assert fast.shape == (9, people) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, naive, atol=1e-5)
    np.testing.assert_array_equal(identity_similarities(queries, g.snapshot()), fast)


def test_match_equals_naive_argmax() -> None:
    rng = np.random.default_rng(7)
    g = random_gallery(rng, 50, 4)
    queries = np.concatenate([unit(rng, 5), g.matrix()[::17]])  # strangers and enrolled samples
    sims = identity_similarities(queries, g)
    for threshold in (-1.0, 0.1, 0.5, 0.99):
        for q, m in zip(sims, match(queries, g, threshold), strict=True):
            order = np.argsort(q)[::-1]
            assert m.candidate == g.names()[order[0]] and m.index == order[0]
            assert m.similarity == pytest.approx(q[order[0]])
            assert m.margin == pytest.approx(q[order[0]] - q[order[1]])
            assert m.label == (m.candidate if q[order[0]] >= threshold else UNKNOWN)


def test_threshold_unknown_and_margin_constructed() -> None:
    g = Gallery(SPACE, DIM)
    g.add("A", basis(0))
    g.add("B", np.stack([basis(1), basis(2)]))  # best of B's samples counts
    faces = np.stack(
        [with_cosines(0.9, 0.3, 0.1), with_cosines(0.2, 0.1, 0.6), with_cosines(0.45, 0.4)]
    )
    m = match(faces, g, threshold=0.5)
    assert m[0] == Match("A", pytest.approx(0.9), "A", pytest.approx(0.6), 0)
    assert m[1] == Match("B", pytest.approx(0.6), "B", pytest.approx(0.4), 1)
    # Below threshold: UNKNOWN, but the near miss is still reported.
    assert m[2] == Match(UNKNOWN, pytest.approx(0.45), "A", pytest.approx(0.05), 0)
    at = match(with_cosines(0.5), g, threshold=float(np.float32(0.5)))
    assert at[0].label == "A"  # similarity == threshold counts as a match


def test_single_identity_margin_and_empty_gallery() -> None:
    g = Gallery(SPACE, DIM)
    assert (
        match(unit(np.random.default_rng(0), 3), g, 0.0) == [Match(UNKNOWN, 0.0, "", 0.0, -1)] * 3
    )
    assert match(unit(np.random.default_rng(0), 3), g, 0.0, each_once=True)[0].label == UNKNOWN
    assert identity_similarities(unit(np.random.default_rng(0), 3), g).shape == (3, 0)
    g.add("A", basis(0))
    (m,) = match(with_cosines(0.7), g, 0.5)
    assert m.label == "A" and m.margin == pytest.approx(0.7 - NO_COMPETITOR_SIMILARITY)
    assert match(np.zeros((0, DIM), np.float32), g, 0.5) == []


def test_query_shape_checked() -> None:
    g = Gallery(SPACE, DIM)
    g.add("A", basis(0))
    with pytest.raises(ValueError, match="shape"):
        match(np.ones((2, DIM + 1)), g, 0.5)
    assert match(basis(0), g, 0.5)[0].label == "A"  # a single 1-D query is accepted


def test_each_once_fixes_constructed_confusion() -> None:
    g = Gallery(SPACE, DIM)
    g.add("A", basis(0))
    g.add("B", basis(1))
    # Both faces are closest to A; the second is also close to B.
    faces = np.stack([with_cosines(0.95, 0.1), with_cosines(0.7, 0.6)])
    plain = match(faces, g, threshold=0.5)
    assert [m.label for m in plain] == ["A", "A"]
    once = match(faces, g, threshold=0.5, each_once=True)
    assert [m.label for m in once] == ["A", "B"]
    assert once[1].candidate == "B" and once[1].similarity == pytest.approx(0.6)
    assert once[1].margin == pytest.approx(0.6 - 0.7)  # negative: it got its second choice
    # The assignment happens first, the threshold after: B at 0.6 is not enough for 0.65.
    strict = match(faces, g, threshold=0.65, each_once=True)
    assert [m.label for m in strict] == ["A", UNKNOWN]
    assert strict[1].candidate == "B"


def test_each_once_more_faces_than_people() -> None:
    g = Gallery(SPACE, DIM)
    g.add("A", basis(0))
    faces = np.stack([with_cosines(0.6), with_cosines(0.9), with_cosines(0.7)])
    m = match(faces, g, threshold=0.5, each_once=True)
    assert [x.label for x in m] == [UNKNOWN, "A", UNKNOWN]
    # Unassigned faces still report their best candidate and its similarity.
    assert [x.candidate for x in m] == ["A", "A", "A"]
    assert m[0].similarity == pytest.approx(0.6) and m[2].similarity == pytest.approx(0.7)


@pytest.mark.parametrize("faces, people", [(2, 2), (3, 4), (4, 3), (4, 4), (1, 3)])
def test_each_once_is_optimal_and_one_to_one(faces: int, people: int) -> None:
    rng = np.random.default_rng(faces * 7 + people)
    for _ in range(20):
        g = random_gallery(rng, people, 3)
        queries = unit(rng, faces)
        sims = identity_similarities(queries, g)
        result = match(queries, g, threshold=-1.0, each_once=True)
        labelled = [m for m in result if m.label != UNKNOWN]
        assert len(labelled) == min(faces, people)
        assert len({m.label for m in labelled}) == len(labelled)
        total = sum(m.similarity for m in labelled)
        if faces <= people:
            best = max(sum(sims[f, p] for f, p in enumerate(perm))
                       for perm in itertools.permutations(range(people), faces))
        else:
            best = max(sum(sims[f, p] for p, f in enumerate(perm))
                       for perm in itertools.permutations(range(faces), people))
        assert total == pytest.approx(best, abs=1e-5)
