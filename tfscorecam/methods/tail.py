"""The tail engine: methods that run only the model after the target layer, on feature maps
perturbed one *unit* at a time, where a unit is a channel (Ablation-CAM zeroes it) or a
position of the feature map (Recipro-CAM keeps only it).

``TailScorer`` is a ``scoring.ChunkedScorer`` whose chunk perturbs ``batch_size`` units of one
image's feature map, runs the model's tail on them and scores the result; ``TailCAM`` is
the base class of such methods, running the model's tail (``Explainer.tail``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.request import Scoring
from tfscorecam.methods.scoring import ChunkedScorer, PerturbationCAM

UNITS = ("channel", "position")

Perturb = Callable[[Any, Any], Any]  # (acts (h, w, C), units (c,)) -> (c, ...)


def num_positions(activations: object) -> Any:
    """How many positions (cells) one image's feature map (h, w, C) or (d, h, w, C) has."""
    count = 1
    for size in ops.shape(activations)[:-1]:
        count = count * size
    return count


class TailScorer(ChunkedScorer):
    """Each selected unit's score from the model's tail (``tail``: a scoring -> the model
    from the target layer's output to the scored output) on the feature map perturbed at that
    unit.

    Args:
        unit: ``"channel"`` (scores weigh channels: the map is their weighted sum) or
            ``"position"`` (a score per cell of the feature map: the scores are the map).
        perturb: the perturbed feature maps (c, h, w, C) of one image's map (h, w, C) for
            ``c`` units.
        select: the units scored for one image's map (int32 indices: channels, or positions
            in row-major order).
        relative: score the relative drop (y - y_u) / y from the unperturbed score y
            (Ablation-CAM), instead of the perturbed score y_u itself (Recipro-CAM).
    """

    def __init__(
        self,
        input_shape: tuple,
        batch_size: int,
        tail: Callable[[Scoring], keras.Model],
        *,
        unit: str,
        perturb: Perturb,
        select: Callable[[Any], Any],
        relative: bool,
    ) -> None:
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        super().__init__(input_shape, batch_size)
        self.tail, self.unit, self.perturb = tail, unit, perturb
        self.select, self.relative = select, relative

    def selected(self, activations: object) -> Any:
        return self.select(ops.cast(ops.convert_to_tensor(activations), "float32"))

    def num_units(self, activations: object) -> Any:
        return ops.shape(activations)[-1] if self.unit == "channel" else num_positions(activations)

    def low_map(self, activations: object, weights: object) -> Any:
        if self.unit == "channel":
            return super().low_map(activations, weights)
        weights = ops.cast(weights, backend.widest_float())
        return ops.reshape(weights, (*ops.shape(activations)[:-1], -1))

    def chunk(self, scoring: Scoring) -> Callable:  # built once per scoring (``step``)
        tail, score = self.tail(scoring), scoring.fn

        def chunk(image, acts, units, params):
            perturbed = score(tail(self.perturb(acts, units), training=False), params)
            if not self.relative:
                return perturbed
            full = score(tail(acts[None], training=False), params)  # (1, K)
            return ops.divide_no_nan(full - perturbed, full)

        return chunk


class TailCAM(PerturbationCAM):
    """Base of the methods on ``TailScorer``: the target must be a (batch, h, w, C) feature map
    that every path to the output goes through (a clear error otherwise); only the model
    after it runs for the perturbed maps.

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``verbose``, ``score``: as
    ``PerturbationCAM``.
    """

    def __init__(
        self, model: keras.Model, layer: str | keras.layers.Layer | None = None, **options: Any
    ) -> None:
        super().__init__(model, layer, **options)
        if len(self._tapped.outputs) != 2 or self._reshape is not None:
            raise ValueError(
                f"{type(self).__name__} perturbs the layer's own output, which must be one "
                f"(batch, h, w, C) feature map; layer {self.layer_path!r} outputs "
                f"{len(self._tapped.outputs) - 1} tensor(s) of shape "
                f"{tuple(self._tapped.outputs[0].shape)}, made a map by reshape: choose a conv "
                "layer"
            )
        self.tail(self.scorings.class_scoring)  # a model it cannot split fails here

    def tail_scorer(self, unit: str, perturb: Perturb, select: Callable, relative: bool):
        """This explainer's ``TailScorer`` for ``unit``."""
        return TailScorer(
            self.input_shape,
            self.batch_size,
            self.tail,
            unit=unit,
            perturb=perturb,
            select=select,
            relative=relative,
        )
