"""TFLite interpreter loading and bundled-model lookup, shared by detection and embedding.

Why a fallback chain: robots run whichever TFLite build installs on their board
(ai-edge-litert on current x86/aarch64 wheels, tflite-runtime on older Pi/Jetson images,
full TensorFlow on dev machines); all expose the same Interpreter API.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


class ModelError(ValueError):
    """A model file or spec is missing, unreadable or does not match what is expected."""


def _interpreter_class() -> type:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter  # noqa: N806
            except ImportError as e:
                raise ModelError(
                    "no TFLite runtime found: install ai-edge-litert (or tflite-runtime)"
                ) from e
    return Interpreter


def load_interpreter(path: str | Path, num_threads: int = 2) -> Any:
    """An allocated TFLite Interpreter for ``path`` using ``num_threads`` CPU threads.

    The default op resolver applies the XNNPACK delegate, which honours ``num_threads``.
    Raises ModelError naming the file if it is missing or not a valid TFLite model.
    """
    path = Path(path)
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    interpreter_cls = _interpreter_class()
    try:
        interpreter = interpreter_cls(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"cannot load TFLite model {path}: {e}") from e
    return interpreter


def package_share_dir() -> Path:
    """The package's data root (config/, models/): the installed share directory when the
    ament index knows the package, else the source tree's face_recog_ros/ folder."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("face_recog_ros"))
        if (installed / "models").is_dir():
            return installed
    except (ImportError, LookupError, OSError):
        # no ament (pure-Python use), package not installed, or AMENT_PREFIX_PATH unset
        pass
    return Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    """Directory holding the bundled models and their specs."""
    return package_share_dir() / "models"
