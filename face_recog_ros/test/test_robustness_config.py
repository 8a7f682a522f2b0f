"""No silent configuration in the node: the real node process refuses wrongly typed, non-finite
and misspelt parameters, naming the parameter (and the closest valid one), and warns about
unknown top-level ones (a `/**:` params file may carry other nodes' parameters)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_tool

from face_recog_ros.ros.parameters import check_node_value

soak_node = load_tool("soak_node")
NODE = [sys.executable, "-m", "face_recog_ros.ros.node", "--ros-args", "-p", "autostart:=false"]


def start(tmp_path: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run the node until it exits (a refusal), or stop it after `timeout` (it started)."""
    env = soak_node.ros_env(soak_node.run_domain())
    try:
        return subprocess.run([*NODE, "-p", f"gallery.path:={tmp_path / 'g.npz'}", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return subprocess.CompletedProcess(exc.cmd, None, out, err)


def params_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "params.yaml"
    path.write_text("/**:\n  ros__parameters:\n" + body)
    return str(path)


@pytest.mark.parametrize("override, message", [
    ("recognition.threshold:=high",
     "parameter 'recognition.threshold' must be a floating-point number"),
    ("detector.max_faces:=many", "parameter 'detector.max_faces' must be an integer"),
    ("recognition.threshold:=.nan", "recognition.threshold"),
    ("gallery_poll_period:=.inf", "gallery_poll_period"),
    ("recognition.treshold:=0.5",
     "unknown parameter 'recognition.treshold'; did you mean 'recognition.threshold'"),
    ("image_topics:=[/a/b, /a_b]",
     "parameter 'image_topics': '/a/b' and '/a_b' both publish as ~/a_b/faces"),
])
def test_bad_overrides_stop_the_node_with_the_reason(tmp_path: Path, override: str,
                                                     message: str) -> None:
    result = start(tmp_path, "-p", override)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "cannot start" in out and message in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize("topics, clash", [
    (["/a/b", "/a_b"], "a_b"), (["cam", "/cam"], "cam"), (["/x/y/z", "x_y/z"], "x_y_z")])
def test_topics_with_one_output_name_are_refused(topics: list[str], clash: str) -> None:
    with pytest.raises(ValueError, match=f"both publish as ~/{clash}/faces"):
        check_node_value("image_topics", topics)
    assert check_node_value("image_topics", ["/front/image", "/back/image"])  # distinct


def test_misspelt_option_in_params_file_stops_the_node(tmp_path: Path) -> None:
    path = params_file(tmp_path, "    recognition:\n      treshold: 0.5\n")
    result = start(tmp_path, "--params-file", path)
    assert result.returncode == 1
    assert "did you mean 'recognition.threshold'" in result.stdout + result.stderr


def test_unknown_top_level_parameter_is_a_warning(tmp_path: Path) -> None:
    path = params_file(tmp_path, "    image_topic: [a]\n")
    result = start(tmp_path, "--params-file", path, timeout=15)
    out = result.stdout + result.stderr
    assert result.returncode is None, out  # still running: a warning, not a refusal
    assert "unknown parameter 'image_topic'; did you mean 'image_topics'" in out, out
