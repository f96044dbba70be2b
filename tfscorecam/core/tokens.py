"""Token layers (vision transformers): their (batch, tokens, channels) output as a patch grid.

A transformer layer's output is a sequence of tokens: a few leading extra tokens (class,
distillation, register tokens) and then one token per image patch, row by row. The CAM methods
need a (batch, h, w, channels) feature map, so the extra tokens are dropped and the patch tokens
reshaped to their grid. The grid is inferred from the token count and the input's size: the
fewest leading extra tokens (at most ``MAX_EXTRA_TOKENS``) whose remainder is the h x w grid of
p x p patches tiling the input exactly: h = H / p and w = W / p for a whole p (224 / 16 = 14,
a Swin stage's 224 / 32 = 7). For an input of variable size the grid is taken as square.
Anything else (inputs that patches do not tile, trailing tokens, other layouts) takes a
``reshape`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras import ops

MAX_EXTRA_TOKENS = 8

Reshape = Callable[[Any], Any]


def _patch_grid(rows: int, cols: int, height: int | None, width: int | None) -> bool:
    """Whether a rows x cols grid of p x p patches tiles an H x W input for a whole p."""
    if height is None or width is None:
        return rows == cols
    return height % rows == 0 and width % cols == 0 and height // rows == width // cols


def token_grid(num_tokens: int, image_size: tuple) -> tuple[int, int, int] | None:
    """``(extra, h, w)`` for ``num_tokens`` tokens of an image of ``image_size`` (H, W), or None."""
    height, width = image_size
    for extra in range(min(MAX_EXTRA_TOKENS, num_tokens - 1) + 1):
        patches = num_tokens - extra
        for rows in range(1, patches + 1):
            if patches % rows == 0 and _patch_grid(rows, patches // rows, height, width):
                return extra, rows, patches // rows
    return None


def grid_reshape(image_size: tuple, declared: int | None = None) -> Reshape:
    """The function (batch, extra + h * w, C) -> (batch, h, w, C) for an image of
    ``image_size``, the grid taken from the token count the layer gives when it runs: a
    layer's declared output shape can be wrong (keras_hub's SigLIP embedding declares a class
    token it does not have); where that count is only known when the graph runs (keras_hub's
    DINOv3), from the ``declared`` one."""

    def reshape(tokens: Any) -> Any:
        count = tokens.shape[1] if tokens.shape[1] is not None else declared
        grid = None if count is None else token_grid(int(count), image_size)
        if grid is None:
            raise ValueError(
                f"the layer gave {count} tokens, which fit no patch grid of a "
                f"{image_size} input; pass reshape="
            )
        extra, rows, cols = grid
        return ops.reshape(tokens[:, extra:, :], (-1, rows, cols, ops.shape(tokens)[-1]))

    return reshape


def feature_grid(shape: tuple | None, image_size: tuple, reshape: Reshape | None) -> Reshape | None:
    """How to turn a layer output of ``shape`` into a (batch, h, w, C) feature map.

    ``image_size``: the input's (H, W), or (D, H, W) for volumes. None for a feature map
    (batch, h, w, C), or (batch, d, h, w, C) for volumes, used as is; the user's ``reshape``;
    or the token grid of an image model's (batch, tokens, channels) output. Raises ValueError
    when none applies.
    """
    if reshape is not None:
        if not callable(reshape):
            raise TypeError(f"reshape must be a callable, got {type(reshape).__name__}")
        return reshape
    if shape is not None and len(shape) == len(image_size) + 2:
        return None  # a feature map (volumes: (batch, d, h, w, C))
    if shape is not None and len(shape) == 3 and shape[1] is not None and len(image_size) == 2:
        if token_grid(int(shape[1]), image_size) is not None:
            return grid_reshape(image_size, int(shape[1]))
    raise ValueError(
        f"output shape {shape} is neither a (batch, h, w, channels) feature map nor "
        f"(batch, tokens, channels) tokens that fit a patch grid of the input's aspect ratio "
        f"after up to {MAX_EXTRA_TOKENS} leading extra tokens; pass reshape= (a function from "
        "the layer's output to (batch, h, w, channels))"
    )
