"""The gallery as matching reads it: one consistent, read-only matrix of every sample."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .replica import Person


@dataclass(frozen=True)
class Snapshot:
    """A consistent, read-only view for matching; rows of ``matrix`` are grouped by person.

    ``starts[p]`` is the first row of person ``p`` (what ``np.maximum.reduceat`` needs), and
    ``owners[r]`` the person of row ``r``. Taken under the gallery lock, so a concurrent
    enrol/forget cannot make names and rows disagree.
    """

    names: tuple[str, ...]
    matrix: np.ndarray  # (M, D) float32, C-contiguous, read-only
    owners: np.ndarray  # (M,) intp, read-only
    starts: np.ndarray  # (P,) intp, read-only
    generation: int  # increments on every change of the gallery


def build_snapshot(people: list[Person], dim: int, generation: int) -> Snapshot:
    """The snapshot of ``people`` (in this order), whose rows are ``dim`` wide."""
    counts = np.fromiter((len(p.samples) for p in people), dtype=np.intp, count=len(people))
    if counts.size:
        matrix = np.ascontiguousarray(np.concatenate([p.embeddings for p in people]))
    else:
        matrix = np.zeros((0, dim), dtype=np.float32)
    owners = np.repeat(np.arange(counts.size, dtype=np.intp), counts)
    starts = np.zeros(counts.size, dtype=np.intp)
    if counts.size:
        np.cumsum(counts[:-1], out=starts[1:])
    for a in (matrix, owners, starts):
        a.flags.writeable = False
    return Snapshot(tuple(p.name for p in people), matrix, owners, starts, generation)
