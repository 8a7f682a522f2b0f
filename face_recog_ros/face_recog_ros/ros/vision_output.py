"""~/detections: the faces as vision_msgs/Detection2DArray, the message most detectors publish.

One Detection2D per face, with the image's header: `id` = the track id (empty when tracking is
off), `results[0].hypothesis.class_id` = the label (an enrolled name, `unknown` or
`unknown_<n>`), `score` = its similarity, and the box centre and size in pixels.

vision_msgs is optional at run time: on a robot rosdep installs it (package.xml); where it
cannot be imported the node logs once that ~/detections is off and carries on.
"""
from __future__ import annotations

from collections.abc import Sequence

from std_msgs.msg import Header

from ..types import Face

try:
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError as exc:  # not installed: the output is off, the node runs
    Detection2D = Detection2DArray = ObjectHypothesisWithPose = None
    IMPORT_ERROR: str = str(exc)
else:
    IMPORT_ERROR = ""

TOPIC = "detections"


def available() -> bool:
    return Detection2DArray is not None


def face_to_detection(face: Face, header: Header) -> Detection2D:
    x1, y1, x2, y2 = (float(v) for v in face.detection.box)
    detection = Detection2D(header=header, id=str(face.track_id) if face.track_id >= 0 else "")
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = face.label
    hypothesis.hypothesis.score = float(face.similarity)
    detection.results = [hypothesis]
    detection.bbox.center.position.x = (x1 + x2) / 2
    detection.bbox.center.position.y = (y1 + y2) / 2
    detection.bbox.size_x = x2 - x1
    detection.bbox.size_y = y2 - y1
    return detection


def faces_to_detections(faces: Sequence[Face], header: Header) -> Detection2DArray:
    return Detection2DArray(header=header,
                            detections=[face_to_detection(f, header) for f in faces])
