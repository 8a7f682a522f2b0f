"""Image files in: decoding to RGB, and the photo-folder layouts the tools read.

Images everywhere in this package are RGB uint8 arrays; OpenCV reads BGR, so the one
conversion happens here.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp", ".tif", ".tiff"}


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; ValueError with the path when it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
    """person -> sorted image paths; folders starting with '_' and 'group' are not identities."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    people = {}
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        if person.name.startswith("_") or person.name == "group":
            continue
        images = images_in(person)
        if images:
            people[person.name] = images
    if not people:
        raise ValueError(f"{root} has no <person>/<image> folders")
    return people
