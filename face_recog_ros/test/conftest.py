"""Fixtures shared by several test modules."""
from __future__ import annotations

import cv2
import pytest

from face_recog_ros import samples
from face_recog_ros.cli import main


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
    """`--gallery FILE` arguments for a gallery with both public-domain people enrolled by the CLI."""
    root = tmp_path_factory.mktemp("gallery")
    for key, name in samples.PEOPLE.items():
        photo = root / f"{name}.png"
        cv2.imwrite(str(photo), cv2.cvtColor(samples.photo(key), cv2.COLOR_RGB2BGR))
        assert main(["enroll", name, str(photo), "--gallery", str(root / "g.npz")]) == 0
    return ["--gallery", str(root / "g.npz")]
