"""TFLite interpreter loading and bundled-model lookup, shared by detection and embedding.

Why a fallback chain: robots run whichever TFLite build installs on their board
(ai-edge-litert on current x86/aarch64 wheels, tflite-runtime on older Pi/Jetson images,
full TensorFlow on dev machines); all expose the same Interpreter API. A runtime that is
installed but broken (tflite-runtime with numpy 2 fails to import) or that cannot read a model
gives a ModelError naming it, the error and the fix, and the next one is tried.
"""
from __future__ import annotations

import functools
import site
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "face_recog_ros"


class ModelError(ValueError):
    """A model file or spec is missing, unreadable or does not match what is expected."""


def _ai_edge_litert() -> type:
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter


def _tflite_runtime() -> type:
    # Its last release (2.14) is built for numpy 1.x. With numpy 2 it imports, then creating an
    # interpreter raises SystemError ("_ARRAY_API not found"): say so before that happens.
    import numpy
    import tflite_runtime

    built_for_numpy1 = tuple(int(v) for v in tflite_runtime.__version__.split(".")[:2]) <= (2, 14)
    if int(numpy.__version__.split(".")[0]) >= 2 and built_for_numpy1:
        raise ImportError(f"tflite-runtime {tflite_runtime.__version__} is built for numpy 1.x; "
                          f"numpy {numpy.__version__} is installed")
    from tflite_runtime.interpreter import Interpreter
    return Interpreter


def _tensorflow() -> type:
    import tensorflow as tf
    return tf.lite.Interpreter


@dataclass(frozen=True)
class TFLiteRuntime:
    """One way to get a TFLite Interpreter class, and what to do when it fails."""

    name: str  # its pip package
    module: str  # its top-level module: missing means "not installed", not a failure
    interpreter_class: Callable[[], type]  # imports the runtime; returns its Interpreter
    import_fix: str  # what to do when it is installed but does not import
    load_fix: str  # what to do when it imports but cannot create an interpreter for a model
    # Most inputs one invoke() may take. tflite-runtime 2.14 (its last release) crashed with
    # batches of the int8 embedder on aarch64 (SIGSEGV in invoke(), under emulation), so it gets
    # one chip per invoke(); ai-edge-litert and tf.lite take any batch.
    max_batch: int | None = None


RUNTIMES: tuple[TFLiteRuntime, ...] = (
    TFLiteRuntime(
        "ai-edge-litert", "ai_edge_litert", _ai_edge_litert,
        import_fix="reinstall it with its dependencies (pip install --force-reinstall "
                   "ai-edge-litert)",
        load_fix="check the model file, or pip install --upgrade ai-edge-litert"),
    TFLiteRuntime(
        "tflite-runtime", "tflite_runtime", _tflite_runtime,
        import_fix='tflite-runtime needs numpy<2: pip install "numpy<2", or use ai-edge-litert '
                   "instead: pip install ai-edge-litert",
        load_fix="tflite-runtime's last release lacks newer ops: pip install ai-edge-litert",
        max_batch=1),
    TFLiteRuntime(
        "tensorflow", "tensorflow", _tensorflow,
        import_fix="pip install --force-reinstall tensorflow, or the lighter ai-edge-litert",
        load_fix="pip install --upgrade tensorflow, or pip install ai-edge-litert"),
)


@dataclass(frozen=True)
class LoadedModel:
    """An allocated interpreter and the runtime that made it."""

    interpreter: Any
    runtime: TFLiteRuntime


@functools.cache
def try_import(runtime: TFLiteRuntime) -> type | ModelError | None:
    """The runtime's Interpreter class; None if not installed; a ModelError if it is broken.

    Cached: a failed import leaves a half-initialised extension behind, and the answer does not
    change within a process.
    """
    try:
        return runtime.interpreter_class()
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] == runtime.module:
            return None
        error: BaseException = e  # a dependency of the runtime is missing
    except Exception as e:  # noqa: BLE001  numpy ABI clashes raise ImportError, SystemError, ...
        error = e
    return ModelError(f"TFLite runtime {runtime.name} is installed but does not import "
                      f"({type(error).__name__}: {error}). Fix: {runtime.import_fix}")


def open_model(path: str | Path, num_threads: int = 2) -> LoadedModel:
    """An allocated interpreter for ``path`` from the first TFLite runtime (of RUNTIMES) that
    imports and reads the model, using ``num_threads`` CPU threads.

    The default op resolver applies the XNNPACK delegate, which honours ``num_threads``.
    Runtimes that failed before one worked are reported as RuntimeWarnings. Raises ModelError
    naming the file if it is missing, or if no runtime could load it (with each one's error).
    """
    path = Path(path)
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    failures: list[ModelError] = []
    missing: list[str] = []
    for runtime in RUNTIMES:
        interpreter_cls = try_import(runtime)
        if interpreter_cls is None:
            missing.append(runtime.name)
            continue
        if isinstance(interpreter_cls, ModelError):
            failures.append(interpreter_cls)
            continue
        try:
            interpreter = interpreter_cls(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001  ValueError, RuntimeError; a runtime's own types
            failures.append(ModelError(
                f"TFLite runtime {runtime.name} cannot load {path.name} "
                f"({type(e).__name__}: {e}). Fix: {runtime.load_fix}"))
            continue
        for failure in failures:
            warnings.warn(f"{failure} Using {runtime.name} instead.", RuntimeWarning, stacklevel=2)
        return LoadedModel(interpreter, runtime)
    if not failures:
        raise ModelError(f"cannot load TFLite model {path}: no TFLite runtime is installed. "
                         f"Install one: pip install ai-edge-litert (tried {', '.join(missing)})")
    reasons = " | ".join(str(f) for f in failures)
    not_installed = f" (not installed: {', '.join(missing)})" if missing else ""
    raise ModelError(f"cannot load TFLite model {path}: {reasons}{not_installed}") from failures[0]


def load_interpreter(path: str | Path, num_threads: int = 2) -> Any:
    """An allocated TFLite Interpreter for ``path`` (see open_model)."""
    return open_model(path, num_threads).interpreter


def _share_dir_candidates() -> list[Path]:
    """Where the package's data (config/, models/) may be, most specific first:
    the ament index (colcon install, symlinked or copied; setup.sh's venv); the prefix a pip or
    wheel install put setup.py's data_files in (<prefix>/share/face_recog_ros, also --user); the
    source tree around this file (an editable install or a checkout on sys.path)."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError, ValueError):
        # no ament (pure-Python use), package not registered, or AMENT_PREFIX_PATH unset
        pass
    for prefix in (sys.prefix, site.USER_BASE):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE)
    here = Path(__file__).resolve()
    candidates += [folder for folder in here.parents if (folder / "package.xml").is_file()][:1]
    return candidates


def package_share_dir() -> Path:
    """The package's data root (config/, models/), however the package was installed.

    Raises ModelError listing the places looked in when none holds models/.
    """
    candidates = _share_dir_candidates()
    for folder in candidates:
        if (folder / "models").is_dir():
            return folder
    raise ModelError(f"{PACKAGE}'s data (config/, models/) was not found; looked in: "
                     + ", ".join(str(c) for c in candidates))


def models_dir() -> Path:
    """Directory holding the bundled models and their specs."""
    return package_share_dir() / "models"
