"""Fixtures shared by several test modules."""
from __future__ import annotations

import importlib.util
import resource
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
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


def ros_domain() -> int:
    """The ROS domain for a test's nodes: ROS_DOMAIN_ID when set (each worktree runs in its
    own, so parallel runs cannot meet), else a random one."""
    return load_tool("soak_node").run_domain()


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


@dataclass(frozen=True)
class DlibFace:
    """A public-domain face as dlib sees it: face_recognition's path (HOG box, 5 points, chip)."""

    name: str
    rgb: np.ndarray
    box: tuple[int, int, int, int]  # dlib rectangle: left, top, right, bottom
    points: np.ndarray  # (5, 2) dlib's landmarks (whole pixels)
    chip: np.ndarray  # dlib.get_face_chip(rgb, shape, 150, 0.25)


@pytest.fixture(scope="session")
def dlib_faces() -> list[DlibFace]:
    """The sample faces and their mirror images, with dlib's own landmarks and chips."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    faces = []
    for key in samples.PEOPLE:
        for mirrored in (False, True):
            photo = samples.photo(key)
            rgb = np.ascontiguousarray(photo[:, ::-1] if mirrored else photo)
            rect = max(hog(rgb, 1), key=lambda r: r.area())
            shape = predictor(rgb, rect)
            faces.append(DlibFace(key + (" mirrored" if mirrored else ""), rgb,
                                  (rect.left(), rect.top(), rect.right(), rect.bottom()),
                                  np.array([(p.x, p.y) for p in shape.parts()], np.float64),
                                  np.asarray(dlib.get_face_chip(rgb, shape, size=150,
                                                                padding=0.25))))
    return faces


def inter_ocular(points: np.ndarray) -> float:
    """dlib's inter-ocular distance for 5 points: between the eye centres (corner midpoints)."""
    return float(np.linalg.norm(points[0:2].mean(0) - points[2:4].mean(0)))


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
