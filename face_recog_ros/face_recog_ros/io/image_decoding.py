"""Encoded images (JPEG, PNG, ...) to RGB arrays, bounded before any decoder allocates.

OpenCV allocates the full frame a header announces before it looks at the pixel data, so a
few hundred hostile bytes (a BMP claiming 30000x30000, a GIF frame claiming 65535x65535, a
deflate TIFF) cost gigabytes and seconds. Every format OpenCV would decode for us is on the
allow-list below with a header reader; anything else is refused before decoding. The readers
are small and strict: a header that cannot be read is an error, never "unknown size".
No ROS here: the node, the command line and rosbag reading all decode through this module.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import cv2
import numpy as np


class ImageFormatError(ValueError):
    """The bytes are not an image this module can size (unknown format or unreadable header)."""


class UnsupportedFormat(ImageFormatError):
    """A format OpenCV might decode but that is not on the allow-list (JPEG 2000, EXR, ...)."""


class ImageTooLarge(ImageFormatError):
    """The header claims more pixels (or sample memory) than the caller allows."""


class CorruptImage(ImageFormatError):
    """The header was fine but the decoder failed on the data."""


@dataclass(frozen=True)
class ClaimedSize:
    format: str
    width: int
    height: int
    channels: int = 3  # samples per pixel the decoder will allocate before converting


FORMATS = ("jpeg", "png", "bmp", "gif", "webp", "tiff", "pnm", "pfm", "hdr")
# The decoder's buffer before conversion may hold this many bytes per allowed pixel (RGBA 8-bit).
_BYTES_PER_PIXEL_ALLOWED = 4


def check_size(size: ClaimedSize, max_pixels: int | None) -> None:
    """Refuse a zero-sized image, or one over ``max_pixels`` pixels or its sample memory."""
    if size.width <= 0 or size.height <= 0:
        raise CorruptImage(f"{size.format} image claims zero size ({size.width}x{size.height})")
    if max_pixels is None:
        return
    pixels = size.width * size.height
    if pixels > max_pixels:
        raise ImageTooLarge(
            f"{size.format} image {size.width}x{size.height} has {pixels} pixels, more "
            f"than max_pixels={max_pixels}"
        )
    if pixels * size.channels > max_pixels * _BYTES_PER_PIXEL_ALLOWED:
        raise ImageTooLarge(
            f"{size.format} image {size.width}x{size.height} with {size.channels} samples "
            f"per pixel needs more memory than max_pixels={max_pixels} allows"
        )


def decode_image(data: bytes | np.ndarray, max_pixels: int | None) -> np.ndarray:
    """Decode an encoded image to (H, W, 3) uint8 RGB, refusing it before decoding when its header
    claims more than ``max_pixels`` pixels; every failure is an :class:`ImageFormatError`."""
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if not raw:
        raise CorruptImage("no image data")
    check_size(claimed_size(raw), max_pixels)
    try:
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own size limits and decoder assertions
        raise CorruptImage(
            f"the decoder refused the image: {str(exc).strip().splitlines()[-1]}"
        ) from None
    if bgr is None:
        raise CorruptImage(f"could not decode the image ({len(raw)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def claimed_size(data: bytes) -> ClaimedSize:
    """Format and dimensions an image's header claims; ImageFormatError when it cannot be told."""
    for magic, reader in _READERS:
        if data.startswith(magic):
            return reader(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if re.match(rb"P[1-7]\s", data[:3]):
        return _pnm(data)
    for magic, name in ((b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
                        (b"\x76\x2f\x31\x01", "OpenEXR"), (b"\x59\xa6\x6a\x95", "Sun raster")):
        if data.startswith(magic):
            raise UnsupportedFormat(
                f"{name} images are not accepted; supported: {', '.join(FORMATS)}"
            )
    if data[4:8] == b"ftyp":
        raise UnsupportedFormat(
            f"AVIF/HEIF images are not accepted; supported: {', '.join(FORMATS)}"
        )
    raise UnsupportedFormat(f"not an image in a supported format ({', '.join(FORMATS)}); "
                            f"starts with {data[:8]!r}")


def _need(data: bytes, end: int, fmt: str) -> None:
    if len(data) < end:
        raise ImageFormatError(f"{fmt} header truncated ({len(data)} bytes)")


def _jpeg(data: bytes) -> ClaimedSize:
    """Follow the marker chain to the frame header wherever it is (metadata segments can push it
    past any fixed prefix); without one the JPEG is refused, since libjpeg would skip the damage
    and allocate whatever size it then finds."""
    i = 2
    while i + 9 < len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return ClaimedSize(
                "jpeg", width, height, max(1, data[i + 9]) if i + 9 < len(data) else 3
            )
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        i += (
            2
            if 0xD0 <= marker <= 0xD7 or marker == 0x01
            else 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        )
    raise ImageFormatError(f"JPEG without a readable frame header ({len(data)} bytes)")


def _png(data: bytes) -> ClaimedSize:
    _need(data, 24, "PNG")
    if data[12:16] != b"IHDR":
        raise ImageFormatError("PNG whose first chunk is not IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return ClaimedSize("png", width, height, 4)


def _bmp(data: bytes) -> ClaimedSize:
    _need(data, 26, "BMP")
    header_size = struct.unpack("<I", data[14:18])[0]
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack("<HH", data[18:22])
    elif header_size >= 40:
        width, height = struct.unpack("<ii", data[18:26])
    else:
        raise ImageFormatError(f"BMP with an unknown {header_size}-byte info header")
    return ClaimedSize("bmp", abs(width), abs(height), 4)  # negative height: top-down rows


def _gif(data: bytes) -> ClaimedSize:
    """The logical screen and the first frame (which may reach outside it): the decoder allocates
    whichever is larger."""
    _need(data, 13, "GIF")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # skip the global colour table
    while i < len(data):
        block = data[i]
        if block == 0x2C:  # image descriptor
            _need(data, i + 9, "GIF")
            left, top, w, h = struct.unpack("<HHHH", data[i + 1:i + 9])
            return ClaimedSize("gif", max(width, left + w), max(height, top + h), 4)
        if block == 0x21:  # extension: label, then sub-blocks until a zero length
            i += 2
            while i < len(data) and data[i]:
                i += data[i] + 1
            i += 1
        elif block == 0x3B:  # trailer before any frame
            break
        else:
            raise ImageFormatError(f"GIF with an unknown block 0x{block:02x}")
    raise ImageFormatError("GIF without an image descriptor")


def _webp(data: bytes) -> ClaimedSize:
    _need(data, 30, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas size minus one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L":  # lossless: 14-bit sizes minus one after the 0x2f signature
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":  # lossy: key frame start code, then 14-bit sizes
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageFormatError("WebP VP8 chunk without a key frame start code")
        width, height = (v & 0x3FFF for v in struct.unpack("<HH", data[26:30]))
    else:
        raise ImageFormatError(f"WebP with an unknown first chunk {chunk!r}")
    return ClaimedSize("webp", width, height, 4)


def _tiff(data: bytes) -> ClaimedSize:
    """First directory's ImageWidth/ImageLength/SamplesPerPixel (what imdecode reads)."""
    _need(data, 8, "TIFF")
    order = "<" if data[:2] == b"II" else ">"
    if struct.unpack(order + "H", data[2:4])[0] == 43:
        raise UnsupportedFormat("BigTIFF images are not accepted")
    offset = struct.unpack(order + "I", data[4:8])[0]
    _need(data, offset + 2, "TIFF")
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    tags: dict[int, int] = {}
    for k in range(count):
        entry = offset + 2 + 12 * k
        _need(data, entry + 12, "TIFF")
        tag, kind = struct.unpack(order + "HH", data[entry:entry + 4])
        if kind == 3:  # SHORT
            tags[tag] = struct.unpack(order + "H", data[entry + 8:entry + 10])[0]
        elif kind == 4:  # LONG
            tags[tag] = struct.unpack(order + "I", data[entry + 8:entry + 12])[0]
    if 256 not in tags or 257 not in tags:
        raise ImageFormatError("TIFF directory without ImageWidth/ImageLength")
    return ClaimedSize("tiff", tags[256], tags[257], max(1, tags.get(277, 1)))


_PNM_TOKEN = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\S+)")


def _pnm(data: bytes) -> ClaimedSize:
    kind = data[:2]
    if kind == b"P7":  # PAM: keyword lines
        fields = dict(re.findall(rb"^(WIDTH|HEIGHT|DEPTH)\s+(\d+)", data[:4096], re.M))
        if b"WIDTH" not in fields or b"HEIGHT" not in fields:
            raise ImageFormatError("PAM header without WIDTH/HEIGHT")
        return ClaimedSize("pnm", int(fields[b"WIDTH"]), int(fields[b"HEIGHT"]),
                           int(fields.get(b"DEPTH", b"1")))
    values, pos = [], 2
    for _ in range(2):
        match = _PNM_TOKEN.match(data, pos)
        if match is None or not match.group(1).isdigit():
            raise ImageFormatError("PNM header without a width and height")
        values.append(int(match.group(1)))
        pos = match.end()
    return ClaimedSize("pnm", values[0], values[1], 3 if kind in (b"P3", b"P6") else 1)


def _pfm(data: bytes) -> ClaimedSize:
    match = re.match(rb"P[Ff]\s+(\d+)\s+(\d+)", data[:64])
    if match is None:
        raise ImageFormatError("PFM header without a width and height")
    return ClaimedSize("pfm", int(match.group(1)), int(match.group(2)), 3 * 4)  # float32 samples


def _hdr(data: bytes) -> ClaimedSize:
    """Radiance RGBE: header lines, a blank line, then the resolution line ("-Y h +X w")."""
    match = re.search(rb"\n\n([-+][XY]) (\d+) ([-+][XY]) (\d+)\s", data[:65536])
    if match is None:
        raise ImageFormatError("Radiance HDR header without a resolution line")
    first, second = int(match.group(2)), int(match.group(4))
    rows_first = match.group(1).endswith(b"Y")
    width, height = (second, first) if rows_first else (first, second)
    return ClaimedSize("hdr", width, height, 3 * 4)


_READERS = (
    (b"\xff\xd8", _jpeg),
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"BM", _bmp),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
    (b"II+\x00", _tiff),
    (b"MM\x00+", _tiff),
    (b"PF", _pfm),
    (b"Pf", _pfm),
    (b"#?RADIANCE", _hdr),
    (b"#?RGBE", _hdr),
)
