"""Process set-up that must happen before numpy loads: the thread limits of native libraries.

numpy's BLAS (OpenBLAS) and OpenMP start one thread per core on first use, and those threads
fight the TFLite interpreters' threads for the same cores: a multi-threaded OpenBLAS matmul
stalls ~20 ms on a loaded 2-core board. The limits are read once, when the libraries load, so
the entry points (the ROS layer's package, the CLI's package: every console script and
``python -m``) call :func:`limit_native_threads` before importing anything that imports numpy.
A value the user set in the environment is kept. This module imports nothing but os.
"""
from __future__ import annotations

import os

THREAD_LIMITS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def limit_native_threads() -> None:
    for name, value in THREAD_LIMITS.items():
        os.environ.setdefault(name, value)
