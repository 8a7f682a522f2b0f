"""Fixtures shared by several test modules."""
from __future__ import annotations

import importlib.util
import resource
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2
import pytest

from face_recog_ros.io import samples
from face_recog_ros.cli import main


TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py (scripts, not a package) once per test session."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def count_frames(path) -> int:
    """Frames OpenCV decodes from a video file (the written output, read back independently)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> list[str]:
    """`--gallery FILE` arguments for a gallery with both public-domain people enrolled by the
    CLI."""
    root = tmp_path_factory.mktemp("gallery")
    for key, name in samples.PEOPLE.items():
        photo = root / f"{name}.png"
        cv2.imwrite(str(photo), cv2.cvtColor(samples.photo(key), cv2.COLOR_RGB2BGR))
        assert main(["enroll", name, str(photo), "--gallery", str(root / "g.npz")]) == 0
    return ["--gallery", str(root / "g.npz")]


@pytest.fixture
def rss_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """The test may grow the peak RSS by at most its module's MAX_RSS_GROWTH_MB."""
    limit = request.module.MAX_RSS_GROWTH_MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert (
        grown_mb < limit
    ), f"peak RSS grew by {grown_mb:.0f} MB (limit {limit} MB) on small inputs"
