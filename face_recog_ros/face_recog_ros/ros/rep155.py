"""REP-155 (ROS4HRI) face topics, so hri_person_manager, libhri and the hri RViz plugins see the
faces this node tracks and whom it recognised.

- /humans/faces/tracked (hri_msgs/IdsList): the face ids in view, every processed frame.
- /humans/faces/<id>/roi (hri_msgs/NormalizedRegionOfInterest2D): the box in [0, 1] image
  coordinates, c = detection score (the type libhri and hri_face_detect use in ROS 2).
- /humans/faces/<id>/cropped and /aligned (sensor_msgs/Image, rgb8): the box cut from the frame,
  and the chip the embedder sees (alignment.method's cut); each only while someone subscribes.
- /humans/candidate_matches (hri_msgs/IdsMatch): face id -> person id (the enrolled name) with
  the similarity as confidence, when a face is named or renamed and once a second after; a match
  with confidence 0 withdraws it when the name changes or the face leaves.

Face ids are stable per track: a tag drawn when the output starts (so ids from an earlier run
are never reused) plus the track id, and the camera's index with several cameras. Person ids are
the enrolled names when those are valid ROS name tokens, otherwise a token made from the name
plus a short hash of it (topic names allow only [A-Za-z0-9_]).

hri_msgs is optional at run time, as vision_msgs is (see vision_output.py).
"""
from __future__ import annotations

import hashlib
import random
import re
import string
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ..tracking.identity import EventType, FaceEvent
from ..tracking.strangers import is_cluster_label
from ..types import UNKNOWN, Detection, Face
from .conversion import rgb_to_image

try:
    from hri_msgs.msg import IdsList, IdsMatch, NormalizedRegionOfInterest2D
except ImportError as exc:  # not installed: the output is off, the node runs
    IdsList = IdsMatch = NormalizedRegionOfInterest2D = None
    IMPORT_ERROR: str = str(exc)
else:
    IMPORT_ERROR = ""

FACES_NS = "/humans/faces"
TRACKED_TOPIC = FACES_NS + "/tracked"
MATCHES_TOPIC = "/humans/candidate_matches"
MATCH_REFRESH_S = 1.0  # a late subscriber (hri_person_manager restarted) learns matches this fast
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def available() -> bool:
    return IdsList is not None


def is_valid_token(name: str) -> bool:
    """A valid ROS name token that also avoids '__' (reserved) and a trailing '_'."""
    return bool(_TOKEN.fullmatch(name)) and "__" not in name and not name.endswith("_")


def person_id(name: str) -> str:
    """The REP-155 person id for an enrolled name: the name itself when it is a valid token."""
    if is_valid_token(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", ascii_name)).strip("_")
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    if not stem or not stem[0].isalpha():
        stem = "person" + (f"_{stem}" if stem else "")
    return f"{stem}_{digest}"


def is_person(label: str) -> bool:
    """An enrolled name (not unknown, not an unknown_<n> cluster of a stranger)."""
    return label != UNKNOWN and not is_cluster_label(label)


def normalized_roi(detection: Detection, header: Header, width: int, height: int) -> Any:
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    clip = (lambda v, size: min(max(v / size, 0.0), 1.0))
    return NormalizedRegionOfInterest2D(header=header, xmin=clip(x1, width), ymin=clip(y1, height),
                                        xmax=clip(x2, width), ymax=clip(y2, height),
                                        c=float(detection.score))


def crop(rgb: np.ndarray, detection: Detection) -> np.ndarray | None:
    """The face box cut from the frame (clipped to it); None when nothing of it is inside."""
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = (int(round(float(v))) for v in detection.box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if x2 <= x1 or y2 <= y1:
        return None
    return rgb[y1:y2, x1:x2]


@dataclass(eq=False)
class _FaceTopics:
    face_id: str
    roi: Any
    cropped: Any
    aligned: Any
    person: str = ""  # person id currently matched ('' = none)
    matched_at: float = 0.0  # time.monotonic() of the last match published


class Rep155Faces:
    """The REP-155 topics for every camera of one node; publish() is called once per frame."""

    def __init__(self, node: Any, several_cameras: bool,
                 align: Callable[[np.ndarray, Detection], np.ndarray]) -> None:
        self._node = node
        self._several = several_cameras
        self._align = align
        self._tag = "".join(random.choices(string.ascii_lowercase, k=4))
        self._lock = threading.Lock()
        self._faces: dict[tuple[int, int], _FaceTopics] = {}
        self._in_view: dict[int, list[str]] = {}
        self._tracked = node.create_publisher(IdsList, TRACKED_TOPIC, 1)
        self._matches = node.create_publisher(IdsMatch, MATCHES_TOPIC, 10)

    def face_id(self, camera: int, track_id: int) -> str:
        return f"{self._tag}c{camera}t{track_id}" if self._several else f"{self._tag}{track_id}"

    def publish(self, camera: int, faces: Sequence[Face], events: Sequence[FaceEvent],
                header: Header, rgb: np.ndarray) -> None:
        """Publish one processed frame of `camera`: its faces, matches, and the ids in view."""
        with self._lock:
            height, width = rgb.shape[:2]
            ids = []
            for face in faces:
                topics = self._topics(camera, face.track_id)
                ids.append(topics.face_id)
                topics.roi.publish(normalized_roi(face.detection, header, width, height))
                if topics.cropped.get_subscription_count():
                    cut = crop(rgb, face.detection)
                    if cut is not None:
                        topics.cropped.publish(rgb_to_image(cut, header, encoding="rgb8"))
                if topics.aligned.get_subscription_count():
                    chip = self._align(rgb, face.detection)
                    topics.aligned.publish(rgb_to_image(chip, header, encoding="rgb8"))
                self._match(topics, face)
            for event in events:
                if event.type == EventType.LEFT:
                    self._drop((camera, event.track_id))
            self._in_view[camera] = ids
            tracked = [i for camera_ids in self._in_view.values() for i in camera_ids]
            self._tracked.publish(IdsList(header=header, ids=tracked))

    def close(self) -> None:
        """Withdraw every match and remove the per-face topics (deactivation, shutdown)."""
        with self._lock:
            for key in list(self._faces):
                self._drop(key)
            self._in_view.clear()
            self._tracked.publish(IdsList(ids=[]))
            for publisher in (self._tracked, self._matches):
                self._node.destroy_publisher(publisher)

    # --- per face -----------------------------------------------------------------------------
    def _topics(self, camera: int, track_id: int) -> _FaceTopics:
        key = (camera, track_id)
        if key not in self._faces:
            face_id = self.face_id(camera, track_id)
            ns = f"{FACES_NS}/{face_id}"
            self._faces[key] = _FaceTopics(
                face_id, self._node.create_publisher(NormalizedRegionOfInterest2D, ns + "/roi", 1),
                self._node.create_publisher(Image, ns + "/cropped", 1),
                self._node.create_publisher(Image, ns + "/aligned", 1))
        return self._faces[key]

    def _match(self, topics: _FaceTopics, face: Face) -> None:
        person = person_id(face.label) if is_person(face.label) else ""
        now = time.monotonic()
        if person != topics.person:
            self._withdraw(topics)
        elif not person or now - topics.matched_at < MATCH_REFRESH_S:
            return
        if person:
            self._publish_match(topics.face_id, person, float(face.similarity))
            topics.person, topics.matched_at = person, now

    def _withdraw(self, topics: _FaceTopics) -> None:
        if topics.person:
            self._publish_match(topics.face_id, topics.person, 0.0)
            topics.person = ""

    def _publish_match(self, face_id: str, person: str, confidence: float) -> None:
        self._matches.publish(IdsMatch(id1=face_id, id1_type=IdsMatch.FACE, id2=person,
                                       id2_type=IdsMatch.PERSON, confidence=confidence))

    def _drop(self, key: tuple[int, int]) -> None:
        topics = self._faces.pop(key, None)
        if topics is None:
            return
        self._withdraw(topics)
        for publisher in (topics.roi, topics.cropped, topics.aligned):
            self._node.destroy_publisher(publisher)
