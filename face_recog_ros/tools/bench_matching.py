#!/usr/bin/env python3
"""Median time of gallery matching for growing galleries (random 128-d unit embeddings).

Goal: one query against 10,000 identities in <= 1 ms. Run:  python3 tools/bench_matching.py
On a busy machine multi-threaded BLAS can stall a tiny product for a whole scheduler slice
(~16 ms); compare with  OPENBLAS_NUM_THREADS=1 python3 tools/bench_matching.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from face_recog_ros.gallery.model import Gallery  # noqa: E402
from face_recog_ros.core.matching import match  # noqa: E402

GOAL_MS = 1.0


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def median_ms(repeats: int, *args, **kwargs) -> float:
    """Median wall time of ``match(*args, **kwargs)``."""
    match(*args, **kwargs)  # warm caches (BLAS threads, pages)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        match(*args, **kwargs)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(
        f"{'identities':>10} {'samples':>7} {'1 query ms':>10} {'5 queries ms':>12} "
        f"{'each_once ms':>12}"
    )
    worst = 0.0
    for people in (100, 1_000, 10_000):
        for samples in (1, 5):
            g = Gallery("bench", args.dim, max_samples_per_person=None)
            emb = unit(rng, people * samples, args.dim).reshape(people, samples, args.dim)
            for p in range(people):
                g.add(f"p{p}", emb[p])
            snap = g.snapshot()
            one, five = unit(rng, 1, args.dim), unit(rng, 5, args.dim)
            t1 = median_ms(args.repeats, one, snap, 0.5)
            t5 = median_ms(args.repeats, five, snap, 0.5)
            t5o = median_ms(args.repeats, five, snap, 0.5, each_once=True)
            if people == 10_000:
                worst = max(worst, t1)
            print(f"{people:>10} {samples:>7} {t1:>10.3f} {t5:>12.3f} {t5o:>12.3f}")
    verdict = "meets" if worst <= GOAL_MS else "MISSES"
    print(
        f"10,000 identities, 1 query: worst median {worst:.3f} ms {verdict} the {GOAL_MS} ms goal"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
