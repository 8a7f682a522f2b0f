"""ROS parameters from the same option definitions the core validates against.

Every option of the stages (composed in config.RecognizerConfig) becomes a parameter named
`group.option` with its description, range and read-only flag in the descriptor, so
`ros2 param describe` documents it and rclpy rejects values out of range. The node's own
(top-level) parameters are listed in NODE_PARAMS. Defaults come from the package's
config/face_recognition.yaml, so a node started without a params file behaves like one started
with it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node

from ..config import RecognizerConfig, default_config_path, ros_parameters
from ..options import check_value, did_you_mean, iter_options, option, set_option
from .diagnostic_levels import Thresholds
from .image_input import camera_name
from .image_qos import AUTO, MODES


@dataclass(frozen=True)
class NodeParam:
    """A node-level parameter (top-level scalar in the YAML), validated like a core option."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False
    choices: tuple[str, ...] | None = None


_THRESHOLDS = Thresholds()
NODE_PARAMS: tuple[NodeParam, ...] = (
    NodeParam(
        "image_topics",
        ["image"],
        "Image topics to recognise faces in, one StreamRecognizer "
        "(tracker) each, sharing the models and gallery. One topic keeps the plain output names "
        "(~/faces); several give ~/<camera>/faces with <camera> = the topic with '/' -> '_'",
        read_only=True,
    ),
    NodeParam(
        "use_compressed",
        False,
        "Subscribe <topic>/compressed (sensor_msgs/CompressedImage, "
        "JPEG/PNG) instead of the raw sensor_msgs/Image",
        read_only=True,
    ),
    NodeParam(
        "autostart",
        True,
        "Configure and activate the (lifecycle) node as it starts. false: it waits unconfigured "
        "for lifecycle transitions (ros2 lifecycle set, a launch file, a lifecycle manager)",
        read_only=True,
    ),
    NodeParam(
        "image_reliability",
        AUTO,
        "Image subscription reliability (keep-last 1 either way). auto: reliable when every "
        "publisher of the topic offers reliable, otherwise best-effort, re-decided as publishers "
        "come and go (as rosbag2 does); a best-effort subscriber loses most raw frames from "
        "another process",
        read_only=True,
        choices=MODES,
    ),
    NodeParam(
        "publish_detections",
        True,
        "Publish ~/detections (vision_msgs/Detection2DArray: one detection per face, id = "
        "track id, class_id = label, score = similarity) when vision_msgs is installed",
        read_only=True,
    ),
    NodeParam(
        "publish_rep155",
        False,
        "Publish the ROS4HRI (REP-155) face topics: /humans/faces/tracked, "
        "/humans/faces/<id>/roi, /cropped and /aligned (while subscribed), and "
        "/humans/candidate_matches (face -> enrolled person); needs hri_msgs",
        read_only=True,
    ),
    NodeParam(
        "process_every_n",
        1,
        "Process every n-th received frame (1: all); frames arriving "
        "while one is processed are dropped anyway, newest kept",
        low=1,
        high=1000,
    ),
    NodeParam(
        "max_input_pixels",
        7680 * 4320,
        "Frames with more pixels (width * height) are refused "
        "before anything is allocated (malformed or hostile messages)",
        low=1,
        high=2**31 - 1,
    ),
    NodeParam(
        "publish_annotated",
        True,
        "Publish ~/image_annotated (boxes and names drawn) while "
        "someone subscribes to it; it is never drawn without a subscriber",
    ),
    NodeParam(
        "publish_embeddings",
        False,
        "Fill Face.embedding for faces embedded in that frame "
        "(tracking embeds each face only now and then)",
    ),
    NodeParam(
        "diagnostics_period",
        1.0,
        "Seconds between /diagnostics messages (rates, dropped "
        "frames, stage latencies, input errors)",
        low=0.1,
        high=3600.0,
        read_only=True,
    ),
    NodeParam(
        "diagnostics_image_timeout",
        _THRESHOLDS.image_timeout,
        "Seconds without an image (since activation before the first one) after which a "
        "camera's /diagnostics status is ERROR",
        low=0.1,
        high=3600.0,
    ),
    NodeParam(
        "diagnostics_min_processed_ratio",
        _THRESHOLDS.min_processed_ratio,
        "A camera's /diagnostics status is WARN when fewer than this share of the frames it "
        "should process (received / process_every_n) were processed in a report window",
        low=0.0,
        high=1.0,
    ),
    NodeParam(
        "gallery_poll_period",
        2.0,
        "Seconds between checks whether another process (a second "
        "node, the face-recog CLI) changed the gallery file; its changes are merged in, never "
        "swapped in over this node's own",
        low=0.05,
        high=3600.0,
        read_only=True,
    ),
    NodeParam(
        "enroll_timeout",
        30.0,
        "Wall-clock seconds ~/enroll waits for a live enrolment, "
        "frames or not; then it is cancelled (tracking.enroll_timeout is the same limit in "
        "camera time, which also holds for replayed bags)",
        low=1.0,
        high=3600.0,
    ),
)
NODE_PARAM_NAMES = frozenset(p.name for p in NODE_PARAMS)


def load_defaults(path: Path | None = None) -> tuple[RecognizerConfig, dict[str, Any]]:
    """The core config and the node parameters from the package YAML (missing file: built-in
    defaults)."""
    path = path or default_config_path()
    node = {p.name: copy.deepcopy(p.default) for p in NODE_PARAMS}
    if not path.is_file():
        return RecognizerConfig(), node
    data = ros_parameters(yaml.safe_load(path.read_text()) or {})
    for param in NODE_PARAMS:
        if param.name in data:
            node[param.name] = check_node_value(param.name, data[param.name])
    return RecognizerConfig.from_dict(data), node


def _node_param(name: str) -> NodeParam:
    return next(p for p in NODE_PARAMS if p.name == name)


def check_node_value(name: str, value: Any) -> Any:
    """A node parameter's value after type and range checks; ValueError says what is wrong."""
    param = _node_param(name)
    if isinstance(param.default, list):
        if (
            not isinstance(value, (list, tuple))
            or not value
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            raise ValueError(
                f"parameter '{name}' must be a non-empty list of topic names, got {value!r}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"parameter '{name}' lists a topic twice: {list(value)!r}")
        check_output_names(list(value))
        return list(value)
    return check_value(name, value, option(param.default, param.description, low=param.low,
                                           high=param.high, choices=param.choices))


def check_output_names(topics: list[str]) -> None:
    """Several cameras publish on ~/<camera>/..., <camera> = the topic with '/' -> '_': two
    topics giving one name would share every output and diagnostics name. ValueError names them.
    """
    seen: dict[str, str] = {}
    for topic in topics:
        name = camera_name(topic)
        if name in seen:
            raise ValueError(
                f"parameter 'image_topics': {seen[name]!r} and {topic!r} both publish as "
                f"~/{name}/faces (outputs are named from the topic with '/' -> '_'); remap one "
                "of them to another name")
        seen[name] = topic


def _ros_type(default: Any) -> int:
    if isinstance(default, bool):
        return ParameterType.PARAMETER_BOOL
    if isinstance(default, int):
        return ParameterType.PARAMETER_INTEGER
    if isinstance(default, float):
        return ParameterType.PARAMETER_DOUBLE
    if isinstance(default, list):
        return ParameterType.PARAMETER_STRING_ARRAY
    return ParameterType.PARAMETER_STRING


def descriptor(name: str, default: Any, description: str, *, low: float | None = None,
               high: float | None = None, choices: tuple[str, ...] | None = None,
               read_only: bool = False) -> ParameterDescriptor:
    d = ParameterDescriptor(name=name, type=_ros_type(default), description=description,
                            read_only=read_only)
    constraints = ["one of: " + ", ".join(choices)] if choices else []
    if read_only:
        constraints.append("read-only: set it in the params file and restart the node")
    d.additional_constraints = "; ".join(constraints)
    if low is not None and high is not None and not isinstance(default, bool):
        if isinstance(default, int):
            d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        elif isinstance(default, float):
            d.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
    return d


def declarations(config: RecognizerConfig, node_defaults: dict[str, Any]
                 ) -> list[tuple[str, Any, ParameterDescriptor]]:
    """(name, default, descriptor) for every core option and node parameter."""
    out = []
    for name, value, f in iter_options(config):
        meta = f.metadata
        out.append((name, value, descriptor(
            name, value, meta["description"], low=meta.get("low"), high=meta.get("high"),
            choices=meta.get("choices"), read_only=bool(meta.get("read_only")))))
    for p in NODE_PARAMS:
        value = node_defaults[p.name]
        out.append((p.name, value, descriptor(p.name, value, p.description, low=p.low, high=p.high,
                                              choices=p.choices, read_only=p.read_only)))
    return out


def validate_changes(config: RecognizerConfig, changes: dict[str, Any]) -> RecognizerConfig:
    """A copy of config with the core-option changes applied and every rule checked, the rules
    between options included; ValueError names the first bad one."""
    candidate = copy.deepcopy(config)
    for name, value in changes.items():
        if name in NODE_PARAM_NAMES:
            check_node_value(name, value)
        else:
            set_option(candidate, name, value)
    candidate.validate()
    return candidate


_TYPE_NAMES = {
    ParameterType.PARAMETER_BOOL: "true or false",
    ParameterType.PARAMETER_INTEGER: "an integer",
    ParameterType.PARAMETER_DOUBLE: "a floating-point number (write 1.0, not 1)",
    ParameterType.PARAMETER_STRING: "a string",
    ParameterType.PARAMETER_STRING_ARRAY: "a list of strings",
}
# rclpy's own parameters, set on any node from the command line or a params file.
_RCLPY_PARAMS = ("use_sim_time", "start_type_description_service", "qos_overrides.")


def declare_all(node: Node, declared: list[tuple[str, Any, ParameterDescriptor]]) -> None:
    """Declare each parameter; a value of the wrong type (`-p recognition.threshold:=high`, or
    in a params file) is a ValueError naming the parameter and the type it needs."""
    for name, value, desc in declared:
        try:
            node.declare_parameter(name, value, desc)
        except InvalidParameterTypeException as exc:
            raise ValueError(f"parameter '{name}' must be {_TYPE_NAMES[desc.type]}: {exc}"
                             ) from None


def refuse_unknown_parameters(given: list[str], declared: frozenset[str]) -> list[str]:
    """Warnings for parameters given to the node that it does not have; ValueError for those
    that can only be mistakes.

    A name in one of the option groups (`recognition.treshold`) is an error: it can only be a
    mistake. A top-level one is a warning: a params file with `/**:` may carry other nodes'
    parameters. Both name the closest valid parameter.
    """
    groups = {name.split(".")[0] for name in declared if "." in name}
    errors, warnings = [], []
    for name in sorted(set(given) - declared):
        if name.startswith(_RCLPY_PARAMS):
            continue
        text = f"unknown parameter '{name}'{did_you_mean(name, declared)}"
        (errors if name.split(".")[0] in groups else warnings).append(text)
    if errors:
        raise ValueError("; ".join(errors))
    return warnings
