"""Recognizer configuration: one set of typed options, shared by the library, CLI and ROS node.

Every option carries its description and valid range as dataclass metadata, so the ROS node
declares parameters (with descriptors) from the same definitions the core validates against,
and the one YAML file in config/ serves both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def option(default: Any, description: str, *, low: float | None = None, high: float | None = None,
           choices: tuple[str, ...] | None = None, read_only: bool = False) -> Any:
    """A config field with the metadata needed to validate it and to declare it as a ROS parameter."""
    return field(default=default, metadata={"description": description, "low": low, "high": high,
                                            "choices": choices, "read_only": read_only})


@dataclass
class DetectorConfig:
    model_range: str = option("short", "BlazeFace model: 'short' (faces within ~2 m, 128x128 input) "
                              "or 'full' (far faces, 192x192 input)", choices=("short", "full"))
    min_score: float = option(0.5, "Minimum detection confidence", low=0.05, high=1.0)
    nms_iou: float = option(0.3, "IoU above which overlapping detections are merged", low=0.05, high=0.95)
    max_faces: int = option(10, "Most faces reported per frame (highest scores first)", low=1, high=100)
    num_threads: int = option(2, "CPU threads for the detector", low=1, high=16)
    backend: str = option("tflite", "Detector runtime for the same BlazeFace models: 'tflite' (our decoder "
                          "on the TFLite runtime: no extra dependency, installs wherever the embedder "
                          "runs, incl. 32-bit Pi OS and older Jetson images), 'mediapipe' (MediaPipe "
                          "Tasks FaceDetector: needs the mediapipe wheel, x86_64/aarch64 only, ignores "
                          "num_threads) or 'auto' (mediapipe when it imports, else tflite)",
                          choices=("tflite", "mediapipe", "auto"))


@dataclass
class EmbedderConfig:
    model: str = option("dlib_resnet_v1_int8", "Embedder: id of a spec YAML in the package's models/ "
                        "folder, or a path to your own spec YAML", read_only=True)
    num_threads: int = option(2, "CPU threads for the embedder", low=1, high=16)


@dataclass
class AlignmentConfig:
    method: str = option("landmarks", "How a face is aligned before embedding: 'landmarks' "
                         "(dlib's 5 landmarks, found in numpy, then dlib's own face chip: what the "
                         "embedder was trained on; about 1 ms per face) or 'keypoints' (BlazeFace's "
                         "keypoints onto the embedder spec's template: no landmark step, less "
                         "accurate on hard faces). Galleries enrolled with the other method still "
                         "work; re-enrol for full accuracy",
                         choices=("landmarks", "keypoints"), read_only=True)
    flip: bool = option(False, "Also embed the mirrored chip and average the two (test-time "
                        "flip): twice the embedder time")


@dataclass
class RecognitionConfig:
    threshold: float = option(-1.0, "Cosine similarity needed to name a face; -1 uses the model's "
                              "default", low=-1.0, high=1.0)
    each_once: bool = option(False, "Assign each enrolled person to at most one face per frame "
                             "(optimal assignment over the similarity matrix)")
    min_eye_distance: float = option(12.0, "Faces with eyes closer than this many pixels are not "
                                     "identified (too small)", low=0.0, high=1000.0)
    max_yaw_deg: float = option(50.0, "Faces turned left or right further than this many degrees "
                                "(head pose from the landmarks) are reported but not identified",
                                low=0.0, high=90.0)
    max_pitch_deg: float = option(40.0, "Faces tilted up or down further than this many degrees "
                                  "are reported but not identified", low=0.0, high=90.0)


@dataclass
class GalleryConfig:
    path: str = option("~/.ros/face_recog_ros/gallery.npz", "Gallery file (embeddings only); saved "
                       "atomically after every change. Empty: keep the gallery in memory only")
    max_samples_per_person: int = option(50, "Most embeddings kept per person (newest kept)",
                                         low=1, high=10000)


@dataclass
class TrackingConfig:
    """Follow faces across frames: stable ids, labels from several frames, fewer embeddings."""

    enabled: bool = option(True, "Track faces across frames (stable track ids, temporal labels, events, "
                           "embedding budget); false recognises every face from scratch every frame")
    max_age: int = option(15, "Detection rounds a track survives unseen (occlusion, missed detections) "
                          "before it is dropped and LEFT is reported", low=0, high=1000)
    min_hits: int = option(2, "Detections in a row before a track is confirmed (gets an id and "
                           "APPEARED); filters one-frame false detections", low=1, high=100)
    max_keypoint_distance: float = option(0.6, "Largest mean keypoint distance from the track's "
                                          "predicted position, in face widths, for a detection to "
                                          "continue that track", low=0.01, high=10.0)
    detect_interval: int = option(2, "Run the detector every N frames; in between, tracks move by "
                                  "their predicted motion", low=1, high=30)
    reembed_interval: int = option(10, "Frames between re-embeddings of a face whose identity is "
                                   "settled", low=1, high=1000)
    max_embeddings_per_frame: int = option(2, "Most faces embedded per frame; new and unresolved "
                                           "faces first", low=1, high=100)
    reembed_yaw_change_deg: float = option(20.0, "Re-embed early when the face turned this many "
                                           "degrees since its last embedding", low=0.0, high=180.0)
    reembed_scale_change: float = option(0.3, "Re-embed early when the eye distance changed by this "
                                         "fraction since the last embedding", low=0.0, high=10.0)
    evidence_window: int = option(8, "Recent embeddings per track whose mean similarity decides its "
                                  "label", low=1, high=100)
    min_evidence: int = option(2, "Embeddings a track needs before it is named (until then: "
                               "unknown)", low=1, high=100)
    label_margin: float = option(0.05, "A track's label changes only when the new candidate's mean "
                                 "similarity beats the current one by this much (hysteresis)",
                                 low=0.0, high=2.0)
    cluster_unknowns: bool = option(False, "Group unrecognised people into unknown_1, unknown_2, ... "
                                    "(in memory only) so they keep their label when they come back")
    cluster_threshold: float = option(-1.0, "Cosine similarity for an unknown track to join an "
                                      "existing unknown cluster; -1 uses the recognition threshold",
                                      low=-1.0, high=1.0)
    max_unknown_clusters: int = option(50, "Most unknown clusters kept (least recently seen dropped)",
                                       low=1, high=10000)
    enroll_max_similarity: float = option(0.95, "Live enrolment skips a sample this similar (cosine) "
                                          "to one already collected (near-duplicate)",
                                          low=-1.0, high=1.0)
    enroll_min_sharpness: float = option(25.0, "Live enrolment skips chips blurrier than this "
                                         "(variance of the Laplacian of the aligned grey chip)",
                                         low=0.0, high=100000.0)
    enroll_max_yaw_deg: float = option(30.0, "Live enrolment skips faces turned further than this "
                                       "many degrees (stricter than recognition.max_yaw_deg)",
                                       low=0.0, high=90.0)
    enroll_timeout: float = option(30.0, "Seconds a live enrolment may take before it fails",
                                   low=1.0, high=3600.0)


@dataclass
class RecognizerConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RecognizerConfig":
        """Build from nested groups; top-level scalars (node-only parameters) are ignored."""
        config = cls()
        for group_name, values in (data or {}).items():
            group = getattr(config, group_name, None)
            if not dataclasses.is_dataclass(group):
                if isinstance(values, dict):
                    raise ValueError(f"unknown configuration group '{group_name}'")
                continue
            if not isinstance(values, dict):
                raise ValueError(f"configuration group '{group_name}' must be a mapping")
            for key, value in values.items():
                set_option(config, f"{group_name}.{key}", value)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RecognizerConfig":
        """Read the ROS-params style YAML (`<node or /**>: ros__parameters: {...}`) or a plain mapping."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read config {path}: {exc}") from None
        return cls.from_dict(ros_parameters(data))

    def flat(self) -> dict[str, Any]:
        """All options as 'group.name' -> value, the names the ROS node declares."""
        return {name: value for name, value, _ in iter_options(self)}


def ros_parameters(data: dict[str, Any]) -> dict[str, Any]:
    """Unwrap the first `ros__parameters` block of a ROS 2 params file, if there is one."""
    for value in data.values():
        if isinstance(value, dict) and "ros__parameters" in value:
            return value["ros__parameters"] or {}
    return data


def iter_options(config: Any, prefix: str = ""):
    """Yield (dotted name, value, dataclass field) for every leaf option."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from iter_options(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value, f


# Options that were renamed because their unit changed: an old config must fail, not be misread.
RENAMED = {
    "recognition.max_yaw": "recognition.max_yaw_deg (degrees of head pose; the old ratio 0.6 is "
                           "about 50 degrees)",
    "tracking.reembed_yaw_change": "tracking.reembed_yaw_change_deg (degrees; 0.25 was about 20)",
    "tracking.enroll_max_yaw": "tracking.enroll_max_yaw_deg (degrees; 0.35 was about 30)",
}


def unknown_option(dotted: str) -> ValueError:
    renamed = RENAMED.get(dotted)
    hint = f": renamed to {renamed}" if renamed else ""
    return ValueError(f"unknown option '{dotted}'{hint}")


def set_option(config: Any, dotted: str, value: Any) -> None:
    """Set one option after checking type, range and choices; raises ValueError naming the option."""
    *groups, name = dotted.split(".")
    target = config
    for group in groups:
        target = getattr(target, group, None)
        if not dataclasses.is_dataclass(target):
            raise unknown_option(dotted)
    fields = {f.name: f for f in dataclasses.fields(target)}
    if name not in fields or dataclasses.is_dataclass(getattr(target, name)):
        raise unknown_option(dotted)
    setattr(target, name, check_value(dotted, value, fields[name]))


def check_value(dotted: str, value: Any, f: dataclasses.Field) -> Any:
    default = f.default
    meta = f.metadata
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"option '{dotted}' must be true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"option '{dotted}' must be a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise ValueError(f"option '{dotted}' must be an integer, got {value!r}")
        value = type(default)(value)
        low, high = meta.get("low"), meta.get("high")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"option '{dotted}' = {value} is outside [{low}, {high}]")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"option '{dotted}' must be a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ValueError(f"option '{dotted}' must be one of {', '.join(choices)}, got {value!r}")
    return value
