"""Keypoint alignment geometry: the similarity fit and the template chip."""
from __future__ import annotations

import numpy as np
import pytest

from face_recog_ros.core.alignment import AlignmentTemplate, align_face, similarity_transform
from face_recog_ros.core.detection import DetectorOptions, FaceDetector
from face_recog_ros.io import samples

TEMPLATE = AlignmentTemplate.from_dict(
    {"right_eye": [45.0, 46.0], "left_eye": [102.0, 46.0], "nose_tip": [73.0, 79.0],
     "mouth_center": [73.0, 108.0]}, (150, 150))


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([30.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(1).uniform(0, 100, (4, 2))
    dst = scale * src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rot, atol=1e-4)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-3)


def test_similarity_transform_never_mirrors():
    src = np.array([[0, 0], [10, 0], [5, 8], [5, 12]], float)
    mirrored = src * [-1, 1]
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_chip_puts_the_keypoints_on_the_template():
    rgb = np.ascontiguousarray(samples.photo("astronaut"))
    det = FaceDetector(DetectorOptions()).detect(rgb)[0]
    chip = align_face(rgb, det, TEMPLATE)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    matrix = similarity_transform(det.keypoints[:4], TEMPLATE.points)
    mapped = det.keypoints[:4] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - TEMPLATE.points).max() < 8  # four points, four-parameter fit


def test_template_must_name_four_finite_points():
    with pytest.raises(ValueError, match="nose_tip"):
        AlignmentTemplate.from_dict(
            {"right_eye": [1, 2], "left_eye": [3, 4], "mouth_center": [5, 6]}, (150, 150)
        )
    with pytest.raises(ValueError, match="finite"):
        AlignmentTemplate.from_dict(
            {k: [float("nan"), 1] for k in ("right_eye", "left_eye", "nose_tip", "mouth_center")},
            (150, 150),
        )
