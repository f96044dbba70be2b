"""Where a layer's cells look: the fusion's ``cell_shift`` measured by a probe.

A feature cell of a deep layer does not look at its centre: padding that is not symmetric and
the learned kernels move its receptive field (MobileNetV2's ``out_relu``: about a third of a
cell right of and below; ``benchmarks/studies/observation_model.py`` measures it with objects
pasted on a canvas). The probe measures the same displacement without data: a small patch of
uniform noise (1.25 cells wide, values in [-1, 1] of the model's input space) is pasted on an
all-zero image at ``PHASES`` x ``PHASES`` sub-cell phases around the middle of the image, and
the centre of mass of what it changes in the feature map (the absolute change, summed over
channels) is compared with the patch's centre. The phases are symmetric about the middle, so
the map's borders pull the centre of mass both ways equally.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PHASES = 4  # sub-cell phases per axis: 16 probes and the empty image, one batch
PATCH_CELLS = 1.25  # the patch's side in feature cells (40 px at 32-px cells)
MIN_CELLS = 3  # fewer cells along an axis leave the probe no room: no shift measured there


def probe_images(
    image_size: tuple[int, int], feature_size: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The probe's images (1 + PHASES^2, H, W, channels), the empty one first, and each
    patch's centre (x, y) in feature cells (cell i spans [i, i + 1])."""
    cell = np.array(image_size, np.float64) / np.array(feature_size, np.float64)  # (y, x)
    side = np.maximum(1, np.round(PATCH_CELLS * cell)).astype(int)
    patch = np.random.default_rng(0).uniform(-1, 1, (*side, channels)).astype(np.float32)
    phases = (np.arange(PHASES) + 0.5) / PHASES - 0.5  # -3/8 to 3/8 of a cell
    images = np.zeros((1 + PHASES**2, *image_size, channels), np.float32)
    centres = []
    offsets = np.stack(np.meshgrid(phases, phases, indexing="ij"), -1).reshape(-1, 2)
    for k, (dy, dx) in enumerate(offsets, start=1):
        top, left = np.round(np.array(image_size) / 2 + np.array([dy, dx]) * cell - side / 2)
        top, left = int(top), int(left)
        images[k, top : top + side[0], left : left + side[1]] = patch
        centres.append([(left + side[1] / 2) / cell[1], (top + side[0] / 2) / cell[0]])
    return images, np.array(centres)


def probe_cell_shift(
    features: Callable[[np.ndarray], np.ndarray],
    image_size: tuple[int, int],
    feature_size: tuple[int, int],
    channels: int,
) -> tuple[float, float]:
    """(dx, dy) in feature cells, to 0.01: where the cells of the layer that ``features``
    (images (N, H, W, channels) to feature maps (N, h, w, C)) computes look, minus their
    centres. An axis with fewer than ``MIN_CELLS`` cells, or a layer the probe does not
    change, gets 0."""
    images, centres = probe_images(image_size, feature_size, channels)
    maps = np.asarray(features(images), np.float64)
    change = np.abs(maps[1:] - maps[:1]).sum(axis=-1)  # (probes, h, w)
    mass = change.sum(axis=(1, 2))
    if not np.all(mass > 0):
        return (0.0, 0.0)
    rows, cols = np.mgrid[0 : change.shape[1], 0 : change.shape[2]] + 0.5
    seen = np.stack(
        [(change * cols).sum(axis=(1, 2)), (change * rows).sum(axis=(1, 2))], -1
    ) / mass[:, None]
    shift = (centres - seen).mean(axis=0)
    shift[np.array(feature_size[::-1]) < MIN_CELLS] = 0.0
    return (round(float(shift[0]), 2), round(float(shift[1]), 2))
