#!/usr/bin/env python3
"""Convert dlib's 5-point face landmark model into the arrays face_recog_ros runs in numpy.

    python face_recog_ros/tools/convert_dlib_shape_predictor.py [--out-dir face_recog_ros/models]

Build time only: needs dlib (dlib-bin) and face_recognition_models 0.3.0, whose
``shape_predictor_5_face_landmarks.dat`` is Davis King's public-domain model (see
models/README.md). The run time never imports dlib.

The ``.dat`` is dlib's serialization of ``shape_predictor`` (dlib/image_processing/
shape_predictor.h): version 1, the initial shape, then per cascade level the regression trees
(splits: two feature indices and a threshold; leaves: shape updates), the anchor landmark of
each feature pixel and its offset. They are written unchanged (float32, as dlib keeps them)
to ``dlib_shape_predictor_5.npz``. Before anything is written, face_recog_ros's predictor must
return exactly dlib's landmarks (after dlib's rounding to whole pixels) on public-domain faces,
and the spec's calibrated ``box_from_keypoints`` block is kept.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from convert_dlib_resnet import DlibReader, public_domain_images  # noqa: E402

from face_recog_ros.core.landmarks import NPZ_FORMAT, ShapePredictor  # noqa: E402

SOURCE_PACKAGE = "face-recognition-models"
SOURCE_VERSION = "0.3.0"
MODEL_NAME = "shape_predictor_5_face_landmarks.dat"
MODEL_ID = "dlib_shape_predictor_5"
LICENSE = ("Public domain: Davis King's dlib-models README says of its models 'I've released them "
           "into the public domain'; this one is trained on his own dlib 5-point face landmark "
           "dataset (7198 faces he annotated); face-recognition-models ships it under CC0 1.0")


def parse_shape_predictor(data: bytes) -> dict[str, np.ndarray]:
    """dlib's serialized shape_predictor -> the arrays of landmarks.NPZ_FORMAT."""
    r = DlibReader(data)
    if r.int() != 1:
        raise ValueError("not a version 1 dlib shape_predictor")

    def column() -> np.ndarray:  # matrix<float,0,1>: -rows, -cols, then the values
        rows, cols = abs(r.int()), abs(r.int())
        return np.array([r.float() for _ in range(rows * cols)], np.float32)

    initial = column()
    idx1, idx2, thresh, leaves = [], [], [], []
    for _ in range(r.int()):  # cascade levels
        level = [[], [], [], []]
        for _ in range(r.int()):  # trees
            splits = [(r.int(), r.int(), r.float()) for _ in range(r.int())]
            level[0].append([s[0] for s in splits])
            level[1].append([s[1] for s in splits])
            level[2].append([s[2] for s in splits])
            level[3].append([column() for _ in range(r.int())])
        for out, values in zip((idx1, idx2, thresh, leaves), level):
            out.append(values)
    anchors = [[r.int() for _ in range(r.int())] for _ in range(r.int())]
    deltas = [[(r.float(), r.float()) for _ in range(r.int())] for _ in range(r.int())]
    if not r.at_end():
        raise ValueError("trailing bytes after the shape_predictor")
    return {"format": np.array(NPZ_FORMAT), "initial_shape": initial,
            "split_idx1": np.array(idx1, np.uint16), "split_idx2": np.array(idx2, np.uint16),
            "split_thresh": np.array(thresh, np.float32),
            "leaf_values": np.array(leaves, np.float32),
            "anchor_idx": np.array(anchors, np.uint8), "deltas": np.array(deltas, np.float32)}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, byte for byte reproducible (fixed member order and time stamps)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def check_against_dlib(npz: Path, dat: Path) -> dict:
    """dlib's and our landmarks on public-domain faces (HOG boxes; flipped, rotated, rescaled)."""
    import cv2
    import dlib

    ours = ShapePredictor(npz)
    theirs = dlib.shape_predictor(str(dat))
    hog = dlib.get_frontal_face_detector()
    faces = exact = 0
    worst = 0.0
    for image in public_domain_images().values():
        centre = (image.shape[1] / 2, image.shape[0] / 2)
        rotated = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, 12, 1.0),
                                 image.shape[1::-1])
        for variant in (image, image[:, ::-1], cv2.resize(image, None, fx=0.6, fy=0.6), rotated):
            variant = np.ascontiguousarray(variant)
            for rect in hog(variant, 1):
                box = (rect.left(), rect.top(), rect.right(), rect.bottom())
                reference = np.array([(p.x, p.y) for p in theirs(variant, rect).parts()], float)
                points = np.floor(ours.predict(variant, [box])[0] + 0.5)  # dlib rounds to pixels
                faces += 1
                exact += bool(np.array_equal(points, reference))
                worst = max(worst, float(np.abs(points - reference).max()))
    if faces < 8 or exact != faces:
        raise SystemExit(f"conversion check failed: {exact} of {faces} faces exact, "
                         f"worst {worst} px")
    return {"faces": faces, "identical_integer_landmarks": exact, "max_abs_difference_px": worst}


def write_spec(path: Path, npz_name: str) -> None:
    """The model's YAML spec, keeping a calibrated box_from_keypoints block."""
    old = yaml.safe_load(path.read_text()) if path.is_file() else None
    box = (old or {}).get("box_from_keypoints")
    if box:
        block = ("box_from_keypoints:  # kept from the previous spec "
                 "(tools/calibrate_landmark_box.py)\n"
                 + "".join(f"  {k}: [{box[k][0]}, {box[k][1]}]\n"
                           for k in ("along", "down", "size")))
    else:
        block = "box_from_keypoints: null  # run tools/calibrate_landmark_box.py\n"
    path.write_text(
        f"# Landmark model for alignment.method 'landmarks': dlib's 5-point shape predictor.\n"
        f"# Made by tools/convert_dlib_shape_predictor.py from {MODEL_NAME} ({SOURCE_PACKAGE}).\n"
        f"id: {MODEL_ID}\n"
        f"file: {npz_name}\n"
        "# Points, in order: left_eye_outer, left_eye_inner, right_eye_outer, right_eye_inner,\n"
        "# nose_base (the subject's left eye first: on the image's right).\n"
        "# The predictor starts from the box dlib's HOG detector would draw. That box, from\n"
        "# BlazeFace's keypoints, in the eye-line frame (origin between the eyes, x along the"
        " eye\n"
        "# line, y towards the mouth): centre x, centre y and side are each\n"
        "# k1 * eye distance + k2 * eye-to-mouth distance, [k1, k2] below.\n"
        f"{block}")


def main() -> int:
    import dlib
    import face_recognition_models as frm
    from importlib.metadata import version

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=HERE.parent / "models")
    parser.add_argument("--source", type=Path,
                        default=Path(frm.pose_predictor_five_point_model_location()))
    args = parser.parse_args()
    if version(SOURCE_PACKAGE) != SOURCE_VERSION:
        print(f"warning: {SOURCE_PACKAGE} {version(SOURCE_PACKAGE)} installed; provenance pins "
              f"{SOURCE_VERSION}", file=sys.stderr)
    data = args.source.read_bytes()
    arrays = parse_shape_predictor(data)
    shapes = {k: list(v.shape) for k, v in arrays.items()}
    print(f"parsed {args.source.name}: {shapes}")
    out = args.out_dir / f"{MODEL_ID}.npz"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    save_npz(out, arrays)
    check = check_against_dlib(out, args.source)
    print(f"check against dlib: {check}")
    write_spec(args.out_dir / f"{MODEL_ID}.yaml", out.name)
    provenance = {
        "source": {"package": SOURCE_PACKAGE, "package_version": version(SOURCE_PACKAGE),
                   "file": MODEL_NAME, "sha256": hashlib.sha256(data).hexdigest(),
                   "license": LICENSE,
                   "license_stated_in": "https://github.com/davisking/dlib-models README.md "
                   "(introduction and the shape_predictor_5_face_landmarks.dat.bz2 section); the "
                   "package's LICENSE (CC0 1.0)",
                   "trained_by": "dlib/tools/archive/train_face_5point_model.cpp"},
        "converter": "face_recog_ros/tools/convert_dlib_shape_predictor.py",
        "dlib_version": dlib.__version__,
        "arrays": shapes,
        "check_against_dlib": check,
        "outputs": {out.name: {"sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
                               "bytes": out.stat().st_size}},
    }
    provenance_path = args.out_dir / f"{MODEL_ID}.provenance.json"
    provenance_path.write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
