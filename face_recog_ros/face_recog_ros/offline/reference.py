"""The ageitgey/face_recognition (dlib HOG + ResNet) pipeline, as the yardstick for accuracy and
speed.

Optional: only the evaluate/benchmark commands use it, and only when it is installed.
"""

from __future__ import annotations

import numpy as np


def available() -> bool:
    try:
        import face_recognition  # noqa: F401
    except Exception:  # face_recognition exits/raises in several ways when its models are missing
        return False
    return True


class FaceRecognitionReference:
    """`face_recognition.face_locations` (HOG) + `face_encodings` (5-point alignment, ResNet)."""

    name = "face_recognition (dlib)"

    def __init__(self) -> None:
        import face_recognition
        self._fr = face_recognition

    def locate(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        return self._fr.face_locations(rgb)

    def encode(self, rgb: np.ndarray, locations: list) -> list[np.ndarray]:
        return self._fr.face_encodings(rgb, locations)

    def largest(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """(top, right, bottom, left) of the largest HOG face, as face_locations gives it."""
        locations = self.locate(rgb)
        area = (lambda box: (box[2] - box[0]) * (box[1] - box[3]))
        return max(locations, key=area) if locations else None

    def chip(self, rgb: np.ndarray, location: tuple[int, int, int, int]) -> np.ndarray:
        """The 150x150 chip face_encodings embeds for this face: its 5-point landmarks, then
        dlib.get_face_chip(size=150, padding=0.25) (what compute_face_descriptor cuts)."""
        import dlib
        from face_recognition.api import _raw_face_landmarks  # the landmarks face_encodings uses
        shape = _raw_face_landmarks(rgb, [location], model="small")[0]
        return np.asarray(dlib.get_face_chip(rgb, shape, size=150, padding=0.25))

    def embed_largest(self, rgb: np.ndarray) -> np.ndarray | None:
        locations = self.locate(rgb)
        if not locations:
            return None
        top, right, bottom, left = max(locations,
                                       key=lambda box: (box[2] - box[0]) * (box[1] - box[3]))
        return self.encode(rgb, [(top, right, bottom, left)])[0]
