"""FaceRecognizer end to end with the real models on public-domain photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face_recog_ros.io import samples
from face_recog_ros.config import RecognizerConfig
from face_recog_ros.gallery.model import Gallery
from face_recog_ros.gallery.errors import GalleryMismatch
from face_recog_ros.gallery.store import load_gallery, save_gallery
from face_recog_ros.core.recognizer import EnrollError, FaceRecognizer
from face_recog_ros.types import UNKNOWN

EILEEN, GRACE = samples.PEOPLE["astronaut"], samples.PEOPLE["grace_hopper"]


def make(path: str = "", **options) -> FaceRecognizer:
    config = RecognizerConfig()
    config.gallery.path = path
    for dotted, value in options.items():
        group, name = dotted.split("__")
        setattr(getattr(config, group), name, value)
    return FaceRecognizer(config)


@pytest.fixture(scope="module")
def enrolled() -> FaceRecognizer:
    recognizer = make()
    recognizer.enroll(EILEEN, [samples.photo("astronaut")])
    recognizer.enroll(GRACE, [samples.photo("grace_hopper")])
    return recognizer


def relit_and_moved(name: str) -> np.ndarray:
    """A new frame of the same person: smaller, mirrored, darker, elsewhere in a 640x480 scene."""
    frame = samples.background().copy()
    samples.place(frame, name, (420, 260), 230, mirror=True, gain=0.7)
    return frame


def test_same_person_matches_across_photos_and_different_people_do_not(enrolled):
    for key, name in samples.PEOPLE.items():
        faces = enrolled.process(relit_and_moved(key))
        assert len(faces) == 1
        face = faces[0]
        assert face.label == name
        assert face.similarity >= enrolled.threshold
        assert face.margin > 0.05
    eileen = enrolled.gallery.embeddings(EILEEN)[0]
    grace = enrolled.gallery.embeddings(GRACE)[0]
    assert float(eileen @ grace) < enrolled.threshold


def test_unenrolled_person_is_unknown_but_keeps_the_best_candidate():
    recognizer = make()
    recognizer.enroll(EILEEN, [samples.photo("astronaut")])
    faces = recognizer.process(relit_and_moved("grace_hopper"))
    assert [f.label for f in faces] == [UNKNOWN]
    assert faces[0].candidate == EILEEN
    assert faces[0].similarity < recognizer.threshold


def test_five_faces_are_all_named_and_timed(enrolled):
    frame = samples.scene(5)
    recognition = enrolled.recognize(frame)
    faces = recognition.faces
    assert len(faces) == 5
    assert sorted(f.label for f in faces) == sorted([EILEEN, GRACE, EILEEN, GRACE, EILEEN])
    for stage in ("detect", "landmarks", "align", "embed", "match", "total"):
        assert recognition.timings[stage] >= 0
    assert recognition.embedded == 5
    for face in faces:  # boxes are in frame pixels and contain their keypoints
        x1, y1, x2, y2 = face.detection.box
        kx, ky = face.detection.keypoints[:4].T
        assert (kx > x1).all() and (kx < x2).all() and (ky > y1).all() and (ky < y2).all()


def test_each_once_names_each_person_at_most_once(enrolled):
    frame = samples.background().copy()
    samples.place(frame, "astronaut", (170, 240), 260)
    samples.place(frame, "astronaut", (470, 240), 260, mirror=True, gain=0.8)
    faces = enrolled.process(frame)
    assert [f.label for f in faces].count(EILEEN) == 2
    enrolled.config.recognition.each_once = True
    try:
        faces = enrolled.process(frame)
    finally:
        enrolled.config.recognition.each_once = False
    labels = [f.label for f in faces]
    assert labels.count(EILEEN) == 1 and labels.count(UNKNOWN) == 1


def test_small_and_turned_faces_are_reported_not_identified(enrolled):
    frame = samples.background().copy()
    samples.place(frame, "astronaut", (320, 240), 300)
    enrolled.config.recognition.min_eye_distance = 500.0
    try:
        faces = enrolled.process(frame)
    finally:
        enrolled.config.recognition.min_eye_distance = 12.0
    assert len(faces) == 1 and faces[0].label == UNKNOWN
    assert faces[0].rejected.startswith("too small")


def test_frames_without_faces_give_nothing(enrolled):
    for frame in (samples.background(), np.zeros((480, 640, 3), np.uint8),
                  np.full((480, 640, 3), 255, np.uint8)):
        assert enrolled.process(frame) == []


def test_enroll_reports_which_images_gave_no_face():
    recognizer = make()
    blank = np.zeros((200, 200, 3), np.uint8)
    with pytest.raises(EnrollError, match="no face found"):
        recognizer.enroll(EILEEN, [blank])
    result = recognizer.enroll(
        EILEEN, [blank, samples.photo("astronaut")], labels=["blank.png", "a.png"]
    )
    assert result.added == 1 and result.total == 1
    assert result.skipped == ["blank.png: no face found"]


def test_enroll_can_require_exactly_one_face():
    recognizer = make()
    with pytest.raises(EnrollError, match="2 faces found"):
        recognizer.enroll(EILEEN, [samples.scene(2)], require_single=True)


def test_photo_subject_is_found_in_a_tight_crop():
    recognizer = make()
    x1, y1, x2, y2 = (175, 76, 265, 166)  # the face alone, as in a cropped face dataset
    crop = np.ascontiguousarray(samples.photo("astronaut")[y1:y2, x1:x2])
    crop = cv2.resize(crop, (150, 150))
    assert recognizer.embed_for_enrollment(crop).shape == (recognizer.spec.output_dim,)


def test_gallery_persists_across_restarts(tmp_path):
    path = tmp_path / "gallery.npz"
    first = make(str(path))
    first.enroll(EILEEN, [samples.photo("astronaut")])
    first.rename(EILEEN, "eileen")
    second = make(str(path))
    assert second.gallery.names() == ["eileen"]
    assert second.process(relit_and_moved("astronaut"))[0].label == "eileen"
    second.forget("eileen")
    assert make(str(path)).gallery.names() == []


def test_gallery_of_another_model_is_moved_aside_not_mixed(tmp_path):
    path = tmp_path / "gallery.npz"
    other = Gallery("some_other_model", 128)
    other.add("bob", np.ones((1, 128), np.float32))
    save_gallery(other, path)
    recognizer = make(str(path))
    assert recognizer.gallery_warning and "some_other_model" in recognizer.gallery_warning
    assert len(recognizer.gallery) == 0
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("gallery.npz.bad-")]
    assert len(moved) == 1
    with pytest.raises(GalleryMismatch):
        load_gallery(moved[0], recognizer.spec.embedding_space, 128)


def test_float_and_int8_models_agree(enrolled):
    float_model = make(embedder__model="dlib_resnet_v1_float32")
    frame = relit_and_moved("astronaut")
    a = enrolled.process(frame)[0].embedding
    b = float_model.process(frame)[0].embedding
    assert float(a @ b) > 0.98
