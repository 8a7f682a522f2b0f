"""Every face of a still photo, embedded: shared by the group-photo, look-alike, cluster and map
tools."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.recognizer import FaceRecognizer, main_face
from ..types import Detection


@dataclass
class PhotoFaces:
    detections: list[Detection]  # every face found
    reasons: list[str]  # per detection: why it was not embedded ('' = embedded)
    embeddings: np.ndarray  # (embedded faces, D), rows in detection order
    main: int  # index of the photo's subject (core.recognizer.main_face), -1 when no face

    def embedded(self) -> list[int]:
        """Detection indices that have an embedding, in the order of the embedding rows."""
        return [i for i, reason in enumerate(self.reasons) if not reason]


def photo_faces(recognizer: FaceRecognizer, rgb: np.ndarray) -> PhotoFaces:
    """Detect (with the still-photo retries of detect_photo) and embed every usable face."""
    detections = recognizer.detect_photo(rgb)
    if not detections:
        return PhotoFaces([], [], np.zeros((0, recognizer.spec.output_dim), np.float32), -1)
    embeddings, reasons = recognizer.embed(rgb, detections)
    main = main_face(detections)
    return PhotoFaces(
        detections, reasons, embeddings, next(i for i, d in enumerate(detections) if d is main)
    )


def crop_face(rgb: np.ndarray, box: np.ndarray, size: int, margin: float = 0.35) -> np.ndarray:
    """A square crop around a face box (with ``margin`` of its size on each side), size x size.

    Parts outside the photo are black, so faces at the border keep their place in the crop.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(int(round(max(x2 - x1, y2 - y1) * (1 + 2 * margin))), 1)
    left, top = int(round((x1 + x2 - side) / 2)), int(round((y1 + y2 - side) / 2))
    canvas = np.zeros((side, side, 3), np.uint8)
    sx1, sy1 = max(left, 0), max(top, 0)
    sx2, sy2 = min(left + side, rgb.shape[1]), min(top + side, rgb.shape[0])
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = rgb[sy1:sy2, sx1:sx2]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interpolation)
