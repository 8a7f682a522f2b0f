"""Which enrolled people a face looks most like: the K highest identity similarities, and a
picture.

The gallery holds embeddings only, never photos, so the picture shows the query face next to
a ranked bar list; with a folder of the people's photos (DIR/<person>/<image>) each row also
gets that person's face, cut from their first photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..io.draw import annotate, label_color
from ..io.images import images_in, load_image
from ..core.matching import identity_similarities
from .photo_faces import crop_face, photo_faces
from ..core.recognizer import FaceRecognizer
from ..types import UNKNOWN, Face


@dataclass(frozen=True)
class Lookalike:
    name: str
    similarity: float


def lookalikes(
    recognizer: FaceRecognizer, rgb: np.ndarray, top: int
) -> tuple[Face, list[Lookalike]]:
    """The photo's subject and the ``top`` most similar enrolled people, most similar first."""
    snapshot = recognizer.gallery.snapshot()
    if not snapshot.names:
        raise ValueError("the gallery is empty: enrol some people first")
    found = photo_faces(recognizer, rgb)
    if found.main < 0:
        raise ValueError("no face found in the photo")
    if found.reasons[found.main]:
        raise ValueError(f"the face is not usable: {found.reasons[found.main]}")
    embedding = found.embeddings[found.embedded().index(found.main)]
    scores = identity_similarities(embedding[None, :], snapshot)[0]
    order = np.argsort(-scores, kind="stable")[:max(top, 1)]
    ranked = [Lookalike(snapshot.names[i], float(scores[i])) for i in order]
    best = ranked[0]
    face = Face(
        detection=found.detections[found.main],
        candidate=best.name,
        similarity=best.similarity,
        label=best.name if best.similarity >= recognizer.threshold else UNKNOWN,
        embedding=embedding,
    )
    return face, ranked


def first_photo_faces(recognizer: FaceRecognizer, photos: str | Path, names: list[str],
                      size: int) -> dict[str, np.ndarray]:
    """name -> face crop from the first photo in photos/<name>/ that shows a face (where there
    is one)."""
    out = {}
    for name in names:
        folder = Path(photos) / name
        if not folder.is_dir():
            continue
        for path in images_in(folder):
            try:
                rgb = load_image(path)
            except ValueError:
                continue
            found = photo_faces(recognizer, rgb)
            if found.main >= 0:
                out[name] = crop_face(rgb, found.detections[found.main].box, size)
                break
    return out


def render(rgb: np.ndarray, face: Face, ranked: list[Lookalike], threshold: float,
           thumbnails: dict[str, np.ndarray] | None = None, height: int = 400) -> np.ndarray:
    """The annotated query face on the left, the ranked names with similarity bars on the right."""
    thumbnails = thumbnails or {}
    query = crop_face(annotate(rgb, [face]), face.detection.box, height, margin=0.6)
    row_h = 56 if thumbnails else 40
    panel_h = max(height, 60 + row_h * len(ranked))
    panel = np.full((panel_h, 620, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(panel, "looks most like", (16, 32), font, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    # Bars start at a floor below the lowest score shown: similarities sit close together.
    low = min(min(r.similarity for r in ranked), threshold) - 0.05
    bar_x, bar_w = 250 + (row_h if thumbnails else 0), 300 - (row_h if thumbnails else 0)

    def x_of(value: float) -> int:
        return bar_x + int(round(bar_w * np.clip((value - low) / (1.0 - low), 0.0, 1.0)))

    for rank, item in enumerate(ranked):
        top = 50 + rank * row_h
        left = 16
        if thumbnails:
            thumb = thumbnails.get(item.name)
            side = row_h - 6
            if thumb is None:
                cv2.rectangle(
                    panel, (left, top + 2), (left + side, top + 2 + side), (200, 200, 200), -1
                )
            else:
                panel[top + 2:top + 2 + side, left:left + side] = cv2.resize(thumb, (side, side))
            left += row_h
        mid = top + row_h // 2
        cv2.putText(
            panel,
            f"{rank + 1}. {item.name}"[:22],
            (left, mid + 6),
            font,
            0.55,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        cv2.rectangle(
            panel, (bar_x, mid - 9), (x_of(item.similarity), mid + 9), label_color(item.name), -1
        )
        cv2.putText(
            panel,
            f"{item.similarity:.3f}",
            (x_of(item.similarity) + 4, mid + 6),
            font,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    tx = x_of(threshold)
    cv2.line(panel, (tx, 42), (tx, panel_h - 24), (220, 0, 0), 1)
    cv2.putText(
        panel,
        f"match threshold {threshold:.2f}",
        (max(tx - 90, bar_x), panel_h - 8),
        font,
        0.45,
        (220, 0, 0),
        1,
        cv2.LINE_AA,
    )
    left_col = np.full((panel_h, height, 3), 255, np.uint8)
    left_col[:height] = query
    return np.hstack([left_col, panel])
