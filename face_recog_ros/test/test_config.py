"""The one configuration: the shipped YAML loads, and every option is checked."""
from __future__ import annotations

from pathlib import Path

import pytest

from face_recog_ros.cli import main
from face_recog_ros.config import RecognizerConfig, iter_options, set_option

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "face_recognition.yaml"


def test_shipped_yaml_loads_and_sets_every_core_option():
    config = RecognizerConfig.from_yaml(SHIPPED)
    assert config.flat() == RecognizerConfig().flat()  # the YAML documents the defaults


def test_every_option_has_a_description():
    for name, _, f in iter_options(RecognizerConfig()):
        assert f.metadata.get("description"), name


@pytest.mark.parametrize("name, value, message", [
    ("detector.min_score", 2.0, "outside"),
    ("detector.model_range", "medium", "one of"),
    ("detector.max_faces", 2.5, "integer"),
    ("recognition.each_once", "yes", "true or false"),
    ("detector.nope", 1, "unknown option"),
    ("recognition.max_yaw", 0.6, "renamed to recognition.max_yaw_deg .degrees"),
    ("alignment.method", "mesh", "one of landmarks, keypoints"),
    ("nope.x", 1, "unknown option"),
    ("recognition.treshold", 0.5, "did you mean 'recognition.threshold'"),
    ("recogniton.threshold", 0.5, "did you mean 'recognition.threshold'"),
    ("recognition.threshold", float("nan"), "finite"),
    ("recognition.threshold", float("inf"), "finite"),
    ("detector.max_faces", float("inf"), "finite"),
])
def test_bad_values_are_refused_with_the_option_named(name, value, message):
    with pytest.raises(ValueError, match=message):
        set_option(RecognizerConfig(), name, value)


def test_yaml_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    detector: {min_score: -3}\n")
    with pytest.raises(ValueError, match="detector.min_score"):
        RecognizerConfig.from_yaml(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("detector: [unclosed\n")
    with pytest.raises(ValueError, match="cannot read config"):
        RecognizerConfig.from_yaml(broken)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("detectr:\n  min_score: 0.4\n")
    with pytest.raises(ValueError, match="unknown configuration group 'detectr'; did you mean "
                                         "'detector'"):
        RecognizerConfig.from_yaml(unknown)
    typo = tmp_path / "typo.yaml"
    typo.write_text("/**:\n  ros__parameters:\n    recognition: {treshold: 0.5}\n")
    with pytest.raises(ValueError, match="did you mean 'recognition.threshold'"):
        RecognizerConfig.from_yaml(typo)


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf"])
def test_yaml_nan_and_inf_are_refused(tmp_path, text):
    path = tmp_path / "nan.yaml"
    path.write_text(f"recognition:\n  threshold: {text}\n")
    with pytest.raises(ValueError, match="recognition.threshold must be a finite number"):
        RecognizerConfig.from_yaml(path)


@pytest.mark.parametrize("args", [["--threshold", "nan"], ["--threshold", "inf"], ["--config"]])
def test_cli_refuses_nan_threshold(tmp_path, capsys, args):
    if args == ["--config"]:
        path = tmp_path / "nan.yaml"
        path.write_text("/**:\n  ros__parameters:\n    recognition: {threshold: .nan}\n")
        args = ["--config", str(path)]
    assert main(["list", "--gallery", str(tmp_path / "g.npz"), *args]) == 2
    assert "recognition.threshold must be a finite number" in capsys.readouterr().err


def test_node_only_scalars_are_ignored_by_the_core():
    config = RecognizerConfig.from_dict({"use_compressed": True, "detector": {"min_score": 0.7}})
    assert config.detector.min_score == 0.7
