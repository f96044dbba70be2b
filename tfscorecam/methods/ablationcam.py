"""Ablation-CAM (Desai & Ramaswamy, WACV 2020): the score's drop when a channel is zeroed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from tfscorecam.core.explainer import Scoring
from tfscorecam.core.maps import score_cam_maps
from tfscorecam.core.model_graph import after
from tfscorecam.methods.channels import select_channels
from tfscorecam.methods.scoring import ChunkedScorer, ScoredChannels


class AblationScorer(ChunkedScorer):
    """Each selected channel's relative score drop (y - y_k) / y when it alone is zeroed in
    the feature map, which then runs through the rest of the model only (``rest``: the
    scoring -> the model from the target layer's output to the scored output)."""

    def __init__(
        self,
        input_shape: tuple,
        batch_size: int,
        max_channels: int | None,
        rest: Callable[[Scoring], keras.Model],
    ) -> None:
        super().__init__(input_shape, batch_size)
        self.max_channels = max_channels
        self.rest = rest

    def selected(self, activations: object) -> tf.Tensor:
        return select_channels(activations, self.max_channels, skip="zero")

    def chunk(self, scoring: Scoring) -> Callable:  # built once per scoring (``step``)
        rest, score = self.rest(scoring), scoring.fn

        def chunk(image, acts, channels, params):
            keep = 1.0 - tf.one_hot(channels, tf.shape(acts)[-1])  # (c, C)
            full = score(rest(acts[None], training=False), params)  # (1, K)
            ablated = score(rest(acts[None] * keep[:, None, None, :], training=False), params)
            return tf.math.divide_no_nan(full - ablated, full)

        return chunk


class AblationCAM(ScoredChannels):
    """Ablation-CAM: w_k = (y_c - y_c^k) / y_c, map = ReLU(sum_k w_k A_k), upsampled
    bilinearly (the ReLU before the upsampling, as pytorch-grad-cam; the paper does not say).

    y_c is the class score and y_c^k the same score with channel k of the target layer set to
    0. Only the part of the model after the target layer runs for the ablations (a chunk of
    ``batch_size`` ablated feature maps per pass), so the target must be a layer every path
    to the output goes through (the last conv feature map of a CNN; a clear error otherwise),
    and its output a (batch, h, w, C) map. Channels that are zero everywhere weigh 0 without a
    pass.

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
        super().__init__(model, layer, score=score, max_channels=max_channels, **options)
        if len(self._tapped.outputs[0].shape) != 4 or self._reshape is not None:
            raise ValueError(
                f"Ablation-CAM zeroes channels of a (batch, h, w, C) feature map; layer "
                f"{self.layer_path!r} outputs {tuple(self._tapped.outputs[0].shape)}: choose a "
                "conv layer"
            )
        self._rest: dict[bool, keras.Model] = {}
        self.rest_of_model(self.class_scoring)  # a model it cannot split fails here
        self.scorer = AblationScorer(
            self.input_shape, self.batch_size, self.max_channels, self.rest_of_model
        )

    def upsampled(self, low: object, size: object) -> tf.Tensor:
        """Up(ReLU(sum)): the ReLU at the layer's resolution, as pytorch-grad-cam's."""
        return score_cam_maps(tf.nn.relu(tf.cast(low, tf.float32)), size)

    def rest_of_model(self, scoring: Scoring | None) -> keras.Model:
        """The model from the target layer's output to what ``scoring`` scores (built once
        for the stripped and once for the whole head, whatever the number of targets)."""
        stripped = scoring is not None and scoring.stripped
        if stripped not in self._rest:
            self._rest[stripped] = after(self.view, self.chain, stripped)
        return self._rest[stripped]
