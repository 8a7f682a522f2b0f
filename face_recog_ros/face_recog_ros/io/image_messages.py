"""sensor_msgs Image / CompressedImage -> RGB uint8 numpy arrays, without ROS.

Decoding reads the messages' fields only (width, height, step, encoding, data, format), so the
node's messages and rosbags' deserialised ones (offline tools, no ROS installed) go through the
same validated code. Why not just cv_bridge: it is not available everywhere (no PyPI wheel),
does not check that width/height/step agree with the data before reading it, and lacks NV12.
Every size is validated first, so a malformed message from the network raises
ImageConversionError instead of crashing or reading past the buffer, and a huge frame is refused
before anything is allocated. (RGB -> sensor_msgs/Image is ros/conversion.py.)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol

import cv2
import numpy as np

from .image_decoding import ImageFormatError, ImageTooLarge, UnsupportedFormat, decode_image


class Image(Protocol):
    """The fields of a sensor_msgs/Image that decoding reads (a ROS or a rosbags message)."""

    width: int
    height: int
    step: int
    encoding: str
    data: bytes


class CompressedImage(Protocol):
    """The fields of a sensor_msgs/CompressedImage that decoding reads."""

    format: str
    data: bytes


# 8K UHD; a camera frame above this is almost surely a malformed or hostile message.
DEFAULT_MAX_PIXELS = 7680 * 4320


class Refusal(str, Enum):
    """Why a message cannot be turned into an RGB image: counted and logged by cause."""

    ZERO_SIZE = "zero_size"  # width or height is 0
    TOO_LARGE = "too_large"  # more pixels than max_pixels
    STEP_TOO_SMALL = "step_too_small"  # row stride shorter than one row of the encoding
    ODD_SIZE = "odd_size"  # odd width/height for a chroma-subsampled encoding
    DATA_TOO_SHORT = "data_too_short"  # fewer bytes than step * rows
    DATA_TOO_LONG = (
        "data_too_long"  # more bytes than step * rows (exact=True): sizes or encoding lie
    )
    UNSUPPORTED_ENCODING = "unsupported_encoding"  # unknown, 16-bit, float, Bayer, compressedDepth
    EMPTY_DATA = "empty_data"  # compressed image without bytes
    CORRUPT_COMPRESSED = "corrupt_compressed"  # JPEG/PNG that does not decode


class ImageConversionError(ValueError):
    """The message cannot be turned into an RGB image; ``cause`` says why, the message how."""

    def __init__(self, message: str, cause: Refusal) -> None:
        super().__init__(message)
        self.cause = cause


class UnsupportedEncoding(ImageConversionError):
    """The encoding is valid ROS but not one this node can read (e.g. 16-bit or float)."""

    def __init__(self, message: str, cause: Refusal = Refusal.UNSUPPORTED_ENCODING) -> None:
        super().__init__(message, cause)


# image_decoding's errors for compressed images, by cause (anything else: corrupt data).
_REFUSALS = {ImageTooLarge: Refusal.TOO_LARGE, UnsupportedFormat: Refusal.UNSUPPORTED_ENCODING}


@dataclass(frozen=True)
class _Layout:
    """How a raw encoding is laid out and turned into RGB."""

    bytes_per_pixel: int  # bytes per pixel within a row (for planar NV formats: of the Y plane)
    rows_num: (
        int  # buffer rows = height * rows_num // rows_den (NV12/NV21 carry a half-height UV plane)
    )
    rows_den: int
    to_rgb: Callable[[np.ndarray], np.ndarray] | None  # None: the view already is RGB
    even_width: bool = False
    even_height: bool = False


def _cvt(code: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda view: cv2.cvtColor(view, code)


_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, 1, None),
    "bgr8": _Layout(3, 1, 1, _cvt(cv2.COLOR_BGR2RGB)),
    "8UC3": _Layout(3, 1, 1, _cvt(cv2.COLOR_BGR2RGB)),  # cv_bridge convention: 3 channels = BGR
    "mono8": _Layout(1, 1, 1, _cvt(cv2.COLOR_GRAY2RGB)),
    "8UC1": _Layout(1, 1, 1, _cvt(cv2.COLOR_GRAY2RGB)),
    "rgba8": _Layout(4, 1, 1, _cvt(cv2.COLOR_RGBA2RGB)),
    "bgra8": _Layout(4, 1, 1, _cvt(cv2.COLOR_BGRA2RGB)),
    # ROS "yuv422" is UYVY; "yuv422_yuy2" is YUYV (YUY2). Two pixels share one U/V pair.
    "yuv422": _Layout(2, 1, 1, _cvt(cv2.COLOR_YUV2RGB_UYVY), even_width=True),
    "uyvy": _Layout(2, 1, 1, _cvt(cv2.COLOR_YUV2RGB_UYVY), even_width=True),
    "yuv422_yuy2": _Layout(2, 1, 1, _cvt(cv2.COLOR_YUV2RGB_YUY2), even_width=True),
    "yuyv": _Layout(2, 1, 1, _cvt(cv2.COLOR_YUV2RGB_YUY2), even_width=True),
    # Y plane (height rows) followed by an interleaved half-resolution chroma plane (height/2
    # rows),
    # both with the same row stride `step`.
    "nv21": _Layout(1, 3, 2, _cvt(cv2.COLOR_YUV2RGB_NV21), even_width=True, even_height=True),
    "nv12": _Layout(1, 3, 2, _cvt(cv2.COLOR_YUV2RGB_NV12), even_width=True, even_height=True),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)


def _find_layout(encoding: str) -> _Layout | None:
    return _LAYOUTS.get(encoding) or _LAYOUTS.get(encoding.lower())


def _check_size(width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"image has zero size ({width}x{height})", Refusal.ZERO_SIZE)
    if max_pixels is not None and width * height > max_pixels:
        raise ImageConversionError(
            f"image {width}x{height} has {width * height} pixels, more than "
            f"max_pixels={max_pixels}",
            Refusal.TOO_LARGE,
        )


def image_to_rgb(msg: Image, max_pixels: int | None = DEFAULT_MAX_PIXELS, *,
                 exact: bool = False) -> np.ndarray:
    """Decode a raw sensor_msgs/Image into an (H, W, 3) uint8 RGB array.

    For rgb8 without row padding the result is a read-only view of msg.data (no copy): copy it
    before drawing on it. Every other case returns a new array. Only the first step * rows bytes
    are read; extra trailing bytes are ignored, unless ``exact``: then they mean that the sizes or
    the encoding do not describe the data (a mono image labelled bgr8 and the like), and the
    message is refused. is_bigendian does not matter for the supported 8-bit encodings. Encoding
    names are matched case-insensitively.

    Raises UnsupportedEncoding for encodings outside SUPPORTED_ENCODINGS (16-bit, float, Bayer,
    ...) and ImageConversionError for zero size, more than max_pixels pixels, step shorter than a
    row, odd sizes for chroma-subsampled encodings, or data shorter than step * rows; its ``cause``
    says which.
    """
    encoding = msg.encoding
    layout = _find_layout(encoding)
    if layout is None:
        raise UnsupportedEncoding(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_pixels)
    if layout.even_width and width % 2:
        raise ImageConversionError(
            f"{encoding} needs an even width, got {width}", Refusal.ODD_SIZE
        )
    if layout.even_height and height % 2:
        raise ImageConversionError(
            f"{encoding} needs an even height, got {height}", Refusal.ODD_SIZE
        )
    row_bytes = width * layout.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is shorter than one {encoding} row of width {width} ({row_bytes} bytes)",
            Refusal.STEP_TOO_SMALL)
    rows = height * layout.rows_num // layout.rows_den
    needed = step * rows
    if len(msg.data) < needed:
        raise ImageConversionError(
            f"{encoding} image {width}x{height} with step {step} needs {needed} bytes, "
            f"data has {len(msg.data)}", Refusal.DATA_TOO_SHORT)
    if exact and len(msg.data) > needed:
        raise ImageConversionError(
            f"{encoding} image {width}x{height} with step {step} has {len(msg.data) - needed} "
            "bytes "
            "more than it needs; its sizes or encoding do not describe the data",
            Refusal.DATA_TOO_LONG,
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8, count=needed)  # no copy
    view = buf.reshape(rows, step)[:, :row_bytes]  # strided view: row padding skipped, no copy
    if layout.bytes_per_pixel > 1:
        view = view.reshape(rows, width, layout.bytes_per_pixel)
    if layout.to_rgb is None:
        if not view.flags.c_contiguous:
            return np.ascontiguousarray(view)
        view.flags.writeable = False  # it aliases msg.data
        return view
    return layout.to_rgb(view)


def compressed_to_rgb(
    msg: CompressedImage, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG, PNG, or another format image_decoding allows)
    to RGB uint8.

    Raises UnsupportedEncoding for compressedDepth and formats off the allow-list, and
    ImageConversionError for empty or corrupt data and for images over max_pixels (checked from
    the header before anything is decoded).
    """
    if "compresseddepth" in msg.format.lower():
        raise UnsupportedEncoding(f"unsupported compressed format {msg.format!r} (depth images)")
    if len(msg.data) == 0:
        raise ImageConversionError("compressed image has no data", Refusal.EMPTY_DATA)
    try:
        return decode_image(msg.data, max_pixels)
    except ImageFormatError as exc:
        raise ImageConversionError(
            f"compressed image (format {msg.format!r}, {len(msg.data)} bytes): {exc}",
            _REFUSALS.get(type(exc), Refusal.CORRUPT_COMPRESSED)) from None
