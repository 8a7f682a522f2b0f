"""Annotated images: boxes, names, similarity and track ids drawn onto a frame."""
from __future__ import annotations

import zlib

import cv2
import numpy as np

from ..types import UNKNOWN, Face


def label_color(label: str) -> tuple[int, int, int]:
    """A stable colour per name (RGB), grey for unknown faces."""
    if label == UNKNOWN or label.startswith(UNKNOWN):
        return (160, 160, 160)
    hue = zlib.crc32(label.encode()) % 180
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def face_caption(face: Face) -> str:
    text = (
        face.label
        if face.label != UNKNOWN or not face.candidate
        else f"{UNKNOWN} ({face.candidate}?)"
    )
    if (
        face.rejected and face.label == UNKNOWN
    ):  # a tracked face keeps its name through a bad frame
        text = face.rejected.split(":")[0]
    elif face.similarity:
        text += f" {face.similarity:.2f}"
    if face.track_id >= 0:
        text = f"#{face.track_id} {text}"
    return text


def annotate(rgb: np.ndarray, faces: list[Face], *, keypoints: bool = True) -> np.ndarray:
    """A copy of the RGB frame with every face boxed and captioned."""
    out = np.ascontiguousarray(rgb.copy())
    scale = max(0.4, min(out.shape[:2]) / 800)
    thick = max(1, int(round(2 * scale)))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.detection.box)
        color = label_color(face.label)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        if keypoints:
            for x, y in face.detection.keypoints:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, color, -1)
        caption = face_caption(face)
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
        ty = y1 - 4 if y1 - th - base - 4 > 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - 4), (x1 + tw + 4, ty + base), color, -1)
        cv2.putText(
            out,
            caption,
            (x1 + 2, ty - 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6 * scale,
            (0, 0, 0),
            thick,
            cv2.LINE_AA,
        )
    return out
