"""sensor_msgs Image/CompressedImage <-> RGB conversion, checked against OpenCV on a real photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image
from skimage.data import astronaut
from std_msgs.msg import Header

from face_recog_ros.io.image_messages import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    Refusal,
    UnsupportedEncoding,
    compressed_to_rgb,
    image_to_rgb,
)
from face_recog_ros.ros.conversion import rgb_to_image


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    # Non-square crop so a swapped width/height cannot pass.
    return np.ascontiguousarray(astronaut()[40:340, 60:460])  # (300, 400, 3)


def _i420_to_nv(i420: np.ndarray, h: int, w: int, v_first: bool) -> np.ndarray:
    """Re-pack OpenCV's planar I420 (Y, U, V) into semi-planar NV12 (UV) or NV21 (VU)."""
    y = i420[:h]
    u = i420[h:h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4:].reshape(h // 2, w // 2)
    uv = np.stack([v, u] if v_first else [u, v], axis=-1).reshape(h // 2, w)
    return np.vstack([y, uv])


def encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """The raw rows (rows, row_bytes) of `rgb` in `encoding`, made with OpenCV's own converters."""
    h, w = rgb.shape[:2]
    if encoding == "rgb8":
        out = rgb
    elif encoding in ("bgr8", "8UC3"):
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding in ("mono8", "8UC1"):
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif encoding == "rgba8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    elif encoding == "bgra8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    elif encoding in ("yuv422", "uyvy"):
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY)
    elif encoding in ("yuv422_yuy2", "yuyv"):
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2)
    elif encoding in ("nv12", "nv21"):
        out = _i420_to_nv(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), h, w, encoding == "nv21")
    else:
        raise AssertionError(encoding)
    return np.ascontiguousarray(out).reshape(out.shape[0], -1)


# Independent OpenCV decoders of the contiguous reference buffers.
_REFERENCE_DECODE = {
    "rgb8": lambda a, h, w: a.reshape(h, w, 3),
    "bgr8": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 3), cv2.COLOR_BGR2RGB),
    "8UC3": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 3), cv2.COLOR_BGR2RGB),
    "mono8": lambda a, h, w: cv2.cvtColor(a, cv2.COLOR_GRAY2RGB),
    "8UC1": lambda a, h, w: cv2.cvtColor(a, cv2.COLOR_GRAY2RGB),
    "rgba8": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 4), cv2.COLOR_RGBA2RGB),
    "bgra8": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 4), cv2.COLOR_BGRA2RGB),
    "yuv422": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 2), cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 2), cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 2), cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": lambda a, h, w: cv2.cvtColor(a.reshape(h, w, 2), cv2.COLOR_YUV2RGB_YUY2),
    "nv12": lambda a, h, w: cv2.cvtColor(a, cv2.COLOR_YUV2RGB_NV12),
    "nv21": lambda a, h, w: cv2.cvtColor(a, cv2.COLOR_YUV2RGB_NV21),
}


def make_msg(
    rows: np.ndarray, height: int, width: int, encoding: str, pad: int = 0, extra: int = 0
) -> Image:
    """An Image whose rows are padded to step = row_bytes + pad, with `extra` junk bytes at the
    end."""
    padded = np.full((rows.shape[0], rows.shape[1] + pad), 0xAB, np.uint8)
    padded[:, : rows.shape[1]] = rows
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1])
    msg.data = padded.tobytes() + b"\xcd" * extra
    return msg


def test_every_supported_encoding_has_a_reference() -> None:
    assert set(SUPPORTED_ENCODINGS) == set(_REFERENCE_DECODE)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize("pad,extra", [(0, 0), (7, 0), (64, 13)])
def test_round_trip_matches_opencv(rgb: np.ndarray, encoding: str, pad: int, extra: int) -> None:
    h, w = rgb.shape[:2]
    rows = encode(rgb, encoding)
    out = image_to_rgb(make_msg(rows, h, w, encoding, pad, extra))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, _REFERENCE_DECODE[encoding](rows, h, w))
    err = np.abs(out.astype(np.int16) - rgb.astype(np.int16))
    if encoding in ("mono8", "8UC1"):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    elif encoding in ("rgb8", "bgr8", "8UC3", "rgba8", "bgra8"):
        assert err.max() == 0
    else:  # chroma subsampling loses detail but a swapped U/V or byte order would be far off
        assert err.mean() < 6.0, f"{encoding}: mean error {err.mean():.1f}"


def test_rgb8_without_padding_is_a_read_only_view(rgb: np.ndarray) -> None:
    msg = make_msg(encode(rgb, "rgb8"), *rgb.shape[:2], "rgb8")
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert not out.flags.writeable


def test_padded_rgb8_is_a_contiguous_copy(rgb: np.ndarray) -> None:
    out = image_to_rgb(make_msg(encode(rgb, "rgb8"), *rgb.shape[:2], "rgb8", pad=3))
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, rgb)


def _bgr(h: int, w: int, step: int | None = None, size: int | None = None) -> Image:
    step = 3 * w if step is None else step
    size = step * h if size is None else size
    return Image(height=h, width=w, step=step, encoding="bgr8", data=b"\x10" * size)


@pytest.mark.parametrize(
    "msg,match",
    [
        (_bgr(0, 10, step=30, size=0), "zero size"),
        (_bgr(10, 0, step=0, size=0), "zero size"),
        (_bgr(10, 10, step=29), "step 29 is shorter"),
        (_bgr(10, 10, size=299), "needs 300 bytes, data has 299"),
        (_bgr(10, 10, size=0), "needs 300 bytes, data has 0"),
        (Image(height=4, width=5, step=10, encoding="yuv422", data=b"\0" * 40), "even width"),
        (Image(height=5, width=4, step=4, encoding="nv12", data=b"\0" * 40), "even height"),
        (Image(height=4, width=4, step=4, encoding="nv21", data=b"\0" * 23), "needs 24 bytes"),
    ],
)
def test_bad_sizes_raise_before_reading(msg: Image, match: str) -> None:
    with pytest.raises(ImageConversionError, match=match):
        image_to_rgb(msg)


def test_longer_data_is_allowed_and_ignored() -> None:
    msg = _bgr(2, 2, size=12 + 100)
    assert image_to_rgb(msg).shape == (2, 2, 3)


@pytest.mark.parametrize(
    "msg,cause",
    [
        (_bgr(0, 10, step=30, size=0), Refusal.ZERO_SIZE),
        (_bgr(10, 10, step=29), Refusal.STEP_TOO_SMALL),
        (_bgr(10, 10, size=299), Refusal.DATA_TOO_SHORT),
        (Image(height=4, width=5, step=10, encoding="yuv422", data=b"\0" * 40), Refusal.ODD_SIZE),
        (
            Image(height=2, width=2, step=16, encoding="16UC1", data=b"\0" * 64),
            Refusal.UNSUPPORTED_ENCODING,
        ),
        (_bgr(100_000, 100_000, step=300_000, size=16), Refusal.TOO_LARGE),
        (_bgr(2, 2, size=12 + 100), Refusal.DATA_TOO_LONG),  # with exact=True only
    ],
)
def test_refusals_carry_their_cause(msg: Image, cause: Refusal) -> None:
    """The node counts refused frames by this cause, not by reading the message text."""
    with pytest.raises(ImageConversionError) as refused:
        image_to_rgb(msg, exact=True)
    assert refused.value.cause is cause


@pytest.mark.parametrize("data,fmt,cause", [
    (b"", "jpeg", Refusal.EMPTY_DATA),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "png", Refusal.CORRUPT_COMPRESSED),
    (b"\xff\xd8\xff\xe0" + bytes(200), "jpeg", Refusal.CORRUPT_COMPRESSED),
    (b"\x00" * 64, "16UC1; compressedDepth", Refusal.UNSUPPORTED_ENCODING),
])
def test_compressed_refusals_carry_their_cause(data: bytes, fmt: str, cause: Refusal) -> None:
    with pytest.raises(ImageConversionError) as refused:
        compressed_to_rgb(CompressedImage(format=fmt, data=data))
    assert refused.value.cause is cause


@pytest.mark.parametrize(
    "encoding", ["mono16", "16UC1", "32FC1", "rgb16", "bgra16", "bayer_rggb8", "8UC2", "jpeg", ""]
)
def test_unsupported_encoding_is_named(encoding: str) -> None:
    msg = Image(height=2, width=2, step=16, encoding=encoding, data=b"\0" * 64)
    with pytest.raises(UnsupportedEncoding, match=f"unsupported image encoding '{encoding}'"):
        image_to_rgb(msg)


def test_max_pixels_refuses_huge_frames_before_allocating() -> None:
    # 100000 x 100000 with 3 bytes of data: refused on the header alone.
    huge = Image(height=100_000, width=100_000, step=300_000, encoding="bgr8", data=b"\0\0\0")
    with pytest.raises(ImageConversionError, match="more than max_pixels"):
        image_to_rgb(huge)
    with pytest.raises(ImageConversionError, match="more than max_pixels=99"):
        image_to_rgb(_bgr(10, 10), max_pixels=99)
    assert image_to_rgb(_bgr(10, 10), max_pixels=100).shape == (10, 10, 3)


def test_encoding_case_is_tolerated(rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    np.testing.assert_array_equal(image_to_rgb(make_msg(encode(rgb, "bgr8"), h, w, "BGR8")), rgb)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    encoding=st.sampled_from([*SUPPORTED_ENCODINGS, "mono16", "32FC1", "bayer_bggr8", "x"]),
    width=st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)),
    height=st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)),
    step=st.one_of(st.integers(0, 200), st.integers(0, 2**32 - 1)),
    data_len=st.integers(0, 10_000),
    fill=st.integers(0, 255),
)
def test_any_header_converts_or_raises_conversion_error(
    encoding: str, width: int, height: int, step: int, data_len: int, fill: int
) -> None:
    msg = Image(
        height=height, width=width, step=step, encoding=encoding, data=bytes([fill]) * data_len
    )
    try:
        out = image_to_rgb(msg)
    except ImageConversionError:
        return
    assert out.shape == (height, width, 3) and out.dtype == np.uint8


# ---- CompressedImage ----


def _compressed(rgb: np.ndarray, ext: str) -> CompressedImage:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return CompressedImage(format=ext.lstrip("."), data=buf.tobytes())


def test_png_decodes_exactly(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(compressed_to_rgb(_compressed(rgb, ".png")), rgb)


def test_jpeg_decodes_close_to_original(rgb: np.ndarray) -> None:
    out = compressed_to_rgb(_compressed(rgb, ".jpg"))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(np.int16) - rgb).mean() < 4.0


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 50, b"\x89PNG\r\n\x1a\n"]
)
def test_corrupt_compressed_data_raises(data: bytes) -> None:
    with pytest.raises(ImageConversionError):
        compressed_to_rgb(CompressedImage(format="jpeg", data=data))


def test_truncated_png_raises(rgb: np.ndarray) -> None:
    msg = _compressed(rgb, ".png")
    msg.data = bytes(msg.data[: len(msg.data) // 2])
    with pytest.raises(ImageConversionError, match="could not decode"):
        compressed_to_rgb(msg)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed_max_pixels_checked_from_header(rgb: np.ndarray, ext: str) -> None:
    msg = _compressed(rgb, ext)
    with pytest.raises(ImageConversionError, match=r"400x300 has 120000 pixels"):
        compressed_to_rgb(msg, max_pixels=400 * 300 - 1)


def test_compressed_depth_is_unsupported() -> None:
    with pytest.raises(UnsupportedEncoding, match="compressedDepth"):
        compressed_to_rgb(CompressedImage(format="16UC1; compressedDepth png", data=b"\0" * 20))


# ---- rgb_to_image ----


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8"])
def test_rgb_to_image_round_trips(rgb: np.ndarray, encoding: str) -> None:
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = rgb_to_image(rgb, header, encoding)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (300, 400, 1200, encoding)
    assert msg.header.frame_id == "camera_optical" and msg.header.stamp.nanosec == 345
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_rgb_to_image_mono(rgb: np.ndarray) -> None:
    msg = rgb_to_image(rgb, encoding="mono8")
    assert msg.step == 400
    np.testing.assert_array_equal(image_to_rgb(msg)[..., 0], cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def test_rgb_to_image_accepts_non_contiguous_input(rgb: np.ndarray) -> None:
    crop = rgb[10:110, 20:220]
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(crop)), crop)


def test_rgb_to_image_rejects_bad_input(rgb: np.ndarray) -> None:
    with pytest.raises(ValueError):
        rgb_to_image(rgb.astype(np.float32))
    with pytest.raises(ValueError):
        rgb_to_image(rgb[..., 0])
    with pytest.raises(UnsupportedEncoding):
        rgb_to_image(rgb, encoding="rgb16")


# ---- cv_bridge agreement (only where cv_bridge is installed, e.g. a ROS 2 machine) ----


@pytest.mark.parametrize(
    "encoding", ["rgb8", "bgr8", "mono8", "rgba8", "bgra8", "yuv422", "yuv422_yuy2"]
)
def test_matches_cv_bridge(rgb: np.ndarray, encoding: str) -> None:
    cv_bridge = pytest.importorskip("cv_bridge")
    h, w = rgb.shape[:2]
    msg = make_msg(encode(rgb, encoding), h, w, encoding, pad=8)
    expected = cv_bridge.CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    np.testing.assert_array_equal(image_to_rgb(msg), expected)
