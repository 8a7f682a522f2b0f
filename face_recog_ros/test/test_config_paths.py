"""One constructor path: the CLI and the node honour every option of the same YAML the same way.

The gallery cap was once ignored outside ROS (the recognizer never passed it on; only the node
patched it in afterwards). Here a params file that changes every option goes through the CLI's
and the node's set-up, and the gallery cap is checked by what reaches the gallery file: through
`face-recog enroll`, through the node's ~/enroll, and after a parameter change at run time.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import ros_domain
import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from face_recog_interfaces.srv import Enroll
from face_recog_ros.cli import main
from face_recog_ros.cli.app import build_parser
from face_recog_ros.cli.common import build_config
from face_recog_ros.config import RecognizerConfig
from face_recog_ros.gallery.store import load_gallery
from face_recog_ros.io import samples
from face_recog_ros.options import iter_options
from face_recog_ros.ros.conversion import rgb_to_image
from face_recog_ros.ros.node import FaceRecognitionNode


def other_value(name: str, value: Any, f: dataclasses.Field, strings: dict[str, str]) -> Any:
    """A valid value different from ``value``: the next choice, a step inside the range, or for
    free-form strings the one in ``strings``."""
    meta = f.metadata
    if isinstance(value, bool):
        return not value
    if meta.get("choices"):
        choices = meta["choices"]
        return choices[(choices.index(value) + 1) % len(choices)]
    if isinstance(value, str):
        return strings[name]
    if isinstance(value, int):
        return value + 1 if value + 1 <= meta["high"] else value - 1
    return value + (meta["high"] - value) / 2


def params_file(path: Path, values: dict[str, Any]) -> Path:
    groups: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        group, option = name.split(".")
        groups.setdefault(group, {})[option] = value
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": groups}}))
    return path


def start_node(context: Context, params: Path, **overrides: Any) -> FaceRecognitionNode:
    return FaceRecognitionNode(
        context=context,
        cli_args=["--ros-args", "--params-file", str(params)],
        parameter_overrides=[Parameter(n, value=v) for n, v in overrides.items()],
    )


@pytest.fixture
def context() -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context, domain_id=ros_domain())
    yield context
    rclpy.shutdown(context=context)


def test_every_option_of_a_params_file_reaches_the_recognizer_through_cli_and_node(
    tmp_path, context
):
    strings = {
        "embedder.model": "dlib_resnet_v1_float32",
        "gallery.path": str(tmp_path / "gallery.npz"),
        "gallery.sync_group": "config_paths_test",
    }
    changed = {name: other_value(name, value, f, strings)
               for name, value, f in iter_options(RecognizerConfig())}
    path = params_file(tmp_path / "params.yaml", changed)

    cli_config = build_config(build_parser().parse_args(["list", "--config", str(path)]))
    assert cli_config.flat() == changed

    node = start_node(context, path)
    try:
        assert (
            node.recognizer.config is node.config
        )  # the node's parameters are the recognizer's config
        assert node.config.flat() == changed
        # The stages use their options as they are, not copies that could drift.
        assert node.recognizer.detector.options is node.config.detector
        assert node.cameras[0].stream.options is node.config.tracking
        assert (
            node.recognizer.gallery.max_samples_per_person
            == changed["gallery.max_samples_per_person"]
        )
        assert node.recognizer.threshold == changed["recognition.threshold"]
    finally:
        node.destroy_node()


def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "eileen.png"
    cv2.imwrite(str(path), cv2.cvtColor(samples.photo("astronaut"), cv2.COLOR_RGB2BGR))
    return path


def stored_samples(gallery: Path, name: str) -> int:
    config = RecognizerConfig()
    from face_recog_ros.core.embedding import EmbedderSpec
    from face_recog_ros.core.recognizer import resolve_spec_path
    spec = EmbedderSpec.from_yaml(resolve_spec_path(config.embedder.model))
    return len(load_gallery(gallery, spec.embedding_space, spec.output_dim).embeddings(name))


def test_gallery_cap_is_honoured_by_the_cli(tmp_path):
    config = params_file(tmp_path / "params.yaml", {"gallery.max_samples_per_person": 3})
    gallery = tmp_path / "gallery.npz"
    photo = str(photo_file(tmp_path))
    assert (
        main(
            ["enroll", "eileen", *[photo] * 5, "--config", str(config), "--gallery", str(gallery)]
        )
        == 0
    )
    assert stored_samples(gallery, "eileen") == 3


def test_gallery_cap_is_honoured_by_the_node_and_follows_its_parameter(tmp_path, context):
    gallery = tmp_path / "gallery.npz"
    node = start_node(
        context,
        params_file(tmp_path / "params.yaml", {"gallery.max_samples_per_person": 3}),
        **{"gallery.path": str(gallery)},
    )
    client_node = Node("cap_probe", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(client_node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        client = client_node.create_client(Enroll, "/face_recognition_node/enroll")
        assert client.wait_for_service(timeout_sec=15.0)
        image = rgb_to_image(np.ascontiguousarray(samples.photo("astronaut")))

        def enroll() -> Enroll.Response:
            future = client.call_async(Enroll.Request(name="eileen", image=image))
            deadline = time.monotonic() + 15.0
            while not future.done():
                assert time.monotonic() < deadline, "~/enroll did not answer"
                time.sleep(0.01)
            response = future.result()
            assert response.success, response.message
            return response

        totals = [enroll().total_samples for _ in range(5)]
        assert totals == [1, 2, 3, 3, 3] and stored_samples(gallery, "eileen") == 3
        assert node.set_parameters([Parameter("gallery.max_samples_per_person", value=2)])[
            0
        ].successful
        assert enroll().total_samples == 2 and stored_samples(gallery, "eileen") == 2
    finally:
        executor.shutdown()
        client_node.destroy_node()
        node.destroy_node()
        spinner.join(timeout=5)
