"""The switchable standard outputs of an active node: ~/detections (vision_msgs) and REP-155.

Each is on by its parameter (publish_detections, publish_rep155) and needs its message package;
when that cannot be imported the node says once that the output is off and runs without it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from std_msgs.msg import Header

from ..tracking.stream import StreamResult
from ..types import Detection
from . import rep155, vision_output

_said: set[tuple[str, str]] = set()  # (node, output) already logged as off: once per process


def _off_once(node: Any, output: str, package: str, error: str) -> None:
    key = (node.get_fully_qualified_name(), output)
    if key not in _said:
        _said.add(key)
        node.get_logger().warning(
            f"{output} is off: {package} cannot be imported ({error}); install it "
            f"(rosdep install, or apt install ros-$ROS_DISTRO-{package.replace('_', '-')})")


class StandardOutputs:
    """Publishers for one activation; `publish` is called by the worker after each frame."""

    def __init__(self, node: Any, settings: dict[str, Any], prefixes: Sequence[str],
                 align: Callable[[np.ndarray, Detection], np.ndarray]) -> None:
        self._node = node
        self._detections: list[Any] = []
        self._rep155: rep155.Rep155Faces | None = None
        if settings["publish_detections"]:
            if vision_output.available():
                self._detections = [
                    node.create_publisher(vision_output.Detection2DArray,
                                          prefix + vision_output.TOPIC, 10)
                    for prefix in prefixes]
            else:
                _off_once(node, "~/detections", "vision_msgs", vision_output.IMPORT_ERROR)
        if settings["publish_rep155"]:
            if rep155.available():
                self._rep155 = rep155.Rep155Faces(node, len(prefixes) > 1, align)
            else:
                _off_once(node, "REP-155 output", "hri_msgs", rep155.IMPORT_ERROR)

    def publish(self, camera: int, result: StreamResult, header: Header, rgb: np.ndarray) -> None:
        if self._detections:
            self._detections[camera].publish(
                vision_output.faces_to_detections(result.faces, header))
        if self._rep155 is not None:
            self._rep155.publish(camera, result.faces, result.events, header, rgb)

    def close(self) -> None:
        for publisher in self._detections:
            self._node.destroy_publisher(publisher)
        self._detections = []
        if self._rep155 is not None:
            self._rep155.close()
            self._rep155 = None
