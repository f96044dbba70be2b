"""Localisation: does the map fall on the object? Pointing games (energy, argmax, grid),
fixed-threshold box accuracy and MaxBoxAccV2, from maps (N, H, W) and boxes or regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tfscorecam.core.maps import area_weights, box_lists, box_masks

POINTING_TIES = ("all", "any", "first")


def energy_pointing_game(maps: object, regions: object) -> np.ndarray:
    """Energy-based pointing game (Score-CAM paper): share of each map's energy inside its
    region (N,).

    ``regions``: boolean masks (N, H, W), or boxes as ``box_masks`` takes them (one box per
    image, or the union of several boxes per image). A map of zeros scores 0.
    """
    maps, masks = _maps_and_regions(maps, regions)
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


pointing_game = energy_pointing_game  # the v0.1 name


def _maps_and_regions(maps: object, regions: object) -> tuple[np.ndarray, np.ndarray]:
    """(maps (N, H, W) float64, region masks (N, H, W) bool) from masks or boxes, checked."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    if isinstance(regions, np.ndarray) and regions.shape == maps.shape:
        return maps, regions.astype(bool)
    masks = box_masks(regions, maps.shape[1:])
    if len(masks) != len(maps):
        raise ValueError(f"got regions for {len(masks)} images and {len(maps)} maps")
    return maps, masks


def argmax_pointing_game(
    maps: object, regions: object, tolerance: float = 15.0, ties: str = "all"
) -> np.ndarray:
    """Pointing game (Zhang et al., ECCV 2016): whether each map's maximum lies within
    ``tolerance`` pixels (Euclidean, between pixel centres) of its region (N,) bool.

    ``regions`` as ``energy_pointing_game``. ``ties`` settles a maximum shared by several
    pixels: ``"all"`` (default) hits only if every one of them is within tolerance, so a flat
    or saturated map cannot hit by luck; ``"any"`` if one is; ``"first"`` takes the first in
    row-major order (``np.argmax``, as TorchRay). A map of zeros is one big tie.
    """
    if ties not in POINTING_TIES:
        raise ValueError(f"ties must be one of {POINTING_TIES}, got {ties!r}")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    maps, masks = _maps_and_regions(maps, regions)
    hits = np.zeros(len(maps), bool)
    for i, (one, mask) in enumerate(zip(maps, masks, strict=True)):
        if not mask.any():
            continue
        near = ndimage.distance_transform_edt(~mask) <= tolerance
        if ties == "first":
            hits[i] = near.flat[int(np.argmax(one))]
            continue
        tied = near[one == one.max()]
        hits[i] = tied.all() if ties == "all" else tied.any()
    return hits


MAX_BOX_THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
MAX_BOX_IOUS = (0.3, 0.5, 0.7)


@dataclass(frozen=True)
class MaxBoxAccuracy:
    """MaxBoxAccV2 (Choe et al., CVPR 2020) of a set of maps, with what it is made of.

    ``ious[i, t]``: the best IoU of any box around a connected region of map i above
    ``thresholds[t]`` with any of its true boxes. The box accuracy at (t, delta) is the share of
    images with ``ious[:, t] >= delta``; MaxBoxAcc(delta) is its maximum over the thresholds,
    one threshold for the whole set; MaxBoxAccV2 (``value``) averages it over ``deltas``.
    """

    thresholds: np.ndarray
    ious: np.ndarray
    deltas: tuple[float, ...] = MAX_BOX_IOUS

    def accuracy(self, delta: float, rows: np.ndarray | None = None) -> float:
        """MaxBoxAcc at IoU ``delta`` over the images ``rows`` (all: None; a bootstrap
        resample may repeat rows)."""
        ious = self.ious if rows is None else self.ious[rows]
        return float((ious >= delta).mean(axis=0).max())

    def score(self, rows: np.ndarray | None = None) -> float:
        """MaxBoxAccV2 over the images ``rows`` (all: None)."""
        return float(np.mean([self.accuracy(d, rows) for d in self.deltas]))

    @property
    def value(self) -> float:
        """MaxBoxAccV2 of all the images."""
        return self.score()

    @property
    def best_thresholds(self) -> dict[float, float]:
        """The threshold that reaches MaxBoxAcc at each IoU."""
        return {
            d: float(self.thresholds[int(np.argmax((self.ious >= d).mean(axis=0)))])
            for d in self.deltas
        }


def max_box_accuracy(
    maps: object,
    boxes: object,
    thresholds: object = MAX_BOX_THRESHOLDS,
    deltas: tuple[float, ...] = MAX_BOX_IOUS,
) -> MaxBoxAccuracy:
    """MaxBoxAccV2 (Choe et al., "Evaluating weakly supervised object localization methods
    right", CVPR 2020), the threshold-swept box accuracy.

    Each map is min-max normalised; at each threshold tau (default 0, 0.01, ..., 0.99) the
    pixels above tau form 8-connected regions, each region gives its box (pixel (row, col)
    spans [col, col + 1] x [row, row + 1]), and an image is right at (tau, delta) when one of
    those boxes has IoU >= delta with one of its true boxes (``box_masks`` describes
    ``boxes``). One tau serves the whole set, so rescaling or squaring a map, which keeps its
    regions' order, changes nothing. ``value`` is the mean of the best accuracy over tau at
    each delta in ``deltas`` (0.3, 0.5, 0.7).
    """
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    thresholds = np.asarray(thresholds, np.float64).ravel()
    if thresholds.size == 0 or thresholds.min() < 0 or thresholds.max() >= 1:
        raise ValueError("thresholds must be in [0, 1)")
    truth = box_lists(boxes)
    if len(truth) != len(maps):
        raise ValueError(f"got boxes for {len(truth)} images and {len(maps)} maps")
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
    ious = np.zeros((len(maps), thresholds.size))
    structure = np.ones((3, 3))
    for i, (one, image_boxes) in enumerate(zip(scaled, truth, strict=True)):
        for t, tau in enumerate(thresholds):
            labels, count = ndimage.label(one > tau, structure=structure)
            for region in ndimage.find_objects(labels)[:count]:
                rows, cols = region
                box = np.array([cols.start, rows.start, cols.stop, rows.stop], np.float64)
                ious[i, t] = max(ious[i, t], float(box_iou(box, image_boxes).max()))
    return MaxBoxAccuracy(thresholds, ious, tuple(float(d) for d in deltas))


def localisation_boxes(maps: object, threshold: float = 0.15) -> np.ndarray:
    """The box (x0, y0, x1, y1) around the largest connected region of each map (N, 4).

    The region is the largest 8-connected set of pixels above ``threshold`` x the map's
    maximum (as CAM and the weakly supervised localisation benchmarks); pixel (row, col)
    spans [col, col + 1] x [row, row + 1]. A map with no pixel above it (all zeros) gives a
    row of NaN.
    """
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    out = np.full((len(maps), 4), np.nan)
    for i, one in enumerate(maps):
        labels, count = ndimage.label(one > threshold * one.max(), structure=np.ones((3, 3)))
        if count == 0:
            continue
        largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
        rows, cols = np.nonzero(labels == largest)
        out[i] = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    return out


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with each of ``others`` (B, 4)."""
    others = np.asarray(others, np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    union = area + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_accuracy(
    maps: object, boxes: object, threshold: float = 0.15, iou: float = 0.5
) -> np.ndarray:
    """Whether each map's ``localisation_boxes`` box has IoU >= ``iou`` with a true box (N,).

    The protocol of Augmented Grad-CAM and of weakly supervised localisation benchmarks;
    ``boxes`` as ``box_masks`` takes them. The mean is the box accuracy.
    """
    predicted = localisation_boxes(maps, threshold)
    truth = box_lists(boxes)
    if len(truth) != len(predicted):
        raise ValueError(f"got boxes for {len(truth)} images and {len(predicted)} maps")
    return np.array(
        [
            bool(np.all(np.isfinite(box))) and bool(box_iou(box, true).max() >= iou)
            for box, true in zip(predicted, truth, strict=True)
        ]
    )


def grid_regions(shape: tuple[int, int], grid: int, tiles: object) -> np.ndarray:
    """Boxes (N, 4) of tile ``tiles[i]`` (row-major) in a ``grid`` x ``grid`` mosaic."""
    height, width = shape
    tiles = np.atleast_1d(np.asarray(tiles))
    if tiles.min() < 0 or tiles.max() >= grid * grid:
        raise ValueError(f"tiles must be in 0..{grid * grid - 1}")
    rows, cols = np.divmod(tiles, grid)
    th, tw = height // grid, width // grid
    return np.stack([cols * tw, rows * th, (cols + 1) * tw, (rows + 1) * th], axis=1)


def mosaic(images: object, grid: int) -> np.ndarray:
    """Tile ``grid * grid`` images (H, W, C) row-major into one image, each resized to fit."""
    images = np.asarray(images, np.float32)
    if len(images) != grid * grid:
        raise ValueError(f"a {grid}x{grid} mosaic takes {grid * grid} images, got {len(images)}")
    height, width = images.shape[1:3]
    rows_in, cols_in = area_weights(height, height // grid), area_weights(width, width // grid)
    tiles = np.einsum("yh,nhwc,xw->nyxc", rows_in, images, cols_in).astype(np.float32)
    rows = [np.concatenate(list(tiles[r * grid : (r + 1) * grid]), axis=1) for r in range(grid)]
    out = np.zeros_like(images[0])
    stacked = np.concatenate(rows, axis=0)
    out[: stacked.shape[0], : stacked.shape[1]] = stacked
    return out


def grid_pointing_game(maps: object, grid: int, tiles: object) -> np.ndarray:
    """Share of each mosaic map's energy inside the tile of the class explained (N,)."""
    maps = np.asarray(maps)
    if maps.ndim == 2:
        maps = maps[None]
    return energy_pointing_game(maps, grid_regions(maps.shape[1:3], grid, tiles))
