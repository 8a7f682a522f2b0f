"""Core results -> face_recog_interfaces messages (the node's only knowledge of the message
layout)."""

from __future__ import annotations

from array import array
from datetime import datetime

import numpy as np

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32
from std_msgs.msg import Header

from face_recog_interfaces.msg import Face as FaceMsg
from face_recog_interfaces.msg import FaceArray, FaceEvent as FaceEventMsg

from ..tracking.identity import EventType, FaceEvent
from ..types import Face

EVENT_TYPES = {
    EventType.APPEARED: FaceEventMsg.APPEARED,
    EventType.IDENTIFIED: FaceEventMsg.IDENTIFIED,
    EventType.LABEL_CHANGED: FaceEventMsg.LABEL_CHANGED,
    EventType.LEFT: FaceEventMsg.LEFT,
}


def face_to_msg(face: Face, *, with_embedding: bool = False) -> FaceMsg:
    d = face.detection
    x1, y1, x2, y2 = (float(v) for v in d.box)
    msg = FaceMsg(
        track_id=int(face.track_id),
        label=face.label,
        similarity=float(face.similarity),
        candidate=face.candidate,
        margin=float(face.margin),
        detection_score=float(d.score),
        x_min=x1,
        y_min=y1,
        width=x2 - x1,
        height=y2 - y1,
        is_new_track=bool(face.is_new_track),
        rejected=face.rejected,
    )
    msg.keypoints = [Point32(x=float(x), y=float(y), z=0.0) for x, y in d.keypoints]
    if with_embedding and face.embedding is not None:
        msg.embedding = array("f", face.embedding.astype(np.float32).tobytes())  # one memcpy
    return msg


def faces_to_msg(faces: list[Face], header: Header, *, with_embeddings: bool = False) -> FaceArray:
    return FaceArray(
        header=header, faces=[face_to_msg(f, with_embedding=with_embeddings) for f in faces]
    )


def event_to_msg(event: FaceEvent, header: Header) -> FaceEventMsg:
    return FaceEventMsg(header=header, type=EVENT_TYPES[event.type], track_id=int(event.track_id),
                        label=event.label, previous_label=event.previous_label,
                        similarity=float(event.similarity))


def iso_to_time(text: str) -> Time:
    """A UTC ISO 8601 string (what the gallery stores) as builtin_interfaces/Time; unparsable ->
    0."""
    try:
        seconds = datetime.fromisoformat(text).timestamp()
    except ValueError:
        return Time()
    sec = int(seconds // 1)
    return Time(sec=sec, nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))
