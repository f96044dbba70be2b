"""Photo to model input, defined once for every front door.

``explain()`` (and the command line, which calls it), the dataset workers and a served
SavedModel's ``explain_image_bytes`` run the same steps in the same order:

1. decode to RGB in display range 0-255: ``images.display_image`` eagerly (PIL), and
   ``decode_in_graph`` in a graph (TensorFlow ops, JPEG with the accurate integer DCT that
   PIL uses);
2. refuse an image too small for the target layer (``check_sizes``);
3. resize to the model's input size, bilinear and antialiased, no crop (``images.resize``;
   both paths run the one op ``images.resize_op``), keeping float values (no rounding to
   uint8);
4. preprocess with the model's function and cast to float32 (``preprocessed``).

``model_input`` is steps 2 to 4 for display images. ``tests/interfaces/test_pipeline.py``
checks that the four front doors give the same model input for one file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tfscorecam.core import backend
from tfscorecam.interfaces.images import resize, resize_op

Preprocess = Callable[[np.ndarray], np.ndarray]


def check_size(shape: tuple[int, ...], grid: tuple[int, int], layer: str, what: str) -> None:
    """Refuse an image of ``shape`` (H, W, ...) smaller on a side than the target layer's
    feature map ``grid`` (h, w), or one whose feature map is a single cell: such an image has
    nothing to localise, and its map would only be the upsampled blur of a few pixels."""
    height, width = shape[:2]
    if height < grid[0] or width < grid[1]:
        raise ValueError(
            f"{what} is {height}x{width} pixels, smaller than the {grid[0]}x{grid[1]} feature "
            f"map of layer {layer!r}: too small to explain; give an image of at least "
            f"{grid[0]}x{grid[1]} pixels (better, the model's input size)"
        )
    if grid[0] * grid[1] == 1:
        raise ValueError(
            f"{what} ({height}x{width} pixels) gives layer {layer!r} a 1x1 feature map, which "
            "cannot localise anything: give a larger image or an earlier layer"
        )


def check_sizes(explainer: Any, shapes: Sequence[tuple[int, int]], what: Sequence[str]) -> None:
    """Refuse an image of (H, W) in ``shapes`` too small for the target layer
    (``check_size``): against the feature map at the model's input size, or, for a model of
    variable input size, at the image's own size. ``what`` names each image."""
    size = tuple(explainer.input_shape[1:3])
    for shape, name in zip(shapes, what, strict=True):
        grid = explainer.feature_size(shape if None in size else size)
        check_size(shape, grid, explainer.layer_path, name)


def preprocessed(batch: np.ndarray, preprocess: Preprocess | None) -> np.ndarray:
    """Resized display images (N, H, W, C) through ``preprocess`` (None: as they are), as
    float32; ``batch`` itself is never changed (Keras' preprocess_input works in place)."""
    return np.asarray(preprocess(batch.copy()) if preprocess else batch, np.float32)


def model_input(
    explainer: Any,
    images: Sequence[np.ndarray],
    preprocess: Preprocess | None,
    what: Sequence[str],
) -> np.ndarray:
    """The model input (N, H, W, C) float32 of display images (``images.display_image``):
    checked (``check_sizes``), resized to the model's input size and preprocessed. ``what``
    names each image in errors."""
    check_sizes(explainer, [image.shape[:2] for image in images], what)
    size = tuple(explainer.input_shape[1:3])
    if None in size:
        if len({i.shape for i in images}) > 1:
            raise ValueError("images of different sizes need a model with a fixed input size")
        batch = np.stack(images)
    else:
        batch = np.stack([resize(i, size) for i in images])
    return preprocessed(batch, preprocess)


def decode_in_graph(data: Any, size: Sequence[int]) -> tuple[Any, Any]:
    """One encoded image (a scalar string) as RGB float32 resized to ``size`` (``resize_op``),
    and its own (height, width), in TensorFlow ops. JPEG is decoded with the accurate integer
    DCT, as PIL decodes for ``explain()`` (TensorFlow's default, the fast DCT, moves pixels
    by up to 13 levels and scores by about 0.01)."""
    tf = backend.tensorflow("decoding images in a graph")
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    image.set_shape((None, None, 3))
    return resize_op(image, size), tf.shape(image)[:2]
