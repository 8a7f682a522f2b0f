"""Alignment methods and the quality checks on head pose, through the real recognizer."""
from __future__ import annotations

import numpy as np
import pytest

from face_recog_ros import FaceRecognizer, RecognizerConfig
from face_recog_ros.core.aligner import FaceGeometry, QualityOptions, quality_problem
from face_recog_ros.core.head_pose import HeadPose
from face_recog_ros.core.recognizer import main_face
from face_recog_ros.io import samples


def recognizer(method: str = "landmarks", **recognition) -> FaceRecognizer:
    config = RecognizerConfig()
    config.gallery.path = ""
    config.alignment.method = method
    for name, value in recognition.items():
        setattr(config.recognition, name, value)
    return FaceRecognizer(config)


def geometry(eyes: float = 40.0, yaw: float = 0.0, pitch: float = 0.0) -> FaceGeometry:
    return FaceGeometry(np.zeros((5, 2)), eyes, HeadPose(yaw, pitch, 0.0))


def test_quality_reasons_name_the_problem_and_the_limit():
    options = QualityOptions(min_eye_distance=12, max_yaw_deg=50, max_pitch_deg=40)
    assert quality_problem(geometry(), options) == ""
    assert quality_problem(geometry(eyes=5), options) == "too small: eye distance 5 px < 12 px"
    assert quality_problem(geometry(yaw=-63), options) == "off frontal: yaw -63 deg beyond 50"
    assert quality_problem(geometry(pitch=45), options) == "off frontal: pitch +45 deg beyond 40"
    # The cheapest check first.
    assert quality_problem(geometry(eyes=5, yaw=80), options).startswith("too small")


@pytest.mark.parametrize("method", ["landmarks", "keypoints"])
def test_a_face_turned_beyond_the_yaw_limit_is_refused_with_the_reason(method):
    """The sample face is turned a few degrees; with the limit below that it is reported, not
    named."""
    frame = samples.scene(1)
    loose, strict = recognizer(method), recognizer(method, max_yaw_deg=0.0)
    name = samples.PEOPLE["astronaut"]
    loose.enroll(name, [samples.photo("astronaut")])
    strict.add_samples(name, loose.gallery.embeddings(name))
    named = loose.process(frame)[0]
    assert named.rejected == "" and named.label == name
    yaw = loose.geometry(frame, [named.detection])[0].pose.yaw
    recognition = strict.recognize(frame)
    refused = recognition.faces[0]
    assert refused.rejected == f"off frontal: yaw {yaw:+.0f} deg beyond 0"
    assert refused.label == "unknown" and refused.embedding is None and recognition.embedded == 0
    with pytest.raises(ValueError, match="face not usable: off frontal: yaw"):
        strict.embed_for_enrollment(samples.photo("astronaut"))


def test_both_methods_cut_chips_of_the_same_face():
    rgb = samples.photo("grace_hopper")
    embeddings = []
    for method in ("landmarks", "keypoints"):
        r = recognizer(method)
        face = main_face(r.detect_photo(rgb))
        g = r.geometry(rgb, [face])[0]
        assert g.points.shape == ((5, 2) if method == "landmarks" else (4, 2))
        chip = r.aligner.chip(rgb, face, g)
        assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
        embeddings.append(r.embedder.embed(chip)[0])
    assert float(embeddings[0] @ embeddings[1]) > 0.95


def test_flip_averages_the_mirrored_chip():
    plain, flipped = recognizer(), recognizer()
    flipped.config.alignment.flip = True
    rgb = samples.photo("astronaut")
    a, b = plain.embed_for_enrollment(rgb), flipped.embed_for_enrollment(rgb)
    assert np.linalg.norm(b) == pytest.approx(1.0, abs=1e-5)
    assert 0.97 < float(a @ b) < 0.99999  # close, but the mirror image did count
    faces = flipped.process(samples.scene(5))
    assert len(faces) == 5 and all(f.embedding is not None for f in faces)
