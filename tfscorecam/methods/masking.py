"""Score-CAM's masked inputs, and the variants of IS-CAM and SS-CAM.

Each channel is upsampled bilinearly to the input size (two small matmuls), min-max
normalised to a mask m in [0, 1] and blended with the image:
``image * m + baseline * (1 - m)``. One XLA-compiled step builds every masked image of a chunk
of channels (and all the samples of each channel for IS-CAM and SS-CAM), writing only the masked
images.

A ``Masking`` says how many masked inputs each channel gets (``samples``) and builds them; the
scorer averages a channel's scores over its samples.
"""

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


def channel_masks(image: tf.Tensor, acts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The normalised masks (c, H, W) of the channels of ``acts`` (h, w, c) and their spans
    (c, 1, 1): the max - min of each upsampled, un-normalised channel."""
    rows = interpolation_matrix(tf.shape(image)[0], tf.shape(acts)[0])
    cols = interpolation_matrix(tf.shape(image)[1], tf.shape(acts)[1])
    up = tf.einsum("cyj,xj->cyx", tf.einsum("yi,ijc->cyj", rows, acts), cols)
    low = tf.reduce_min(up, axis=(1, 2), keepdims=True)
    span = tf.reduce_max(up, axis=(1, 2), keepdims=True) - low
    return (up - low) * tf.math.divide_no_nan(1.0, span), span


def _blend(image: tf.Tensor, masks: tf.Tensor, baseline: tf.Tensor) -> tf.Tensor:
    masks = masks[..., None]
    return image * masks + baseline * (1.0 - masks)


@tf.function(jit_compile=True, reduce_retracing=True)
def masked_inputs(image: tf.Tensor, acts: tf.Tensor, baseline: tf.Tensor) -> tf.Tensor:
    """The image (H, W, C_in) masked by each channel of ``acts`` (h, w, c): (c, H, W, C_in)."""
    masks, _ = channel_masks(image, acts)
    return _blend(image[None], masks, baseline)


@tf.function(jit_compile=True, reduce_retracing=True)
def scaled_masked_inputs(
    image: tf.Tensor, acts: tf.Tensor, baseline: tf.Tensor, scales: tf.Tensor
) -> tf.Tensor:
    """Each channel's mask times each of ``scales`` (N,): (c * N, H, W, C_in), channel-major."""
    masks, _ = channel_masks(image, acts)
    scaled = masks[:, None] * scales[None, :, None, None]  # (c, N, H, W)
    size = tf.shape(masks)
    return _blend(image[None], tf.reshape(scaled, (-1, size[1], size[2])), baseline)


@tf.function(jit_compile=True, reduce_retracing=True)
def noisy_masked_inputs(
    image: tf.Tensor,
    acts: tf.Tensor,
    baseline: tf.Tensor,
    normal: tf.Tensor,
    noise: tf.Tensor,
    on_input: bool,
    squared: bool,
) -> tf.Tensor:
    """SS-CAM's noisy inputs, (c * N, H, W, C_in) channel-major, from standard normal samples
    ``normal``: (c, N, H, W) for noise on the mask, (c, N, H, W, C_in) on the masked input.

    The noise's standard deviation is s = (noise / span)^2 (``squared``, the official code) or
    noise / span, where span is the max - min of what is noised: the upsampled channel (its
    noise then reaches the normalised mask divided by span) or the masked input.
    """
    masks, span = channel_masks(image, acts)
    if on_input:
        masked = _blend(image[None], masks, baseline)  # (c, H, W, C)
        span = tf.reduce_max(masked, axis=(1, 2, 3), keepdims=True) - tf.reduce_min(
            masked, axis=(1, 2, 3), keepdims=True
        )
        scale = tf.math.divide_no_nan(noise, span)
        scale = scale * scale if squared else scale
        noisy = masked[:, None] + normal * scale[:, None]
        return tf.reshape(noisy, tf.concat([[-1], tf.shape(masked)[1:]], axis=0))
    scale = tf.math.divide_no_nan(noise, span)
    scale = (scale * scale if squared else scale) * tf.math.divide_no_nan(1.0, span)
    noisy = masks[:, None] + normal * scale[:, None]  # (c, N, H, W)
    size = tf.shape(masks)
    return _blend(image[None], tf.reshape(noisy, (-1, size[1], size[2])), baseline)


class Masking:
    """One masked input per channel (Score-CAM)."""

    samples = 1

    def __call__(
        self, image: tf.Tensor, acts: tf.Tensor, channels: tf.Tensor, baseline: tf.Tensor
    ) -> tf.Tensor:
        """Masked inputs (c * samples, H, W, C_in) of ``channels`` (their feature maps
        ``acts`` (h, w, c)), channel-major."""
        return masked_inputs(image, acts, baseline)


class ScaledMasking(Masking):
    """Each channel's mask at several scales (IS-CAM)."""

    def __init__(self, scales: list[float]) -> None:
        self.scales = tf.constant(scales, tf.float32)
        self.samples = len(scales)

    def __call__(self, image, acts, channels, baseline):
        return scaled_masked_inputs(image, acts, baseline, self.scales)


class NoisyMasking(Masking):
    """``samples`` noisy copies of each channel's mask or masked input (SS-CAM), with noise
    drawn from (seed, channel index): the same whatever the chunks."""

    def __init__(
        self, samples: int, noise: float, on_input: bool, squared: bool, seed: int
    ) -> None:
        self.samples = samples
        self.noise = tf.constant(noise, tf.float32)
        self.on_input = on_input
        self.squared = squared
        self.seed = seed

    def normal(self, channels: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
        """Standard normal samples (c, samples, *shape) for ``channels``."""
        sample_shape = tf.concat([[self.samples], shape], axis=0)

        def one(channel: tf.Tensor) -> tf.Tensor:
            seed = tf.stack([tf.constant(self.seed, tf.int32), channel])
            return tf.random.stateless_normal(sample_shape, seed, dtype=tf.float32)

        return tf.map_fn(one, channels, fn_output_signature=tf.float32)

    def __call__(self, image, acts, channels, baseline):
        shape = tf.shape(image) if self.on_input else tf.shape(image)[:2]
        normal = self.normal(channels, shape)
        return noisy_masked_inputs(
            image, acts, baseline, normal, self.noise, self.on_input, self.squared
        )
