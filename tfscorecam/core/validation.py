"""Checks on what users pass in, each failing with a message that says what to do."""

from __future__ import annotations

import numbers

import numpy as np


def positive_int(value: object, name: str, maximum: int | None = None) -> int:
    """Return ``value`` as an int in [1, maximum], or raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    number = int(value)
    if number < 1 or (maximum is not None and number > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be at least 1{upper}, got {value}")
    return number


def boolean(value: object, name: str) -> bool:
    """``value`` if it is True or False (a NumPy bool too), else a clear error."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def non_negative(value: object, name: str) -> float:
    """Return ``value`` as a finite float >= 0, or raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return number


def _axis_names(input_shape: tuple) -> str:
    """The axes of one input after the batch axis: "H, W, C" for images, "D, H, W, C" for
    volumes and video (depth or time first)."""
    return "D, H, W, C" if len(input_shape) == 5 else "H, W, C"


def as_image_batch(images: object, input_shape: tuple) -> tuple[np.ndarray, bool]:
    """Return ``(batch float32 (N, H, W, C), was_single_image)`` after checking ``images``.

    ``input_shape`` is the model's input shape ``(None, H, W, C)``, or ``(None, D, H, W, C)``
    for a model on volumes or video (then one volume is (D, H, W, C)); None dims accept any
    size. For a one-channel model, inputs without the channel axis, (H, W) or (N, H, W)
    (volumes: (D, H, W) or (N, D, H, W)), are accepted too.
    """
    if hasattr(images, "numpy"):
        images = images.numpy()
    array = np.asarray(images)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(f"images must be a numeric array, got dtype {array.dtype}")
    rank = len(input_shape) - 1  # of one input, channels included
    if input_shape[-1] == 1 and (
        array.ndim == rank - 1 or (array.ndim == rank and array.shape[-1] != 1)
    ):
        array = array[..., None]  # no channel axis, for a one-channel model
    axes = _axis_names(input_shape)
    if array.ndim not in (rank, rank + 1):
        what = "volume" if rank == 4 else "image"
        raise ValueError(
            f"the model takes one {what} ({axes}) or a batch (N, {axes}); got shape "
            f"{array.shape}"
        )
    single = array.ndim == rank
    batch = array[None] if single else array
    if batch.shape[0] == 0:
        raise ValueError("images is an empty batch")
    expected = tuple(input_shape[1:])
    for axis, (got, want) in enumerate(zip(batch.shape[1:], expected, strict=True)):
        if want is not None and got != want:
            what = "channel count" if axis == rank - 1 else "size"
            fix = (
                "Resample the volumes to the model's size first"
                if rank == 4
                else "Resize and preprocess the images for the model first (tfscorecam.explain "
                "does this for you)"
            )
            raise ValueError(
                f"the model expects inputs of shape {expected} ({axes}) but got "
                f"{tuple(batch.shape[1:])}: wrong {what}. {fix}."
            )
    batch = batch.astype(np.float32, copy=False)
    if not np.all(np.isfinite(batch)):
        bad = np.unique(np.argwhere(~np.isfinite(batch))[:, 0])
        raise ValueError(f"images contain NaN or infinite values (images {bad.tolist()[:10]})")
    return batch, single


def class_matrix(
    class_index: object,
    num_images: int,
    num_classes: int,
    single: bool,
    top1: np.ndarray | None = None,
) -> tuple[np.ndarray, bool]:
    """Resolve ``class_index`` into an int matrix (N, K) and whether K is a returned axis.

    - None: each image's top-1 class (``top1``, or -1 = "top-1, resolved by the caller");
    - an int: that class for every image;
    - a sequence of N ints: one class per image (for one image: K classes of that image);
    - an (N, K) array: K classes per image.
    """
    n = num_images
    if class_index is None:
        top1 = np.full(n, -1) if top1 is None else np.asarray(top1)
        return top1.reshape(n, 1).astype(np.int32), False
    array = np.asarray(class_index)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"class_index must be None, an int, a sequence of ints or an (N, K) int array, "
            f"got {class_index!r}"
        )
    if array.ndim == 0:
        matrix, per_class_axis = np.full((n, 1), int(array)), False
    elif array.ndim == 1 and single:
        matrix, per_class_axis = array.reshape(1, -1), True
    elif array.ndim == 1 and array.shape[0] == n:
        matrix, per_class_axis = array.reshape(n, 1), False
    elif array.ndim == 2 and array.shape[0] == n:
        matrix, per_class_axis = array, True
    else:
        raise ValueError(
            f"class_index of shape {array.shape} does not fit {n} image(s): pass an int, "
            f"{n} ints (one per image) or an ({n}, K) array"
        )
    if matrix.size == 0:
        raise ValueError("class_index is empty")
    if matrix.min() < 0 or matrix.max() >= num_classes:
        raise ValueError(
            f"class_index {int(matrix.min()) if matrix.min() < 0 else int(matrix.max())} is out "
            f"of range: the model has {num_classes} classes (0..{num_classes - 1})"
        )
    return matrix.astype(np.int32), per_class_axis
