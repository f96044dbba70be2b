"""Views for Augmented Score-CAM (random rotations and translations, or zoomed crops), the
warps they define, and maps moved by a layer's cell shift (``moved``).

A transform is a row of 8 floats in the ``tf.raw_ops.ImageProjectiveTransformV3`` convention:
``[a0, a1, a2, b0, b1, b2, c0, c1]`` maps an *output* pixel (x, y) to the *input* point
((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, in pixel-index
coordinates. Warping is bilinear, with points outside the image read as the fill value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.validation import non_negative, positive_int

ZOOM_SCALES = (3.0, 4.0)  # Augmented Score-CAM's default magnifications (v0.4: 1.5 and 2)
IDENTITY = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)  # the transform that keeps the image


def random_transforms(
    num: int,
    image_shape: tuple[int, ...],
    max_angle: float = 0.5,
    max_shift: float = 30.0,
    seed: int = 0,
) -> np.ndarray:
    """``num`` transforms (num, 8) float32: a rotation about the image centre, then a shift.

    Angles are uniform in [-max_angle, max_angle] radians and shifts (dx, dy) uniform in
    [-max_shift, max_shift] pixels; ``T[0]`` is the identity. The same seed gives the same
    transforms. ``image_shape`` is (H, W) or (H, W, C).
    """
    num = positive_int(num, "num")
    max_angle = non_negative(max_angle, "max_angle")
    max_shift = non_negative(max_shift, "max_shift")
    height, width = _image_size(image_shape)
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-max_angle, max_angle, num)
    shifts = rng.uniform(-max_shift, max_shift, (num, 2))
    angles[0], shifts[0] = 0.0, 0.0
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = np.cos(angles), np.sin(angles)
    # output = R(angle) (input - c) + c + shift, so input = R(-angle) (output - c - shift) + c
    ox, oy = cx + shifts[:, 0], cy + shifts[:, 1]
    transforms = np.stack(
        [cos, sin, cx - cos * ox - sin * oy, -sin, cos, cy + sin * ox - cos * oy]
        + [np.zeros(num)] * 2,
        axis=1,
    )
    return transforms.astype(np.float32)


def zoom_transforms(
    image_shape: tuple[int, ...],
    feature_shape: tuple[int, int],
    scales: tuple[float, ...] = ZOOM_SCALES,
    crops: int | None = None,
) -> np.ndarray:
    """The image itself, then for each zoom ``s`` in ``scales`` crops of the image magnified s
    times, each the model's input size: (K, 8) float32.

    Crop offsets (in magnified pixels) are whole feature cells (the input size over the
    feature map's), so every crop's feature cells fall on one grid of cells 1/s the
    original's: the crops' sub-cell phases are exact. ``crops=None`` takes offsets
    ``crop_step(s)`` cells apart (row-major): every offset at s <= 2, every second at 3x,
    every third at 4x; an int takes ``crops`` x ``crops`` of them, evenly spread from the
    top-left to the bottom-right corner. Zooming maps the continuous point (x + 0.5) of the
    crop to ((x + 0.5 + offset) / s) in the image (pixel centres at half-integers, as
    tf.image.resize).
    """
    height, width = _image_size(image_shape)
    if crops is not None:
        crops = positive_int(crops, "crops")
    rows = [IDENTITY.astype(np.float64)]
    for scale in scales:
        scale = float(scale)
        if not scale > 1:
            raise ValueError(
                f"zoom scales must be > 1 (the image itself is always view 0), got {scale}"
            )
        offsets = []
        for size, cells in ((height, feature_shape[0]), (width, feature_shape[1])):
            cell = size / cells
            room = np.floor((scale - 1) * size / cell + 1e-9)  # whole cells the crop can move
            if crops is None:
                steps = np.arange(0, room + 1, crop_step(scale))
            elif crops > 1:
                steps = np.round(np.linspace(0, room, crops))
            else:
                steps = np.array([np.round(room / 2)])
            offsets.append(np.unique(steps) * cell)
        for oy in offsets[0]:
            for ox in offsets[1]:
                a2 = (0.5 + ox) / scale - 0.5
                b2 = (0.5 + oy) / scale - 0.5
                rows.append(np.array([1 / scale, 0, a2, 0, 1 / scale, b2, 0, 0]))
    return np.stack(rows).astype(np.float32)


def crop_step(scale: float) -> int:
    """The default spacing, in the magnified image's feature cells, of the crops at zoom
    ``scale``: ceil(s) - 1, at least 1. Their cells fall on every phase of the 1/s grid
    (s - 1 and s share no factor at whole s) while the crops per axis stay the feature
    map's cells plus one at every whole zoom (a 7x7 layer: 64 crops at 2x, 3x or 4x)."""
    return max(1, int(np.ceil(scale - 1e-9)) - 1)


def _image_size(image_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(image_shape) not in (2, 3) or min(image_shape[:2]) < 1:
        raise ValueError(f"image_shape must be (H, W) or (H, W, C), got {tuple(image_shape)}")
    return int(image_shape[0]), int(image_shape[1])


def check_transforms(transforms: Any, num: int | None = None) -> np.ndarray:
    """Return transforms as float32 (K, 8), or raise a clear error."""
    array = np.asarray(transforms, dtype=np.float32)
    if array.ndim == 1 and array.shape[0] == 8:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 8 or array.shape[0] == 0:
        raise ValueError(
            f"transforms must have shape (K, 8) (ImageProjectiveTransformV3 rows), got "
            f"{np.shape(transforms)}"
        )
    if num is not None and array.shape[0] != num:
        raise ValueError(f"got {array.shape[0]} transforms for {num} images or maps")
    if not np.all(np.isfinite(array)):
        raise ValueError("transforms contain NaN or infinite values")
    return array


def warp(images: object, transforms: object, fill_value: float = 0.0) -> np.ndarray:
    """Warp one image (H, W, C) by each transform, or each image (K, H, W, C) by its own.

    Returns (K, H, W, C) float32, all copies in one batched call (``warp_tensor``); one
    image's zoomed crops (``crop_offsets``, as ``zoom_transforms`` makes) are slices of one
    warp per zoom instead.
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        transforms = check_transforms(transforms)
        offsets = crop_offsets(transforms)
        if offsets is not None:
            return _zoomed_crops(array, transforms, offsets, fill_value)
        array = np.broadcast_to(array, (len(transforms), *array.shape))
    elif array.ndim == 4:
        transforms = check_transforms(transforms, len(array))
    else:
        raise ValueError(f"images must be (H, W, C) or (K, H, W, C), got shape {array.shape}")
    if backend.name() != "tensorflow" and np.any(transforms[:, 6:] != 0):
        raise ValueError(
            "projective transforms (c0, c1 not 0) are warped on the TensorFlow backend only; "
            f"Keras' affine_transform on {backend.name()!r} takes affine ones"
        )
    return backend.numpy(warp_tensor(backend.tensor(array), backend.tensor(transforms), fill_value))


def crop_offsets(transforms: np.ndarray) -> np.ndarray | None:
    """Each transform's whole-pixel crop offset (ox, oy) in the image magnified 1 / a0 times
    (the ``zoom_transforms`` convention: crop pixel x samples (x + 0.5 + ox) / s - 0.5), as
    (K, 2) ints; None unless every row is such a crop (zoom >= 1, offsets >= 0)."""
    if not np.all(transforms[:, 0] > 0):
        return None
    scale = 1.0 / transforms[:, 0].astype(np.float64)
    offsets = (transforms[:, [2, 5]] + 0.5) * scale[:, None] - 0.5
    whole = np.round(offsets)
    is_crop = (
        np.all(transforms[:, [1, 3, 6, 7]] == 0)
        and np.all(transforms[:, 0] == transforms[:, 4])
        and np.all(scale >= 1 - 1e-6)
        and np.all(np.abs(offsets - whole) < 1e-3)
        and np.all(whole >= 0)
    )
    return whole.astype(np.int64) if is_crop else None


def _zoomed_crops(
    image: np.ndarray, transforms: np.ndarray, offsets: np.ndarray, fill_value: float
) -> np.ndarray:
    """``warp`` of one image (H, W, C) by zoomed crops at ``crop_offsets``: one warp of the
    image magnified onto each zoom's canvas, then slices of it, instead of one warp per
    crop (3x faster for the default's 129 views). Equal to the per-crop warps up to float32
    rounding."""
    height, width = image.shape[:2]
    out = np.empty((len(transforms), *image.shape), np.float32)
    for a0 in np.unique(transforms[:, 0]):
        rows = np.flatnonzero(transforms[:, 0] == a0)
        ox, oy = offsets[rows, 0], offsets[rows, 1]
        shape = (oy.max() + height, ox.max() + width, image.shape[-1])  # the magnified crops
        canvas = np.full(shape, fill_value, np.float32)
        canvas[:height, :width] = image
        shift = 0.5 * a0 - 0.5  # magnified pixel u samples (u + 0.5) a0 - 0.5
        magnify = np.array([[a0, 0, shift, 0, a0, shift, 0, 0]], np.float32)
        zoomed = warp_tensor(backend.tensor(canvas[None]), backend.tensor(magnify), fill_value)
        zoomed = backend.numpy(zoomed)[0]
        for row, x, y in zip(rows, ox, oy, strict=True):
            out[row] = zoomed[y : y + height, x : x + width]
    return out


def warp_tensor(images: Any, transforms: Any, fill_value: float = 0.0) -> Any:
    """``warp`` on tensors (K, H, W, C) and (K, 8), also inside a graph: Keras'
    ``affine_transform``, which on TensorFlow is ``ImageProjectiveTransformV3`` itself."""
    return ops.image.affine_transform(
        images, transforms, interpolation="bilinear", fill_mode="constant", fill_value=fill_value
    )


def warp_matrix(transform: object, shape: tuple[int, int]) -> sp.csr_matrix:
    """The warp by one transform as a sparse (H*W, H*W) matrix on row-major flat images.

    ``warp_matrix(t, (H, W)) @ image.ravel()`` equals ``warp(image[..., None], t)`` with
    fill value 0: bilinear weights of the four pixels around each sampled point, dropping
    those outside the image.
    """
    a0, a1, a2, b0, b1, b2, c0, c1 = check_transforms(transform)[0].astype(np.float64)
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].reshape(2, -1).astype(np.float64)
    k = c0 * x + c1 * y + 1.0
    xs, ys = (a0 * x + a1 * y + a2) / k, (b0 * x + b1 * y + b2) / k
    x0, y0 = np.floor(xs), np.floor(ys)
    rows, cols, vals = [], [], []
    out_index = np.arange(height * width)
    for dy in (0, 1):
        for dx in (0, 1):
            xc, yc = x0 + dx, y0 + dy
            weight = (1 - np.abs(xs - xc)) * (1 - np.abs(ys - yc))
            inside = (xc >= 0) & (xc < width) & (yc >= 0) & (yc < height) & (weight > 0)
            rows.append(out_index[inside])
            cols.append((yc[inside] * width + xc[inside]).astype(np.int64))
            vals.append(weight[inside])
    n = height * width
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


def moved(maps: Any, shift: tuple[float, float]) -> Any:
    """Maps (N, C, H, W) whose pixel (x, y) shows what the input maps show at (x - dx, y - dy):
    where a map observed by cells that look ``shift`` px away from their centres puts it
    (bilinear; the border's value outside). No shift returns ``maps`` itself."""
    if shift == (0.0, 0.0):
        return maps
    back = ops.convert_to_tensor([[1.0, 0.0, -shift[0], 0.0, 1.0, -shift[1], 0.0, 0.0]])
    return ops.image.affine_transform(maps, back, fill_mode="nearest", data_format="channels_first")
