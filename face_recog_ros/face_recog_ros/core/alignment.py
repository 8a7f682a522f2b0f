"""Keypoint alignment (alignment.method 'keypoints'): warp a face onto the embedder's template.

Embedders are trained on faces cropped and rotated one particular way; matching that
geometry matters more for accuracy than any other pre-processing step. BlazeFace gives
six keypoints; the four stable ones (eyes, nose tip, mouth centre) are mapped onto the
template with a least-squares similarity transform (rotation, uniform scale, shift). The
default, landmark alignment, is in aligner.py; this is its cheaper, less faithful fallback.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Detection

# Keypoints used for alignment: right_eye, left_eye, nose_tip, mouth_center.
ALIGN_KEYPOINTS = (0, 1, 2, 3)


@dataclass(frozen=True)
class AlignmentTemplate:
    """Where the four alignment keypoints land in an embedder's input chip (pixels)."""

    points: np.ndarray  # (4, 2) float32
    size: tuple[int, int]  # chip (width, height)

    @classmethod
    def from_dict(cls, data: dict, size: tuple[int, int]) -> "AlignmentTemplate":
        try:
            pts = np.array(
                [data[k] for k in ("right_eye", "left_eye", "nose_tip", "mouth_center")],
                dtype=np.float32,
            )
        except KeyError as exc:
            raise ValueError(
                f"alignment template lacks keypoint {exc}; needs right_eye, left_eye, "
                "nose_tip, mouth_center as [x, y] chip pixels"
            ) from None
        if pts.shape != (4, 2) or not np.isfinite(pts).all():
            raise ValueError("alignment template points must be four finite [x, y] pairs")
        return cls(points=pts, size=(int(size[0]), int(size[1])))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping src points onto dst; returns 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = (src_c ** 2).sum() / len(src)
    scale = (s * d).sum() / var if var > 0 else 1.0
    shift = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, shift[:, None]]).astype(np.float32)


def align_face(rgb: np.ndarray, detection: Detection, template: AlignmentTemplate) -> np.ndarray:
    """Return the face chip (template.size) cut from rgb by the keypoint similarity transform."""
    matrix = similarity_transform(detection.keypoints[list(ALIGN_KEYPOINTS)], template.points)
    return cv2.warpAffine(rgb, matrix, template.size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
