"""Reading images for ``explain``: paths, PIL images and arrays, to RGB in display range 0-255.

What is taken as what (the same for ``explain()``, the command line, ``explain_dataset`` and
``tsc.images``):

- 8-bit images and integer arrays: as they are (values must lie in 0-255);
- 16-bit images (PIL modes ``I;16*`` and ``I``: 16-bit PNG and TIFF greyscale) and ``uint16``
  arrays: the full 16-bit range scaled to 0-255 (divided by 257), never clipped;
- float arrays (and PIL mode ``F``) whose values all lie in [0, 1], e.g. what
  ``matplotlib.pyplot.imread`` gives for a PNG, and boolean arrays: multiplied by 255; other
  float arrays must lie in 0-255;
- greyscale (H, W) or (H, W, 1) becomes RGB; an alpha channel is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from keras import ops
from PIL import Image, UnidentifiedImageError

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def display_image(source: object) -> np.ndarray:
    """One RGB image (H, W, 3) in display range 0-255 as float32, from a path, PIL or array
    (see the module docstring for 16-bit and float images)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not an image file")
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with Image.open(path) as image:
                return _from_pil(image, str(path))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"cannot read image {path}: {error}") from None
    if isinstance(source, Image.Image):
        return _from_pil(source, "the image")
    return _from_array(source)


def _from_pil(image: Image.Image, what: str) -> np.ndarray:
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(
                f"{what} is a 32-bit integer image with values in [{values.min()}, "
                f"{values.max()}], outside 16 bits: convert it to 8 or 16 bits first"
            )
        return _from_array(values.astype(np.uint16))
    if image.mode == "F":
        return _from_array(np.asarray(image, np.float32))
    return np.asarray(image.convert("RGB"), np.float32)


def _from_array(source: object) -> np.ndarray:
    array = np.asarray(source)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"an image must be a path, a PIL image or an array, got {type(source)}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"an image array must be (H, W, 3), got shape {array.shape}")
    array = array[..., :3]
    bad = ~np.isfinite(array) if np.issubdtype(array.dtype, np.floating) else None
    if bad is not None and bad.any():
        row, col, _ = np.argwhere(bad)[0]
        raise ValueError(
            f"the image has {int(bad.any(-1).sum())} NaN or infinite pixels, the first at "
            f"row {row}, column {col} (value {array[row, col].tolist()}): replace them (e.g. "
            "np.nan_to_num) before explaining"
        )
    if array.dtype == np.uint16:
        return (array.astype(np.float32) / 257.0).astype(np.float32)
    unit = array.dtype == np.bool_ or (
        np.issubdtype(array.dtype, np.floating)
        and array.size > 0
        and array.min() >= 0
        and array.max() <= 1
    )
    array = array.astype(np.float32) * (255.0 if unit else 1.0)
    if array.min() < 0 or array.max() > 255:
        raise ValueError(
            "image arrays must be in display range: 0-255 (uint8, or float), [0, 1] (float) or "
            "uint16; pass the model's preprocessing as preprocess=, not preprocessed pixels"
        )
    return array


def image_list(images: object) -> tuple[list[np.ndarray], bool]:
    """(list of display images, whether a single image was given)."""
    if isinstance(images, (str, Path, Image.Image)):
        return [display_image(images)], True
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("no images given")
        return [display_image(i) for i in images], False
    array = np.asarray(images)
    if array.ndim == 4:
        return [display_image(i) for i in array], False
    return [display_image(array)], True


def resize_op(images: Any, size: Sequence[int]) -> Any:
    """``images`` (H, W, C) or (N, H, W, C) as float32 resized to ``size`` (H, W): bilinear,
    antialiased, no crop (the aspect ratio may change); ``tf.image.resize`` on TensorFlow."""
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    return ops.image.resize(images, tuple(size), "bilinear", antialias=True)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``resize_op`` on a display image (or a heatmap (H, W, 1)), as NumPy; an image already
    of ``size`` is returned as it is."""
    if image.shape[:2] == tuple(size):
        return image
    return ops.convert_to_numpy(resize_op(image, size))
