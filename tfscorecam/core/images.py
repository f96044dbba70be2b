"""Reading images for ``explain``: paths, PIL images and arrays in display range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError


def display_image(source: object) -> np.ndarray:
    """One RGB image (H, W, 3) in display range 0-255 as float32, from a path, PIL or array.

    Greyscale (H, W) or (H, W, 1) and RGBA images become RGB.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"), np.float32)
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"cannot read image {path}: {error}") from None
    if isinstance(source, Image.Image):
        return np.asarray(source.convert("RGB"), np.float32)
    array = np.asarray(source)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"an image must be a path, a PIL image or an array, got {type(source)}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"an image array must be (H, W, 3), got shape {array.shape}")
    array = array[..., :3].astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255:
        raise ValueError(
            "image arrays must be in display range 0-255 (uint8 or float); pass the "
            "model's preprocessing as preprocess=, not preprocessed pixels"
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


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear, antialiased resize of a display image to (H, W) (no crop: the aspect ratio
    may change)."""
    if image.shape[:2] == tuple(size):
        return image
    return tf.image.resize(image, size, method="bilinear", antialias=True).numpy()
