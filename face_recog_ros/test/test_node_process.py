"""The installed `face_recognition_node` executable: params file, remapping, clean exit, bad
parameters."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ros_domain
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter_client import AsyncParameterClient

from face_recog_interfaces.srv import ListFaces

TIMEOUT_S = 30.0
EXECUTABLE = shutil.which(
    "face_recognition_node",
    path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
)
pytestmark = pytest.mark.skipif(
    EXECUTABLE is None, reason="face_recognition_node is not installed (./setup.sh install)"
)


class Probe:
    def __init__(self, domain: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node("process_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def wait(self, future) -> object:
        self.executor.spin_until_future_complete(future, timeout_sec=TIMEOUT_S)
        assert future.done(), "no answer from the node"
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def start(params: str, tmp_path: Path, domain: int, *extra: str) -> subprocess.Popen:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(params.replace("GALLERY", str(tmp_path / "gallery.npz")))
    return subprocess.Popen(
        [EXECUTABLE, "--ros-args", "--params-file", str(params_file), *extra],
        env=dict(os.environ, ROS_DOMAIN_ID=str(domain)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def domain() -> Iterator[int]:
    yield ros_domain()


def test_params_file_remapping_and_clean_shutdown(tmp_path, domain):
    params = """
/**/face_recognition_node:  # any namespace
  ros__parameters:
    use_compressed: true
    recognition:
      threshold: 0.9
    gallery:
      path: GALLERY
"""
    process = start(params, tmp_path, domain, "-r", "image:=/cam/raw", "-r", "__ns:=/robot")
    probe = Probe(domain)
    try:
        client = probe.node.create_client(ListFaces, "/robot/face_recognition_node/list_faces")
        assert client.wait_for_service(timeout_sec=TIMEOUT_S), "the node did not come up"
        listed = probe.wait(client.call_async(ListFaces.Request()))
        assert listed.success and list(listed.names) == []
        parameters = AsyncParameterClient(probe.node, "/robot/face_recognition_node")
        assert parameters.wait_for_services(timeout_sec=TIMEOUT_S)
        values = probe.wait(
            parameters.get_parameters(
                ["recognition.threshold", "detector.min_score", "use_compressed", "image_topics"]
            )
        ).values
        # From the file; the rest from the package's config/face_recognition.yaml.
        assert values[0].double_value == 0.9 and values[1].double_value == 0.5
        assert values[2].bool_value and list(values[3].string_array_value) == ["image"]
        # The compressed transport follows the remapped base topic (image_transport convention).
        assert probe.node.count_subscribers("/cam/raw/compressed") == 1
        assert probe.node.count_publishers("/robot/face_recognition_node/faces") == 1
    finally:
        probe.close()
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=TIMEOUT_S)[0]
    assert process.returncode == 0, output
    assert "ready:" in output


@pytest.mark.parametrize("params,expected", [
    ("recognition:\n      threshold: 5.0", "recognition.threshold"),
    ("detector:\n      model_range: medium", "model_range"),
    ("image_topics: ['a', 'a']", "twice"),
])
def test_bad_parameters_stop_the_node_with_the_reason(tmp_path, domain, params, expected):
    process = start(f"/**:\n  ros__parameters:\n    {params}\n", tmp_path, domain)
    output = process.communicate(timeout=TIMEOUT_S)[0]
    assert process.returncode == 1, output
    assert "cannot start" in output and expected in output
