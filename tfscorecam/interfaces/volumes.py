"""Volumes and video in the front doors: reading them, and showing them as a montage.

A model on (batch, D, H, W, C) inputs (Conv3D on medical volumes, or video as (batch, T, H,
W, C)) is given its inputs as they are: arrays, or ``.npy`` files, already at the model's
size and in its value range (CT in Hounsfield units, say); ``preprocess`` still applies. They
are shown as a montage: up to ``MAX_SLICES`` evenly spaced slices (or frames) tiled in rows,
the first slice top left.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from tfscorecam.core.validation import as_image_batch

MAX_SLICES = 16  # slices (or frames) a montage shows by default
MIN_SAVED_WIDTH = 512  # pixels: a saved montage is magnified to at least this width


def read_volumes(source: object, input_shape: tuple) -> tuple[list[np.ndarray], bool, list[str]]:
    """(volumes (D, H, W, C) float32 as given, whether one was given, a name for each).

    ``source``: one volume (D, H, W, C) or a batch (N, D, H, W, C) as an array (without the
    channel axis for a one-channel model), a ``.npy`` file holding one, or a list of those.
    ``input_shape``: the model's (None, D, H, W, C), which they are checked against.
    """
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("no volumes given")
        names = [_name(item, n) for n, item in enumerate(source)]
        volumes = [read_volume(i, input_shape, n) for i, n in zip(source, names, strict=True)]
        return volumes, False, names
    if isinstance(source, (str, os.PathLike)):
        return [read_volume(source, input_shape, str(source))], True, [str(source)]
    batch, single = as_image_batch(source, input_shape)
    return list(batch), single, [f"volume {n}" for n in range(len(batch))]


def _name(item: object, n: int) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else f"volume {n}"


def load_volume(path: str | os.PathLike) -> np.ndarray:
    """The array of a ``.npy`` file, as saved (``numpy.save``); a clear error for another
    file."""
    path = Path(path)
    if path.suffix.lower() == ".npy" and not path.is_file():
        raise FileNotFoundError(f"volume file not found: {path}")
    if path.suffix.lower() != ".npy":
        raise ValueError(
            f"{path}: volumes and video are read from .npy files (numpy.save of a (D, H, W, "
            "C) array), or given as arrays"
        )
    return np.load(path, allow_pickle=False)


def read_volume(item: object, input_shape: tuple, what: str) -> np.ndarray:
    """One volume (D, H, W, C) float32 from an array or a ``.npy`` file, checked against the
    model's ``input_shape`` (``what`` names it in errors)."""
    if isinstance(item, (str, os.PathLike)):
        item = load_volume(item)
    batch, single = as_image_batch(item, input_shape)
    if not single:
        raise ValueError(f"{what} holds {len(batch)} volumes; a list item is one volume")
    return batch[0]


def display_volume(volume: np.ndarray) -> np.ndarray:
    """A volume (D, H, W, C) as RGB (D, H, W, 3) uint8 for showing: three channels as colours,
    else the first as grey; values in 0-255 as they are, other ranges (CT's Hounsfield
    units, normalised inputs) min-max scaled to 0-255 over the whole volume."""
    shown = volume[..., :3] if volume.shape[-1] == 3 else volume[..., :1]
    if shown.min() < 0 or shown.max() > 255 or shown.max() <= 1:
        span = float(shown.max() - shown.min())
        shown = (shown - shown.min()) * (255.0 / span if span > 0 else 0.0)
    shown = np.clip(np.round(shown), 0, 255).astype(np.uint8)
    return np.repeat(shown, 3, axis=-1) if shown.shape[-1] == 1 else shown


def slice_indices(depth: int, slices: int = MAX_SLICES) -> np.ndarray:
    """``slices`` evenly spaced indices of ``depth`` slices, first and last included (all of
    them when there are no more than ``slices``)."""
    if slices < 1:
        raise ValueError(f"slices must be at least 1, got {slices}")
    return np.unique(np.round(np.linspace(0, depth - 1, min(depth, slices))).astype(int))


def montage(frames: np.ndarray, slices: int = MAX_SLICES) -> np.ndarray:
    """Slices (D, H, W, ...) of ``slice_indices`` tiled row by row into one picture
    (rows * H, columns * W, ...), as near square as the count allows; empty tiles are 0."""
    chosen = frames[slice_indices(len(frames), slices)]
    columns = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / columns)
    height, width = chosen.shape[1:3]
    picture = np.zeros((rows * height, columns * width, *chosen.shape[3:]), chosen.dtype)
    for n, frame in enumerate(chosen):
        row, column = divmod(n, columns)
        picture[row * height : (row + 1) * height, column * width : (column + 1) * width] = frame
    return picture


def readable(picture: np.ndarray, width: int = MIN_SAVED_WIDTH) -> np.ndarray:
    """``picture`` (H, W, ...) magnified by the smallest whole factor (nearest neighbour,
    each voxel a sharp square) that makes it at least ``width`` pixels wide."""
    factor = max(1, math.ceil(width / max(picture.shape[1], 1)))
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)
