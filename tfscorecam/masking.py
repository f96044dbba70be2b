"""Score-CAM's masked inputs: each channel upsampled, min-max normalised and blended with the
image, in one XLA-fused step that writes only the masked images."""

from __future__ import annotations

import tensorflow as tf


def interpolation_matrix(n_out: tf.Tensor, n_in: tf.Tensor) -> tf.Tensor:
    """(n_out, n_in) bilinear weights with half-pixel centres, as ``tf.image.resize``."""
    scale = tf.cast(n_in, tf.float32) / tf.cast(n_out, tf.float32)
    source = (tf.range(n_out, dtype=tf.float32) + 0.5) * scale - 0.5
    source = tf.clip_by_value(source, 0.0, tf.cast(n_in - 1, tf.float32))
    low = tf.floor(source)
    frac = (source - low)[:, None]
    low = tf.cast(low, tf.int32)
    high = tf.minimum(low + 1, n_in - 1)
    return tf.one_hot(low, n_in) * (1.0 - frac) + tf.one_hot(high, n_in) * frac


@tf.function(jit_compile=True)
def masked_inputs(image: tf.Tensor, acts: tf.Tensor, baseline: tf.Tensor) -> tf.Tensor:
    """The image (H, W, C_in) masked by each channel of ``acts`` (h, w, c): (c, H, W, C_in).

    Each channel is upsampled bilinearly to (H, W) (two small matmuls), min-max normalised
    to [0, 1] and blended: ``image * mask + baseline * (1 - mask)``. XLA fuses the
    element-wise work into one pass that writes only the masked images.
    """
    rows = interpolation_matrix(tf.shape(image)[0], tf.shape(acts)[0])
    cols = interpolation_matrix(tf.shape(image)[1], tf.shape(acts)[1])
    up = tf.einsum("cyj,xj->cyx", tf.einsum("yi,ijc->cyj", rows, acts), cols)
    low = tf.reduce_min(up, axis=(1, 2), keepdims=True)
    inverse_span = tf.math.divide_no_nan(1.0, tf.reduce_max(up, axis=(1, 2), keepdims=True) - low)
    masks = ((up - low) * inverse_span)[..., None]
    return image[None] * masks + baseline * (1.0 - masks)
