"""The face chip dlib cuts for its ResNet, exactly: ``dlib.get_face_chip(img, shape5, size, pad)``.

The embedder was trained on these chips, so this module reproduces dlib's
``get_face_chip_details`` and ``extract_image_chips`` (dlib/image_transforms/interpolation.h)
pixel for pixel, quirks included:
- the chip -> image similarity transform maps dlib's mean 5-point face, padded, onto the
  landmarks (least squares), and is then stored as a rotated rectangle whose width is
  ``size * scale - 1``, so chip pixels are ``(size * scale - 1) / (size - 1)`` apart, not
  ``scale``;
- when the face is more than twice the chip's size in the image, the region is first shrunk
  with dlib's ``pyramid_down<2>`` (5-tap [1 4 6 4 1] Gaussian in integers, every other pixel)
  as often as needed, and the rectangle is mapped with its ``p / 2 - (1.25, 0.75)``; plain
  bilinear sampling of a large face aliases, and the network learnt dlib's filtered chips;
- bilinear interpolation in double precision, truncated (not rounded) to uint8, and black where
  the 2x2 neighbourhood leaves the image.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# dlib's mean face for the 5-point model, in [0, 1] before padding (get_face_chip_details).
MEAN_FACE_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                        [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                        [0.4901123135679, 0.6277975316475]])

Rect = tuple[float, float, float, float]  # left, top, right, bottom (dlib drectangle, inclusive)


def chip_template(size: int, padding: float) -> np.ndarray:
    """Where the 5 landmarks land in a size x size chip with this padding (pixels)."""
    return (padding + MEAN_FACE_5) / (2 * padding + 1) * size


def similarity_lsq(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation + uniform scale + shift taking src onto dst: (2x2, shift).

    In 2-D this closed form equals Umeyama's SVD solution that dlib's find_similarity_transform
    uses, without the SVD.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    var = (s ** 2).sum()  # src is the chip template here: never degenerate
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    matrix = np.array([[a, -b], [b, a]])
    return matrix, dst_mean - matrix @ src_mean


def chip_details(landmarks: np.ndarray, size: int, padding: float) -> tuple[Rect, float]:
    """dlib's chip_details for 5 landmarks: the chip's rectangle in the image and its angle."""
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"a face chip needs 5 finite (x, y) landmarks, got {points.shape}")
    matrix, shift = similarity_lsq(chip_template(size, padding), points)
    angle = math.atan2(matrix[1, 0], matrix[0, 0])
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    cx, cy = matrix @ np.array([size / 2.0, size / 2.0]) + shift
    half = (size * scale - 1) / 2  # dlib's centered_drect(p, w, h) spans w - 1 pixels
    return (cx - half, cy - half, cx + half, cy + half), angle


def _rect_down(r: Rect) -> Rect:
    """dlib's pyramid_down<2>::rect_down."""
    return (r[0] / 2 - 1.25, r[1] / 2 - 0.75, r[2] / 2 - 1.25, r[3] / 2 - 0.75)


def _area(r: Rect) -> float:
    if r[0] > r[2] or r[1] > r[3]:
        return 0.0
    return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)


def _rotate(centre: tuple[float, float], p: tuple[float, float],
            angle: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = p[0] - centre[0], p[1] - centre[1]
    return (c * dx - s * dy + centre[0], s * dx + c * dy + centre[1])


def _round(v: float) -> int:
    return int(math.floor(v + 0.5))  # dlib's drectangle -> rectangle


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> on an RGB uint8 image: ((rows - 3) // 2, (cols - 3) // 2) output."""
    x = image.astype(np.uint16)  # the largest sum, 255 * 16 * 16, fits
    rows, cols = (image.shape[0] - 3) // 2, (image.shape[1] - 3) // 2
    e = 2 * cols
    t = x[:, 2:e + 2:2] * 6
    t += x[:, 0:e:2]
    t += x[:, 4:e + 4:2]
    t += (x[:, 1:e + 1:2] + x[:, 3:e + 3:2]) * 4
    e = 2 * rows
    d = t[2:e + 2:2] * 6
    d += t[0:e:2]
    d += t[4:e + 4:2]
    d += (t[1:e + 1:2] + t[3:e + 3:2]) * 4
    return (d >> 8).astype(np.uint8)


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    return cols.ravel(), rows.ravel()


def _sample_bilinear(src: np.ndarray, origin: tuple[float, float], step_x: tuple[float, float],
                     step_y: tuple[float, float], size: int) -> np.ndarray:
    """Chip pixel (c, r) <- src at origin + c * step_x + r * step_y (interpolate_bilinear)."""
    cols, rows = _grid(size)
    x = cols * step_x[0]
    x += rows * step_y[0]
    x += origin[0]
    y = cols * step_x[1]
    y += rows * step_y[1]
    y += origin[1]
    h, w = src.shape[:2]
    left, top = np.floor(x), np.floor(y)
    inside = (left >= 0) & (top >= 0) & (left < w - 1) & (top < h - 1)
    lr, tb = x - left, y - top
    # Byte offsets of each sample's top-left neighbour, one row per channel (planar work arrays
    # keep numpy's inner loops contiguous: three times faster than (N, 3) rows).
    first = ((top * w + left).astype(np.intp) * inside) * 3 + np.arange(3)[:, None]
    flat = np.ascontiguousarray(src).reshape(-1)
    # Same operations in the same order as dlib, in double precision, so truncation agrees.
    upper = flat.take(first).astype(np.float64)
    upper *= 1 - lr
    upper += flat.take(first + 3) * lr
    lower = flat.take(first + 3 * w).astype(np.float64)
    lower *= 1 - lr
    lower += flat.take(first + (3 * w + 3)) * lr
    upper *= 1 - tb
    lower *= tb
    upper += lower
    chip = upper.astype(np.uint8)  # dlib assigns with a truncating cast
    chip *= inside
    return np.ascontiguousarray(chip.reshape(3, size, size).transpose(1, 2, 0))


def extract_face_chip(rgb: np.ndarray, landmarks: np.ndarray, size: int,
                      padding: float) -> np.ndarray:
    """``dlib.get_face_chip(rgb, shape, size, padding)`` for (5, 2) landmarks in dlib's order."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    rect, angle = chip_details(landmarks, size, padding)
    pixels = size * size
    # How many halvings the region needs (extract_image_chips), and the margin they need.
    grow, r = 2.0, _rect_down(rect)
    while _area(r) > pixels:
        r, grow = _rect_down(r), grow * 2 + 2
    centre = ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2)
    corners = [_rotate(centre, p, angle) for p in
               ((rect[0], rect[1]), (rect[2], rect[1]), (rect[0], rect[3]), (rect[2], rect[3]))]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    height, width = rgb.shape[:2]
    left, top = _round(max(min(xs) - grow, 0)), _round(max(min(ys) - grow, 0))
    right, bottom = _round(min(max(xs) + grow, width - 1)), _round(min(max(ys) + grow, height - 1))
    if right < left or bottom < top:  # the chip lies wholly outside the image
        return np.zeros((size, size, 3), np.uint8)
    src = rgb[top:bottom + 1, left:right + 1]
    r = (rect[0] - left, rect[1] - top, rect[2] - left, rect[3] - top)
    while _area(_rect_down(r)) > pixels:
        if min(src.shape[:2]) < 9:  # dlib's pyramid returns an empty image below 9 pixels
            return np.zeros((size, size, 3), np.uint8)
        src, r = pyramid_down(src), _rect_down(r)
    centre = ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)
    tl = _rotate(centre, (r[0], r[1]), angle)
    tr = _rotate(centre, (r[2], r[1]), angle)
    bl = _rotate(centre, (r[0], r[3]), angle)
    step_x = ((tr[0] - tl[0]) / (size - 1), (tr[1] - tl[1]) / (size - 1))
    step_y = ((bl[0] - tl[0]) / (size - 1), (bl[1] - tl[1]) / (size - 1))
    return _sample_bilinear(src, tl, step_x, step_y, size)
