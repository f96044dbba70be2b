"""Faithfulness and localisation metrics for saliency maps, batched through the model.

All functions take ``images`` already preprocessed for the model (N, H, W, C), ``maps``
(N, H, W) in [0, 1] and ``class_index`` (an int, or N ints). Class scores are probabilities
(``head.scoring_head(score="probability")``: a softmax head as is, softmax of logits, sigmoid
of a single logit). "Removing" a pixel sets it to ``baseline`` (0: the model's input-space zero,
as Score-CAM's masking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage

from tfscorecam.core.head import scoring_head
from tfscorecam.core.maps import box_lists, box_masks
from tfscorecam.core.model_graph import check_model
from tfscorecam.core.validation import as_image_batch, class_matrix, positive_int


def probabilities(
    model: keras.Model, images: object, batch_size: int = 64, head: str = "auto"
) -> np.ndarray:
    """Class probabilities (N, num_classes) of preprocessed images, in batches."""
    check_model(model)
    batch, _ = as_image_batch(images, tuple(model.inputs[0].shape))
    scoring = scoring_head(model, head, "probability")
    step = positive_int(batch_size, "batch_size")
    raw = scoring.model.predict(batch, batch_size=step, verbose=0)
    return scoring.transform(raw).numpy()


def class_probabilities(
    model: keras.Model,
    images: Any,
    class_index: object,
    batch_size: int = 64,
    head: str = "auto",
) -> np.ndarray:
    """Probability of each image's class (N,), in batches of ``batch_size``."""
    probs = probabilities(model, images, batch_size, head)
    single = np.ndim(images) == 3
    classes, per_class_axis = class_matrix(class_index, len(probs), probs.shape[1], single)
    if per_class_axis and classes.shape[1] != 1:
        raise ValueError("metrics take one class per image: an int or N ints")
    return probs[np.arange(len(probs)), classes[:, 0]]


def _checked(model: keras.Model, images: object, maps: object) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W, C), maps (N, H, W)) float32, checked against the model and each other."""
    batch, _ = as_image_batch(images, tuple(model.inputs[0].shape))
    array = np.asarray(maps, np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.shape != batch.shape[:3]:
        raise ValueError(f"maps must be (N, H, W) = {batch.shape[:3]}, got {array.shape}")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ValueError("maps must be finite and in [0, 1]")
    return batch, array


def _keep_top(maps: np.ndarray, fraction: float | None) -> np.ndarray:
    """Zero all but the ``fraction`` of each map's pixels with the highest values."""
    if fraction is None:
        return maps
    if not 0 < fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {fraction}")
    flat = maps.reshape(len(maps), -1)
    threshold = np.quantile(flat, 1 - fraction, axis=1, method="higher")
    return np.where(maps >= threshold[:, None, None], maps, 0.0).astype(np.float32)


def confidences(
    model: keras.Model,
    images: object,
    maps: object,
    class_index: object,
    keep_fraction: float | None = None,
    batch_size: int = 64,
    head: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the class probability Y on the image and O on ``image * map`` (N,) each:
    what Average Drop and Increase in Confidence average (per-image values, e.g. for
    confidence intervals)."""
    batch, maps = _checked(model, images, maps)
    explanation = _keep_top(maps, keep_fraction)
    original = class_probabilities(model, batch, class_index, batch_size, head)
    masked = class_probabilities(
        model, batch * explanation[..., None], class_index, batch_size, head
    )
    return original, masked


def drops(original: object, masked: object) -> np.ndarray:
    """Per image, the terms whose mean is Average Drop: max(0, Y - O) / Y * 100 (N,)."""
    original, masked = np.asarray(original, np.float64), np.asarray(masked, np.float64)
    return np.maximum(0.0, original - masked) / original * 100


def increases(original: object, masked: object) -> np.ndarray:
    """Per image, the terms whose mean is Increase in Confidence: 100 where O > Y, else 0 (N,)."""
    return (np.asarray(masked) > np.asarray(original)) * 100.0


def average_drop(
    model: keras.Model,
    images: object,
    maps: object,
    class_index: object,
    keep_fraction: float | None = None,
    batch_size: int = 64,
    head: str = "auto",
) -> float:
    """Average Drop % (Grad-CAM++): mean(max(0, Y - O) / Y) * 100.

    Y is the class probability on the image, O on ``image * map``; ``keep_fraction`` keeps only
    that fraction of each map's highest pixels (the Score-CAM paper used 0.5). Lower is better.
    """
    original, masked = confidences(
        model, images, maps, class_index, keep_fraction, batch_size, head
    )
    return float(np.mean(drops(original, masked)))


def increase_in_confidence(
    model: keras.Model,
    images: object,
    maps: object,
    class_index: object,
    keep_fraction: float | None = None,
    batch_size: int = 64,
    head: str = "auto",
) -> float:
    """Increase in Confidence % (Grad-CAM++): share of images with O > Y, times 100."""
    original, masked = confidences(
        model, images, maps, class_index, keep_fraction, batch_size, head
    )
    return float(np.mean(increases(original, masked)))


@dataclass(frozen=True)
class Curves:
    """Area under the curve (mean over images), per image, and the curves (N, steps + 1)."""

    auc: float
    aucs: np.ndarray
    curves: np.ndarray


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders (no darkening at the edges)."""
    if not sigma > 0:
        raise ValueError(f"blur_sigma must be > 0, got {sigma}")
    radius = min(max(1, int(3 * sigma)), min(images.shape[1:3]) - 1)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel = tf.constant(kernel / kernel.sum(), tf.float32)
    channels = images.shape[-1]
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    vertical = tf.tile(tf.reshape(kernel, (-1, 1, 1, 1)), (1, 1, channels, 1))
    horizontal = tf.tile(tf.reshape(kernel, (1, -1, 1, 1)), (1, 1, channels, 1))
    out = tf.nn.depthwise_conv2d(padded, vertical, (1, 1, 1, 1), "VALID")
    return tf.nn.depthwise_conv2d(out, horizontal, (1, 1, 1, 1), "VALID").numpy()


def _causal_curves(model, images, maps, class_index, steps, start, end, batch_size, head):
    """Class probability as pixels move from ``start`` to ``end`` in decreasing saliency."""
    steps = positive_int(steps, "steps")
    n, height, width = maps.shape
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(height * width)[None], axis=1)
    rank = rank.reshape(n, height, width, 1)
    classes = np.broadcast_to(np.asarray(class_index), (n,)).astype(np.int64)
    curves = np.zeros((n, steps + 1))
    counts = np.round(np.linspace(0, height * width, steps + 1)).astype(int)
    for i in range(n):
        moved = rank[i][None] < counts[:, None, None, None]  # (steps+1, H, W, 1)
        sequence = np.where(moved, end[i][None], start[i][None])
        curves[i] = class_probabilities(model, sequence, int(classes[i]), batch_size, head)
    aucs = (curves.sum(axis=1) - (curves[:, 0] + curves[:, -1]) / 2) / steps
    return Curves(float(aucs.mean()), aucs, curves)


def deletion_auc(
    model: keras.Model,
    images: object,
    maps: object,
    class_index: object,
    steps: int = 50,
    baseline: float = 0.0,
    batch_size: int = 64,
    head: str = "auto",
) -> Curves:
    """RISE deletion: remove pixels (set to ``baseline``) most salient first. Lower is better."""
    batch, maps = _checked(model, images, maps)
    removed = np.full_like(batch, baseline)
    return _causal_curves(model, batch, maps, class_index, steps, batch, removed, batch_size, head)


def insertion_auc(
    model: keras.Model,
    images: object,
    maps: object,
    class_index: object,
    steps: int = 50,
    blur_sigma: float = 5.0,
    batch_size: int = 64,
    head: str = "auto",
) -> Curves:
    """RISE insertion: from a blurred copy, insert pixels most salient first. Higher is better."""
    batch, maps = _checked(model, images, maps)
    blurred = _blur(batch, blur_sigma)
    return _causal_curves(model, batch, maps, class_index, steps, blurred, batch, batch_size, head)


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


POINTING_TIES = ("all", "any", "first")


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


ROAD_PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class RoadCurves:
    """ROAD's class probabilities (N, P) after removing each share of the pixels: ``morf``
    (most relevant first: lower is better) and ``lerf`` (least relevant first: higher is
    better); ``*_auc`` are the means over the shares and images."""

    percentages: tuple[float, ...]
    morf: np.ndarray
    lerf: np.ndarray

    @property
    def morf_auc(self) -> float:
        return float(self.morf.mean())

    @property
    def lerf_auc(self) -> float:
        return float(self.lerf.mean())


# (dy, dx, weight) of ROAD's 8 neighbours: 1/6 beside, 1/12 diagonal
_NEIGHBOURS = [
    (dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
    for dy in (-1, 0, 1)
    for dx in (-1, 0, 1)
    if (dy, dx) != (0, 0)
]


def noisy_linear_imputation(
    image: np.ndarray, removed: np.ndarray, noise: float = 0.01, seed: int = 0
) -> np.ndarray:
    """ROAD's imputation (Rong et al., ICML 2022): each removed pixel becomes the weighted mean
    of its 8 neighbours (1/6 for the four beside it, 1/12 for the diagonals), solved jointly for
    all removed pixels as one sparse linear system per channel, plus Gaussian noise of standard
    deviation ``noise`` (in the image's own units) on the imputed pixels.

    ``image`` (H, W, C), ``removed`` (H, W) bool. Returns the imputed image (H, W, C) float32.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    height, width, channels = image.shape
    unknown = np.flatnonzero(removed.ravel())
    out = image.astype(np.float64).reshape(-1, channels).copy()
    if unknown.size == 0:
        return out.reshape(image.shape).astype(np.float32)
    index = np.full(height * width, -1)
    index[unknown] = np.arange(unknown.size)
    rows, cols = np.divmod(unknown, width)
    diagonal = np.zeros(unknown.size)
    rhs = np.zeros((unknown.size, channels))
    entries_i, entries_j, entries_v = [], [], []
    for dy, dx, weight in _NEIGHBOURS:
        ny, nx = rows + dy, cols + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        neighbour = np.where(inside, ny * width + nx, 0)
        diagonal += weight * inside
        known = inside & (index[neighbour] < 0)
        rhs[known] += weight * out[neighbour[known]]
        free = inside & (index[neighbour] >= 0)
        entries_i.append(np.flatnonzero(free))
        entries_j.append(index[neighbour[free]])
        entries_v.append(np.full(int(free.sum()), -weight))
    matrix = sp.csr_matrix(
        (np.concatenate(entries_v), (np.concatenate(entries_i), np.concatenate(entries_j))),
        shape=(unknown.size, unknown.size),
    ) + sp.diags(diagonal)
    solved = spsolve(matrix.tocsc(), rhs)
    solved = solved.reshape(unknown.size, channels)
    solved += np.random.default_rng(seed).normal(0.0, noise, solved.shape) if noise else 0.0
    out[unknown] = solved
    return out.reshape(image.shape).astype(np.float32)


def road(
    model: keras.Model,
    images: object,
    maps: object,
    class_index: object,
    percentages: tuple[float, ...] = ROAD_PERCENTAGES,
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
    head: str = "auto",
) -> RoadCurves:
    """ROAD, RemOve And Debias (Rong et al., ICML 2022): the class probability after the
    given shares of the pixels are removed, most relevant first (MoRF) and least relevant first
    (LeRF), each removed pixel imputed by ``noisy_linear_imputation`` (which, unlike a constant
    or blurred fill, leaves no mask shape for the model to see). Pixels are ranked by the map
    (ties in row-major order); ``noise`` is in the model's input units (the paper's 0.01 is for
    ImageNet-normalised inputs).
    """
    batch, maps = _checked(model, images, maps)
    shares = tuple(float(p) for p in percentages)
    if not shares or min(shares) <= 0 or max(shares) >= 1:
        raise ValueError(f"percentages must be in (0, 1), got {percentages}")
    n, height, width = maps.shape
    classes = np.broadcast_to(np.asarray(class_index), (n,)).astype(np.int64)
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    curves = {"morf": np.zeros((n, len(shares))), "lerf": np.zeros((n, len(shares)))}
    for i in range(n):
        for name, ranked in (("morf", order[i]), ("lerf", order[i][::-1])):
            imputed = []
            for p, share in enumerate(shares):
                removed = np.zeros(height * width, bool)
                removed[ranked[: int(round(share * height * width))]] = True
                imputed.append(
                    noisy_linear_imputation(
                        batch[i], removed.reshape(height, width), noise, seed + p
                    )
                )
            curves[name][i] = class_probabilities(
                model, np.stack(imputed), int(classes[i]), batch_size, head
            )
    return RoadCurves(shares, curves["morf"], curves["lerf"])


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
    tiles = tf.image.resize(images, (height // grid, width // grid), method="area").numpy()
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
