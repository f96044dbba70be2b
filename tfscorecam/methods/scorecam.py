"""Score-CAM (Wang et al., CVPR-W 2020), faithful to the official implementation."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from tfscorecam.methods.channels import max_channels_option
from tfscorecam.methods.masking import Masking
from tfscorecam.methods.scoring import ChannelScorer, PerturbationCAM


class ScoreCAM(PerturbationCAM):
    """Score-CAM explainer for a Keras image model.

    For each channel A_k of the target layer: upsample it bilinearly to the input size,
    min-max normalise it to [0, 1], multiply the input by it and run the model; the class
    probability of that masked input is the channel's weight w_k. The map is
    ReLU(sum_k w_k Up(A_k)), min-max scaled to [0, 1]. Defaults follow the official code
    (haofanwang/Score-CAM, ``cam/scorecam.py``): probabilities, no channel softmax, zeros for
    masked-out pixels, flat channels skipped, un-normalised channels summed.

    Args:
        score: ``"probability"`` (official code and paper) or ``"logit"`` (the
            pre-softmax score, as tf-keras-vis users get with a linear head). For class
            outputs; a ``target`` gets the raw output.
        channel_softmax: softmax the channel scores before weighing (the paper's
            Algorithm 1 and the PyTorch peers); False, as in the official code.
        baseline: value of masked-out pixels in the model's input space (float or array
            broadcastable to one image); 0 as in the official code.
        max_channels: Faster Score-CAM: score only the channels with the largest spatial
            standard deviation; None scores all non-flat channels.

    ``model``, ``layer``: as ``Explainer``: the model (one image input; for several
    outputs, choose one with ``output``) and the target layer (a conv feature map, or
    transformer tokens).

    ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``: as ``Explainer``
    (``batch_size``: masked images per forward pass). A softmax is never applied twice; a
    single-unit head scores with the sigmoid (its one class is index 0). ``verbose=1`` shows a
    progress bar over the chunks of masked forward passes.

    Call it as ``cam(images, class_index=None, target=None)``; see ``Explainer.__call__``.
    """

    scorer: ChannelScorer

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        score: str = "probability",
        channel_softmax: bool = False,
        baseline: float | np.ndarray = 0.0,
        max_channels: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model, layer, score=score, **options)
        self.max_channels = max_channels_option(max_channels, self.num_channels)
        self.scorer = ChannelScorer(
            self.input_shape,
            self.batch_size,
            baseline,
            self.max_channels,
            channel_softmax,
            self.masking(),
        )

    def masking(self) -> Masking:
        """How each channel's masked inputs are built (one per channel for Score-CAM)."""
        return Masking()
