"""Recipro-CAM (Byun & Lee, CVPR-W 2024, arXiv 2209.14074): the class probability with only
one position of the feature map kept, at each position."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core.maps import channels_first, minmax, score_cam_maps
from tfscorecam.methods.tail import TailCAM, num_positions

# the authors' 3 x 3 spread of a kept position onto its neighbours
GAUSSIAN = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16


def keep_positions(acts: Any, positions: Any, gaussian: bool = False) -> Any:
    """(c, h, w, C): zeros but for one of ``positions`` (row-major) in each, which keeps its
    vector of the feature map (h, w, C); with ``gaussian`` that vector is also spread onto the
    3 x 3 neighbours, weighted by ``GAUSSIAN`` (the authors' option: the centre's vector, not
    the neighbours' own). A volume's (d, h, w, C): (c, d, h, w, C), no spread."""
    cells = ops.shape(acts)[:-1]
    masks = ops.reshape(ops.one_hot(positions, num_positions(acts)), (-1, *cells, 1))
    kept = masks * acts[None]
    if not gaussian:
        return kept
    spread = ops.convert_to_tensor(GAUSSIAN)[:, :, None, None]
    spread = ops.broadcast_to(spread, (3, 3, ops.shape(acts)[-1], 1))
    return ops.depthwise_conv(kept, spread, strides=1, padding="same")


class ReciproCAM(TailCAM):
    """Recipro-CAM: one forward pass to the target layer; then for each of its h x w
    positions, the feature map with only that position's vector kept (zero elsewhere) runs
    through the model's tail, and the class's softmax probability there is the map's
    value at that position. Min-max scaled at the layer's resolution, then upsampled
    bilinearly (and scaled to [0, 1], as every map). All classes come from the same h x w
    passes; only the model after the target layer runs for them (``tail.TailScorer`` with
    positions as its units), so the target must be a layer every path to the output goes
    through, with a (batch, h, w, C) output. Defaults follow the official code
    (sybyun/ReciproCAM, ``src/recipro_cam.py``).

    Args:
        gaussian: spread each kept vector onto its 3 x 3 neighbours with the authors'
            Gaussian weights (1/4 centre, 1/8 sides, 1/16 corners); False (the official
            code's default) keeps the one position alone.
        score: ``"probability"`` (the official code: softmax of the class output) or
            ``"logit"``. A ``target`` gets the raw output.

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``verbose``: as
    ``Explainer`` (``batch_size``: feature maps per pass of the model's tail).

    Under a mixed-precision policy the tail runs in 16 bits; where the class
    probability changes little from one kept cell to the next, the min-max scaling magnifies
    that rounding (a random tiny model: mean difference to float32 0.007 under float16, 0.05
    under bfloat16, where the gradient methods differ by 0.0001 and 0.001).
    """

    weighs_activations = False  # no sum of weighted activations: no eigen_smooth

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        gaussian: bool = False,
        score: str = "probability",
        **options: Any,
    ) -> None:
        super().__init__(model, layer, score=score, **options)
        self.gaussian = bool(gaussian)
        if self.gaussian and self.spatial_rank != 2:
            raise ValueError(
                "gaussian=True spreads a kept position onto its 3 x 3 neighbours in an image's "
                "feature map; a volume's positions are kept alone: pass gaussian=False"
            )
        self.scorer = self.tail_scorer(
            "position",
            lambda acts, positions: keep_positions(acts, positions, self.gaussian),
            lambda acts: ops.arange(num_positions(acts), dtype="int32"),
            relative=False,
        )

    def upsampled(self, low: object, size: Any) -> Any:
        """Up(minmax(scores)): min-max at the layer's resolution, as the official code."""
        scaled = minmax(channels_first(ops.cast(low, "float32")), self.spatial_rank)
        return score_cam_maps(ops.moveaxis(scaled, 1, -1), size)
