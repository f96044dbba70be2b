"""Turning weighted feature maps into saliency maps at the input resolution (``keras.ops``,
so the same code runs on every backend and inside an exported SavedModel), and boxes as pixel
masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

from tfscorecam.core.backend import widest_float


def minmax(maps: object, rank: int = 2) -> Any:
    """Scale each map (over its last ``rank`` axes: 2 for images, 3 for volumes) to [0, 1];
    a flat map becomes all zeros."""
    maps = ops.cast(ops.convert_to_tensor(maps), "float32")
    axes = tuple(range(-rank, 0))
    low = ops.min(maps, axis=axes, keepdims=True)
    span = ops.max(maps, axis=axes, keepdims=True) - low
    return ops.divide_no_nan(maps - low, span)


def interpolation_matrix(n_out: Any, n_in: Any) -> Any:
    """(n_out, n_in) bilinear weights with half-pixel centres, as ``tf.image.resize``."""
    scale = ops.cast(n_in, "float32") / ops.cast(n_out, "float32")
    source = (ops.cast(ops.arange(n_out), "float32") + 0.5) * scale - 0.5
    source = ops.clip(source, 0.0, ops.cast(n_in - 1, "float32"))
    low = ops.floor(source)
    frac = (source - low)[:, None]
    low = ops.cast(low, "int32")
    high = ops.minimum(low + 1, n_in - 1)
    return ops.one_hot(low, n_in) * (1.0 - frac) + ops.one_hot(high, n_in) * frac


def area_weights(n_high: int, n_low: int) -> np.ndarray:
    """(n_low, n_high) area-averaging weights: each of ``n_low`` cells averages the
    ``n_high`` pixels it covers, weighted by the fraction of each inside it (for whole factors,
    ``tf.image.resize(method="area")``)."""
    scale = n_high / n_low
    start = np.arange(n_low)[:, None] * scale
    pixel = np.arange(n_high)[None, :]
    overlap = np.clip(np.minimum(pixel + 1, start + scale) - np.maximum(pixel, start), 0, None)
    return overlap / scale


def upsample(maps: object, size: Sequence) -> Any:
    """Bilinear upsampling (half-pixel centres, as tf.image.resize) of (N, h, w, K) maps, or
    one (h, w, K), to ``size`` (H, W): two small matrix products, for any size known now or
    only in a graph. A ``size`` of three, (D, H, W), upsamples (N, d, h, w, K) volumes
    trilinearly (the same weights along each axis: three matrix products)."""
    maps = ops.cast(ops.convert_to_tensor(maps), "float32")
    shape = ops.shape(maps)
    rows = interpolation_matrix(size[-2], shape[-3])
    cols = interpolation_matrix(size[-1], shape[-2])
    if _length(size) == 3:
        depth = interpolation_matrix(size[0], shape[-4])
        return ops.einsum("Zd,...dhwk,Yh,Xw->...ZYXk", depth, maps, rows, cols)
    return ops.einsum("Yh,...hwk,Xw->...YXk", rows, maps, cols)


def _length(size: Sequence) -> int:
    """How many axes ``size`` gives: a sequence's length, or a graph tensor's static one."""
    return int(size.shape[0]) if hasattr(size, "shape") else len(size)


def channels_first(maps: object) -> Any:
    """(N, *spatial, K) -> (N, K, *spatial)."""
    return ops.moveaxis(maps, -1, 1)


def score_cam_maps(low: object, size: Sequence) -> Any:
    """ReLU(Up(sum_c w_c A_c)) for (N, h, w, K) weighted sums -> (N, K, H, W), not scaled
    (volumes: (N, d, h, w, K) -> (N, K, D, H, W))."""
    return channels_first(ops.relu(upsample(low, size)))


def weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_c weights[c, k] * activations[..., c] -> (h, w, K), in float64 for accuracy."""
    return np.tensordot(activations.astype(np.float64), weights.astype(np.float64), axes=1)


def principal_projection(activations: object) -> Any:
    """Each feature map (n, h, w, C) (or (n, d, h, w, C)) projected on its first principal
    direction -> (n, h, w): EigenCAM's map, and the ``eigen_smooth`` of the methods whose map
    sums weighted activations (``weighted_map``).

    The cells are the samples and the channels the variables: the cells' mean is removed, and
    the projection is on the first right singular vector, signed so that its channel weights
    sum to more than 0 (an SVD's sign is arbitrary: the peers' maps come out inverted at
    random; with non-negative features this sign makes the strongest cells bright).
    """
    acts = ops.cast(ops.convert_to_tensor(activations), widest_float())
    shape = ops.shape(acts)
    cells = ops.reshape(acts, (shape[0], -1, shape[-1]))  # (n, positions, C)
    centred = cells - ops.mean(cells, axis=1, keepdims=True)
    _, _, vh = ops.svd(centred, full_matrices=False)  # vh: right singular vectors as rows
    first = vh[..., 0, :]  # (n, C)
    first = ops.where(ops.sum(first, axis=-1, keepdims=True) < 0, -first, first)
    projection = ops.einsum("npc,nc->np", centred, first)
    return ops.reshape(projection, shape[:-1])


def weighted_map(weighted: object, eigen_smooth: bool = False) -> Any:
    """Weighted activations (n, *cells, C) -> (n, *cells): their sum over the channels, the
    usual CAM; with ``eigen_smooth``, their projection on its first principal component
    instead (pytorch-grad-cam's ``eigen_smooth``: less noise, the sign fixed as
    ``principal_projection`` fixes it). Not ReLU'd."""
    if eigen_smooth:
        return principal_projection(weighted)
    return ops.sum(weighted, axis=-1)


def box_masks(boxes: object, shape: tuple[int, int]) -> np.ndarray:
    """The union of each image's boxes as pixel masks (N, H, W) bool.

    ``boxes``: an (N, 4) array (one box per image) or a sequence of N arrays (B_i, 4) (the
    union of B_i boxes), each box ``(x0, y0, x1, y1)`` in pixels, x to the right, y down, the
    image spanning [0, W] x [0, H]. Pixel (row, col) is inside when its centre
    (col + 0.5, row + 0.5) lies in the box; for whole-number boxes that is
    ``mask[y0:y1, x0:x1]``.
    """
    height, width = shape
    per_image = box_lists(boxes)
    centre_x = np.arange(width) + 0.5
    centre_y = np.arange(height) + 0.5
    masks = np.zeros((len(per_image), height, width), bool)
    for mask, image_boxes in zip(masks, per_image, strict=True):
        for x0, y0, x1, y1 in image_boxes:
            mask |= ((centre_y >= y0) & (centre_y <= y1))[:, None] & (
                (centre_x >= x0) & (centre_x <= x1)
            )[None, :]
    return masks


def box_lists(boxes: Any) -> list[np.ndarray]:
    """Each image's boxes as a float (B_i, 4) array, checked."""
    shape_error = ValueError(
        "boxes must be (N, 4), or N arrays of (B_i, 4), as (x0, y0, x1, y1) in pixels"
    )
    try:
        array = np.asarray(boxes, np.float64)
    except ValueError:  # ragged: a different number of boxes per image
        lists = [np.asarray(b, np.float64) for b in boxes]
        if any(b.ndim != 2 or b.shape[1] != 4 for b in lists):
            raise shape_error from None
    else:
        if array.shape == (4,):
            array = array[None]
        if array.ndim == 2 and array.shape[1] == 4:
            lists = [row[None] for row in array]
        elif array.ndim == 3 and array.shape[2] == 4:
            lists = list(array)
        else:
            raise shape_error
    for image_boxes in lists:
        if not np.all(np.isfinite(image_boxes)):
            raise ValueError("boxes contain NaN or infinite values")
        if np.any(image_boxes[:, 2] < image_boxes[:, 0]) or np.any(
            image_boxes[:, 3] < image_boxes[:, 1]
        ):
            raise ValueError("boxes must be (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1")
    return lists


def image_boxes(boxes: object) -> np.ndarray:
    """One image's boxes, (B, 4) or one (4,) ``(x0, y0, x1, y1)``, as a checked float (B, 4)."""
    return box_lists([np.asarray(boxes, np.float64).reshape(-1, 4)])[0]


def renormalise_in_boxes(heatmap: np.ndarray, boxes: object) -> np.ndarray:
    """The heatmap (H, W) min-max scaled inside each box and zero outside, the boxes summed
    and scaled to [0, 1] again: the convention of the YOLO / EigenCAM tutorials, which shows
    where the evidence for each object lies rather than which object has the most."""
    heatmap = np.asarray(heatmap, np.float32)
    total = np.zeros_like(heatmap)
    for box in image_boxes(boxes):
        inside = box_masks(box[None], heatmap.shape)[0]
        if inside.any():
            values = heatmap[inside]
            span = values.max() - values.min()
            total[inside] += (values - values.min()) / span if span > 0 else 0.0
    return ops.convert_to_numpy(minmax(total))
