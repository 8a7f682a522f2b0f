"""Plain data types that flow through the pipeline: image -> Detection -> Face."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNKNOWN = "unknown"

# MediaPipe BlazeFace keypoint order (subject's right/left, as MediaPipe names them).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")


@dataclass(frozen=True)
class Detection:
    """One detected face, in the original image's pixel coordinates."""

    box: np.ndarray  # (4,) float32: x1, y1, x2, y2
    score: float
    keypoints: np.ndarray  # (6, 2) float32, order of KEYPOINT_NAMES

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


@dataclass
class Face:
    """A detection with its identity; what the pipeline returns and the node publishes."""

    detection: Detection
    label: str = UNKNOWN  # enrolled name, or UNKNOWN
    similarity: float = 0.0  # cosine similarity to the best candidate
    candidate: str = ""  # best gallery candidate, even when below threshold
    margin: float = 0.0  # best minus second-best identity similarity
    track_id: int = -1
    is_new_track: bool = False
    rejected: str = ""  # why the face was not embedded (too small, off-frontal); empty if embedded
    embedding: np.ndarray | None = field(default=None, repr=False)
