"""StreamRecognizer end to end with the real detector and embedder on synthetic sequences.

The sequences (samples.sequence) move two public-domain heads across a backdrop: the astronaut
walks the whole time and is hidden by a board in frames 90-95; Grace Hopper comes in at frame
30, leaves around frame 165 and comes back after 185; frames 150-154 are dropped. Everything
is deterministic, so the assertions are exact.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import Counter, defaultdict

import cv2
import numpy as np
import pytest

from face_recog_ros.io import samples
from face_recog_ros.offline.benchmark_tracking import ModeResult, label_metrics, visits
from face_recog_ros.config import RecognizerConfig
from face_recog_ros.tracking.options import TrackingOptions
from face_recog_ros.core.recognizer import FaceRecognizer
from face_recog_ros.tracking.stream import EnrollState, StreamRecognizer
from face_recog_ros.tracking.identity import EventType
from face_recog_ros.types import UNKNOWN

EILEEN, GRACE = samples.PEOPLE["astronaut"], samples.PEOPLE["grace_hopper"]


def make_recognizer(enrolled: bool = True) -> FaceRecognizer:
    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    if enrolled:
        for key, name in samples.PEOPLE.items():
            recognizer.enroll(name, [samples.photo(key)])
    return recognizer


@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    """Both people enrolled from their photos; tests that change the gallery build their own."""
    return make_recognizer()


def tracking(**overrides) -> TrackingOptions:
    return dataclasses.replace(TrackingOptions(), **overrides)


def run(stream: StreamRecognizer, frames) -> list[tuple[samples.SequenceFrame, object]]:
    return [(frame, stream.process(frame.rgb, frame.stamp)) for frame in frames]


@pytest.fixture(scope="module")
def walk(recognizer):
    """The default walk-through with default tracking settings, replayed once for several tests."""
    return run(StreamRecognizer(recognizer, tracking()), samples.sequence())


def ids_by_person(results) -> dict[str, list[int]]:
    """Track ids given to each person's face, in frame order (None: face not reported)."""
    ids = defaultdict(list)
    for frame, result in results:
        seen = {samples.truth_for(f.detection.box, frame): f.track_id for f in result.faces}
        for person in frame.visible:
            ids[person].append(seen.get(person))
    return ids


def test_ids_stay_with_each_person_through_occlusion_and_dropped_frames(walk):
    ids = ids_by_person(walk)
    astronaut = [i for i in ids["astronaut"] if i is not None]
    assert set(astronaut) == {
        1
    }  # one id all along: occlusion (90-95) and frame gap (150-154) bridged
    assert len(astronaut) >= len(ids["astronaut"]) - 2  # reported in (nearly) every frame in view


def test_a_face_entering_gets_a_new_id_and_a_returning_one_a_fresh_id(walk):
    grace = [i for i in ids_by_person(walk)["grace_hopper"] if i is not None]
    first, last = grace[0], grace[-1]
    assert (
        len({1, first, last}) == 3
    )  # a new id on entry, another one after leaving and coming back
    assert sorted(set(grace)) == [first, last]


def test_labels_are_right_fast_and_never_flip(walk):
    sequence = [frame for frame, _ in walk]
    labels = [{samples.truth_for(f.detection.box, frame): f.label for f in result.faces}
              for frame, result in walk]
    metrics = label_metrics(ModeResult([], [], labels), visits(sequence), fps=30.0)
    assert metrics["flips"] == 0
    assert metrics["max_frames_to_label"] <= 5
    assert metrics["wrong_rate"] < 0.02


def test_each_event_is_emitted_once(walk):
    events = [e for _, result in walk for e in result.events]
    by_track = defaultdict(list)
    for event in events:
        by_track[event.track_id].append((event.type, event.label))
    assert by_track[1] == [(EventType.APPEARED, EILEEN), (EventType.IDENTIFIED, EILEEN)]
    grace_tracks = sorted(t for t in by_track if t != 1)
    assert len(grace_tracks) == 2
    assert by_track[grace_tracks[0]] == [
        (EventType.APPEARED, GRACE),
        (EventType.IDENTIFIED, GRACE),
        (EventType.LEFT, GRACE),
    ]
    assert by_track[grace_tracks[1]] == [
        (EventType.APPEARED, GRACE),
        (EventType.IDENTIFIED, GRACE),
    ]
    new_track_faces = Counter(f.track_id for _, r in walk for f in r.faces if f.is_new_track)
    assert new_track_faces == {t: 1 for t in by_track}


def test_tracking_saves_embeddings_compared_to_every_frame(recognizer, walk):
    untracked = run(StreamRecognizer(recognizer, tracking(enabled=False)), samples.sequence(60))
    assert all(f.track_id == -1 for _, r in untracked for f in r.faces)
    assert not any(r.events for _, r in untracked)
    off = sum(r.embedded for _, r in untracked) / len(untracked)
    on = sum(r.embedded for _, r in walk[:60]) / 60
    assert on * 3 <= off


def test_budget_caps_embeddings_per_frame_and_spaces_re_embeddings(recognizer):
    """Five still faces, one embedding allowed per frame: each gets named, then re-embedded
    every K frames."""
    config = tracking(
        max_embeddings_per_frame=1, reembed_interval=6, detect_interval=1, min_evidence=2
    )
    stream = StreamRecognizer(recognizer, config)
    frame = samples.scene(5)
    embedded_at = defaultdict(list)
    results = []
    for i in range(60):
        result = stream.process(frame, i / 30)
        results.append(result)
        assert result.embedded <= 1
        for face in result.faces:
            if face.embedding is not None:
                embedded_at[face.track_id].append(i)
    final = results[-1].faces
    assert len(final) == 5 and all(f.label in (EILEEN, GRACE) for f in final)
    for track_id, frames in embedded_at.items():
        settled = frames[config.min_evidence:]  # after the first verdict
        assert all(b - a >= config.reembed_interval for a, b in zip(settled, settled[1:])), (
            track_id,
            frames,
        )


def test_detection_every_third_frame_predicts_faces_in_between(recognizer):
    stream = StreamRecognizer(recognizer, tracking(detect_interval=3))
    results = run(stream, samples.sequence(60))
    assert [r.detected for _, r in results] == [i % 3 == 0 for i in range(60)]
    for frame, result in results[10:]:
        for face in result.faces:
            person = samples.truth_for(face.detection.box, frame)
            assert person is None or face.label == samples.PEOPLE[person]
    astronaut = [samples.truth_for(f.detection.box, fr) for fr, r in results[10:] for f in r.faces]
    assert astronaut.count("astronaut") == 50


def test_time_going_backwards_drops_every_track(recognizer):
    stream = StreamRecognizer(recognizer, tracking())
    run(stream, samples.sequence(10))
    frame = next(samples.sequence(1))
    result = stream.process(frame.rgb, 0.0)
    assert [(e.type, e.track_id) for e in result.events] == [(EventType.LEFT, 1)]


# --- live enrolment -----------------------------------------------------------------------

def astronaut_only(frames: int = 120):
    return samples.sequence(frames, cast=samples.DEFAULT_CAST[:1], occluded={}, dropped=range(0))


def test_live_enrolment_collects_diverse_samples_then_recognises():
    recognizer = make_recognizer(enrolled=False)
    config = tracking(enroll_max_similarity=0.997)
    stream = StreamRecognizer(recognizer, config)
    status = stream.start_enrollment("Eileen", 4)
    assert status.state == EnrollState.WAITING and status.needed == 4
    progress, events = [], []
    for frame in samples.looks("astronaut"):
        result = stream.process(frame.rgb, frame.stamp)
        events += result.events
        progress.append(stream.enrollment_status().collected)
        if stream.enrollment_status().state == EnrollState.DONE:
            break
    status = stream.enrollment_status()
    assert status.state == EnrollState.DONE, status
    assert progress == sorted(progress) and progress[-1] == 4
    assert status.skipped.get("near duplicate", 0) > 0
    samples_taken = recognizer.gallery.embeddings("Eileen")
    similarity = samples_taken @ samples_taken.T
    assert similarity[np.triu_indices(4, 1)].max() <= 0.997
    # The enrolled face is named at once, and a fresh stream recognises her from scratch.
    result = stream.process(frame.rgb, frame.stamp + 1 / 30)
    assert [f.label for f in result.faces] == ["Eileen"]
    assert [(e.type, e.label) for e in events + result.events if e.type != EventType.APPEARED][
        -1
    ] == (EventType.IDENTIFIED, "Eileen")
    fresh = run(StreamRecognizer(recognizer, tracking()), samples.sequence(20))
    assert [f.label for f in fresh[-1][1].faces] == ["Eileen"]


def test_live_enrolment_skips_blurred_faces():
    recognizer = make_recognizer(enrolled=False)
    stream = StreamRecognizer(recognizer, tracking())
    stream.start_enrollment("Eileen", 2)
    for frame in astronaut_only(30):
        stream.process(cv2.GaussianBlur(frame.rgb, (0, 0), 3), frame.stamp)
    status = stream.enrollment_status()
    assert status.state == EnrollState.COLLECTING and status.collected == 0
    assert status.skipped["blurred"] >= 5
    assert "Eileen" not in recognizer.gallery


def test_live_enrolment_times_out_and_cancels_without_enrolling():
    recognizer = make_recognizer(enrolled=False)
    stream = StreamRecognizer(recognizer, tracking(enroll_timeout=1.0))
    stream.start_enrollment("Eileen", 50)
    run(stream, astronaut_only(40))
    status = stream.enrollment_status()
    assert status.state == EnrollState.FAILED and "timed out" in status.message
    stream.start_enrollment("Eileen", 50)
    assert stream.cancel_enrollment().state == EnrollState.CANCELLED
    assert "Eileen" not in recognizer.gallery


def test_live_enrolment_rejects_bad_requests(recognizer):
    stream = StreamRecognizer(recognizer, tracking())
    with pytest.raises(ValueError, match="reserved"):
        stream.start_enrollment("unknown_3", 3)
    with pytest.raises(ValueError, match="no face track 7"):
        stream.start_enrollment("Eileen", 3, track_id=7)
    with pytest.raises(ValueError, match="num_samples"):
        stream.start_enrollment("Eileen", 0)
    stream.start_enrollment("Eileen", 3)
    with pytest.raises(ValueError, match="in progress"):
        stream.start_enrollment("Someone", 3)


def test_wait_for_enrollment_returns_when_frames_from_another_thread_finish_it():
    recognizer = make_recognizer(enrolled=False)
    stream = StreamRecognizer(recognizer, tracking(enroll_max_similarity=0.997))
    stream.start_enrollment("Eileen", 2)

    def camera():
        for frame in samples.looks("astronaut", 60):
            stream.process(frame.rgb, frame.stamp)

    thread = threading.Thread(target=camera)
    thread.start()
    status = stream.wait_for_enrollment(timeout=60)
    thread.join()
    assert status.state == EnrollState.DONE and status.result.added == 2


# --- unknown people ------------------------------------------------------------------------

def test_strangers_get_stable_unknown_labels_and_can_be_promoted():
    recognizer = make_recognizer(enrolled=False)
    stream = StreamRecognizer(recognizer, tracking(cluster_unknowns=True))
    results = run(stream, samples.sequence())
    labels = defaultdict(list)
    for frame, result in results:
        for face in result.faces:
            person = samples.truth_for(face.detection.box, frame)
            if person and face.label != UNKNOWN:
                labels[person].append((face.track_id, face.label))
    assert {label for _, label in labels["astronaut"]} == {"unknown_1"}
    grace = labels["grace_hopper"]
    assert {label for _, label in grace} == {"unknown_2"} and len({t for t, _ in grace}) == 2
    assert stream.unknown_clusters() == ["unknown_1", "unknown_2"]
    assert len(recognizer.gallery) == 0  # clusters stay out of the gallery

    result = stream.promote_unknown("unknown_2", "Grace")
    assert result.added > 0 and "Grace" in recognizer.gallery
    assert stream.unknown_clusters() == ["unknown_1"]
    last = results[-1][0]
    after = stream.process(last.rgb, last.stamp + 1 / 30)
    assert [(e.type, e.label, e.previous_label) for e in after.events] == [
        (EventType.IDENTIFIED, "Grace", "unknown_2")]
    with pytest.raises(KeyError):
        stream.promote_unknown("unknown_2", "Grace")


def test_benchmark_tracking_command_prints_both_modes_and_the_goals(capsys):
    from face_recog_ros.cli import main
    status = main(["benchmark-tracking", "--frames", "60"])
    out = capsys.readouterr().out
    assert status in (0, 1)  # 1 only says a goal was missed on this (short, shared) run
    for row in (
        "off ",
        "on ",
        "on, detect every frame",
        "goal embedder calls",
        "goal zero label flips",
    ):
        assert row in out


def test_a_face_in_view_is_named_soon_after_its_person_is_enrolled_from_a_photo():
    recognizer = make_recognizer(enrolled=False)
    stream = StreamRecognizer(recognizer, tracking())
    frames = list(astronaut_only(60))
    before = run(stream, frames[:30])
    assert {f.label for _, r in before[10:] for f in r.faces} == {UNKNOWN}
    recognizer.enroll(EILEEN, [samples.photo("astronaut")])
    after = run(stream, frames[30:])
    first_named = next(
        i for i, (_, r) in enumerate(after) if [f.label for f in r.faces] == [EILEEN]
    )
    assert first_named <= 5
    assert all([f.label for f in r.faces] == [EILEEN] for _, r in after[first_named:])
    events = [(e.type, e.label) for _, r in after for e in r.events]
    assert events == [(EventType.IDENTIFIED, EILEEN)]
