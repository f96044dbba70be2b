"""Ablation-CAM (Desai & Ramaswamy, WACV 2020): the score's drop when a channel is zeroed."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfscorecam.core.maps import score_cam_maps
from tfscorecam.methods.channels import max_channels_option, select_channels
from tfscorecam.methods.tail import TailCAM


def ablate_channels(acts: Any, channels: Any) -> Any:
    """(c, h, w, C): the feature map (h, w, C) with one of ``channels`` zeroed in each (a
    volume's (d, h, w, C): (c, d, h, w, C))."""
    keep = 1.0 - ops.one_hot(channels, ops.shape(acts)[-1])  # (c, C)
    spread = (1,) * (len(acts.shape) - 1)
    return acts[None] * ops.reshape(keep, (-1, *spread, ops.shape(keep)[-1]))


class AblationCAM(TailCAM):
    """Ablation-CAM: w_k = (y_c - y_c^k) / y_c, map = ReLU(sum_k w_k A_k), upsampled
    bilinearly (the ReLU before the upsampling, as pytorch-grad-cam; the paper does not say).

    y_c is the class score and y_c^k the same score with channel k of the target layer set to
    0. Only the part of the model after the target layer runs for the ablations (a chunk of
    ``batch_size`` ablated feature maps per pass; ``tail.TailScorer`` with channels as its
    units), so the target must be a layer every path to the output goes through (the last
    conv feature map of a CNN; a clear error otherwise), and its output a (batch, h, w, C)
    map. Channels that are zero everywhere weigh 0 without a pass.

    Args:
        score: ``"logit"`` (the paper's class score y_c, the pre-softmax score, and what
            pytorch-grad-cam ablates for a torchvision model) or ``"probability"``. A
            ``target`` gets the raw output. A negative y_c flips every weight's sign, as in
            the paper's formula.
        max_channels: ablate only the channels of largest spatial standard deviation (as
            Faster Score-CAM); None ablates every channel that is not zero everywhere.

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``verbose``: as
    ``Explainer``.
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        score: str = "logit",
        max_channels: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model, layer, score=score, **options)
        self.max_channels = max_channels_option(max_channels, self.num_channels)
        self.scorer = self.tail_scorer(
            "channel",
            ablate_channels,
            lambda acts: select_channels(acts, self.max_channels, skip="zero"),
            relative=True,
        )

    def upsampled(self, low: object, size: Any) -> Any:
        """Up(ReLU(sum)): the ReLU at the layer's resolution, as pytorch-grad-cam's."""
        return score_cam_maps(ops.relu(ops.cast(low, "float32")), size)
