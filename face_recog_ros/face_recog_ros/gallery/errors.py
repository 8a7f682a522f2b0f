"""Why a gallery file cannot be used (shared by the format, the file handling and the store)."""
from __future__ import annotations


class GalleryError(Exception):
    """A gallery file cannot be used."""


class GalleryCorrupt(GalleryError):
    """Truncated, not an npz, bad JSON, or arrays that disagree with the metadata."""


class GalleryMismatch(GalleryError):
    """The file was made by a different embedding model (space or dimension)."""


class GalleryVersionError(GalleryError):
    """The file uses a newer format than this code understands."""


class GalleryNotRegular(GalleryError):
    """The path is a FIFO, device, socket or directory: never read, never replaced."""
