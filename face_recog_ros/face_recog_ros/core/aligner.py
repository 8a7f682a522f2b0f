"""From a detected face to the chip the embedder wants, and whether the face is fit to embed.

Two alignment methods (``alignment.method``):
- ``landmarks`` (default): dlib's 5 landmarks, found in numpy from BlazeFace's keypoints
  (landmarks.py), then dlib's own face chip (face_chip.py). This is how dlib's ResNet was
  trained, and the chip matches the one ``face_recognition`` cuts to an embedding cosine of
  0.999 on average.
- ``keypoints``: BlazeFace's eyes, nose tip and mouth centre onto the embedder spec's template
  (alignment.py). No landmark step (about 1 ms less per face), but the chip drifts with the
  keypoints: cosine 0.993 on average, enough to swap look-alike identities.

Either way each face gets a FaceGeometry: the points the chip is cut from, the eye distance,
and the head pose in degrees, from which the quality checks decide if the face is embedded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..options import Options, option
from ..types import Detection
from .alignment import AlignmentTemplate, align_face
from .detection import as_rgb
from .embedding import EmbedderSpec
from .face_chip import extract_face_chip
from .head_pose import KEYPOINTS_3D, LANDMARKS_3D, HeadPose, PoseEstimator
from .landmarks import Landmarker
from .runtime import ModelError, models_dir

ALIGNMENT_METHODS = ("landmarks", "keypoints")


@dataclass
class AlignmentOptions(Options):
    """The `alignment.*` group: how a face is cut into the embedder's chip."""

    method: str = option("landmarks", "How a face is aligned before embedding: 'landmarks' "
                         "(dlib's 5 landmarks, found in numpy, then dlib's own face chip: what "
                         "the embedder was trained on; about 1 ms per face) or 'keypoints' "
                         "(BlazeFace's keypoints onto the embedder spec's template: no landmark "
                         "step, less accurate on hard faces). Galleries enrolled with the other "
                         "method still work; re-enrol for full accuracy",
                         choices=ALIGNMENT_METHODS, read_only=True)
    flip: bool = option(False, "Also embed the mirrored chip and average the two (test-time "
                        "flip): twice the embedder time")


@dataclass(frozen=True)
class FaceGeometry:
    """What alignment and the quality checks know about one detected face."""

    points: np.ndarray  # (5, 2) dlib landmarks, or (4, 2) BlazeFace keypoints (keypoints method)
    eye_distance: float  # pixels between BlazeFace's eye keypoints
    pose: HeadPose


@dataclass
class QualityOptions(Options):
    """Faces the embedder cannot describe reliably are reported, not identified (the
    `recognition.*` group's quality gate; matching.RecognitionOptions extends it)."""

    min_eye_distance: float = option(12.0, "Faces with eyes closer than this many pixels are not "
                                     "identified (too small)", low=0.0, high=1000.0)
    max_yaw_deg: float = option(50.0, "Faces turned left or right further than this many "
                                "degrees (head pose from the landmarks) are reported but not "
                                "identified", low=0.0, high=90.0)
    max_pitch_deg: float = option(40.0, "Faces tilted up or down further than this many degrees "
                                  "are reported but not identified", low=0.0, high=90.0)

    renamed: ClassVar[dict[str, str]] = {
        "max_yaw": "max_yaw_deg (degrees of head pose; the old ratio 0.6 is about 50 degrees)"}


def quality_problem(geometry: FaceGeometry, options: QualityOptions) -> str:
    """Why this face should not be embedded, or '' when it is fine."""
    if geometry.eye_distance < options.min_eye_distance:
        return (f"too small: eye distance {geometry.eye_distance:.0f} px "
                f"< {options.min_eye_distance:g} px")
    pose = geometry.pose
    if abs(pose.yaw) > options.max_yaw_deg:
        return f"off frontal: yaw {pose.yaw:+.0f} deg beyond {options.max_yaw_deg:g}"
    if abs(pose.pitch) > options.max_pitch_deg:
        return f"off frontal: pitch {pose.pitch:+.0f} deg beyond {options.max_pitch_deg:g}"
    return ""


def eye_distance(detection: Detection) -> float:
    right_eye, left_eye = detection.keypoints[0], detection.keypoints[1]
    return float(np.hypot(*(left_eye - right_eye)))


class FaceAligner:
    """``geometry(rgb, detections)`` then ``chip(rgb, detection, geometry)``, by one method."""

    def __init__(self, method: str, spec: EmbedderSpec) -> None:
        if method not in ALIGNMENT_METHODS:
            raise ValueError(f"alignment method must be one of {', '.join(ALIGNMENT_METHODS)}, "
                             f"got {method!r}")
        self.method = method
        self.spec = spec
        self.landmarker: Landmarker | None = None
        self.template: AlignmentTemplate | None = None
        where = spec.path or spec.id
        if spec.template is not None:  # checked whichever method runs: a broken spec is broken
            try:
                self.template = AlignmentTemplate.from_dict(spec.template, spec.input_size)
            except (ValueError, TypeError) as e:
                raise ModelError(f"{where}: {e}") from None
        if method == "landmarks":
            if spec.face_chip is None:
                raise ModelError(f"{where}: alignment.method 'landmarks' needs a 'face_chip' "
                                 "block in the embedder spec (size, padding, landmark_model); "
                                 "use 'keypoints' for this model")
            self.landmarker = Landmarker.from_yaml(self._landmark_spec_path(spec))
            self._pose = PoseEstimator(LANDMARKS_3D)  # yaw and roll
            self._pitch = PoseEstimator(KEYPOINTS_3D, steps=0)  # needs the mouth (head_pose.py)
        else:
            if self.template is None:
                raise ModelError(f"{where}: embedder spec has no alignment template (needed by "
                                 "alignment.method 'keypoints')")
            self._pose = PoseEstimator(KEYPOINTS_3D)

    @staticmethod
    def _landmark_spec_path(spec: EmbedderSpec) -> Path:
        """A landmark model id names models/<id>.yaml; a .yaml is a path relative to the spec."""
        model = spec.face_chip.landmark_model
        if model.endswith((".yaml", ".yml")):
            base = spec.path.parent if spec.path else Path.cwd()
            return base / model
        return models_dir() / f"{model}.yaml"

    def geometry(self, rgb: np.ndarray, detections: list[Detection]) -> list[FaceGeometry]:
        """Landmarks (or keypoints), eye distance and pose of each detection; all faces at once."""
        if not detections:
            return []
        rgb = as_rgb(rgb)  # the detector also takes grayscale and RGBA frames
        keypoints = np.stack([d.keypoints for d in detections]).astype(np.float64)
        if self.landmarker is not None:
            points = self.landmarker.locate(rgb, keypoints)
            poses = [HeadPose(p.yaw, q.pitch, p.roll) for p, q in
                     zip(self._pose.estimate(points), self._pitch.estimate(keypoints[:, :4]))]
        else:
            points = keypoints[:, :4]
            poses = self._pose.estimate(points)
        return [FaceGeometry(p, eye_distance(d), pose)
                for p, d, pose in zip(points, detections, poses)]

    def chip(self, rgb: np.ndarray, detection: Detection, geometry: FaceGeometry) -> np.ndarray:
        """The embedder's input chip for one face."""
        rgb = as_rgb(rgb)
        if self.landmarker is not None:
            chip = self.spec.face_chip
            return extract_face_chip(rgb, geometry.points, chip.size, chip.padding)
        return align_face(rgb, detection, self.template)
