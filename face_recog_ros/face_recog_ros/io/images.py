"""Image files in: decoding to RGB, and the photo-folder layouts the tools read.

Images everywhere in this package are RGB uint8 arrays; OpenCV reads BGR, so the one
conversion happens here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .image_decoding import ImageFormatError, decode_image

# The largest phone cameras take 108 MP photos; a file claiming more is damaged or hostile.
MAX_PHOTO_PIXELS = 120_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp", ".tif", ".tiff"}


def load_image(path: str | Path, max_pixels: int | None = MAX_PHOTO_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8; ValueError with the path when it cannot be decoded.

    Decoded through image_decoding, so a file whose header claims more than ``max_pixels``
    pixels is refused before OpenCV allocates it.
    """
    try:
        return decode_image(Path(path).read_bytes(), max_pixels)
    except (ImageFormatError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"cannot read image {path}: {reason}") from None


def images_in(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def image_paths(items: list[str]) -> list[Path]:
    """Command-line arguments as image files: a folder stands for the images in it."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        paths += images_in(path) if path.is_dir() else [path]
    return paths


def photos_under(root: str | Path) -> list[Path]:
    """Every image file below ``root``, recursively, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def identity_folders(root: str | Path) -> dict[str, list[Path]]:
    """person -> sorted image paths. Folders named ``_*``, ``group`` or ``unlabeled*`` are not
    identities (an unlabeled folder of test photos must not be scored as one more person)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    people = {}
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        if person.name.startswith(("_", "unlabeled")) or person.name == "group":
            continue
        images = images_in(person)
        if images:
            people[person.name] = images
    if not people:
        raise ValueError(f"{root} has no <person>/<image> folders")
    return people
