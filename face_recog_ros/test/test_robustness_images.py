"""Bad frames: random or damaged compressed data, headers claiming huge sizes, and odd but valid
arrays reach the converter, detector and embedder; each is decoded, processed or refused with a
ValueError, quickly and without large allocations.
"""
from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage
from skimage import data as skdata

from face_recog_ros import FaceRecognizer, RecognizerConfig
from face_recog_ros.core.embedding import Embedder, EmbedderSpec
from face_recog_ros.core.recognizer import resolve_spec_path
from face_recog_ros.io.image_messages import (
    DEFAULT_MAX_PIXELS,
    ImageConversionError,
    compressed_to_rgb,
)

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TIME_LIMIT_S = 2.0
MAX_RSS_GROWTH_MB = 400


@pytest.fixture(scope="module")
def encoded() -> dict[str, bytes]:
    rgb = skdata.astronaut()[::2, ::2]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return {ext: cv2.imencode(ext, bgr)[1].tobytes() for ext in (".jpg", ".png")}


def decode(data: bytes, fmt: str = "jpeg") -> np.ndarray | None:
    """The decoded frame, or None when refused with ImageConversionError; anything else fails."""
    start = time.monotonic()
    try:
        rgb = compressed_to_rgb(CompressedImage(format=fmt, data=data))
    except ImageConversionError as err:
        assert str(err)
        rgb = None
    assert time.monotonic() - start < TIME_LIMIT_S
    if rgb is not None:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert rgb.shape[0] * rgb.shape[1] <= DEFAULT_MAX_PIXELS
    return rgb


# ----------------------------------------------------------------- compressed images
@FUZZ
@given(
    data=st.binary(min_size=1, max_size=2048),
    magic=st.sampled_from(
        [b"", b"\xff\xd8", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"P6\n", b"RIFF"]
    ),
)
def test_random_compressed_bytes(rss_guard: None, data: bytes, magic: bytes) -> None:
    decode(magic + data)


@FUZZ
@given(
    ext=st.sampled_from([".jpg", ".png"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
)
def test_mutated_jpeg_and_png(encoded: dict[str, bytes], rss_guard: None, ext: str, cut: float,
                              flips: list[tuple[float, int]]) -> None:
    """Truncated anywhere, bytes overwritten anywhere: OpenCV decodes what it can or we refuse."""
    data = bytearray(encoded[ext][: max(1, int(cut * len(encoded[ext])))])
    for where, value in flips:
        data[int(where * len(data))] = value
    decode(bytes(data))


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def jpeg_with_size(small: bytes, width: int, height: int, padding: int = 0) -> bytes:
    """A real JPEG whose frame header claims width x height, after ``padding`` bytes of APP1
    metadata."""
    apps = b""
    while padding > 0:
        n = min(padding, 65533)
        apps += b"\xff\xe1" + struct.pack(">H", n + 2) + bytes(n)
        padding -= n
    data = bytearray(small[:2] + apps + small[2:])
    sof = data.find(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "width, height", [(65535, 65535), (30000, 30000), (7681, 4321), (2**31 - 1, 1)]
)
def test_png_claiming_huge_size_is_refused_before_decoding(
    rss_guard: None, width: int, height: int
) -> None:
    data = png_header(width, height) + b"\x00" * 5000
    with pytest.raises(ImageConversionError, match="more than max_pixels"):
        compressed_to_rgb(CompressedImage(format="png", data=data))


@pytest.mark.parametrize(
    "padding", [0, 70_000, 300_000], ids=["sof_first", "sof_after_70k", "sof_after_300k"]
)
def test_jpeg_claiming_huge_size_is_refused_before_decoding(
    encoded: dict[str, bytes], rss_guard: None, padding: int
) -> None:
    """Metadata segments can push the frame header far in; it is found and checked wherever it is
    (before the fix, 70 KB of metadata let a 30000x30000 claim cost ~5 GB and 6 s)."""
    data = jpeg_with_size(encoded[".jpg"], 30000, 30000, padding)
    start = time.monotonic()
    with pytest.raises(ImageConversionError, match="more than max_pixels"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=data))
    assert time.monotonic() - start < 0.5


def test_jpeg_metadata_before_frame_header_still_decodes(encoded: dict[str, bytes]) -> None:
    plain = decode(encoded[".jpg"])
    padded = decode(jpeg_with_size(encoded[".jpg"], 256, 256, padding=200_000))
    assert plain is not None and padded is not None
    np.testing.assert_array_equal(plain, padded)


def test_jpeg_with_garbage_before_frame_header_is_refused(encoded: dict[str, bytes]) -> None:
    """libjpeg would skip the garbage and allocate whatever size follows; we cannot check it
    first."""
    data = encoded[".jpg"]
    sof = data.find(b"\xff\xc0")
    with pytest.raises(ImageConversionError, match="frame header"):
        compressed_to_rgb(
            CompressedImage(format="jpeg", data=data[:sof] + b"\x00garbage" + data[sof:])
        )


# ----------------------------------------------------------------- odd arrays in the core
@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    config = RecognizerConfig()
    config.gallery.path = ""
    return FaceRecognizer(config)


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 3), (1, 10000, 3), (10000, 1, 3), (2, 3), (5, 7, 1), (9, 4, 4), (4000, 4000, 3)],
    ids=["1x1", "1x10000", "10000x1", "gray_2d", "gray_1ch", "rgba", "4000x4000"],
)
def test_odd_but_valid_frames_are_processed(
    recognizer: FaceRecognizer, shape: tuple[int, ...]
) -> None:
    frame = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    for faces in (
        recognizer.process(frame),
        recognizer.process(frame[::-1]),
    ):  # negative strides too
        assert all(
            np.all(np.isfinite(f.detection.box)) and 0 < f.detection.score <= 1 for f in faces
        )


def test_non_contiguous_views_match_copies(recognizer: FaceRecognizer) -> None:
    big = np.zeros((1200, 1200, 3), np.uint8)
    big[100:612:, 100:612] = skdata.astronaut()
    view = big[::2, ::2]
    assert [f.label for f in recognizer.process(view)] == [
        f.label for f in recognizer.process(view.copy())
    ]


@pytest.mark.parametrize("frame, words", [
    (np.full((64, 64, 3), np.nan, np.float32), "uint8"),
    (np.zeros((64, 64, 3), np.float64), "uint8"),
    (np.zeros((64, 64, 3), np.int16), "uint8"),
    (np.zeros((0, 0, 3), np.uint8), "shape"),
    (np.zeros((0, 10, 3), np.uint8), "shape"),
    (np.zeros((10, 10, 2), np.uint8), "shape"),
    (np.zeros((4, 4, 4, 3), np.uint8), "shape"),
    (np.zeros(10, np.uint8), "shape"),
], ids=["nan_float32", "float64", "int16", "0x0", "0x10", "2_channels", "4d", "1d"])
def test_invalid_frames_raise_clear_value_error(
    recognizer: FaceRecognizer, frame: np.ndarray, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        recognizer.process(frame)
    with pytest.raises(ValueError, match=words):
        recognizer.embed_for_enrollment(frame)


def test_frame_that_is_not_an_array(recognizer: FaceRecognizer) -> None:
    with pytest.raises(ValueError, match="numpy array"):
        recognizer.process([[0, 0, 0]])  # type: ignore[arg-type]


@pytest.mark.parametrize("chips, words", [
    (np.full((2, 150, 150, 3), np.nan, np.float32), "uint8"),
    (np.full((1, 150, 150, 3), 0.5), "uint8"),
    (np.zeros((1, 112, 112, 3), np.uint8), r"\(N, 150, 150, 3\)"),
    (np.zeros((150, 150), np.uint8), r"\(N, 150, 150, 3\)"),
], ids=["nan_float32", "float64_0_to_1", "wrong_size", "2d"])
def test_embedder_refuses_invalid_chips(
    recognizer: FaceRecognizer, chips: np.ndarray, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        recognizer.embedder.embed(chips)


def test_embedder_odd_but_valid_batches(recognizer: FaceRecognizer) -> None:
    spec = EmbedderSpec.from_yaml(resolve_spec_path(recognizer.config.embedder.model))
    embedder = Embedder(spec, num_threads=1)
    rng = np.random.default_rng(5)
    for chips in (np.zeros((1, 150, 150, 3), np.uint8), np.full((3, 150, 150, 3), 255, np.uint8),
                  rng.integers(0, 256, (17, 150, 150, 3), dtype=np.uint8)):
        out = embedder.embed(chips)
        assert out.shape == (len(chips), 128) and np.all(np.isfinite(out))
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
