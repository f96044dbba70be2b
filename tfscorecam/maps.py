"""Turning weighted feature maps into saliency maps at the input resolution.

TensorFlow ops, so the same code runs eagerly and inside an exported SavedModel.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def minmax(maps: object) -> tf.Tensor:
    """Scale each map (over its last two axes) to [0, 1]; a flat map becomes all zeros."""
    maps = tf.cast(tf.convert_to_tensor(maps), tf.float32)
    low = tf.reduce_min(maps, axis=(-2, -1), keepdims=True)
    span = tf.reduce_max(maps, axis=(-2, -1), keepdims=True) - low
    return tf.math.divide_no_nan(maps - low, span)


def upsample(maps: object, size: object) -> tf.Tensor:
    """Bilinear upsampling (half-pixel centres, as tf.image.resize) of (N, h, w, K) maps."""
    maps = tf.cast(tf.convert_to_tensor(maps), tf.float32)
    return tf.image.resize(maps, size, method="bilinear")


def score_cam_maps(low: object, size: object) -> tf.Tensor:
    """ReLU(Up(sum_c w_c A_c)) for (N, h, w, K) weighted sums -> (N, K, H, W), not scaled."""
    return tf.transpose(tf.nn.relu(upsample(low, size)), (0, 3, 1, 2))


def weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_c weights[c, k] * activations[..., c] -> (h, w, K), in float64 for accuracy."""
    return np.tensordot(activations.astype(np.float64), weights.astype(np.float64), axes=1)
