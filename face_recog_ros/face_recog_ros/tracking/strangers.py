"""Strangers told apart: unrecognised people grouped online into unknown_1, unknown_2, ...

Memory only: a stranger who leaves and comes back gets the same label, and a cluster can be
enrolled under a name (the stream's promote_unknown).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..types import UNKNOWN

CLUSTER_PREFIX = f"{UNKNOWN}_"


class UnknownCluster(KeyError):
    """No stranger cluster of that label (never made, enrolled already, or dropped)."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else "unknown cluster"


def is_cluster_label(label: str) -> bool:
    return label.startswith(CLUSTER_PREFIX) and label[len(CLUSTER_PREFIX):].isdigit()


@dataclass
class _Cluster:
    label: str
    samples: np.ndarray  # (k, D) unit rows, newest last
    last_seen: float


class UnknownClusters:
    """Unrecognised people grouped online into unknown_1, unknown_2, ... (memory only).

    A track that settles as unknown joins the cluster whose samples its mean embedding matches
    best at ``threshold`` or above, else starts a new one, so a stranger who leaves and comes
    back gets the same label. Labels are never reused; the least recently seen cluster is
    dropped beyond ``max_clusters``.
    """

    def __init__(self, threshold: float, max_clusters: int, max_samples: int = 30) -> None:
        self.threshold = threshold
        self.max_clusters = max_clusters
        self.max_samples = max_samples
        self._clusters: dict[str, _Cluster] = {}
        self._numbers = itertools.count(1)

    def labels(self) -> list[str]:
        return list(self._clusters)

    def assign(self, mean_embedding: np.ndarray, samples: np.ndarray, stamp: float) -> str:
        """The label for a track with this mean embedding; its samples join that cluster."""
        best_label, best = "", -np.inf
        for cluster in self._clusters.values():
            similarity = float((cluster.samples @ mean_embedding).max())
            if similarity > best:
                best_label, best = cluster.label, similarity
        if best < self.threshold:
            best_label = f"{CLUSTER_PREFIX}{next(self._numbers)}"
            empty = np.zeros((0, len(mean_embedding)), np.float32)
            self._clusters[best_label] = _Cluster(best_label, empty, stamp)
            if len(self._clusters) > self.max_clusters:
                oldest = min(self._clusters.values(), key=lambda c: c.last_seen)
                del self._clusters[oldest.label]
        self.add(best_label, samples, stamp)
        return best_label

    def add(self, label: str, samples: np.ndarray, stamp: float) -> None:
        cluster = self._clusters.get(label)
        if cluster is None:
            return  # dropped meanwhile
        rows = np.atleast_2d(np.asarray(samples, dtype=np.float32))
        cluster.samples = np.concatenate([cluster.samples, rows])[-self.max_samples:]
        cluster.last_seen = stamp

    def restore(self, label: str, samples: np.ndarray) -> None:
        """Put back a cluster taken with :meth:`pop` (its promotion failed)."""
        self._clusters[label] = _Cluster(
            label, samples, max((c.last_seen for c in self._clusters.values()), default=0.0)
        )

    def discard(self, label: str) -> None:
        self._clusters.pop(label, None)

    def require(self, label: str) -> None:
        """UnknownCluster (a KeyError) naming the current clusters, unless ``label`` is one."""
        if label not in self._clusters:
            known = ", ".join(self._clusters) or "none"
            raise UnknownCluster(f"no unknown cluster {label!r} (current: {known})")

    def pop(self, label: str) -> np.ndarray:
        """Remove a cluster and return its samples (UnknownCluster if there is none)."""
        self.require(label)
        return self._clusters.pop(label).samples
