"""Face tracking: stable ids across frames, from cheap geometry.

A robot sees the same people frame after frame. Following each face with its box and
keypoints, instead of recognising it from scratch every frame, saves the embedder's CPU; a
constant-velocity prediction bridges short gaps (occlusions, missed detections, frames the
detector skips). Pure numpy/scipy: no models, no ROS. Who a track is: identity.py.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .options import TrackingOptions
from ..types import Detection

# Share of the prediction error folded into a track's velocity per observation: smooths
# keypoint jitter while following real changes of speed within a few frames.
VELOCITY_GAIN = 0.5
# Cost of a pair the gate forbids; far above any allowed cost ((1 - IoU) + distance <= ~11).
_FORBIDDEN = 1e6


def detection_state(detection: Detection) -> np.ndarray:
    """(16,) float64: the box (x1, y1, x2, y2) then the six keypoints (x, y): what a track
    follows."""
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

    def __init__(self, options: TrackingOptions) -> None:
        self.options = options
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
            gates = self.options.max_keypoint_distance * np.sqrt(
                [1.0 + t.misses for t in self.tracks]
            )
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
            if track.confirmed and track.misses <= self.options.max_age:
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
            if not track.confirmed and track.hits >= self.options.min_hits:
                track.id = next(self._ids)
                confirmed.append(track)
        self.tracks = kept
        return TrackUpdate(tracks=assigned, confirmed=confirmed, removed=removed)

    def reset(self) -> list[Track]:
        """Drop every track (e.g. the camera changed); returns the confirmed ones dropped."""
        removed = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return removed
