#!/usr/bin/env python3
"""Calibrate where dlib's HOG detector puts its box, from BlazeFace's keypoints (build-time tool).

dlib's 5-point shape predictor was trained on boxes of dlib's HOG face detector; started from
another box it finds other points (dlib's predictor on BlazeFace's own box scored 92.6%
rank-1 against 95.0% from the HOG box on a held-out set). This tool finds, on photos where
both detectors see the subject, the linear map from BlazeFace's eye-line frame (eye distance,
eye-to-mouth distance) to the box face_recognition gives the predictor (the HOG box of
``face_locations``, trimmed to the image), and prints the YAML block ``box_from_keypoints`` of
models/dlib_shape_predictor_5.yaml (``--write`` puts it there).

    python tools/calibrate_landmark_box.py SET_DIR [SET_DIR ...] [--write]

SET_DIR holds <person>/<image> folders, as for ``face-recog evaluate``. Needs face_recognition
(dlib); neither it nor the photos are needed at run time.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from face_recog_ros.config import RecognizerConfig  # noqa: E402
from face_recog_ros.io.images import identity_folders, load_image  # noqa: E402
from face_recog_ros.core.landmarks import eye_frame  # noqa: E402
from face_recog_ros.core.recognizer import FaceRecognizer, main_face  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "models" / "dlib_shape_predictor_5.yaml"


def samples(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(eye distance, mouth drop) per face and the HOG box (centre along, down, side) targets."""
    from face_recog_ros.offline.reference import FaceRecognitionReference

    reference = FaceRecognitionReference()
    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    features, targets = [], []
    for path in paths:
        rgb = load_image(path)
        location = reference.largest(rgb)
        detections = recognizer.detect_photo(rgb)
        if location is None or not detections:
            continue
        top, right, bottom, left = location
        face = main_face(detections)
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        x1, y1, x2, y2 = face.box
        if not (x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2):
            continue  # the two detectors chose different faces
        mid, along, down, scales = eye_frame(face.keypoints[None])
        offset = centre - mid[0]
        features.append(scales[0])
        targets.append([offset @ along[0], offset @ down[0], (right - left + bottom - top) / 2])
    return np.array(features), np.array(targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="folders of <person>/<image> photos")
    parser.add_argument("--write", action="store_true", help=f"update {SPEC.name}")
    args = parser.parse_args()
    paths = [p for d in args.dirs for images in identity_folders(d).values() for p in images]
    features, targets = samples(paths)
    if len(features) < 20:
        print(f"only {len(features)} usable photos; need at least 20", file=sys.stderr)
        return 1
    coefficients, *_ = np.linalg.lstsq(features, targets, rcond=None)  # (2 scales, 3 targets)
    residual = targets - features @ coefficients
    relative = np.abs(residual) / targets[:, 2:3]
    along, down, side = np.median(relative, axis=0)
    print(f"# {len(features)} photos; median |error| / box side: along {along:.3f}, "
          f"down {down:.3f}, side {side:.3f}")
    block = (f"box_from_keypoints:  # tools/calibrate_landmark_box.py, {len(features)} photos\n"
             + "".join(f"  {name}: [{coefficients[0, i]:.4f}, {coefficients[1, i]:.4f}]\n"
                       for i, name in enumerate(("along", "down", "size"))))
    print(block, end="")
    if args.write:
        text = SPEC.read_text()
        text = re.sub(r"box_from_keypoints:.*?(?=\n\S|\Z)", block.rstrip("\n"), text, flags=re.S)
        SPEC.write_text(text if text.endswith("\n") else text + "\n")
        print(f"wrote {SPEC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
