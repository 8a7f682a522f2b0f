"""The gallery's options: one declaration, checked in one place."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..options import Options, option

DEFAULT_MAX_SAMPLES_PER_PERSON = 50
_GROUP = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # one ROS topic name token


@dataclass
class GalleryOptions(Options):
    """The `gallery.*` group: where the gallery is kept, how many samples a person keeps, and
    (face_recognition_node only) whether it is shared with the other nodes of a group."""

    path: str = option(
        "~/.ros/face_recog_ros/gallery.npz",
        "Gallery file (embeddings only); saved "
        "atomically after every change. Empty: keep the gallery in memory only",
        read_only=True,
    )
    max_samples_per_person: int = option(
        DEFAULT_MAX_SAMPLES_PER_PERSON,
        "Most embeddings kept per person (newest kept). A setting of the gallery: a change is "
        "saved in it and, with gallery.sync, applied by every node of the group",
        low=1,
        high=10000,
    )
    sync: bool = option(
        False,
        "Share the gallery with every face_recognition_node of the same sync_group in the ROS "
        "domain (DDS topics; no shared disk): enrolments, forgets, renames and the sample cap "
        "reach every node, which saves them in its own gallery file",
        read_only=True,
    )
    sync_group: str = option(
        "default",
        "Name of the fleet whose nodes share their gallery (letters, digits, _; part of the "
        "topic names, so separate fleets in one domain stay apart)",
        read_only=True,
    )
    sync_period: float = option(
        1.0,
        "Seconds between the gallery digests a node publishes with gallery.sync; a difference "
        "that outlasts 1.5 periods (a lost message, a restarted peer) is repaired",
        low=0.05,
        high=60.0,
        read_only=True,
    )

    def check(self) -> None:
        if not _GROUP.fullmatch(self.sync_group):
            raise ValueError(f"gallery.sync_group {self.sync_group!r} must be 1-64 letters, "
                             "digits or _, starting with a letter")
