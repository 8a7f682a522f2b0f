"""`face-recog benchmark`: per-stage latency of this pipeline and of face_recognition, same frames,
one run.

Machines here are shared and noisy, so what matters is the ratio measured side by side; the
absolute milliseconds are printed too. Frames are 640x480 with 1 and 5 public-domain faces.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np

from . import reference
from ..io import samples
from ..config import RecognizerConfig
from ..gallery.model import Gallery
from ..core.matching import match
from ..core.recognizer import FaceRecognizer


def median_ms(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def time_ours(recognizer: FaceRecognizer, frame: np.ndarray, runs: int) -> dict[str, float]:
    for _ in range(3):
        recognizer.process(frame)
    stages: dict[str, list[float]] = {"detect": [], "landmarks_per_face": [], "align": [],
                                      "embed_per_face": [], "total": []}
    for _ in range(runs):
        recognition = recognizer.recognize(frame)
        t = recognition.timings
        stages["detect"].append(t["detect"])
        stages["align"].append(t["align"])
        stages["total"].append(t["total"])
        faces = len(recognition.faces)
        if faces:
            stages["landmarks_per_face"].append(t["landmarks"] / faces)
        if recognition.embedded:
            stages["embed_per_face"].append(t["embed"] / recognition.embedded)
    result = {k: median_ms(v) for k, v in stages.items()}
    result["faces"] = float(len(recognition.faces))
    return result


def time_reference(
    ref: reference.FaceRecognitionReference, frame: np.ndarray, known: list[np.ndarray], runs: int
) -> dict[str, float]:
    import face_recognition
    stages: dict[str, list[float]] = {"detect": [], "embed_per_face": [], "total": []}
    faces = 0
    for i in range(runs + 1):
        t0 = time.perf_counter()
        locations = ref.locate(frame)
        t1 = time.perf_counter()
        encodings = ref.encode(frame, locations)
        t2 = time.perf_counter()
        for enc in encodings:
            face_recognition.compare_faces(known, enc)
        t3 = time.perf_counter()
        if i == 0:
            continue  # warm-up
        faces = len(locations)
        stages["detect"].append((t1 - t0) * 1e3)
        stages["total"].append((t3 - t0) * 1e3)
        if locations:
            stages["embed_per_face"].append((t2 - t1) * 1e3 / len(locations))
    result = {k: median_ms(v) for k, v in stages.items()}
    result["faces"] = float(faces)
    return result


def time_gallery_search(dim: int, identities: int = 10_000, runs: int = 200) -> float:
    rng = np.random.default_rng(0)
    gallery = Gallery("benchmark", dim)
    vectors = rng.standard_normal((identities, dim)).astype(np.float32)
    for i in range(identities):
        gallery.add(f"person_{i}", vectors[i:i + 1])
    query = rng.standard_normal((1, dim)).astype(np.float32)
    query /= np.linalg.norm(query)
    match(query, gallery, 0.5)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        match(query, gallery, 0.5)
        times.append((time.perf_counter() - t0) * 1e3)
    return median_ms(times)


def run_benchmark(config: RecognizerConfig, frames: int = 30, compare: bool = True) -> int:
    config = dataclasses.replace(config, gallery=dataclasses.replace(config.gallery, path=""))
    recognizer = FaceRecognizer(config)
    for key, name in samples.PEOPLE.items():
        recognizer.enroll(name, [samples.photo(key)])
    ref = None
    if compare:
        if reference.available():
            ref = reference.FaceRecognitionReference()
        else:
            print("face_recognition is not installed: printing this pipeline only")
    known = [ref.embed_largest(samples.photo(k)) for k in samples.PEOPLE] if ref else []
    print(
        f"embedder {recognizer.spec.id}, {recognizer.aligner.method} alignment, detector "
        f"{config.detector.model_range} range, {config.detector.num_threads}/"
        f"{config.embedder.num_threads} threads, {frames} timed runs per case"
    )
    header = (f"{'case':<10}{'pipeline':<26}{'faces':>6}{'detect':>9}{'landmarks/face':>15}"
              f"{'align':>8}{'embed/face':>11}{'end-to-end':>11}")
    print(header)
    print("-" * len(header))
    for n in (1, 5):
        frame = samples.scene(n)
        ours = time_ours(recognizer, frame, frames)
        print(
            f"{n} face{'s' if n > 1 else '':<4}{'face_recog_ros':<26}{ours['faces']:>6.0f}"
            f"{ours['detect']:>9.2f}{ours['landmarks_per_face']:>15.2f}{ours['align']:>8.2f}"
            f"{ours['embed_per_face']:>11.2f}{ours['total']:>11.2f}"
        )
        print(f"{'':<10}{'landmarks / embedding':<26}{'':>6}{'':>9}"
              f"{ours['landmarks_per_face'] / ours['embed_per_face']:>14.2f}x")
        if ref:
            theirs = time_reference(ref, frame, known, max(3, frames // 5))
            print(f"{'':<10}{ref.name:<26}{theirs['faces']:>6.0f}{theirs['detect']:>9.2f}"
                  f"{'':>15}{'':>8}{theirs['embed_per_face']:>11.2f}{theirs['total']:>11.2f}")
            print(
                f"{'':<10}{'speed-up':<26}{'':>6}{theirs['detect'] / ours['detect']:>8.1f}x"
                f"{'':>15}{'':>8}"
                f"{theirs['embed_per_face'] / ours['embed_per_face']:>10.1f}x"
                f"{theirs['total'] / ours['total']:>10.1f}x"
            )
    print(
        "gallery search, 10,000 identities, 1 query: "
        f"{time_gallery_search(recognizer.spec.output_dim):.3f} ms"
    )
    return 0
