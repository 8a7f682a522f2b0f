#!/usr/bin/env python3
"""Convert dlib's CC0 face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``)
into float32 and full-integer int8 TFLite models plus their embedder specs.

Build-time only: needs tensorflow, dlib and face_recognition_models; the runtime never
imports any of them. Run from anywhere:

    python face_recog_ros/tools/convert_dlib_resnet.py [--out-dir face_recog_ros/models]

Why a hand-written parser instead of an exporter: dlib has no ONNX/TF export for this
net, and its serialization is simple and documented by its source (dlib/dnn/core.h,
layers.h, input.h, loss.h, tensor.h, serialize.h). The network below replicates dlib's
semantics exactly, including ``add_prev``'s zero-padding of mismatched shapes, and the
result is checked against dlib's own ``compute_face_descriptor`` before anything is written.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"
SOURCE_PACKAGE = "face-recognition-models"
EMBEDDING_SPACE = "dlib_resnet_v1"
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# dlib's 0.6 euclidean same-person distance as a cosine similarity, for descriptors of
# their typical norm (~1.44): cos = 1 - 0.6**2 / (2 * 1.44**2) ~= 0.91. A starting point;
# the integrator tunes it on evaluation photos.
DEFAULT_COSINE_THRESHOLD = 0.92

# ----------------------------------------------------------------------------------------
# dlib serialization primitives (dlib/serialize.h)


class DlibReader:
    """Reads dlib's serialized primitives from a byte buffer."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)

    def _take(self, n: int) -> bytes:
        b = self.buf.read(n)
        if len(b) != n:
            raise ValueError(f"unexpected end of dlib stream at byte {self.buf.tell()}")
        return b

    def int(self) -> int:
        """Variable-length integer: control byte (low nibble = byte count, 0x80 = negative)."""
        ctrl = self._take(1)[0]
        n = ctrl & 0x0F
        if n > 8:
            raise ValueError(f"bad integer control byte 0x{ctrl:02x} at {self.buf.tell() - 1}")
        value = int.from_bytes(self._take(n), "little") if n else 0
        return -value if ctrl & 0x80 else value

    def float(self) -> float:
        """dlib float_details: integer mantissa then integer exponent (value = m * 2**e)."""
        mantissa = self.int()
        exponent = self.int()
        # dlib encodes inf/nan with reserved exponents; none occur in this model.
        if exponent in (32000, 32001, 32002):
            raise ValueError("non-finite float in dlib stream")
        return float(np.ldexp(np.float64(mantissa), exponent))

    def bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1", b"\x00", b"\x01"):
            raise ValueError(f"bad bool byte {c!r} at {self.buf.tell() - 1}")
        return c in (b"1", b"\x01")

    def string(self) -> str:
        return self._take(self.int()).decode("ascii")

    def expect_string(self, *allowed: str) -> str:
        s = self.string()
        if s not in allowed:
            raise ValueError(f"expected one of {allowed}, found {s!r}")
        return s

    def tensor(self) -> np.ndarray:
        """resizable_tensor version 2: num_samples, k, nr, nc, then raw little-endian float32."""
        version = self.int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise ValueError(f"unsupported dlib alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]

    def at_end(self) -> bool:
        return self.buf.read(1) == b""


# ----------------------------------------------------------------------------------------
# The anet_type of dlib/examples/dnn_face_recognition_ex.cpp, input to output.


@dataclass
class Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    args: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def is_computational(self) -> bool:
        return self.kind not in ("tag", "skip")


def _block(n: int, stride: int) -> list[Layer]:
    # block<N,affine,stride> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride>>>>>
    return [
        Layer("con", {"filters": n, "k": 3, "stride": stride}),
        Layer("affine"),
        Layer("relu"),
        Layer("con", {"filters": n, "k": 3, "stride": 1}),
        Layer("affine"),
    ]


def _ares(n: int) -> list[Layer]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [Layer("tag", {"id": 1}), *_block(n, 1), Layer("add_prev", {"tag": 1}), Layer("relu")]


def _ares_down(n: int) -> list[Layer]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        Layer("tag", {"id": 1}),
        *_block(n, 2),
        Layer("tag", {"id": 2}),
        Layer("skip", {"tag": 1}),
        Layer("avg_pool", {"k": 2, "stride": 2}),
        Layer("add_prev", {"tag": 2}),
        Layer("relu"),
    ]


def anet_layers() -> list[Layer]:
    layers = [
        Layer("con", {"filters": 32, "k": 7, "stride": 2}),
        Layer("affine"),
        Layer("relu"),
        Layer("max_pool", {"k": 3, "stride": 2}),
    ]
    for _ in range(3):  # alevel4
        layers += _ares(32)
    layers += _ares_down(64)  # alevel3
    for _ in range(3):
        layers += _ares(64)
    layers += _ares_down(128)  # alevel2
    for _ in range(2):
        layers += _ares(128)
    layers += _ares_down(256)  # alevel1
    for _ in range(2):
        layers += _ares(256)
    layers += _ares_down(256)  # alevel0
    layers += [Layer("avg_pool", {"k": 0, "stride": 1}), Layer("fc", {"outputs": 128})]
    return layers


@dataclass
class DlibNet:
    layers: list[Layer]
    mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]


def _read_layer_details(r: DlibReader, layer: Layer) -> None:
    """Parse one layer's details, checking they match the expected architecture."""
    if layer.kind == "con":
        r.expect_string("con_4")
        params = r.tensor().reshape(-1)
        filters, nr, nc = r.int(), r.int(), r.int()
        stride_y, stride_x, pad_y, pad_x = r.int(), r.int(), r.int(), r.int()
        fshape = r.alias_tensor()
        bshape = r.alias_tensor()
        for _ in range(4):  # learning-rate / weight-decay multipliers
            r.float()
        a = layer.args
        if (filters, nr, nc, stride_y, stride_x) != (
            a["filters"],
            a["k"],
            a["k"],
            a["stride"],
            a["stride"],
        ):
            raise ValueError(f"con layer mismatch: {(filters, nr, nc, stride_y, stride_x)} vs {a}")
        nw = int(np.prod(fshape))
        layer.args.update(pad=(pad_y, pad_x))
        # dlib filters are (num_filters, k, nr, nc); TF wants (nr, nc, k, num_filters).
        layer.params["w"] = params[:nw].reshape(fshape).transpose(2, 3, 1, 0).copy()
        layer.params["b"] = params[nw:nw + int(np.prod(bshape))].copy()
    elif layer.kind == "affine":
        r.expect_string("affine_")
        params = r.tensor().reshape(-1)
        gshape, bshape = r.alias_tensor(), r.alias_tensor()
        mode = r.int()
        if mode != 0:  # CONV_MODE (0): one gamma/beta per channel
            raise ValueError(f"affine layer in FC mode ({mode}) not expected")
        ng = int(np.prod(gshape))
        layer.params["gamma"] = params[:ng].copy()
        layer.params["beta"] = params[ng:ng + int(np.prod(bshape))].copy()
    elif layer.kind in ("relu", "add_prev"):
        r.expect_string(f"{layer.kind}_")
    elif layer.kind in ("max_pool", "avg_pool"):
        r.expect_string(f"{layer.kind}_2")
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        a = layer.args
        if (nr, nc, sy, sx) != (a["k"], a["k"], a["stride"], a["stride"]) or (py, px) != (0, 0):
            raise ValueError(f"{layer.kind} mismatch: {(nr, nc, sy, sx, py, px)} vs {a}")
    elif layer.kind == "fc":
        r.expect_string("fc_2")
        outputs, inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        wshape = r.alias_tensor()
        r.alias_tensor()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        if outputs != layer.args["outputs"] or bias_mode != 1:  # FC_NO_BIAS == 1
            raise ValueError(f"fc layer mismatch: outputs={outputs} bias_mode={bias_mode}")
        # dlib computes output = input (N x inputs) * weights (inputs x outputs).
        layer.params["w"] = params[: inputs * outputs].reshape(wshape[0], wshape[1]).copy()
    else:
        raise AssertionError(layer.kind)


def parse_dlib_net(data: bytes) -> DlibNet:
    """Deserialize add_loss_layer<loss_metric, ...anet_type...> exactly as dlib does."""
    r = DlibReader(data)
    layers = anet_layers()
    if r.int() != 1:
        raise ValueError("unexpected add_loss_layer version")
    r.expect_string("loss_metric_", "loss_metric_2")
    r.float()
    r.float()  # margin, distance threshold: training-only
    # Every layer writes its version then its subnetwork first, so versions come outer -> inner.
    add_layer_versions = []
    for i, layer in enumerate(reversed(layers)):
        v = r.int()
        innermost = i == len(layers) - 1
        if layer.is_computational:
            ok = v in ((2, 3) if innermost else (1, 2))
            add_layer_versions.append(v)
        else:
            ok = v == 1
        if not ok:
            raise ValueError(f"unexpected version {v} for {layer.kind} layer (outer index {i})")
    add_layer_versions.reverse()
    r.expect_string("input_rgb_image_sized")
    mean_rgb = (r.float(), r.float(), r.float())
    input_size = (r.int(), r.int())
    comp = [layer for layer in layers if layer.is_computational]
    for idx, (layer, version) in enumerate(zip(comp, add_layer_versions)):
        _read_layer_details(r, layer)
        r.bool(), r.bool(), r.bool()  # setup_called, gradient_stale, output_disabled
        r.tensor(), r.tensor()  # x_grad, cached_output (empty after clean())
        if idx == 0:  # add_layer specialisation sitting on the input layer
            r.tensor()  # grad_final
            if version >= 3:
                r.int()  # sample_expansion_factor
        elif version == 2:
            r.tensor()  # params_grad
    if not r.at_end():
        raise ValueError("trailing bytes after the network: architecture mismatch")
    return DlibNet(layers, mean_rgb, input_size)


# ----------------------------------------------------------------------------------------
# TensorFlow graph with dlib's semantics (NHWC)


def build_tf_module(net: DlibNet):
    """A tf.Module whose ``__call__`` maps (N,150,150,3) pre-normalised RGB to (N,128)."""
    import tensorflow as tf

    def fold(con: Layer, affine: Layer) -> tuple[np.ndarray, np.ndarray]:
        # affine(conv(x) + b) = conv(x) * gamma + (b * gamma + beta)
        g, beta = affine.params["gamma"], affine.params["beta"]
        return con.params["w"] * g, con.params["b"] * g + beta

    def conv(x, w, b, stride: int, pad: tuple[int, int]):
        k = w.shape[0]
        if pad == (0, 0):
            padding = "VALID"
        elif stride == 1 and pad == (k // 2, k // 2) and k % 2 == 1:
            padding = "SAME"
        else:
            x = tf.pad(x, [[0, 0], [pad[0], pad[0]], [pad[1], pad[1]], [0, 0]])
            padding = "VALID"
        return tf.nn.bias_add(tf.nn.conv2d(x, w, stride, padding), b)

    def add_mismatched(a, b):
        # dlib's add(): output has the max of each dimension; missing values are zero
        # (channels padded at the end, rows/cols at the bottom/right).
        sa, sb = a.shape, b.shape
        h, w, c = max(sa[1], sb[1]), max(sa[2], sb[2]), max(sa[3], sb[3])

        def pad_to(t):
            s = t.shape
            if (s[1], s[2], s[3]) == (h, w, c):
                return t
            return tf.pad(t, [[0, 0], [0, h - s[1]], [0, w - s[2]], [0, c - s[3]]])

        return pad_to(a) + pad_to(b)

    consts = []
    layers = net.layers
    i = 0
    while i < len(layers):  # pre-fold con+affine pairs into constants
        if layers[i].kind == "con":
            if layers[i + 1].kind != "affine":
                raise ValueError("every con layer is followed by an affine layer in anet_type")
            w, b = fold(layers[i], layers[i + 1])
            consts.append((i, tf.constant(w), tf.constant(b)))
            i += 2
        else:
            i += 1
    folded = {idx: (w, b) for idx, w, b in consts}
    fc_w = tf.constant(layers[-1].params["w"])

    class DlibResNet(tf.Module):

        @tf.function(
            input_signature=[tf.TensorSpec([None, *net.input_size, 3], tf.float32, name="input")]
        )
        def __call__(self, x):
            tags: dict[int, tf.Tensor] = {}
            j = 0
            while j < len(layers):
                layer = layers[j]
                if layer.kind == "con":
                    w, b = folded[j]
                    x = conv(x, w, b, layer.args["stride"], layer.args["pad"])
                    j += 2  # affine folded in
                    continue
                if layer.kind == "relu":
                    x = tf.nn.relu(x)
                elif layer.kind == "max_pool":
                    k, s = layer.args["k"], layer.args["stride"]
                    x = tf.nn.max_pool2d(x, k, s, "VALID")
                elif layer.kind == "avg_pool":
                    if layer.args["k"] == 0:  # avg_pool_everything
                        x = tf.reduce_mean(x, axis=[1, 2])
                    else:
                        k, s = layer.args["k"], layer.args["stride"]
                        x = tf.nn.avg_pool2d(x, k, s, "VALID")
                elif layer.kind == "tag":
                    tags[layer.args["id"]] = x
                elif layer.kind == "skip":
                    x = tags[layer.args["tag"]]
                elif layer.kind == "add_prev":
                    x = add_mismatched(x, tags[layer.args["tag"]])
                elif layer.kind == "fc":
                    x = tf.matmul(tf.reshape(x, [-1, fc_w.shape[0]]), fc_w)
                j += 1
            return tf.identity(x, name="embedding")

    return DlibResNet()


# ----------------------------------------------------------------------------------------
# Calibration / reference chips made by dlib itself from public-domain images


def public_domain_images() -> dict[str, np.ndarray]:
    """RGB uint8 images that may be used freely: skimage astronaut/camera, matplotlib
    grace_hopper."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    camera = np.repeat(skimage.data.camera()[:, :, None], 3, axis=2)
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": hopper, "camera": camera}


class DlibChipper:
    """dlib frontal detector + 5-point landmarks + get_face_chip(150, padding 0.25)."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())

    def chips(self, rgb: np.ndarray, upsample: int = 1) -> list[np.ndarray]:
        """Chips of all detected faces, largest first."""
        rects = sorted(self.detector(rgb, upsample), key=lambda r: -r.area())
        return [
            self._dlib.get_face_chip(
                rgb, self.predictor(rgb, rect), size=CHIP_SIZE, padding=CHIP_PADDING
            )
            for rect in rects
        ]


def calibration_chips(chipper: DlibChipper, seed: int = 0) -> np.ndarray:
    """Augmented face chips for int8 calibration: geometric jitter before detection,
    photometric jitter after. Only public-domain source images."""
    import cv2

    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for name, img in public_domain_images().items():
        h, w = img.shape[:2]
        for t in range(40):
            angle = 0.0 if t == 0 else rng.uniform(-12, 12)
            scale = 1.0 if t == 0 else rng.uniform(0.8, 1.2)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
            warped = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            if t % 2:
                warped = warped[:, ::-1].copy()
            found = chipper.chips(warped)
            if not found:
                continue
            chip = found[0].astype(np.float32)
            if t > 0:
                chip = chip * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)  # contrast, brightness
                if t % 5 == 0:
                    chip = np.repeat(chip.mean(axis=2, keepdims=True), 3, axis=2)
                if t % 3 == 0:
                    chip = chip + rng.normal(0, rng.uniform(2, 8), chip.shape)
            out.append(np.clip(chip, 0, 255).astype(np.uint8))
    if len(out) < 30:
        raise RuntimeError(f"only {len(out)} calibration chips; expected dlib to find the faces")
    return np.stack(out)


# ----------------------------------------------------------------------------------------
# Conversion, verification and outputs


def normalise(chips: np.ndarray, mean_rgb: tuple[float, float, float]) -> np.ndarray:
    return (chips.astype(np.float32) - np.asarray(mean_rgb, np.float32)) / 256.0


def tflite_embed(model: bytes, x: np.ndarray) -> np.ndarray:
    """Run a TFLite model one sample at a time, handling int8 in/out quantisation."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=2)
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    res = []
    for sample in x:
        s = sample[None]
        if inp["dtype"] != np.float32:
            scale, zp = inp["quantization"]
            s = np.clip(np.round(s / scale + zp), -128, 127).astype(inp["dtype"])
        it.set_tensor(inp["index"], s)
        it.invoke()
        o = it.get_tensor(outp["index"]).astype(np.float32)
        if outp["dtype"] != np.float32:
            scale, zp = outp["quantization"]
            o = (o - zp) * scale
        res.append(o[0])
    return np.stack(res)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def existing_template_yaml(path: Path) -> str:
    """The spec's current alignment template as YAML, so re-converting keeps a calibrated one."""
    import yaml

    template = yaml.safe_load(path.read_text()).get("template") if path.is_file() else None
    if not template:
        return "template: null"
    lines = [f"  {name}: [{xy[0]}, {xy[1]}]" for name, xy in template.items()]
    return "\n".join(
        ["template:  # kept from the previous spec (tools/calibrate_template.py)", *lines]
    )


def write_spec(
    path: Path, model_file: str, model_id: str, mean_rgb, threshold: float, note: str
) -> None:
    mean = ", ".join(f"{m:.3f}" for m in mean_rgb)
    template = existing_template_yaml(path)
    path.write_text(f"""# Embedder spec for {model_file}: {note}
# Made by tools/convert_dlib_resnet.py from dlib's CC0 {MODEL_NAME}.
id: {model_id}
# Embeddings from models sharing an embedding_space are comparable (one gallery).
embedding_space: {EMBEDDING_SPACE}
file: {model_file}
input_size: [{CHIP_SIZE}, {CHIP_SIZE}]  # [width, height] of the aligned chip
color_order: rgb
# input = (pixel - mean) / std, per channel in color_order (dlib's input_rgb_image_sized)
mean: [{mean}]
std: [256.0, 256.0, 256.0]
output_dim: 128
metric: cosine
# Cosine-similarity acceptance threshold. dlib's 0.6 euclidean distance at the descriptors'
# typical norm (~1.44) is ~0.91; 0.92 measured over all faces-dev pairs (`face-recog evaluate`):
# 0.8% false accepts, 98.8% true accepts. Raise it where naming a stranger costs more.
threshold: {threshold}
# alignment.method 'landmarks' (default): the chip dlib.get_face_chip(img, shape_5pt,
# size={CHIP_SIZE}, padding={CHIP_PADDING}) cuts, from dlib's 5 landmarks found by
# models/<landmark_model>.yaml. dlib's ResNet was trained on these chips.
face_chip:
  size: {CHIP_SIZE}
  padding: {CHIP_PADDING}
  landmark_model: dlib_shape_predictor_5
# alignment.method 'keypoints': template, keypoint name -> [x, y] chip pixels (right_eye,
# left_eye, nose_tip, mouth_center); filled in by tools/calibrate_template.py.
{template}
""")


def main() -> None:
    import dlib
    import face_recognition_models as frm
    import tensorflow as tf
    from importlib.metadata import version

    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=here.parent / "models")
    ap.add_argument("--source", type=Path, default=Path(frm.face_recognition_model_location()))
    args = ap.parse_args()
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    data = args.source.read_bytes()
    net = parse_dlib_net(data)
    print(f"parsed {len(net.layers)} layers, mean_rgb={net.mean_rgb}, input={net.input_size}")
    module = build_tf_module(net)

    chipper = DlibChipper()
    calib = calibration_chips(chipper)
    print(f"{len(calib)} calibration chips")

    # Float model first: verify it against dlib before quantising.
    dlib_model = dlib.face_recognition_model_v1(str(args.source))
    ref = np.stack([np.asarray(dlib_model.compute_face_descriptor(c), np.float32) for c in calib])
    x = normalise(calib, net.mean_rgb)
    tf_out = module(tf.constant(x[:8])).numpy()
    print(f"tf graph vs dlib: min cosine {cosine(tf_out, ref[:8]).min():.6f}")

    conc = module.__call__.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], module)
    float_model = conv.convert()

    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], module)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s[None]] for s in x)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    int8_model = conv.convert()

    results = {}
    for tag, model in (("float32", float_model), ("int8", int8_model)):
        cos = cosine(tflite_embed(model, x), ref)
        results[tag] = {"min": float(cos.min()), "mean": float(cos.mean())}
        print(f"{tag}: cosine vs dlib min {cos.min():.5f} mean {cos.mean():.5f}")
    if results["float32"]["min"] < 0.999 or results["int8"]["min"] < 0.98:
        raise SystemExit(f"conversion check failed: {results}")

    outputs = {}
    for tag, model in (("float32", float_model), ("int8", int8_model)):
        stem = f"{EMBEDDING_SPACE}_{tag}"
        tfl = out_dir / f"{stem}.tflite"
        tfl.write_bytes(model)
        write_spec(
            out_dir / f"{stem}.yaml",
            tfl.name,
            stem,
            net.mean_rgb,
            DEFAULT_COSINE_THRESHOLD,
            (
                "float32 reference"
                if tag == "float32"
                else "full-integer int8 (int8 input and output)"
            ),
        )
        outputs[tfl.name] = {"sha256": sha256(tfl), "bytes": tfl.stat().st_size}
    ratio = (
        outputs[f"{EMBEDDING_SPACE}_int8.tflite"]["bytes"]
        / outputs[f"{EMBEDDING_SPACE}_float32.tflite"]["bytes"]
    )
    print(f"int8/float size ratio {ratio:.4f}")

    provenance = {
        "source": {
            "package": SOURCE_PACKAGE,
            "package_version": version(SOURCE_PACKAGE),
            "file": MODEL_NAME,
            "sha256": hashlib.sha256(data).hexdigest(),
            "license": "CC0 1.0 Universal (public domain dedication)",
            "license_stated_in": "https://github.com/davisking/dlib-models README.md, section on "
            "dlib_face_recognition_resnet_model_v1.dat: 'The license for this "
            "network is CC0'; the training data license is not asserted there",
            "architecture": "anet_type in dlib/examples/dnn_face_recognition_ex.cpp",
        },
        "converter": "face_recog_ros/tools/convert_dlib_resnet.py",
        "tensorflow_version": tf.__version__,
        "dlib_version": dlib.__version__,
        "input": f"float32/int8 (N,{CHIP_SIZE},{CHIP_SIZE},3) RGB, (pixel - mean)/256, dynamic "
                 "batch",
        "mean_rgb": list(net.mean_rgb),
        "calibration": {
            "chips": int(len(calib)),
            "images": "skimage.data.astronaut, matplotlib grace_hopper.jpg, skimage.data.camera "
            "(public domain), augmented (rotation/scale/flip, brightness/contrast, noise, gray)",
            "chip_maker": f"dlib frontal detector + 5-point shape predictor + "
            f"get_face_chip(size={CHIP_SIZE}, padding={CHIP_PADDING})",
        },
        "cosine_vs_dlib_on_calibration_chips": results,
        "outputs": outputs,
        "int8_to_float32_size_ratio": round(ratio, 4),
    }
    (out_dir / f"{EMBEDDING_SPACE}.provenance.json").write_text(
        json.dumps(provenance, indent=2) + "\n"
    )
    print(json.dumps(provenance, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
