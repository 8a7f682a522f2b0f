"""Who a track is: a label decided by the track's recent embeddings, and the events it raises.

A track's label is the verdict of its recent evidence and changes only with a margin, so one
bad frame cannot flip a name; events report a face appearing, being named, changing label and
leaving.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..core.matching import identity_similarities
from ..gallery.snapshot import Snapshot
from ..types import UNKNOWN
from .options import check_evidence
from .strangers import is_cluster_label


class EventType(str, Enum):
    APPEARED = "appeared"  # a track was confirmed; label is its label at that moment
    IDENTIFIED = "identified"  # a track got an enrolled name for the first time
    LABEL_CHANGED = (
        "label_changed"  # any later change of label (to unknown, unknown_k, another name)
    )
    LEFT = "left"  # a track was dropped; label is its last label


@dataclass(frozen=True)
class FaceEvent:
    type: EventType
    track_id: int
    label: str
    previous_label: str  # label before the change ('' for APPEARED and LEFT)
    similarity: float  # mean similarity of the track's evidence to `label`'s best candidate
    timestamp: float  # stamp of the frame that produced the event


def is_name(label: str) -> bool:
    """An enrolled person's name (not unknown, not a stranger's unknown_<n>)."""
    return label != UNKNOWN and not is_cluster_label(label)


class TemporalLabel:
    """A track's name, decided by the mean similarity of its recent embeddings to each person.

    Until ``min_evidence`` embeddings are in, the track is unknown. The first verdict after that
    is taken as is; later the label changes only when the new candidate's mean similarity beats
    the current label's by ``margin`` (for unknown, the threshold stands in for the current
    score), so one bad frame cannot flip a name. Scores are recomputed when evidence arrives or
    the gallery changes (enrolment, forget, rename).
    """

    def __init__(self, window: int, min_evidence: int, margin: float) -> None:
        check_evidence(window, min_evidence)
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
        self._announced: str | None = None  # the label of the last event; None until APPEARED
        self._named_once = False

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
        """Remember the unknown cluster this track belongs to; it is the label while
        unrecognised."""
        self.cluster = cluster
        if self.label == UNKNOWN:
            self.label = cluster

    def reconsider(self) -> None:
        """Forget the current verdict: the next update decides afresh (e.g. after enrolling this
        face)."""
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
        if (
            not self._decided
            or (gallery_changed and not first_look)
            or (named and self.label not in names)
        ):
            new = proposed  # first verdict, a changed gallery, or the current name was forgotten
        elif named:
            current = float(scores[names.index(self.label)])
            if proposed == UNKNOWN:
                new = UNKNOWN if current < threshold - self.margin else self.label
            else:
                new = proposed if best >= current + self.margin else self.label
        else:
            new = (
                proposed if proposed != UNKNOWN and best >= threshold + self.margin else self.label
            )
        self._decided = True
        self.label = self.cluster if new == UNKNOWN and self.cluster else new
        self.similarity = float(scores[names.index(self.label)]) if self.label in names else best

    def announce(self, track_id: int, stamp: float) -> list[FaceEvent]:
        """The events of the label since the last call: APPEARED the first time, then IDENTIFIED
        for the first enrolled name and LABEL_CHANGED for any other change."""
        label, similarity = self.label, self.similarity
        events = []
        if self._announced is None:
            events.append(FaceEvent(EventType.APPEARED, track_id, label, "", similarity, stamp))
            previous = UNKNOWN
        elif label != self._announced:
            previous = self._announced
        else:
            return events
        if label != previous:
            first_name = is_name(label) and not self._named_once
            kind = EventType.IDENTIFIED if first_name else EventType.LABEL_CHANGED
            events.append(FaceEvent(kind, track_id, label, previous, similarity, stamp))
        self._named_once |= is_name(label)
        self._announced = label
        return events

    def farewell(self, track_id: int, stamp: float) -> list[FaceEvent]:
        """LEFT with the last label, for a track that was announced."""
        if self._announced is None:
            return []
        return [FaceEvent(EventType.LEFT, track_id, self.label, "", self.similarity, stamp)]
