#!/usr/bin/env python3
"""Does face_recog_ros compute the same thing on another machine? (check_aarch64.sh uses it.)

    arch_agreement.py reference DIR      # on the reference machine (x86): writes DIR/
    arch_agreement.py compare DIR [...]  # on the other one: recomputes, compares, prints JSON
    arch_agreement.py probe-batch N      # one invoke() with N chips (a crash: the exit code)

`reference` writes the public-domain sample photos and scenes made from them (PNG), the aligned
chips of every face in them plus noise chips (so both sides embed the very same pixels), their
int8 and float embeddings, the full pipeline's boxes and embeddings per photo, and a gallery
enrolled from the two people. `compare` recomputes all of it and checks:
- int8 embeddings of the same chips: identical (integer arithmetic), unless --int8-min-cosine,
  and the same whether the chips go in as one batch or one at a time;
- float embeddings of the same chips: cosine >= --float-min-cosine (default 0.99999), unless
  --int8-only;
- the full pipeline (detection, alignment, embedding): the same faces, boxes within 1 px,
  cosine >= --pipeline-min-cosine (default 0.999);
- the reference machine's gallery loads and names both people.
It prints the figures as one JSON line and exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from face_recog_ros import RecognizerConfig
from face_recog_ros.core import runtime
from face_recog_ros.core.embedding import Embedder, EmbedderSpec
from face_recog_ros.core.recognizer import FaceRecognizer
from face_recog_ros.io import samples

MODELS = ("dlib_resnet_v1_int8", "dlib_resnet_v1_float32")
SCENES = (1, 3, 5)  # faces per synthetic 640x480 scene


def photos() -> dict[str, np.ndarray]:
    out = {key: samples.photo(key) for key in samples.PEOPLE}
    out.update({f"scene{n}": samples.scene(n) for n in SCENES})
    return out


def recognizer(gallery: str = "") -> FaceRecognizer:
    config = RecognizerConfig()
    config.gallery.path = gallery
    return FaceRecognizer(config)


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def embed_all(chips: np.ndarray, models: tuple[str, ...] = MODELS) -> dict[str, np.ndarray]:
    """Each model's embeddings of the chips as one batch; the int8 model's also one chip at a
    time (the runtime may split batches itself: the numbers must not depend on it)."""
    out = {}
    for model in models:
        embedder = Embedder(EmbedderSpec.from_yaml(runtime.models_dir() / f"{model}.yaml"))
        out[model] = embedder.embed(chips)
        if model == MODELS[0]:
            out[model + ":single"] = np.concatenate([embedder.embed(c[None]) for c in chips])
    return out


def pipeline(rec: FaceRecognizer, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, rgb in images.items():
        faces = sorted(rec.process(rgb), key=lambda f: f.detection.box[0])
        boxes = np.array([f.detection.box for f in faces], np.float32)
        out[f"{name}:boxes"] = boxes.reshape(-1, 4)
        out[f"{name}:embeddings"] = np.array([f.embedding for f in faces],
                                             np.float32).reshape(-1, rec.spec.output_dim)
    return out


def reference(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images = photos()
    for name, rgb in images.items():
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    rec = recognizer()
    chips = [rec.chip(rgb, d) for rgb in images.values() for d in rec.detect(rgb)]
    noise = np.random.default_rng(7).integers(0, 256, (4, 150, 150, 3), dtype=np.uint8)
    chips = np.concatenate([np.stack(chips), noise, (np.stack(chips[:4]) // 3).astype(np.uint8)])
    np.savez_compressed(folder / "reference.npz", chips=chips, **embed_all(chips),
                        **pipeline(rec, {n: read_rgb(folder / f"{n}.png") for n in images}))
    people = recognizer(str(folder / "gallery.npz"))
    for key, name in samples.PEOPLE.items():
        people.enroll(name, [read_rgb(folder / f"{key}.png")])  # saved to the file on return
    used = runtime.open_model(runtime.models_dir() / "dlib_resnet_v1_int8.tflite").runtime.name
    print(f"reference: {len(chips)} chips, {len(images)} photos, {platform.machine()}, {used}")


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1))) if len(a) else 1.0


def compare(folder: Path, args: argparse.Namespace) -> int:
    ref = np.load(folder / "reference.npz")
    chips = ref["chips"]
    t0 = time.perf_counter()
    mine = embed_all(chips, MODELS[:1] if args.int8_only else MODELS)
    embed_s = time.perf_counter() - t0
    images = {p.stem: read_rgb(p) for p in sorted(folder.glob("*.png"))}
    rec = recognizer()
    t0 = time.perf_counter()
    pipe = pipeline(rec, images)
    pipeline_s = time.perf_counter() - t0
    loaded = runtime.open_model(runtime.models_dir() / "dlib_resnet_v1_int8.tflite")
    int8, flt = MODELS
    figures: dict[str, object] = {
        "machine": platform.machine(), "runtime": loaded.runtime.name,
        "max_batch": loaded.runtime.max_batch, "chips": len(chips),
        "int8_identical": bool(np.array_equal(mine[int8], ref[int8])),
        "int8_max_abs_diff": float(np.max(np.abs(mine[int8] - ref[int8]))),
        "int8_min_cosine": min_cosine(mine[int8], ref[int8]),
        "int8_batch_equals_single": bool(np.array_equal(mine[int8], mine[int8 + ":single"])),
        "embed_seconds": round(embed_s, 1), "pipeline_seconds": round(pipeline_s, 1),
    }
    if flt in mine:
        figures["float_min_cosine"] = min_cosine(mine[flt], ref[flt])
    failures = []
    if args.int8_min_cosine is None and not figures["int8_identical"]:
        failures.append("int8 embeddings differ from the reference's")
    if args.int8_min_cosine is not None and figures["int8_min_cosine"] < args.int8_min_cosine:
        failures.append(f"int8 cosine {figures['int8_min_cosine']:.6f} < {args.int8_min_cosine}")
    if flt in mine and figures["float_min_cosine"] < args.float_min_cosine:
        failures.append(f"float cosine {figures['float_min_cosine']:.7f} "
                        f"< {args.float_min_cosine}")
    if not figures["int8_batch_equals_single"]:
        failures.append("int8 embeddings depend on how the chips are batched")
    worst_box, worst_cos = 0.0, 1.0
    for name in images:
        boxes, ref_boxes = pipe[f"{name}:boxes"], ref[f"{name}:boxes"]
        if boxes.shape != ref_boxes.shape:
            failures.append(f"{name}: {len(boxes)} faces, the reference found {len(ref_boxes)}")
            continue
        if len(boxes):
            worst_box = max(worst_box, float(np.max(np.abs(boxes - ref_boxes))))
            worst_cos = min(worst_cos, min_cosine(pipe[f"{name}:embeddings"],
                                                  ref[f"{name}:embeddings"]))
    figures["pipeline_max_box_diff_px"] = round(worst_box, 3)
    figures["pipeline_min_cosine"] = worst_cos
    if worst_box > 1.0:
        failures.append(f"pipeline boxes differ by {worst_box:.2f} px")
    if worst_cos < args.pipeline_min_cosine:
        failures.append(f"pipeline cosine {worst_cos:.6f} < {args.pipeline_min_cosine}")
    with_gallery = recognizer(str(folder / "gallery.npz"))
    named = {}
    for key, name in samples.PEOPLE.items():
        faces = with_gallery.process(images[key])
        named[name] = faces[0].label if faces else None
    figures["reference_gallery_names"] = named
    warning = with_gallery.gallery_warning or ""
    if warning or any(label != name for name, label in named.items()):
        failures.append(f"the reference gallery did not name both people: {named} {warning}")
    figures["failures"] = failures
    print(json.dumps(figures))
    return 1 if failures else 0


def probe_batch(n: int) -> int:
    """One invoke() of the int8 embedder on n chips, bypassing the runtime's batch limit."""
    loaded = runtime.open_model(runtime.models_dir() / "dlib_resnet_v1_int8.tflite")
    interp = loaded.interpreter
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, [n, 150, 150, 3])
    interp.allocate_tensors()
    chips = np.random.default_rng(0).integers(-128, 128, (n, 150, 150, 3), np.int8)
    interp.set_tensor(index, chips)
    t0 = time.perf_counter()
    interp.invoke()
    print(json.dumps({"runtime": loaded.runtime.name, "batch": n,
                      "ms_per_chip": round((time.perf_counter() - t0) * 1e3 / n, 1)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("reference").add_argument("dir", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("dir", type=Path)
    p.add_argument("--int8-min-cosine", type=float, help="accept int8 embeddings this close "
                   "instead of identical (another runtime's kernels)")
    p.add_argument("--float-min-cosine", type=float, default=0.99999)
    p.add_argument("--pipeline-min-cosine", type=float, default=0.999)
    p.add_argument("--int8-only", action="store_true", help="skip the float model (3x slower)")
    sub.add_parser("probe-batch").add_argument("n", type=int)
    args = parser.parse_args()
    if args.command == "reference":
        reference(args.dir)
        return 0
    if args.command == "compare":
        return compare(args.dir, args)
    return probe_batch(args.n)


if __name__ == "__main__":
    sys.exit(main())
