"""Head yaw, pitch and roll from a few 2-D facial points and their place on an average 3-D face.

Why: a face turned too far is embedded badly, so it is reported but not identified, and the
tracker re-embeds a face when its pose changed. A pose in degrees from the landmarks says that
better than the old ratio of BlazeFace's nose offset to its eye distance, which mixed yaw with
roll and with how long a nose is.

How: faces are small next to their distance from the camera, so the image points are a scaled
rotation of the 3-D points, projected (scaled orthographic projection). A plain least-squares
2x3 map gives a first guess; two Gauss-Newton steps on the rotation and scale then fit the
points exactly under that model (the plain map lets the one point off the eye plane, the nose,
be explained by shear: yaw came out 30% low and noisy).

Which points, measured against the pose of a 468-point MediaPipe Face Mesh fit on the faces-dev
photos (correlation) and on a video of one frontal photo moved and rescaled (jitter, standard
deviation): yaw from dlib's 5 landmarks 0.91 and 0.4 degrees; from BlazeFace's 4 keypoints 0.95
but 6 degrees of jitter (its nose tip moves by whole pixels of a 128x128 input). Pitch from the
5 landmarks is not usable (0.57: a long nose reads as looking down, up to 80 degrees on frontal
faces); from BlazeFace's keypoints, which include the mouth, 0.88 and 3 degrees. So landmark
alignment takes yaw and roll from the landmarks and pitch from the keypoints.

The 3-D points are vertices of MediaPipe's canonical face model
(mediapipe/modules/face_geometry/data/canonical_face_model.obj, Apache-2.0; centimetres).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _camera_axes(*points: tuple[float, float, float]) -> np.ndarray:
    """Canonical-model (x: subject's left, y: up, z: towards the viewer) -> image-like axes
    (x: image right for a face looking at the camera, y: down, z: away from the camera)."""
    return np.array(points, np.float64) * [1.0, -1.0, -1.0]


# Eye corners: vertices 33, 133 (subject's right eye, outer and inner) and 263, 362 (left eye).
_RIGHT_OUTER, _RIGHT_INNER = (-4.445859, 2.663991, 3.173422), (-1.856432, 2.585245, 3.757904)
_LEFT_OUTER, _LEFT_INNER = (4.445859, 2.663991, 3.173422), (1.856432, 2.585245, 3.757904)
# dlib's 5 landmarks (landmarks.LANDMARK_NAMES order); the nose base is vertex 2 (subnasale).
LANDMARKS_3D = _camera_axes(_LEFT_OUTER, _LEFT_INNER, _RIGHT_OUTER, _RIGHT_INNER,
                            (0.0, -2.089024, 6.058267))
# BlazeFace's right eye, left eye, nose tip, mouth centre: eye corners' midpoints, vertex 1, and
# the midpoint of the inner lips (vertices 13 and 14).
KEYPOINTS_3D = _camera_axes(tuple(np.mean([_RIGHT_OUTER, _RIGHT_INNER], 0)),
                            tuple(np.mean([_LEFT_OUTER, _LEFT_INNER], 0)),
                            (0.0, -1.126865, 7.475604), (0.0, -4.268418, 5.312118))


@dataclass(frozen=True)
class HeadPose:
    """Degrees. 0, 0, 0 faces the camera upright."""

    yaw: float  # > 0: turned towards the image's right (the subject's left)
    pitch: float  # > 0: tilted up
    roll: float  # > 0: rotated clockwise in the image


_EYE3 = np.eye(3)
_DAMPING = 1e-9 * np.eye(4)  # keeps the normal equations solvable for degenerate points


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (N, 3) arrays (np.cross costs more than the arithmetic)."""
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], 1)


def _cross_matrices(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) with m @ u == cross(v, u)."""
    m = np.zeros(v.shape + (3,))
    m[..., 0, 1], m[..., 0, 2], m[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    m[..., 1, 0], m[..., 2, 0], m[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    return m


class PoseEstimator:
    """Poses from 2-D points that correspond, in order, to ``model`` (P, 3) 3-D points."""

    def __init__(self, model: np.ndarray, steps: int = 2) -> None:
        """``steps`` Gauss-Newton steps after the first guess: 2 reach 0.1 degree of convergence on
        faces-dev yaw; 0 keeps the first guess (enough for pitch from the keypoints)."""
        self.steps = steps
        centred = np.asarray(model, np.float64) - np.mean(model, axis=0)
        if np.linalg.matrix_rank(centred) < 3:
            raise ValueError("the 3-D points must not lie in one plane")
        self._model = centred
        self._model_cross = _cross_matrices(centred)  # (P, 3, 3)
        # Least squares for A in image_centred = A @ model_centred: A = image^T @ _solve.
        self._solve = centred @ np.linalg.inv(centred.T @ centred)

    def estimate(self, points: np.ndarray) -> list[HeadPose]:
        """(N, P, 2) image points -> N poses."""
        points = np.asarray(points, np.float64)
        n, count = points.shape[:2]
        centred = points - points.mean(axis=1, keepdims=True)
        # First guess: the least-squares 2x3 map, its rows made orthonormal.
        a = np.einsum("npi,pj->nij", centred, self._solve)
        r1 = a[:, 0] / np.maximum(np.sqrt((a[:, 0] ** 2).sum(1)), 1e-12)[:, None]
        r2 = a[:, 1] - (a[:, 1] * r1).sum(1)[:, None] * r1
        r2 /= np.maximum(np.sqrt((r2 ** 2).sum(1)), 1e-12)[:, None]
        rotation = np.stack([r1, r2, _cross(r1, r2)], 1)
        scale = 0.5 * (np.sqrt((a[:, 0] ** 2).sum(1)) + np.sqrt((a[:, 1] ** 2).sum(1)))
        observed = centred.reshape(n, -1)
        for _ in range(self.steps):
            # Residuals of scale * (rotation @ model)[:2] and their Jacobian for a small rotation
            # w applied first (rotation @ exp([w]x)) and a change of scale.
            top = rotation[:, :2]
            projected = np.swapaxes(top @ self._model.T, 1, 2)  # (N, P, 2)
            residual = observed - scale[:, None] * projected.reshape(n, -1)
            jacobian = np.empty((n, 2 * count, 4))
            jacobian[:, :, :3] = (np.matmul(top[:, None], self._model_cross)
                                  * -scale[:, None, None, None]).reshape(n, 2 * count, 3)
            jacobian[:, :, 3] = projected.reshape(n, -1)
            jt = np.swapaxes(jacobian, 1, 2)
            step = np.linalg.solve(jt @ jacobian + _DAMPING, jt @ residual[:, :, None])[:, :, 0]
            angle = np.sqrt((step[:, :3] ** 2).sum(1))
            axis = _cross_matrices(step[:, :3] / np.maximum(angle, 1e-12)[:, None])
            rotation = rotation @ (_EYE3 + np.sin(angle)[:, None, None] * axis
                                   + (1 - np.cos(angle))[:, None, None] * (axis @ axis))
            scale = scale + step[:, 3]
        # rotation = roll (image plane) @ yaw (vertical axis) @ pitch (horizontal axis): take the
        # roll out, then read yaw and pitch off the direction the face looks.
        roll = np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])
        forward = -rotation[:, :, 2]
        c, s = np.cos(roll), np.sin(roll)
        x, y = c * forward[:, 0] + s * forward[:, 1], -s * forward[:, 0] + c * forward[:, 1]
        yaw = np.degrees(np.arctan2(x, -forward[:, 2]))
        pitch = np.degrees(np.arctan2(-y, np.hypot(x, forward[:, 2])))
        return [HeadPose(float(a), float(b), float(r))
                for a, b, r in zip(yaw, pitch, np.degrees(roll))]
