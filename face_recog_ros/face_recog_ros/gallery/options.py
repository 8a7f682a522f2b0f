"""The gallery's options: one declaration, checked in one place."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import Options, option

DEFAULT_MAX_SAMPLES_PER_PERSON = 50


@dataclass
class GalleryOptions(Options):
    """The `gallery.*` group: where the gallery is kept and how many samples a person keeps."""

    path: str = option(
        "~/.ros/face_recog_ros/gallery.npz",
        "Gallery file (embeddings only); saved "
        "atomically after every change. Empty: keep the gallery in memory only",
        read_only=True,
    )
    max_samples_per_person: int = option(
        DEFAULT_MAX_SAMPLES_PER_PERSON,
        "Most embeddings kept per person (newest kept)",
        low=1,
        high=10000,
    )
