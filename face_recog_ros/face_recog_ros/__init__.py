"""face_recog_ros: real-time face recognition for robots, usable with or without ROS.

    from face_recog_ros import FaceRecognizer, RecognizerConfig, load_image

    config = RecognizerConfig()            # or RecognizerConfig.from_yaml("face_recognition.yaml")
    config.gallery.path = "gallery.npz"   # "" keeps the gallery in memory
    recognizer = FaceRecognizer(config)
    recognizer.enroll("alice", [load_image("alice1.jpg"), load_image("alice2.jpg")])
    for face in recognizer.process(load_image("group.jpg")):
        print(face.label, round(face.similarity, 2), face.detection.box)

For video, `StreamRecognizer(recognizer).process(frame, stamp)` adds face tracks, labels
voted over time and appeared/identified/left events. Images are RGB uint8 arrays.

The names are loaded on first use (PEP 562), so importing a subpackage, e.g. the ROS layer from
a console script, does not load numpy before that entry point has set its thread limits.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers and editors
    from .config import RecognizerConfig
    from .core.recognizer import EnrollError, EnrollResult, FaceRecognizer
    from .io.images import load_image
    from .tracking.stream import StreamRecognizer
    from .types import UNKNOWN, Detection, Face

_PUBLIC = {
    "Detection": ".types", "Face": ".types", "UNKNOWN": ".types",
    "EnrollError": ".core.recognizer", "EnrollResult": ".core.recognizer",
    "FaceRecognizer": ".core.recognizer",
    "RecognizerConfig": ".config",
    "StreamRecognizer": ".tracking.stream",
    "load_image": ".io.images",
}

__all__ = ["Detection", "EnrollError", "EnrollResult", "Face", "FaceRecognizer",
           "RecognizerConfig", "StreamRecognizer", "UNKNOWN", "load_image"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_PUBLIC[name], __name__)
    except ModuleNotFoundError as missing:  # e.g. a pip install without the [standalone] extra
        from .dependencies import install_hint
        raise ModuleNotFoundError(install_hint(missing.name or ""), name=missing.name) from missing
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
