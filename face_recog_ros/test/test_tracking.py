"""FaceTracker geometry, temporal labels and unknown clusters, on hand-made detections and
embeddings.

No models here: the tracker is pure geometry and the label logic pure arithmetic, so these run
in milliseconds. test_stream.py covers the same behaviour end to end with the real models.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from face_recog_ros.tracking.options import TrackingOptions
from face_recog_ros.gallery.model import Gallery
from face_recog_ros.tracking.identity import TemporalLabel
from face_recog_ros.tracking.strangers import UnknownClusters
from face_recog_ros.tracking.tracker import FaceTracker, association_cost, box_iou, detection_state
from face_recog_ros.types import UNKNOWN, Detection

# Keypoints of a frontal face as fractions of its box (eyes, nose, mouth, ears).
_KEYPOINT_LAYOUT = np.array(
    [[0.33, 0.4], [0.67, 0.4], [0.5, 0.58], [0.5, 0.75], [0.12, 0.45], [0.88, 0.45]]
)


def face(cx: float, cy: float, size: float = 100.0, score: float = 0.9) -> Detection:
    x1, y1 = cx - size / 2, cy - size / 2
    keypoints = np.array([x1, y1]) + _KEYPOINT_LAYOUT * size
    return Detection(box=np.array([x1, y1, x1 + size, y1 + size], np.float32), score=score,
                     keypoints=keypoints.astype(np.float32))


def config(**overrides) -> TrackingOptions:
    return TrackingOptions(**{"min_hits": 1, "max_age": 5, **overrides})


def run(tracker: FaceTracker, frames: list[list[Detection]], fps: float = 30.0) -> list[list[int]]:
    """Track ids per frame, in detection order."""
    return [[t.id for t in tracker.update(dets, i / fps).tracks] for i, dets in enumerate(frames)]


def test_iou_of_identical_disjoint_and_half_overlapping_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], float)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 0.0, 50 / 150])


def test_ids_stay_with_a_face_moving_steadily():
    tracker = FaceTracker(config())
    ids = run(tracker, [[face(100 + 12 * i, 200)] for i in range(40)])
    assert {i[0] for i in ids} == {1}


def test_two_faces_keep_their_ids_in_either_detection_order():
    tracker = FaceTracker(config())
    frames = []
    for i in range(30):
        a, b = face(100 + 5 * i, 150), face(500 - 5 * i, 350)
        frames.append([b, a] if i % 2 else [a, b])
    ids = run(tracker, frames)
    for i, frame_ids in enumerate(ids):
        assert (frame_ids[::-1] if i % 2 else frame_ids) == [1, 2]


def test_a_second_face_entering_gets_a_new_id():
    tracker = FaceTracker(config())
    frames = [[face(200, 200)] for _ in range(10)] + [
        [face(200, 200), face(450, 220)] for _ in range(10)
    ]
    ids = run(tracker, frames)
    assert ids[9] == [1] and ids[10] == [1, 2] and ids[-1] == [1, 2]


def test_occlusion_shorter_than_max_age_keeps_the_id_with_motion_predicted():
    tracker = FaceTracker(config(max_age=8))
    frames = [[face(100 + 15 * i, 240)] if not 20 <= i < 26 else [] for i in range(40)]
    ids = run(tracker, frames)
    assert {i[0] for i in ids if i} == {1}


def test_occlusion_longer_than_max_age_removes_the_track_once():
    tracker = FaceTracker(config(max_age=3))
    removed = []
    for i in range(20):
        update = tracker.update([face(300, 240)] if i < 5 or i >= 12 else [], i / 30)
        removed += [t.id for t in update.removed]
        if i == 12:
            assert update.tracks[0].id == 2  # came back as a new track
    assert removed == [1]


def test_min_hits_confirms_late_and_drops_one_frame_false_positives():
    tracker = FaceTracker(config(min_hits=3))
    blip = tracker.update([face(100, 100), face(400, 300)], 0.0)
    assert [t.id for t in blip.tracks] == [-1, -1]
    tracker.update([face(100, 100)], 1 / 30)  # the face at (400, 300) was a one-frame blip
    third = tracker.update([face(100, 100)], 2 / 30)
    assert [t.id for t in third.tracks] == [1] and third.confirmed == third.tracks
    assert len(tracker.tracks) == 1


def test_gate_rejects_a_jump_across_the_frame():
    tracker = FaceTracker(config())
    tracker.update([face(100, 100)], 0.0)
    update = tracker.update([face(500, 400)], 1 / 30)
    assert update.tracks[0].id == 2


def test_prediction_bridges_a_frame_gap_of_fast_motion():
    """A face moving 40 px a frame is still matched after 4 dropped frames (160 px away)."""
    tracker = FaceTracker(config())
    for i in range(6):
        tracker.update([face(100 + 40 * i, 240)], i / 30)
    update = tracker.update([face(100 + 40 * 10, 240)], 10 / 30)
    assert update.tracks[0].id == 1


def test_association_prefers_keypoints_when_boxes_overlap():
    det = np.stack([detection_state(face(100, 100))])
    tracks = np.stack([detection_state(face(130, 100)), detection_state(face(102, 101))])
    cost, allowed = association_cost(det, tracks, np.array([0.6, 0.6]))
    assert allowed.all() and cost[0, 1] < cost[0, 0]


def test_update_is_fast_for_five_faces():
    tracker = FaceTracker(config())
    frames = [[face(80 + 120 * k + 3 * i, 240 + 2 * i, 90) for k in range(5)] for i in range(300)]
    start = time.perf_counter()
    for i, dets in enumerate(frames):
        tracker.update(dets, i / 30)
    per_frame_ms = (time.perf_counter() - start) * 1e3 / len(frames)
    assert len(tracker.tracks) == 5
    print(f"tracker update, 5 faces: {per_frame_ms:.3f} ms/frame")


# --- temporal labels -----------------------------------------------------------------------

def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def people():
    rng = np.random.default_rng(7)
    alice, bob = unit(rng.standard_normal(64)), unit(rng.standard_normal(64))
    gallery = Gallery("test", 64)
    gallery.add("alice", alice)
    gallery.add("bob", bob)
    return gallery, alice, bob, rng


def noisy(v: np.ndarray, rng, sigma: float = 0.02) -> np.ndarray:
    return unit(v + sigma * rng.standard_normal(v.shape))


def test_label_waits_for_min_evidence(people):
    gallery, alice, _, rng = people
    label = TemporalLabel(window=8, min_evidence=3, margin=0.05)
    for expected in (UNKNOWN, UNKNOWN, "alice"):
        label.add(noisy(alice, rng))
        label.update(gallery.snapshot(), 0.8)
        assert label.label == expected


def test_one_bad_frame_does_not_flip_the_label(people):
    gallery, alice, bob, rng = people
    label = TemporalLabel(window=8, min_evidence=2, margin=0.05)
    for _ in range(6):
        label.add(noisy(alice, rng))
        label.update(gallery.snapshot(), 0.8)
    label.add(bob)  # one frame that looks exactly like bob
    label.update(gallery.snapshot(), 0.8)
    assert label.label == "alice"


def test_label_changes_when_evidence_turns_with_margin(people):
    gallery, alice, bob, rng = people
    label = TemporalLabel(window=4, min_evidence=2, margin=0.05)
    history = []
    for v in [alice] * 4 + [bob] * 4:
        label.add(noisy(v, rng))
        label.update(gallery.snapshot(), 0.8)
        history.append(label.label)
    assert history[1:4] == ["alice"] * 3 and history[-1] == "bob"
    assert history.index("bob") >= 6  # needs most of the window, not one frame


def test_label_follows_gallery_rename_and_forget(people):
    gallery, alice, _, rng = people
    label = TemporalLabel(window=4, min_evidence=1, margin=0.05)
    label.add(noisy(alice, rng))
    label.update(gallery.snapshot(), 0.8)
    gallery.rename("alice", "alicia")
    label.update(gallery.snapshot(), 0.8)
    assert label.label == "alicia"
    gallery.remove("alicia")
    label.update(gallery.snapshot(), 0.8)
    assert label.label == UNKNOWN


def test_min_evidence_above_window_is_rejected():
    with pytest.raises(ValueError, match="min_evidence"):
        TemporalLabel(window=2, min_evidence=3, margin=0.0)


def test_clusters_give_a_returning_stranger_the_same_label():
    rng = np.random.default_rng(3)
    carol, dave = unit(rng.standard_normal(64)), unit(rng.standard_normal(64))
    clusters = UnknownClusters(threshold=0.8, max_clusters=10)
    first = clusters.assign(
        noisy(carol, rng), np.stack([noisy(carol, rng) for _ in range(3)]), 0.0
    )
    other = clusters.assign(noisy(dave, rng), np.stack([noisy(dave, rng)]), 1.0)
    again = clusters.assign(noisy(carol, rng), np.stack([noisy(carol, rng)]), 2.0)
    assert (first, other, again) == ("unknown_1", "unknown_2", "unknown_1")
    assert clusters.pop("unknown_1").shape == (4, 64)
    with pytest.raises(KeyError):
        clusters.pop("unknown_1")
    assert (
        clusters.assign(noisy(carol, rng), noisy(carol, rng), 3.0) == "unknown_3"
    )  # labels are not reused


def test_clusters_drop_the_least_recently_seen_beyond_the_cap():
    rng = np.random.default_rng(5)
    clusters = UnknownClusters(threshold=0.9, max_clusters=2)
    vectors = [unit(rng.standard_normal(64)) for _ in range(3)]
    for stamp, v in enumerate(vectors):
        clusters.assign(v, v, float(stamp))
    assert clusters.labels() == ["unknown_2", "unknown_3"]
