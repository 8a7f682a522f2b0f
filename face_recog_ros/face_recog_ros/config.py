"""The recognizer's configuration: every stage's options composed into one object.

Each stage declares its own options dataclass (detector, embedder, alignment, recognition,
gallery, tracking) with descriptions, ranges and the rules between them; this module only
composes them and reads the YAML. The library, the CLI and the ROS node all use this one
definition: the node declares its parameters (with descriptors) from it, and the one YAML file
in config/ serves all three.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .core.aligner import AlignmentOptions
from .core.detection import DetectorOptions
from .core.embedding import EmbedderOptions
from .core.matching import RecognitionOptions
from .core.runtime import package_share_dir
from .gallery.options import GalleryOptions
from .options import iter_options, set_option
from .tracking.options import TrackingOptions

CONFIG_FILE = "face_recognition.yaml"

__all__ = [
    "RecognizerConfig",
    "default_config_path",
    "iter_options",
    "ros_parameters",
    "set_option",
]


def default_config_path() -> Path:
    """The package's config/face_recognition.yaml (installed share folder or source tree)."""
    return package_share_dir() / "config" / CONFIG_FILE


@dataclass
class RecognizerConfig:
    """Every stage's options, as the YAML's groups and the node's `group.option` parameters.

    ``FaceRecognizer(config)`` and ``StreamRecognizer`` read the groups as they are, not
    copies: an option changed on this object (a node parameter) applies from the next frame,
    except the read-only ones, which take effect when the recognizer is built.
    """

    detector: DetectorOptions = field(default_factory=DetectorOptions)
    embedder: EmbedderOptions = field(default_factory=EmbedderOptions)
    alignment: AlignmentOptions = field(default_factory=AlignmentOptions)
    recognition: RecognitionOptions = field(default_factory=RecognitionOptions)
    gallery: GalleryOptions = field(default_factory=GalleryOptions)
    tracking: TrackingOptions = field(default_factory=TrackingOptions)

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
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RecognizerConfig":
        """Read the ROS-params style YAML (`<node or /**>: ros__parameters: {...}`) or a plain
        mapping."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read config {path}: {exc}") from None
        return cls.from_dict(ros_parameters(data))

    @classmethod
    def from_package(cls) -> "RecognizerConfig":
        """The package's config/face_recognition.yaml (built-in defaults if it is missing)."""
        path = default_config_path()
        return cls.from_yaml(path) if path.is_file() else cls()

    def flat(self) -> dict[str, Any]:
        """All options as 'group.name' -> value, the names the ROS node declares."""
        return {name: value for name, value, _ in iter_options(self)}

    def validate(self) -> None:
        """Every group's checks, the rules between options included; ValueError names the
        option."""
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate(prefix=f"{f.name}.")


def ros_parameters(data: dict[str, Any]) -> dict[str, Any]:
    """Unwrap the first `ros__parameters` block of a ROS 2 params file, if there is one."""
    for value in data.values():
        if isinstance(value, dict) and "ros__parameters" in value:
            return value["ros__parameters"] or {}
    return data
