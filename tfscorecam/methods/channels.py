"""Which channels the perturbation methods score, and how scores become channel weights."""

from __future__ import annotations

import tensorflow as tf

from tfscorecam.core.validation import positive_int


def max_channels_option(max_channels: int | None, num_channels: int | None) -> int | None:
    """The ``max_channels`` option (Faster Score-CAM: score only the channels of largest
    spatial standard deviation; None: every channel), checked against the layer's channels."""
    if max_channels is None:
        return None
    return positive_int(max_channels, "max_channels", num_channels)


def select_channels(
    activations: object, max_channels: int | None = None, skip: str = "flat"
) -> tf.Tensor:
    """Indices (int32) of the channels to score for one image's activations (h, w, C).

    ``skip="flat"`` (Score-CAM): flat channels (max == min) are never scored: their normalised
    mask is undefined and the official code skips them. ``skip="zero"`` (Ablation-CAM):
    channels zero everywhere are never ablated: zeroing them changes nothing. With
    ``max_channels`` (Faster Score-CAM), only the channels of largest spatial standard
    deviation are kept (ties: lower index first).
    """
    acts = tf.convert_to_tensor(activations, tf.float32)
    num = tf.shape(acts)[-1]
    if skip == "flat":
        unused = tf.reduce_max(acts, axis=(0, 1)) == tf.reduce_min(acts, axis=(0, 1))
    else:
        unused = tf.reduce_max(tf.abs(acts), axis=(0, 1)) == 0
    order = tf.range(num)
    if max_channels is not None:
        std = tf.math.reduce_std(tf.reshape(acts, (-1, num)), axis=0)
        order = tf.math.top_k(std, k=max_channels).indices
    return tf.boolean_mask(order, ~tf.gather(unused, order))


def channel_weights(
    scores: object, selected: tf.Tensor, num_channels: object, channel_softmax: bool = False
) -> tf.Tensor:
    """Channel weights (C, K) from the selected channels' scores (n, K); 0 elsewhere.

    ``channel_softmax`` softmaxes the scores over the scored channels first (the paper's
    Algorithm 1 and the PyTorch peers).
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    if channel_softmax:
        scores = tf.nn.softmax(scores, axis=0)
    return tf.scatter_nd(selected[:, None], scores, (num_channels, tf.shape(scores)[1]))
