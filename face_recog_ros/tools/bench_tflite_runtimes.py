#!/usr/bin/env python3
"""What one chip per invoke() costs: the embedder fed N chips as one batch vs one at a time, on
each TFLite runtime installed, interleaved in one run (so the ratio survives a noisy machine).

    python tools/bench_tflite_runtimes.py [--chips 5] [--runs 30] [--model dlib_resnet_v1_int8]

tflite-runtime is limited to one chip per invoke() (runtime.py: a batch crashed its aarch64
build); this shows what that limit costs where batches do work. Run it in an environment where
the runtimes import, e.g. a venv with numpy<2, tflite-runtime and ai-edge-litert.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from face_recog_ros.core import runtime
from face_recog_ros.core.embedding import Embedder, EmbedderSpec


def embedders(model: str, threads: int) -> dict[str, Embedder]:
    """One embedder per (installed runtime, batching): runtime.RUNTIMES narrowed to one entry."""
    spec = EmbedderSpec.from_yaml(runtime.models_dir() / f"{model}.yaml")
    chain = runtime.RUNTIMES
    out = {}
    try:
        for rt in chain:
            if not isinstance(runtime.try_import(rt), type):
                print(f"{rt.name}: not usable here ({runtime.try_import(rt) or 'not installed'})")
                continue
            for label, limit in (("batch", None), ("one per invoke", 1)):
                runtime.RUNTIMES = (dataclasses.replace(rt, max_batch=limit),)
                out[f"{rt.name}, {label}"] = Embedder(spec, num_threads=threads)
    finally:
        runtime.RUNTIMES = chain
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chips", type=int, default=5, help="faces per call (a 5-face frame)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="dlib_resnet_v1_int8")
    args = parser.parse_args()
    cases = embedders(args.model, args.threads)
    if not cases:
        raise SystemExit("no TFLite runtime imports here")
    chips = np.random.default_rng(0).integers(0, 256, (args.chips, 150, 150, 3), dtype=np.uint8)
    reference = None
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(args.runs + 2):  # interleaved; the first two runs warm up
        for name, embedder in cases.items():
            t0 = time.perf_counter()
            out = embedder.embed(chips)
            elapsed = (time.perf_counter() - t0) * 1e3
            if i >= 2:
                times[name].append(elapsed)
            reference = out if reference is None else reference
            cosine = float(np.min(np.sum(out * reference, axis=1)))
            assert cosine > 0.999, f"{name} disagrees with the first case: cosine {cosine}"
    print(f"{args.model}, {args.chips} chips per call, {args.threads} threads, median of "
          f"{args.runs} interleaved runs")
    base = {}
    for name, values in times.items():
        median = statistics.median(values)
        rt = name.split(",")[0]
        base.setdefault(rt, median)
        print(f"  {name:<36} {median:8.2f} ms per call  {median / args.chips:7.2f} ms per chip  "
              f"x{median / base[rt]:.2f} of {rt}'s batch")


if __name__ == "__main__":
    main()
