"""Face embedders described by a small YAML spec next to their TFLite model.

Why a spec: the pipeline must not care whether the model is the bundled dlib ResNet or a
user's FaceNet/ArcFace export; the spec says how to feed it (size, colour order,
normalisation) and what comes out, and the model is checked against it at load time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..options import Options, option
from .runtime import ModelError, open_model

_COLOR_ORDERS = ("rgb", "bgr")
_METRICS = ("cosine",)


@dataclass
class EmbedderOptions(Options):
    """The `embedder.*` group: which model describes the faces, on how many threads."""

    model: str = option(
        "dlib_resnet_v1_int8",
        "Embedder: id of a spec YAML in the package's models/ "
        "folder, or a path to your own spec YAML",
        read_only=True,
    )
    num_threads: int = option(2, "CPU threads for the embedder", low=1, high=16, read_only=True)


def _require(data: dict[str, Any], key: str, where: Path) -> Any:
    if key not in data or data[key] is None:
        raise ModelError(f"{where}: missing required key '{key}'")
    return data[key]


def _number(value: Any, key: str, where: Path, *, integer: bool = False) -> Any:
    """A finite number (YAML int or float; an integer if asked), or ModelError naming the key."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (integer and not float(value).is_integer()):
        kind = "an integer" if integer else "a finite number"
        raise ModelError(f"{where}: '{key}' must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


def _floats(
    value: Any, n: int, key: str, where: Path, *, integer: bool = False
) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ModelError(f"{where}: '{key}' must be a list of {n} numbers, got {value!r}")
    if len(value) != n:
        raise ModelError(f"{where}: '{key}' must have {n} values, got {len(value)}")
    return tuple(_number(v, key, where, integer=integer) for v in value)


@dataclass(frozen=True)
class FaceChipSpec:
    """How the chip is cut for alignment.method 'landmarks': dlib.get_face_chip(img, shape5, size,
    padding), with the 5 points from ``landmark_model`` (models/<id>.yaml, or a path relative
    to the spec)."""

    size: int
    padding: float
    landmark_model: str = "dlib_shape_predictor_5"

    @classmethod
    def from_dict(cls, data: Any, input_size: tuple[int, int], where: Path) -> FaceChipSpec:
        if not isinstance(data, dict):
            raise ModelError(f"{where}: face_chip must be a mapping with size, padding and "
                             "landmark_model")
        size = _number(_require(data, "size", where), "face_chip.size", where, integer=True)
        if (size, size) != tuple(input_size):
            raise ModelError(f"{where}: face_chip.size {size} must equal input_size "
                             f"{list(input_size)} (dlib's chips are square)")
        padding = _number(_require(data, "padding", where), "face_chip.padding", where)
        if not 0 <= padding <= 2:
            raise ModelError(f"{where}: face_chip.padding must be in [0, 2], got {padding}")
        return cls(size, padding, str(data.get("landmark_model") or cls.landmark_model))


@dataclass(frozen=True)
class EmbedderSpec:
    """What an embedding model expects and produces (one models/<id>.yaml)."""

    id: str
    embedding_space: str  # embeddings are comparable iff their spaces are equal
    file: Path  # absolute path of the .tflite
    input_size: tuple[int, int]  # (width, height) of the aligned chip, as OpenCV sizes
    color_order: str  # "rgb" or "bgr": channel order the model wants and embed() receives
    mean: tuple[float, float, float]  # model input = (pixel - mean) / std, per channel
    std: tuple[float, float, float]
    output_dim: int
    metric: str  # "cosine"
    threshold: float  # similarity at or above which two faces are the same person
    # Alignment template: keypoint name -> [x, y] chip pixels; None until calibrated.
    template: dict[str, list[float]] | None = None
    # Chip geometry for alignment.method 'landmarks'; None: the model supports 'keypoints' only.
    face_chip: FaceChipSpec | None = None
    path: Path | None = None  # the YAML this spec came from, for error messages

    @classmethod
    def from_yaml(cls, path: str | Path) -> EmbedderSpec:
        """Load and validate a spec; ``file`` is resolved relative to the YAML."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"embedder spec not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ModelError(f"{path}: invalid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ModelError(f"{path}: expected a mapping of spec keys")

        model_id = str(_require(data, "id", path))
        w, h = _floats(_require(data, "input_size", path), 2, "input_size", path, integer=True)
        color_order = str(data.get("color_order", "rgb")).lower()
        if color_order not in _COLOR_ORDERS:
            raise ModelError(
                f"{path}: color_order must be one of {_COLOR_ORDERS}, got {color_order!r}"
            )
        mean = _floats(_require(data, "mean", path), 3, "mean", path)
        std = _floats(_require(data, "std", path), 3, "std", path)
        if min(std) <= 0:
            raise ModelError(f"{path}: std values must be > 0, got {std}")
        output_dim = _number(_require(data, "output_dim", path), "output_dim", path, integer=True)
        metric = str(data.get("metric", "cosine")).lower()
        if metric not in _METRICS:
            raise ModelError(f"{path}: metric must be one of {_METRICS}, got {metric!r}")
        threshold = _number(_require(data, "threshold", path), "threshold", path)
        if not -1.0 <= threshold <= 1.0:
            raise ModelError(f"{path}: cosine threshold must be in [-1, 1], got {threshold}")
        if h <= 0 or w <= 0 or output_dim <= 0:
            raise ModelError(f"{path}: input_size and output_dim must be positive")
        template = data.get("template")
        if template is not None and not isinstance(template, dict):
            raise ModelError(f"{path}: template must map keypoint names to [x, y] chip pixels")
        face_chip = data.get("face_chip")
        if face_chip is not None:
            face_chip = FaceChipSpec.from_dict(face_chip, (w, h), path)
        return cls(
            id=model_id,
            embedding_space=str(data.get("embedding_space") or model_id),
            file=(path.parent / str(_require(data, "file", path))).resolve(),
            input_size=(w, h),
            color_order=color_order,
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            output_dim=output_dim,
            metric=metric,
            threshold=threshold,
            template=template,
            face_chip=face_chip,
            path=path.resolve(),
        )


class Embedder:
    """Runs an embedding model on aligned face chips. Not thread-safe: one per thread."""

    def __init__(self, spec: EmbedderSpec, num_threads: int = 2) -> None:
        self.spec = spec
        loaded = open_model(spec.file, num_threads)
        self._interp = loaded.interpreter
        self._max_batch = loaded.runtime.max_batch  # chips per invoke() the runtime takes safely
        inp = self._interp.get_input_details()
        out = self._interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(
                f"{spec.file}: expected an embedding model with 1 input and 1 output (spec "
                f"{spec.path or spec.id}), got {len(inp)} inputs and {len(out)} outputs"
            )
        self._in, self._out = inp[0], out[0]
        w, h = spec.input_size
        in_sig = [int(v) for v in self._in.get("shape_signature", self._in["shape"])]
        if len(in_sig) != 4 or in_sig[1:] != [h, w, 3] or in_sig[0] not in (-1, 1):
            raise ModelError(
                f"{spec.file}: input shape {in_sig} does not match spec {spec.path or spec.id}: "
                f"expected [N, {h}, {w}, 3]"
            )
        out_sig = [int(v) for v in self._out.get("shape_signature", self._out["shape"])]
        if int(np.prod(out_sig[1:])) != spec.output_dim:
            raise ModelError(
                f"{spec.file}: output shape {out_sig} does not match spec {spec.path or spec.id}: "
                f"expected [N, {spec.output_dim}]"
            )
        self._dynamic_batch = in_sig[0] == -1
        self._batch = int(self._in["shape"][0])  # batch size the interpreter is allocated for
        # Spec mean/std are in the model's channel order, as are the chips given to embed().
        self._mean = np.asarray(spec.mean, np.float32)
        self._inv_std = 1.0 / np.asarray(spec.std, np.float32)

    @property
    def embedder_id(self) -> str:
        return self.spec.id

    @property
    def embedding_space(self) -> str:
        return self.spec.embedding_space

    @property
    def output_dim(self) -> int:
        return self.spec.output_dim

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 chips in the spec's colour order -> (N, D) float32, unit L2 norm."""
        chips = np.asarray(chips)
        w, h = self.spec.input_size
        if chips.ndim == 3:
            chips = chips[None]
        if chips.ndim != 4 or chips.shape[1:] != (h, w, 3):
            raise ValueError(f"chips must be (N, {h}, {w}, 3), got {chips.shape}")
        if chips.dtype != np.uint8:  # float chips (0..1, or NaN) would embed silently into garbage
            raise ValueError(f"chips must be uint8 (0..255), got dtype {chips.dtype}")
        n = len(chips)
        if n == 0:
            return np.zeros((0, self.spec.output_dim), np.float32)
        x = self._quantize((chips.astype(np.float32) - self._mean) * self._inv_std)
        step = min(n if self._dynamic_batch else self._batch, self._max_batch or n)
        raw = np.concatenate([self._run(x[i:i + step]) for i in range(0, n, step)])
        emb = self._dequantize(raw.reshape(n, -1))
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return (emb / np.maximum(norms, 1e-12)).astype(np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._dynamic_batch and len(x) != self._batch:
            self._interp.resize_tensor_input(self._in["index"], list(x.shape))
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"])

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._in["dtype"])
        if dtype == np.float32:
            return x
        scale, zero_point = self._in["quantization"]
        if not scale:
            raise ModelError(f"{self.spec.file}: {dtype} input without quantization parameters")
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if np.dtype(self._out["dtype"]) == np.float32:
            return y.astype(np.float32)
        scale, zero_point = self._out["quantization"]
        if not scale:
            raise ModelError(f"{self.spec.file}: {y.dtype} output without quantization parameters")
        return (y.astype(np.float32) - zero_point) * scale
