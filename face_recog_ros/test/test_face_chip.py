"""dlib's face chip, reproduced: bit for bit from dlib's points, and embedding-close from ours."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face_recog_ros import FaceRecognizer, RecognizerConfig
from face_recog_ros.core.embedding import Embedder, EmbedderSpec
from face_recog_ros.core.face_chip import chip_details, extract_face_chip, pyramid_down
from face_recog_ros.core.recognizer import main_face
from face_recog_ros.core.runtime import models_dir


def dlib_chip(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    import dlib
    parts = [dlib.point(int(x), int(y)) for x, y in points]
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), parts)
    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(rgb), shape, size=150, padding=0.25))


def test_chip_is_dlibs_chip_bit_for_bit(dlib_faces):
    for face in dlib_faces:
        chip = extract_face_chip(face.rgb, face.points, 150, 0.25)
        np.testing.assert_array_equal(chip, face.chip, err_msg=face.name)


@pytest.mark.parametrize("scale", [2.5, 5.0])
def test_large_faces_go_through_dlibs_pyramid(dlib_faces, scale):
    """A face over twice the chip's size is shrunk with dlib's pyramid_down first (one or two
    levels)."""
    pytest.importorskip("dlib")
    face = dlib_faces[0]
    big = cv2.resize(face.rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    points = np.floor(face.points * scale + 0.5)
    rect, _ = chip_details(points, 150, 0.25)
    assert rect[2] - rect[0] > 2 * 150
    np.testing.assert_array_equal(extract_face_chip(big, points, 150, 0.25),
                                  dlib_chip(big, points))


def test_rotated_and_clipped_faces(dlib_faces):
    pytest.importorskip("dlib")
    face = dlib_faces[2]
    h, w = face.rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 35, 1.0)
    turned = cv2.warpAffine(face.rgb, matrix, (w, h))
    points = np.floor(face.points @ matrix[:, :2].T + matrix[:, 2] + 0.5)
    np.testing.assert_array_equal(extract_face_chip(turned, points, 150, 0.25),
                                  dlib_chip(turned, points))
    x0 = int(face.points[:, 0].mean())  # cut the photo through the face: part of the chip is black
    clipped = np.ascontiguousarray(face.rgb[:, x0:])
    shifted = face.points - [x0, 0]
    chip = extract_face_chip(clipped, shifted, 150, 0.25)
    np.testing.assert_array_equal(chip, dlib_chip(clipped, shifted))
    assert (chip[:, :20] == 0).all()


def test_pyramid_down_size_and_flat_image():
    flat = np.full((21, 30, 3), 200, np.uint8)
    down = pyramid_down(flat)
    assert down.shape == (9, 13, 3) and (down == 200).all()


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match="5 finite"):
        extract_face_chip(np.zeros((100, 100, 3), np.uint8), np.zeros((4, 2)), 150, 0.25)
    dot = np.zeros((100, 100, 3), np.uint8)
    dot[50, 50] = 255
    chip = extract_face_chip(dot, np.full((5, 2), 50.0), 150, 0.25)  # all 5 in one pixel: no face,
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8  # but no crash either
    far = np.array([[40, 0], [30, 0], [0, 0], [10, 0], [20, 25]], float) + 1e5
    assert not extract_face_chip(np.zeros((100, 100, 3), np.uint8), far, 150, 0.25).any()


def test_chip_from_our_landmarks_embeds_like_dlibs_chip(dlib_faces):
    """The whole landmark path (BlazeFace, calibrated box, predictor, chip) against
    face_recognition's (HOG box, predictor, chip): cosine of the float32 embeddings >= 0.995."""
    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    embedder = Embedder(EmbedderSpec.from_yaml(models_dir() / "dlib_resnet_v1_float32.yaml"))
    for face in dlib_faces:
        detection = main_face(recognizer.detect_photo(face.rgb))
        geometry = recognizer.geometry(face.rgb, [detection])[0]
        chip = recognizer.aligner.chip(face.rgb, detection, geometry)
        ours, theirs = embedder.embed(np.stack([chip, face.chip]))
        assert float(ours @ theirs) >= 0.995, face.name
