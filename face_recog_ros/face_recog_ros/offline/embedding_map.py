"""A 2-D map of face embeddings: who looks like whom, at a glance.

The embeddings (a gallery's samples, or the faces of a DIR/<person>/<image> folder) are
projected on their two main axes (PCA via numpy's SVD: deterministic, no extra dependency)
and drawn as a scatter with each person's name at their centre. People are compared by their
mean embedding, so the most similar pair is the one the recognizer is likeliest to confuse.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.images import identity_folders, load_image
from ..gallery.model import Gallery
from .photo_faces import photo_faces
from ..core.recognizer import FaceRecognizer


@dataclass
class LabelledEmbeddings:
    labels: list[str]  # person per row
    embeddings: np.ndarray  # (N, D) unit rows

    def people(self) -> list[str]:
        return list(dict.fromkeys(self.labels))

    def centroids(self) -> np.ndarray:
        """(people, D) unit mean embedding per person, in the order of :meth:`people`."""
        labels = np.array(self.labels)
        means = np.stack([self.embeddings[labels == p].mean(axis=0) for p in self.people()])
        return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def from_gallery(gallery: Gallery) -> LabelledEmbeddings:
    labels, rows = [], []
    for name in gallery.names():
        samples = gallery.embeddings(name)
        labels += [name] * len(samples)
        rows.append(samples)
    if not rows:
        raise ValueError("the gallery is empty: nothing to map")
    return LabelledEmbeddings(labels, np.concatenate(rows).astype(np.float32))


def from_folder(
    recognizer: FaceRecognizer, root: str | Path
) -> tuple[LabelledEmbeddings, list[str]]:
    """The main face of every photo in root/<person>/, labelled by folder; and the photos
    skipped."""
    labels, rows, skipped = [], [], []
    for person, paths in identity_folders(root).items():
        for path in paths:
            try:
                found = photo_faces(recognizer, load_image(path))
            except ValueError as exc:
                skipped.append(str(exc))
                continue
            if found.main < 0 or found.reasons[found.main]:
                skipped.append(
                    f"{path}: {found.reasons[found.main] if found.main >= 0 else 'no face found'}"
                )
                continue
            labels.append(person)
            rows.append(found.embeddings[found.embedded().index(found.main)])
    if not rows:
        raise ValueError(f"no usable face in {root}")
    return LabelledEmbeddings(labels, np.stack(rows).astype(np.float32)), skipped


def pca_2d(x: np.ndarray) -> np.ndarray:
    """(N, 2): coordinates on the two directions of largest variance (sign fixed for stable
    plots)."""
    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    # Directions without real spread (fewer points than dimensions) would only plot rounding noise.
    axes = vt[:2] * (singular[:2] > 1e-6 * max(singular[0], 1e-12))[:, None]
    axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    coords = centred @ axes.T
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))  # one sample: a single point


def similar_pairs(data: LabelledEmbeddings, top: int = 5) -> list[tuple[str, str, float]]:
    """The ``top`` most similar pairs of different people (cosine of their mean embeddings)."""
    people = data.people()
    sims = data.centroids() @ data.centroids().T
    rows, cols = np.triu_indices(len(people), k=1)
    order = np.argsort(-sims[rows, cols], kind="stable")[:top]
    return [(people[rows[i]], people[cols[i]], float(sims[rows[i], cols[i]])) for i in order]


def plot_map(data: LabelledEmbeddings, path: str | Path, title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state, no display needed

    from ..io.draw import label_color
    coords = pca_2d(data.embeddings)
    labels = np.array(data.labels)
    figure = Figure(figsize=(9, 7), layout="constrained")
    axes = figure.add_subplot()
    for person in data.people():
        points = coords[labels == person]
        color = tuple(c / 255 for c in label_color(person))
        axes.scatter(
            points[:, 0], points[:, 1], s=28, color=color, edgecolors="black", linewidths=0.4
        )
        cx, cy = points.mean(axis=0)
        axes.annotate(
            person,
            (cx, cy),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.2", "fc": color, "alpha": 0.8},
        )
    pairs = similar_pairs(data, 1)
    if pairs:
        a, b, similarity = pairs[0]
        ca, cb = coords[labels == a].mean(axis=0), coords[labels == b].mean(axis=0)
        axes.plot([ca[0], cb[0]], [ca[1], cb[1]], "--", color="crimson", linewidth=1)
        title += f"\nmost alike: {a} and {b} (similarity {similarity:.3f})"
    axes.set_aspect("equal", adjustable="datalim")  # distances on the map are comparable both ways
    axes.set_title(title)
    axes.set_xlabel("first principal axis")
    axes.set_ylabel("second principal axis")
    figure.savefig(path, dpi=120)
