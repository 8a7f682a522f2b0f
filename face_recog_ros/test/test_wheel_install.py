"""A plain pip install without ROS: face_recog_ros's wheel in a fresh virtual environment.

The wheel is built from a copy of this package, the way `pip install ./face_recog_ros` builds it,
and installed into a new venv (no ROS, no ament, no repository on sys.path) with its [standalone]
extra. Its dependencies come from a local wheelhouse, pinned to this environment's versions and
downloaded once into ~/.cache/face_recog_ros (or $FACE_RECOG_CACHE), so a second run is offline.
Then the real `face-recog` console script enrols two public-domain people and names them in a
scene, its models found in <venv>/share/face_recog_ros where pip put setup.py's data_files.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import cv2
import pytest

from face_recog_ros.io import samples
from face_recog_ros.dependencies import STANDALONE, pip_extras

PKG = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("FACE_RECOG_CACHE", Path.home() / ".cache" / "face_recog_ros"))
# Variables that would let the new environment see this one (or ROS): none may leak into it.
LEAKY = ("PYTHONPATH", "PYTHONHOME", "AMENT_PREFIX_PATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV",
         "COLCON_PREFIX_PATH", "ROS_DISTRO", "PIP_REQUIRE_VIRTUALENV")


def clean_env(venv: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd: list, cwd: Path, venv: Path | None = None, check: bool = True):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(venv), text=True,
                          capture_output=True, timeout=600)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def pip(*args) -> list:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the package (the checkout gets no build/ or egg-info)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "face_recog_ros"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns(
        "test", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    run(pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist", src), root)
    return next((root / "dist").glob("face_recog_ros-*.whl"))


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """The [standalone] extra's wheels for this interpreter, at this environment's versions."""
    pins = []
    for name in pip_extras()[STANDALONE]:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    key = hashlib.sha1("\n".join([sys.version, platform.machine(), *pins]).encode()).hexdigest()
    house = CACHE / f"wheelhouse-{key[:12]}"
    if not (house / ".complete").exists():
        shutil.rmtree(house, ignore_errors=True)
        run(pip("download", "-q", "--only-binary=:all:", "-d", house, *pins), PKG)
        (house / ".complete").write_text("\n".join(pins) + "\n")
    return house


def make_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", path], path.parent)
    return path


def venv_pip(venv: Path, *args) -> list:
    return pip("--python", venv / "bin" / "python", *args)


def test_wheel_declares_the_extras_and_carries_the_data(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist") or []
    for extra, packages in pip_extras().items():
        declared = sorted(r.split(";")[0].strip() for r in requires if f'extra == "{extra}"' in r)
        assert declared == sorted(packages), (extra, declared)
    # Nothing heavy by default: a ROS machine's apt numpy/OpenCV must not be replaced by pip's.
    assert [r for r in requires if "extra ==" not in r] == []
    data = "face_recog_ros-0.1.0.data/data/share/"
    for path in ("face_recog_ros/models/dlib_resnet_v1_int8.tflite",
                 "face_recog_ros/models/dlib_resnet_v1_int8.yaml",
                 "face_recog_ros/models/face_detection_short_range.tflite",
                 "face_recog_ros/config/face_recognition.yaml", "face_recog_ros/package.xml",
                 "face_recog_ros/launch/face_recognition.launch.py",
                 "ament_index/resource_index/packages/face_recog_ros"):
        assert data + path in names, path
    assert "face_recog_ros/dependencies.py" in names
    assert not [n for n in names if "/test/" in n or n.startswith("test/")]


def test_standalone_install_finds_its_models_and_names_faces(wheel, wheelhouse, tmp_path):
    venv = make_venv(tmp_path / "venv")
    run(venv_pip(venv, "install", "-q", "--no-index", "--find-links", wheelhouse,
                 f"{wheel}[standalone]"), tmp_path)
    python = venv / "bin" / "python"
    no_ros = run([python, "-c", "import rclpy"], tmp_path, venv, check=False)
    assert no_ros.returncode != 0 and "rclpy" in no_ros.stderr
    where = run([python, "-c", "import face_recog_ros, face_recog_ros.core.runtime as r; "
                 "print(face_recog_ros.__file__); print(r.models_dir())"], tmp_path, venv)
    module, models = where.stdout.split()
    assert Path(module).is_relative_to(venv)
    assert Path(models) == venv / "share" / "face_recog_ros" / "models"

    photos = {key: tmp_path / f"{key}.png" for key in samples.PEOPLE}
    for key, path in photos.items():
        cv2.imwrite(str(path), cv2.cvtColor(samples.photo(key), cv2.COLOR_RGB2BGR))
    scene = tmp_path / "scene.png"
    cv2.imwrite(str(scene), cv2.cvtColor(samples.scene(3), cv2.COLOR_RGB2BGR))
    face_recog = venv / "bin" / "face-recog"
    gallery = tmp_path / "gallery.npz"
    for key, name in samples.PEOPLE.items():
        out = run([face_recog, "enroll", name, photos[key], "--gallery", gallery], tmp_path, venv)
        assert f"enrolled {name}" in out.stdout
    out = run([face_recog, "identify", scene, "--gallery", gallery, "--json"], tmp_path, venv)
    labels = sorted(face["label"] for face in json.loads(out.stdout))
    assert labels == sorted(["eileen_collins", "eileen_collins", "grace_hopper"]), out.stdout


def test_install_without_the_extra_says_what_to_install(wheel, tmp_path):
    venv = make_venv(tmp_path / "bare")
    run(venv_pip(venv, "install", "-q", "--no-index", "--no-deps", wheel), tmp_path)
    out = run([venv / "bin" / "face-recog", "list"], tmp_path, venv, check=False)
    assert out.returncode != 0
    assert "face_recog_ros needs the module" in out.stderr
    assert "[standalone] extra" in out.stderr, out.stderr[-2000:]
