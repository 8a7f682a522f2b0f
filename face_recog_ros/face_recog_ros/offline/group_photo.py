"""Who is in a group photo: every face tagged, left to right, and who of the enrolled is missing.

With ``each_once`` nobody can be in the photo twice: people are assigned to faces by the
optimal assignment over all face/person similarities (matching.match), so a second face that
resembles someone already placed stays unknown instead of duplicating the name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.matching import match
from .photo_faces import photo_faces
from ..core.recognizer import FaceRecognizer
from ..types import UNKNOWN, Face


@dataclass
class GroupResult:
    faces: list[Face]  # left to right
    not_found: list[str]  # enrolled people not named on any face

    def rows(self) -> list[dict]:
        return [{"label": f.label, "similarity": round(f.similarity, 4), "candidate": f.candidate,
                 "box": [round(float(v), 1) for v in f.detection.box], "rejected": f.rejected}
                for f in self.faces]


def tag_group(recognizer: FaceRecognizer, rgb: np.ndarray, *, each_once: bool) -> GroupResult:
    found = photo_faces(recognizer, rgb)
    faces = [Face(detection=d, rejected=r) for d, r in zip(found.detections, found.reasons)]
    snapshot = recognizer.gallery.snapshot()
    matches = match(found.embeddings, snapshot, recognizer.threshold, each_once=each_once)
    for row, (i, m) in enumerate(zip(found.embedded(), matches)):
        face = faces[i]
        face.label, face.similarity, face.candidate = m.label, m.similarity, m.candidate
        face.margin = m.margin
        face.embedding = found.embeddings[row]
    faces.sort(key=lambda f: float(f.detection.box[0]))
    named = {f.label for f in faces if f.label != UNKNOWN}
    return GroupResult(faces, [name for name in snapshot.names if name not in named])
