"""Head yaw, pitch and roll from a few 2-D facial points and their place on an average 3-D face.

Why: a face turned too far is embedded badly, so it is reported but not identified, and the
tracker re-embeds a face when its pose changed. A pose in degrees from the landmarks says that
better than the old ratio of BlazeFace's nose offset to its eye distance, which mixed yaw with
roll and with how long a nose is.

How: under weak perspective (faces are small next to their distance from the camera) the
centred image points are a 2x3 linear map of the centred 3-D points; least squares gives the
map, its rows give the rotation, and the rotated forward axis gives yaw and pitch. The 3-D
points are vertices of MediaPipe's canonical face model
(mediapipe/modules/face_geometry/data/canonical_face_model.obj, Apache-2.0; centimetres).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _camera_axes(*points: tuple[float, float, float]) -> np.ndarray:
    """Canonical-model (x: subject's left, y: up, z: towards the viewer) -> image-like axes
    (x: image right for a face looking at the camera, y: down, z: away from the camera)."""
    return np.array(points, np.float64) * [1.0, -1.0, -1.0]


_RIGHT_OUTER, _RIGHT_INNER = (-4.445859, 2.663991, 3.173422), (-1.856432, 2.585245, 3.757904)  # 33, 133
_LEFT_OUTER, _LEFT_INNER = (4.445859, 2.663991, 3.173422), (1.856432, 2.585245, 3.757904)  # 263, 362
# dlib's 5 landmarks (landmarks.LANDMARK_NAMES order); the nose base is vertex 2 (subnasale).
LANDMARKS_3D = _camera_axes(_LEFT_OUTER, _LEFT_INNER, _RIGHT_OUTER, _RIGHT_INNER, (0.0, -2.089024, 6.058267))
# BlazeFace's right eye, left eye, nose tip, mouth centre: eye corners' midpoints, vertex 1, and
# the midpoint of the inner lips (vertices 13 and 14).
KEYPOINTS_3D = _camera_axes(tuple(np.mean([_RIGHT_OUTER, _RIGHT_INNER], 0)),
                            tuple(np.mean([_LEFT_OUTER, _LEFT_INNER], 0)),
                            (0.0, -1.126865, 7.475604), (0.0, -4.268418, 5.312118))
# dlib's landmarks alone say little about depth (the nose base is 2.6 cm in front of the eye
# corners): against the pose of a 468-point MediaPipe Face Mesh on the faces-dev photos their
# yaw correlates 0.78 and comes out 30% low. With BlazeFace's nose tip and mouth centre added
# (4.3 cm lever) it correlates 0.95 with a slope of 1.0; pitch 0.91 (BlazeFace's 4 alone: 0.96, 0.91).
LANDMARKS_AND_KEYPOINTS_3D = np.concatenate([LANDMARKS_3D, KEYPOINTS_3D[2:4]])


@dataclass(frozen=True)
class HeadPose:
    """Degrees. 0, 0, 0 faces the camera upright."""

    yaw: float  # > 0: turned towards the image's right (the subject's left)
    pitch: float  # > 0: tilted up
    roll: float  # > 0: rotated clockwise in the image


class PoseEstimator:
    """Poses from 2-D points that correspond, in order, to ``model`` (P, 3) 3-D points."""

    def __init__(self, model: np.ndarray) -> None:
        centred = np.asarray(model, np.float64) - np.mean(model, axis=0)
        if np.linalg.matrix_rank(centred) < 3:
            raise ValueError("the 3-D points must not lie in one plane")
        # Least squares for A in image_centred = A @ model_centred: A = image^T @ _solve.
        self._solve = centred @ np.linalg.inv(centred.T @ centred)

    def estimate(self, points: np.ndarray) -> list[HeadPose]:
        """(N, P, 2) image points -> N poses."""
        points = np.asarray(points, np.float64)
        centred = points - points.mean(axis=1, keepdims=True)
        a = np.einsum("npi,pj->nij", centred, self._solve)  # (N, 2, 3): scaled rotation rows
        r1 = a[:, 0] / np.maximum(np.linalg.norm(a[:, 0], axis=1, keepdims=True), 1e-12)
        r2 = a[:, 1] - (a[:, 1] * r1).sum(1, keepdims=True) * r1
        r2 /= np.maximum(np.linalg.norm(r2, axis=1, keepdims=True), 1e-12)
        r3 = np.cross(r1, r2)
        forward = -np.stack([r1[:, 2], r2[:, 2], r3[:, 2]], 1)  # where the face looks, camera axes
        yaw = np.degrees(np.arctan2(forward[:, 0], -forward[:, 2]))
        pitch = np.degrees(np.arctan2(-forward[:, 1], np.hypot(forward[:, 0], forward[:, 2])))
        roll = np.degrees(np.arctan2(r2[:, 0], r1[:, 0]))
        return [HeadPose(float(y), float(p), float(r)) for y, p, r in zip(yaw, pitch, roll)]
