"""Faithfulness: does the model's class score follow the map? Average Drop / Increase in
Confidence, deletion / insertion (RISE) and ROAD, batched through the model.

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
from keras import ops

from tfscorecam.core.head import scoring_head
from tfscorecam.core.model_view import check_model
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
    return ops.convert_to_numpy(scoring.transform(raw))


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
    kernel = (kernel / kernel.sum()).astype(np.float32)
    channels = images.shape[-1]
    padded = ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "reflect")
    vertical = np.tile(kernel.reshape(-1, 1, 1, 1), (1, 1, channels, 1))
    horizontal = np.tile(kernel.reshape(1, -1, 1, 1), (1, 1, channels, 1))
    out = ops.depthwise_conv(padded, vertical, strides=1, padding="valid")
    return ops.convert_to_numpy(ops.depthwise_conv(out, horizontal, strides=1, padding="valid"))


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
