"""Face tracking: stable ids across frames, and labels decided by each track's recent evidence.

A robot sees the same people frame after frame. Following each face with cheap geometry,
instead of recognising it from scratch every frame, saves the embedder's CPU and stops labels
flickering: a track's label is the verdict of its recent embeddings and changes only with a
margin, and a constant-velocity prediction bridges short gaps (occlusions, missed detections,
frames the detector skips). Pure numpy/scipy: no models, no ROS.
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..config import TrackingConfig
from ..gallery.model import Snapshot
from ..core.matching import identity_similarities
from ..types import UNKNOWN, Detection

# Share of the prediction error folded into a track's velocity per observation: smooths
# keypoint jitter while following real changes of speed within a few frames.
VELOCITY_GAIN = 0.5
# Cost of a pair the gate forbids; far above any allowed cost ((1 - IoU) + distance <= ~11).
_FORBIDDEN = 1e6
CLUSTER_PREFIX = f"{UNKNOWN}_"


def detection_state(detection: Detection) -> np.ndarray:
    """(16,) float64: the box (x1, y1, x2, y2) then the six keypoints (x, y): what a track follows."""
    state = np.empty(16)
    state[:4] = detection.box
    state[4:] = detection.keypoints.reshape(-1)
    return state


def state_detection(state: np.ndarray, score: float) -> Detection:
    return Detection(box=state[:4].astype(np.float32), score=score,
                     keypoints=state[4:].reshape(6, 2).astype(np.float32))


@dataclass(eq=False)  # identity semantics: a Track is a dict key for per-track data
class Track:
    """One face followed over time. ``id`` is -1 until the track is confirmed."""

    state: np.ndarray  # (16,) at `stamp`, the time of the last matched detection
    stamp: float
    detection: Detection  # last matched detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(16))  # per second
    id: int = -1
    hits: int = 1  # matched detections so far
    misses: int = 0  # detection rounds in a row without a match

    @property
    def confirmed(self) -> bool:
        return self.id >= 0

    def predict(self, stamp: float) -> np.ndarray:
        return self.state + self.velocity * max(stamp - self.stamp, 0.0)

    def predicted_detection(self, stamp: float) -> Detection:
        return state_detection(self.predict(stamp), self.detection.score)

    def observe(self, detection: Detection, state: np.ndarray, stamp: float) -> None:
        dt = stamp - self.stamp
        if dt > 1e-6:
            if self.hits == 1:
                self.velocity = (state - self.state) / dt
            else:  # the prediction error, state - (self.state + velocity * dt), over dt
                self.velocity += VELOCITY_GAIN * ((state - self.state) / dt - self.velocity)
        self.state, self.stamp, self.detection = state, stamp, detection
        self.hits += 1
        self.misses = 0


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, T) IoU of boxes a (N, 4) against b (T, 4), x1 y1 x2 y2."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    overlap = np.maximum(bottom_right - top_left, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def association_cost(detections: np.ndarray, predictions: np.ndarray,
                     gates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost (N, T) of continuing track t with detection n, and which pairs the gate allows.

    cost = (1 - IoU) + mean keypoint distance in predicted face widths; a pair is allowed when
    that distance is within the track's gate. Keypoints separate neighbouring faces whose boxes
    overlap; IoU breaks ties between similar keypoint fits.
    """
    n, t = len(detections), len(predictions)
    scale = np.maximum(predictions[:, 2] - predictions[:, 0], 1.0)
    diff = detections[:, None, 4:] - predictions[None, :, 4:]
    distance = np.sqrt((diff * diff).reshape(n, t, 6, 2).sum(axis=3)).sum(axis=2) / (6.0 * scale)
    cost = (1.0 - box_iou(detections, predictions)) + distance
    return cost, distance <= gates


@dataclass
class TrackUpdate:
    """What one detection round did to the tracks."""

    tracks: list[Track]  # the track of each detection, same order (new tracks included)
    confirmed: list[Track]  # tracks confirmed in this round (they just got their id)
    removed: list[Track]  # confirmed tracks dropped in this round (unseen for > max_age rounds)


class FaceTracker:
    """Associates each frame's detections with the faces already being followed.

    Detections are matched to the tracks' predicted positions by an optimal assignment over
    the association cost, gated by keypoint distance (the gate widens with the time a track
    has been unseen). A new track is confirmed after ``min_hits`` detections (a tentative one
    that misses a round is dropped silently); a confirmed one survives ``max_age`` rounds
    unseen, then it is removed.
    """

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def visible(self) -> list[Track]:
        """Confirmed tracks matched in the latest detection round."""
        return [t for t in self.tracks if t.confirmed and t.misses == 0]

    def update(self, detections: list[Detection], stamp: float) -> TrackUpdate:
        states = [detection_state(d) for d in detections]
        assigned: list[Track | None] = [None] * len(detections)
        if self.tracks and detections:
            predictions = np.array([t.predict(stamp) for t in self.tracks])
            gates = self.config.max_keypoint_distance * np.sqrt([1.0 + t.misses for t in self.tracks])
            cost, allowed = association_cost(np.array(states), predictions, gates)
            rows, cols = linear_sum_assignment(np.where(allowed, cost, _FORBIDDEN))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    assigned[r] = self.tracks[c]
        matched = {id(t) for t in assigned if t is not None}
        confirmed, removed, kept = [], [], []
        for track in self.tracks:
            if id(track) in matched:
                kept.append(track)
                continue
            track.misses += 1
            if track.confirmed and track.misses <= self.config.max_age:
                kept.append(track)
            elif track.confirmed:
                removed.append(track)
        for i, (detection, state) in enumerate(zip(detections, states)):
            track = assigned[i]
            if track is None:
                track = Track(state=state, stamp=stamp, detection=detection)
                assigned[i] = track
                kept.append(track)
            else:
                track.observe(detection, state, stamp)
            if not track.confirmed and track.hits >= self.config.min_hits:
                track.id = next(self._ids)
                confirmed.append(track)
        self.tracks = kept
        return TrackUpdate(tracks=assigned, confirmed=confirmed, removed=removed)

    def reset(self) -> list[Track]:
        """Drop every track (e.g. the camera changed); returns the confirmed ones dropped."""
        removed = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return removed


# --- identity over time -------------------------------------------------------------------

class EventType(str, Enum):
    APPEARED = "appeared"  # a track was confirmed; label is its label at that moment
    IDENTIFIED = "identified"  # a track got an enrolled name for the first time
    LABEL_CHANGED = "label_changed"  # any later change of label (to unknown, unknown_k, another name)
    LEFT = "left"  # a track was dropped; label is its last label


@dataclass(frozen=True)
class FaceEvent:
    type: EventType
    track_id: int
    label: str
    previous_label: str  # label before the change ('' for APPEARED and LEFT)
    similarity: float  # mean similarity of the track's evidence to `label`'s best candidate
    timestamp: float  # stamp of the frame that produced the event


def is_cluster_label(label: str) -> bool:
    return label.startswith(CLUSTER_PREFIX) and label[len(CLUSTER_PREFIX):].isdigit()


class TemporalLabel:
    """A track's name, decided by the mean similarity of its recent embeddings to each person.

    Until ``min_evidence`` embeddings are in, the track is unknown. The first verdict after that
    is taken as is; later the label changes only when the new candidate's mean similarity beats
    the current label's by ``margin`` (for unknown, the threshold stands in for the current
    score), so one bad frame cannot flip a name. Scores are recomputed when evidence arrives or
    the gallery changes (enrolment, forget, rename).
    """

    def __init__(self, window: int, min_evidence: int, margin: float) -> None:
        if min_evidence > window:
            raise ValueError(f"min_evidence ({min_evidence}) cannot exceed evidence_window ({window})")
        self.min_evidence = min_evidence
        self.margin = margin
        self.evidence: deque[np.ndarray] = deque(maxlen=window)
        self.label = UNKNOWN
        self.similarity = 0.0  # mean similarity to the label (to the best candidate when unknown)
        self.candidate = ""
        self.candidate_margin = 0.0  # best minus second-best mean similarity
        self.cluster = ""  # unknown_k this track was filed under, if any
        self._decided = False
        self._generation = -1
        self._stale = True

    def add(self, embedding: np.ndarray) -> None:
        self.evidence.append(np.asarray(embedding, dtype=np.float32))
        self._stale = True

    def mean_embedding(self) -> np.ndarray:
        mean = np.mean(self.evidence, axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    @property
    def decided(self) -> bool:
        return self._decided

    def file_under(self, cluster: str) -> None:
        """Remember the unknown cluster this track belongs to; it is the label while unrecognised."""
        self.cluster = cluster
        if self.label == UNKNOWN:
            self.label = cluster

    def reconsider(self) -> None:
        """Forget the current verdict: the next update decides afresh (e.g. after enrolling this face)."""
        self._decided = False
        self._stale = True

    def update(self, snapshot: Snapshot, threshold: float) -> None:
        if len(self.evidence) < self.min_evidence:
            return
        gallery_changed = snapshot.generation != self._generation
        if not self._stale and not gallery_changed:
            return
        # After an enrolment, forget or rename the verdict is taken afresh: hysteresis protects a
        # name against noisy frames, not against the gallery learning who this is.
        first_look = self._generation == -1
        self._stale, self._generation = False, snapshot.generation
        names = snapshot.names
        scores = (identity_similarities(np.stack(self.evidence), snapshot).mean(axis=0) if names
                  else np.zeros(0))
        order = np.argsort(scores)[::-1]
        best = float(scores[order[0]]) if names else 0.0
        runner_up = float(scores[order[1]]) if len(names) > 1 else -1.0
        self.candidate = names[order[0]] if names else ""
        self.candidate_margin = best - runner_up if names else 0.0
        proposed = self.candidate if names and best >= threshold else UNKNOWN
        named = self.label != UNKNOWN and self.label != self.cluster
        if not self._decided or (gallery_changed and not first_look) or (named and self.label not in names):
            new = proposed  # first verdict, a changed gallery, or the current name was forgotten
        elif named:
            current = float(scores[names.index(self.label)])
            if proposed == UNKNOWN:
                new = UNKNOWN if current < threshold - self.margin else self.label
            else:
                new = proposed if best >= current + self.margin else self.label
        else:
            new = proposed if proposed != UNKNOWN and best >= threshold + self.margin else self.label
        self._decided = True
        self.label = self.cluster if new == UNKNOWN and self.cluster else new
        self.similarity = float(scores[names.index(self.label)]) if self.label in names else best


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
        self._clusters[label] = _Cluster(label, samples, max((c.last_seen for c in self._clusters.values()),
                                                             default=0.0))

    def discard(self, label: str) -> None:
        self._clusters.pop(label, None)

    def pop(self, label: str) -> np.ndarray:
        """Remove a cluster and return its samples (KeyError if there is none)."""
        cluster = self._clusters.pop(label, None)
        if cluster is None:
            known = ", ".join(self._clusters) or "none"
            raise KeyError(f"no unknown cluster {label!r} (current: {known})")
        return cluster.samples
