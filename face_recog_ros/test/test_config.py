"""The one configuration: the shipped YAML loads, and every option is checked."""
from __future__ import annotations

from pathlib import Path

import pytest

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
    with pytest.raises(ValueError, match="unknown configuration group 'detectr'"):
        RecognizerConfig.from_yaml(unknown)


def test_node_only_scalars_are_ignored_by_the_core():
    config = RecognizerConfig.from_dict({"use_compressed": True, "detector": {"min_score": 0.7}})
    assert config.detector.min_score == 0.7
