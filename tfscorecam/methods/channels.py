"""Which channels the perturbation methods score, and how scores become channel weights."""

from __future__ import annotations

from typing import Any

from keras import ops

from tfscorecam.core.validation import positive_int


def max_channels_option(max_channels: int | None, num_channels: int | None) -> int | None:
    """The ``max_channels`` option (Faster Score-CAM: score only the channels of largest
    spatial standard deviation; None: every channel), checked against the layer's channels."""
    if max_channels is None:
        return None
    return positive_int(max_channels, "max_channels", num_channels)


def select_channels(
    activations: object, max_channels: int | None = None, skip: str | None = "flat"
) -> Any:
    """Indices (int32) of the channels to score for one image's activations (h, w, C) (a
    volume's: (d, h, w, C)).

    ``skip="flat"`` (Score-CAM): flat channels (max == min) are never scored: their normalised
    mask is undefined and the official code skips them. ``skip="zero"`` (Ablation-CAM):
    channels zero everywhere are never ablated: zeroing them changes nothing. ``skip=None``
    (Poly-CAM, whose official code scores every channel) skips none. With
    ``max_channels`` (Faster Score-CAM), only the channels of largest spatial standard
    deviation are kept (ties: lower index first).
    """
    acts = ops.cast(ops.convert_to_tensor(activations), "float32")
    num = ops.shape(acts)[-1]
    cells = ops.reshape(acts, (-1, num))  # (h * w, C), or (d * h * w, C) for a volume
    if skip is None:
        unused = ops.zeros((num,), "bool")
    elif skip == "flat":
        unused = ops.max(cells, axis=0) == ops.min(cells, axis=0)
    else:
        unused = ops.max(ops.abs(cells), axis=0) == 0
    order = ops.arange(num, dtype="int32")
    if max_channels is not None:
        std = ops.std(cells, axis=0)
        order = ops.cast(ops.top_k(std, k=max_channels)[1], "int32")
    kept = ops.nonzero(ops.logical_not(ops.take(unused, order)))[0]
    return ops.take(order, kept)


def weights_from_scores(
    scores: object, selected: Any, num_channels: object, channel_softmax: bool = False
) -> Any:
    """Channel weights (C, K) from the selected channels' scores (n, K); 0 elsewhere.

    ``channel_softmax`` softmaxes the scores over the scored channels first (the paper's
    Algorithm 1 and the PyTorch peers).
    """
    scores = ops.cast(ops.convert_to_tensor(scores), "float32")
    if channel_softmax:
        scores = ops.softmax(scores, axis=0)
    return ops.scatter(selected[:, None], scores, (num_channels, ops.shape(scores)[1]))
