"""Image bombs: tiny files whose headers claim huge frames, in every format OpenCV decodes.

Before decoding was bounded, a 1,080-byte BMP (RLE8, 30000x30000), a deflate TIFF or a 35-byte
GIF made OpenCV allocate 5-7 GB and stall the node for seconds (an OOM kill on a 4 GB Pi). Each
bomb is built here, byte by byte, and must be refused from its header, before any allocation;
a separate process decodes all of them and must stay under 600 MB of RSS.
"""
from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from face_recog_ros.io.image_decoding import (
    FORMATS,
    ImageFormatError,
    ImageTooLarge,
    UnsupportedFormat,
    claimed_size,
    decode_image,
)
from face_recog_ros.io.image_messages import ImageConversionError, Refusal, compressed_to_rgb
from face_recog_ros.io.images import load_image

MAX_PIXELS = 7680 * 4320


@dataclass
class CompressedImage:
    """The fields compressed_to_rgb reads (sensor_msgs/CompressedImage or a rosbags message)."""

    format: str
    data: bytes  # the node's default max_input_pixels


def bmp_rle8(width: int, height: int) -> bytes:
    pixels = b"\x00\x01" * 500 + b"\x00\x01"  # RLE8: end-of-line escapes, then end of bitmap
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    palette = b"\x00\x00\x00\x00" * 256
    offset = 14 + len(info) + len(palette)
    return (
        b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels
    )


def gif_frame(width: int, height: int, screen: tuple[int, int] = (1, 1)) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", *screen, 0, 0, 0)
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00\x3b"
    )


def tiff_deflate(width: int, height: int) -> bytes:
    body = zlib.compress(bytes(2**20), 9)  # ~1 KB that inflates to a MB of zeros
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 9 + 4),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, len(body)),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else
                                                 struct.pack("<I", value))
        for tag, kind, count, value in entries) + b"\x00\x00\x00\x00"
    return b"II*\x00" + struct.pack("<I", 8) + ifd + body


def png_ihdr(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
    )


def webp_vp8x(width: int, height: int) -> bytes:
    chunk = (
        b"VP8X"
        + struct.pack("<I", 10)
        + b"\x00\x00\x00\x00"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def jpeg_sof(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return (
        b"\xff\xd8"
        + sof
        + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
        + b"\x00" * 64
        + b"\xff\xd9"
    )


BOMBS = {
    "bmp_rle8_30000": bmp_rle8(30000, 30000),
    "bmp_top_down": bmp_rle8(30000, -30000),
    "gif_frame_65535": gif_frame(65535, 65535),
    "gif_frame_outside_screen": gif_frame(10, 10, screen=(1, 1))[:13]
    + b"\x2c"
    + struct.pack("<HHHHB", 65000, 65000, 10, 10, 0)
    + b"\x02\x02\x44\x01\x00\x3b",
    "tiff_deflate": tiff_deflate(50000, 50000),
    "png_ihdr": png_ihdr(100000, 100000),
    "webp_vp8x": webp_vp8x(16384, 16384),
    "jpeg_sof": jpeg_sof(65500, 65500),
    "ppm": b"P6 100000 100000 255\n" + bytes(64),
    "pam": b"P7\nWIDTH 100000\nHEIGHT 100000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"
    + bytes(64),
    "pfm": b"PF\n20000 20000\n-1.0\n" + bytes(64),
    "hdr": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n" + bytes(64),
    "tiff_many_samples": tiff_deflate(2000, 2000).replace(
        struct.pack("<HHIHH", 277, 3, 1, 1, 0), struct.pack("<HHIHH", 277, 3, 1, 4000, 0)
    ),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_from_its_header(name: str) -> None:
    with pytest.raises(ImageTooLarge, match="max_pixels"):
        decode_image(BOMBS[name], MAX_PIXELS)


def test_every_listed_format_is_sized_exactly() -> None:
    """Real encodings by OpenCV itself: the header reader agrees with what the decoder produces."""
    image = np.random.default_rng(3).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    seen = set()
    for ext in (".jpg", ".png", ".bmp", ".gif", ".webp", ".tiff", ".ppm", ".pam", ".pfm", ".hdr"):
        source = image.astype(np.float32) / 255 if ext in (".pfm", ".hdr") else image
        ok, encoded = cv2.imencode(ext, source)
        assert ok, ext
        size = claimed_size(encoded.tobytes())
        assert (size.width, size.height) == (53, 37), ext
        assert decode_image(encoded, MAX_PIXELS).shape == (37, 53, 3), ext
        seen.add(size.format)
    assert seen == set(FORMATS)


@pytest.mark.parametrize("ext, name", [(".jp2", "JPEG 2000"), (".ras", "Sun raster")])
def test_formats_off_the_allow_list_are_refused_by_name(ext: str, name: str) -> None:
    ok, encoded = cv2.imencode(ext, np.zeros((64, 64, 3), np.uint8))
    assert ok
    with pytest.raises(UnsupportedFormat, match=name):
        decode_image(encoded, MAX_PIXELS)


def test_bombs_never_cost_memory_in_a_fresh_process() -> None:
    """Peak RSS of a process that tries every bomb 20 times, measured by the kernel.

    VmHWM, the peak of the process's own memory: getrusage's ru_maxrss would also count the
    pytest process it was forked from (Linux carries the parent's peak across exec), which in
    the full suite is several hundred MB."""
    script = (
        "import sys\n"
        "sys.path[:0] = [" + repr(str(__import__('pathlib').Path(__file__).parent)) + "]\n"
        "from test_robustness_image_bombs import BOMBS, MAX_PIXELS\n"
        "from face_recog_ros.io.image_decoding import ImageFormatError, decode_image\n"
        "refused = 0\n"
        "for _ in range(20):\n"
        "    for data in BOMBS.values():\n"
        "        try:\n"
        "            decode_image(data, MAX_PIXELS)\n"
        "        except ImageFormatError:\n"
        "            refused += 1\n"
        "peak = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
        "            if line.startswith('VmHWM:'))\n"
        "print(refused, peak // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    refused, peak_mb = map(int, out.stdout.split())
    assert refused == 20 * len(BOMBS)
    assert peak_mb < 600, f"peak RSS {peak_mb} MB"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BOMBS)), st.binary(min_size=1, max_size=8),
       st.integers(min_value=0, max_value=200))
def test_mutated_bombs_never_escape_or_decode_big(name: str, patch: bytes, where: int) -> None:
    data = bytearray(BOMBS[name])
    data[where:where + len(patch)] = patch
    try:
        rgb = decode_image(bytes(data), MAX_PIXELS)
    except ImageFormatError:
        return
    assert rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_as_compressed_messages_and_files_are_refused(name: str, tmp_path) -> None:
    """The node's CompressedImage path and the CLI's photo path both go through the bound."""
    message = CompressedImage(format="", data=BOMBS[name])
    with pytest.raises(ImageConversionError) as refused:
        compressed_to_rgb(message, MAX_PIXELS)
    assert refused.value.cause is Refusal.TOO_LARGE
    path = tmp_path / f"{name}.img"
    path.write_bytes(BOMBS[name])
    with pytest.raises(ValueError, match="cannot read image .*max_pixels"):
        load_image(path)
