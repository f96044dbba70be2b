"""What an explanation explains: a class score, or any score computed from the model's output.

A *target* is any callable that maps the explained output of the model (batch, ...) to one
score per image (batch,) or K scores per image (batch, K); it receives the raw output (no
softmax or sigmoid is added) and must be traceable by TensorFlow, since Score-CAM methods run
it inside their compiled scoring step and gradient methods differentiate it. Every row of its
result must depend on that row of the output alone: Score-CAM scores many masked copies of one
image in one batch. Pass one target for all images, or a list with one per image.

Reuse a target object across calls: a new object is traced anew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfscorecam.core.maps import box_masks

ACTIVATIONS = (None, "softmax", "sigmoid")


@dataclass(frozen=True, eq=False)
class Classes:
    """Class scores, resolved by the explainer as its ``class_index`` argument (the default
    target): probabilities (or logits with ``score="logit"``) of the model's class output."""

    index: object = None


def classes(index: object = None) -> Classes:
    """The explainer's class scores for ``index``: None (top-1), an int, N ints or (N, K)."""
    return Classes(index)


def _activate(output: tf.Tensor, activation: str | None) -> tf.Tensor:
    output = tf.cast(output, tf.float32)
    if activation == "softmax":
        return tf.nn.softmax(output, axis=-1)
    if activation == "sigmoid":
        return tf.sigmoid(output)
    return output


class Segmentation:
    """Mean probability of a class over a region of a segmentation output (batch, H, W, classes).

    ``region``: None (every pixel), a boolean mask (H, W) of the output's size, or a box
    ``(x0, y0, x1, y1)`` in output pixels (pixels whose centre lies inside). ``activation``:
    None when the output already holds probabilities (a softmax or sigmoid last layer);
    ``"softmax"`` or ``"sigmoid"`` for logits.
    """

    def __init__(
        self, class_index: int, region: object = None, activation: str | None = None
    ) -> None:
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise TypeError(f"class_index must be an int, got {class_index!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.class_index = int(class_index)
        self.activation = activation
        self.region = None if region is None else np.asarray(region)
        if self.region is not None and self.region.shape != (4,) and self.region.ndim != 2:
            raise ValueError(
                f"region must be a mask (H, W) or a box (x0, y0, x1, y1), got shape "
                f"{self.region.shape}"
            )

    def _mask(self, height: int, width: int) -> np.ndarray:
        if self.region is None:
            return np.ones((height, width), np.float32)
        if self.region.shape == (4,):
            return box_masks(self.region[None].astype(np.float64), (height, width))[0]
        if self.region.shape != (height, width):
            raise ValueError(
                f"the segmentation mask has shape {self.region.shape}; the output's is "
                f"{(height, width)}"
            )
        return self.region.astype(bool)

    def __call__(self, output: tf.Tensor) -> tf.Tensor:
        if output.shape.rank != 4:
            raise ValueError(
                f"segmentation needs a (batch, H, W, classes) output, got shape {output.shape}"
            )
        height, width, num_classes = output.shape[1:]
        if not 0 <= self.class_index < num_classes:
            raise ValueError(
                f"class_index {self.class_index} is out of range: the output has "
                f"{num_classes} classes"
            )
        mask = self._mask(height, width).astype(np.float32)
        if mask.sum() == 0:
            raise ValueError("the segmentation region holds no pixel of the output")
        probability = _activate(output, self.activation)[..., self.class_index]
        return tf.reduce_sum(probability * mask, axis=(1, 2)) / float(mask.sum())


def segmentation(
    class_index: int, region: object = None, activation: str | None = None
) -> Segmentation:
    """Mean probability of ``class_index`` over ``region`` (see ``Segmentation``)."""
    return Segmentation(class_index, region, activation)


class Regression:
    """One value of a regression output: ``output[:, index]`` of (batch, D), or (batch,)."""

    def __init__(self, index: int = 0) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {index!r}")
        self.index = int(index)

    def __call__(self, output: tf.Tensor) -> tf.Tensor:
        output = tf.cast(output, tf.float32)
        if output.shape.rank == 1:
            return output
        if output.shape.rank != 2 or not 0 <= self.index < output.shape[1]:
            raise ValueError(
                f"regression(index={self.index}) needs a (batch,) or (batch, D) output with "
                f"D > {self.index}, got shape {output.shape}"
            )
        return output[:, self.index]


def regression(index: int = 0) -> Regression:
    """The model's regression output number ``index``."""
    return Regression(index)
