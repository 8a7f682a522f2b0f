"""TFLite runtime fallback and package-data lookup (runtime.py).

The failing runtimes are stand-ins placed before the real ai-edge-litert in the chain: each raises
what the real broken installs raise (tflite-runtime built for numpy 1.x under numpy 2 raises
ImportError or SystemError on import; an old runtime cannot create an interpreter for a newer
model). The real runtime then loads the real models. The aarch64 check (test_aarch64.py) runs the
real tflite-runtime wheel.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from face_recog_ros.core import runtime
from face_recog_ros.core.embedding import Embedder, EmbedderSpec
from face_recog_ros.core.runtime import ModelError, TFLiteRuntime, open_model

AI_EDGE_LITERT = runtime.RUNTIMES[0]
INT8_SPEC = runtime.models_dir() / "dlib_resnet_v1_int8.yaml"
DETECTOR = runtime.models_dir() / "face_detection_short_range.tflite"
NUMPY_ABI_ERROR = ("A module that was compiled using NumPy 1.x cannot be run in NumPy 2.4.6 as it "
                   "may crash. To support both 1.x and 2.x versions of NumPy, modules must be "
                   "compiled with NumPy 2.0.")


def raising(error: BaseException):
    def load() -> type:
        raise error
    return load


def broken_import(error: BaseException, name: str = "tflite-runtime") -> TFLiteRuntime:
    return TFLiteRuntime(name, "tflite_runtime", raising(error), import_fix="FIX-IMPORT",
                         load_fix="FIX-LOAD")


class RefusingInterpreter:
    def __init__(self, model_path: str, num_threads: int) -> None:
        raise RuntimeError("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'")


def cannot_load(name: str = "old-runtime") -> TFLiteRuntime:
    return TFLiteRuntime(name, "old_runtime", lambda: RefusingInterpreter, import_fix="FIX-IMPORT",
                         load_fix="FIX-LOAD")


@pytest.fixture
def chain(monkeypatch):
    """Set the runtime chain for one test (import results are cached per runtime object)."""
    def set_chain(*runtimes: TFLiteRuntime) -> None:
        monkeypatch.setattr(runtime, "RUNTIMES", runtimes)
    return set_chain


@pytest.mark.parametrize("error", [
    ImportError(NUMPY_ABI_ERROR),
    SystemError("<built-in function __import__> returned a result with an exception set"),
    AttributeError("_ARRAY_API not found"),
    ModuleNotFoundError("No module named 'ml_dtypes'", name="ml_dtypes"),
], ids=["numpy_abi", "system_error", "attribute_error", "missing_dependency"])
def test_a_runtime_that_does_not_import_gives_one_model_error_then_the_next_is_used(chain, error):
    chain(broken_import(error), AI_EDGE_LITERT)
    with pytest.warns(RuntimeWarning) as caught:
        loaded = open_model(DETECTOR)
    assert loaded.runtime is AI_EDGE_LITERT
    assert loaded.interpreter.get_input_details()[0]["shape"].tolist() == [1, 128, 128, 3]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    message = messages[0]
    for words in ("TFLite runtime tflite-runtime", "does not import", type(error).__name__,
                  str(error), "Fix: FIX-IMPORT", "Using ai-edge-litert instead"):
        assert words in message, f"{words!r} not in: {message}"


def test_the_real_tflite_runtime_entry_names_the_numpy_fix():
    entry = next(r for r in runtime.RUNTIMES if r.name == "tflite-runtime")
    assert 'numpy<2' in entry.import_fix and entry.max_batch == 1
    assert [r.name for r in runtime.RUNTIMES] == ["ai-edge-litert", "tflite-runtime", "tensorflow"]


def test_a_runtime_that_cannot_create_the_interpreter_is_skipped(chain):
    chain(cannot_load(), AI_EDGE_LITERT)
    words = r"old-runtime cannot load face_detection_short_range\.tflite \(RuntimeError: Didn't"
    with pytest.warns(RuntimeWarning, match=words + r" find op.*Fix: FIX-LOAD"):
        assert open_model(DETECTOR).runtime is AI_EDGE_LITERT


def test_a_runtime_that_is_not_installed_is_skipped_silently(chain):
    absent = broken_import(ModuleNotFoundError("No module named 'x'", name="tflite_runtime"))
    chain(absent, AI_EDGE_LITERT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_model(DETECTOR).runtime is AI_EDGE_LITERT


def test_when_every_runtime_fails_one_error_names_each(chain):
    absent = TFLiteRuntime("tensorflow", "tensorflow",
                           raising(ModuleNotFoundError("x", name="tensorflow")), "", "")
    chain(broken_import(SystemError("boom")), cannot_load(), absent)
    with pytest.raises(ModelError) as info:
        open_model(DETECTOR)
    message = str(info.value)
    for words in ("cannot load TFLite model", str(DETECTOR),
                  "tflite-runtime is installed but does not import (SystemError: boom). "
                  "Fix: FIX-IMPORT", "old-runtime cannot load", "Fix: FIX-LOAD",
                  "not installed: tensorflow"):
        assert words in message, f"{words!r} not in: {message}"


def test_no_runtime_installed_says_what_to_install(chain):
    chain(broken_import(ModuleNotFoundError("x", name="tflite_runtime")))
    with pytest.raises(ModelError, match="no TFLite runtime is installed.*pip install ai-edge"):
        open_model(DETECTOR)


def test_a_corrupt_model_still_names_the_file(chain, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 10)
    chain(AI_EDGE_LITERT)
    with pytest.raises(ModelError, match=r"cannot load TFLite model .*broken\.tflite.*ai-edge"):
        open_model(broken)


class CountingInterpreter:
    """ai-edge-litert's interpreter, recording the batch size of each invoke()."""

    batches: list[int] = []

    def __init__(self, **kwargs) -> None:
        self._inner = AI_EDGE_LITERT.interpreter_class()(**kwargs)
        self._input = self._inner.get_input_details()[0]["index"]

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def invoke(self) -> None:
        CountingInterpreter.batches.append(int(self._inner.get_tensor(self._input).shape[0]))
        self._inner.invoke()


@pytest.mark.parametrize("max_batch, expected", [(None, [7]), (1, [1] * 7), (3, [3, 3, 1])])
def test_embedder_honours_the_runtime_batch_limit(chain, max_batch, expected):
    chips = np.random.default_rng(5).integers(0, 256, (7, 150, 150, 3), dtype=np.uint8)
    reference = Embedder(EmbedderSpec.from_yaml(INT8_SPEC)).embed(chips)
    limited = dataclasses.replace(AI_EDGE_LITERT, name="counting", max_batch=max_batch,
                                  interpreter_class=lambda: CountingInterpreter)
    chain(limited)
    embedder = Embedder(EmbedderSpec.from_yaml(INT8_SPEC))
    CountingInterpreter.batches = []
    out = embedder.embed(chips)
    assert CountingInterpreter.batches == expected
    np.testing.assert_array_equal(out, reference)  # int8: the same numbers, whatever the batching


def prefix_with_share(root: Path) -> Path:
    share = root / "share" / "face_recog_ros"
    (share / "models").mkdir(parents=True)
    (share / "config").mkdir()
    return share


def test_share_dir_from_a_pip_prefix_without_ament(monkeypatch, tmp_path):
    """A wheel or plain pip install: data_files went to <sys.prefix>/share/face_recog_ros."""
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    share = prefix_with_share(tmp_path / "venv")
    monkeypatch.setattr(runtime.sys, "prefix", str(tmp_path / "venv"))
    assert runtime.package_share_dir() == share
    assert runtime.models_dir() == share / "models"


def test_share_dir_from_a_user_install(monkeypatch, tmp_path):
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    monkeypatch.setattr(runtime.sys, "prefix", str(tmp_path / "empty"))
    share = prefix_with_share(tmp_path / "user")
    monkeypatch.setattr(runtime.site, "USER_BASE", str(tmp_path / "user"))
    assert runtime.package_share_dir() == share


def test_share_dir_from_the_ament_index_comes_first(monkeypatch, tmp_path):
    """colcon (symlink or copy install) and setup.sh's venv register the package in the index."""
    prefix = tmp_path / "install"
    share = prefix_with_share(prefix)
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "face_recog_ros").write_text("")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    pytest.importorskip("ament_index_python")
    assert runtime.package_share_dir() == share


def test_share_dir_falls_back_to_the_source_tree(monkeypatch, tmp_path):
    """An editable install or a checkout: the ROS package folder around the Python package."""
    trees = [p for p in Path(runtime.__file__).resolve().parents if (p / "package.xml").is_file()]
    if not trees:
        pytest.skip("face_recog_ros is imported from an installed copy, not the source tree")
    source_tree = trees[0]
    assert source_tree == Path(__file__).resolve().parents[1]
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    monkeypatch.setattr(runtime.sys, "prefix", str(tmp_path / "empty"))
    monkeypatch.setattr(runtime.site, "USER_BASE", str(tmp_path / "empty"))
    assert runtime.package_share_dir() == source_tree


def test_share_dir_missing_lists_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    monkeypatch.setattr(runtime.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(runtime.site, "USER_BASE", str(tmp_path / "user"))
    monkeypatch.setattr(runtime, "__file__", str(tmp_path / "site-packages" / "x" / "runtime.py"))
    looked = r"looked in: .*venv/share/face_recog_ros, .*user/share/face_recog_ros"
    with pytest.raises(ModelError, match=r"data \(config/, models/\) was not found; " + looked):
        runtime.package_share_dir()
