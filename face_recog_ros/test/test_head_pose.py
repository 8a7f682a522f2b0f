"""Head pose from facial points: exact on a rotated model, consistent on real faces."""
from __future__ import annotations

import numpy as np
import pytest

from face_recog_ros import FaceRecognizer, RecognizerConfig
from face_recog_ros.core.head_pose import KEYPOINTS_3D, LANDMARKS_3D, PoseEstimator
from face_recog_ros.core.recognizer import main_face
from face_recog_ros.io import samples


def turned(model: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model seen after the head turns (yaw to the image's right, pitch up, roll clockwise)."""
    y, p, r = np.radians([yaw, pitch, roll])
    turn = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    nod = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    tilt = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return (tilt @ turn @ nod @ model.T).T[:, :2] * 9 + [320, 240]


@pytest.mark.parametrize("model", [LANDMARKS_3D, KEYPOINTS_3D], ids=["landmarks", "keypoints"])
@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (35, 0, 0), (-60, 0, 0), (0, 25, 0),
                                              (0, -30, 0), (0, 0, 20), (25, 15, -10)])
def test_pose_of_a_turned_model_is_recovered(model, yaw, pitch, roll):
    pose = PoseEstimator(model).estimate(turned(model, yaw, pitch, roll)[None])[0]
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=0.1)


def test_flat_models_are_refused():
    with pytest.raises(ValueError, match="plane"):
        PoseEstimator(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float))


@pytest.mark.parametrize("method", ["landmarks", "keypoints"])
def test_sample_faces_are_near_frontal_and_mirroring_flips_yaw(method):
    config = RecognizerConfig()
    config.gallery.path = ""
    config.alignment.method = method
    recognizer = FaceRecognizer(config)
    for key in samples.PEOPLE:
        poses = []
        for rgb in (samples.photo(key), np.ascontiguousarray(samples.photo(key)[:, ::-1])):
            face = main_face(recognizer.detect_photo(rgb))
            poses.append(recognizer.geometry(rgb, [face])[0].pose)
        # BlazeFace sees a photo and its mirror image a few pixels apart (4 photo pixels per input
        # pixel here): the poses agree to within ~10 degrees, not exactly.
        assert all(abs(p.yaw) < 20 and abs(p.pitch) < 30 for p in poses), poses
        assert poses[1].yaw == pytest.approx(-poses[0].yaw, abs=10), poses
        assert poses[1].pitch == pytest.approx(poses[0].pitch, abs=12), poses
