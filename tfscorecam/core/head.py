"""How the model's output becomes the per-class score that weighs a channel.

The head kind says what the model's output already is:

- ``"softmax"``: class probabilities (softmax already applied: never applied twice);
- ``"sigmoid"``: independent probabilities, e.g. a single-unit binary classifier;
- ``"logits"``: raw scores (linear last layer).

``"auto"`` reads it from the last layer's activation. Then ``score="probability"`` turns the
output into probabilities (softmax of logits, or sigmoid of a single logit: a single unit must
never go through a softmax, which would give every channel the weight 1), and
``score="logit"`` takes the pre-activation score, recovered from a softmax or sigmoid head
when its last layer is a ``Dense`` or a ``Softmax``/``Activation`` layer. The last layer is
looked for inside nested models too: a ``keras.applications`` backbone wrapped in a
``Sequential`` with a ``Rescaling`` layer in front ends in the backbone's ``predictions``.

Gradient methods differentiate ``gradient_head``: the logit where it can be recovered, else
(a head ending in some other layer) the log-probability, whose gradient is the logit's minus
the probability-weighted mean of all logits' gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core.model_graph import innermost_final_layer, without_final_layer

HEAD_KINDS = ("softmax", "sigmoid", "logits")
SCORES = ("probability", "logit")


@dataclass(frozen=True)
class ScoringHead:
    """A model to run masked inputs through and the transform of its output to scores.

    ``stripped``: ``model`` is the explained model without its innermost final layer
    (``model_graph.without_final_layer``), so a tap of the explained model must strip it too.
    ``columns``: where the transform is that layer's linear map, (output, classes) -> the
    chosen classes' scores alone, without computing the others.
    """

    kind: str
    num_classes: int
    model: keras.Model
    transform: Callable[[Any], Any]
    stripped: bool = False
    columns: Callable[[Any, Any], Any] | None = None

    def scores(self, output: Any, classes: Any) -> Any:
        """(batch, K) float32 scores of ``classes``: (K,) for every row, or (batch, K)."""
        if self.columns is not None:
            return self.columns(output, classes)
        scores = self.transform(output)
        if len(classes.shape) == 1:
            return ops.take(scores, classes, axis=1)
        return ops.take_along_axis(scores, classes, axis=1)


def _activation_name(layer: keras.layers.Layer) -> str | None:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", str(activation))
    return {"linear": "linear", "softmax": "softmax", "sigmoid": "sigmoid"}.get(name)


def detect_head(model: keras.Model) -> str:
    """Read the head kind ("softmax", "sigmoid" or "logits") from the model's last layer."""
    layer = innermost_final_layer(model)
    name = _activation_name(layer)
    if name is None:
        raise ValueError(
            f"cannot tell whether the model's last layer {layer.name!r} "
            f"({type(layer).__name__}) outputs probabilities or logits; pass "
            "head='softmax', 'sigmoid' or 'logits'"
        )
    return "logits" if name == "linear" else name


class NoLogitError(ValueError):
    """The pre-activation score of a probability head cannot be recovered."""


def _as_float(x: Any) -> Any:
    return ops.cast(x, "float32")


def _dense_logits(
    layer: keras.layers.Dense, x: Any, classes: Any = None
) -> Any:
    """The Dense layer's pre-activation scores of its input ``x``: all of them, or with
    ``classes`` ((K,), or (batch, K) per row) those alone, from the kernel columns gathered
    before the product (one column per explained class, not all of them)."""
    kernel, x = _as_float(layer.kernel), _as_float(x)
    bias = _as_float(layer.bias) if layer.use_bias else None
    if classes is None:
        z = ops.matmul(x, kernel)
    else:
        kernel = ops.take(kernel, classes, axis=1)  # (F, K) or (F, batch, K)
        per_row = len(classes.shape) == 2
        z = ops.einsum("nf,fnk->nk", x, kernel) if per_row else ops.matmul(x, kernel)
        bias = None if bias is None else ops.take(bias, classes)
    return z if bias is None else z + bias


def _pre_activation(model: keras.Model, kind: str, num_classes: int) -> ScoringHead:
    """The logit head of a probability model: the model without its final layer, and the
    transform from that layer's input to its pre-activation scores."""
    layer = innermost_final_layer(model)
    logit_model = without_final_layer(model)
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        return ScoringHead(kind, num_classes, logit_model, _as_float, True)
    if isinstance(layer, keras.layers.Dense):
        logits = functools.partial(_dense_logits, layer)  # all classes, or the given ones
        return ScoringHead(kind, num_classes, logit_model, logits, True, logits)
    raise NoLogitError(
        f"score='logit' needs the pre-activation scores, which cannot be recovered from the "
        f"last layer {layer.name!r} ({type(layer).__name__}); use score='probability', or "
        "end the model with a Dense or Softmax layer"
    )


def scoring_head(model: keras.Model, head: str = "auto", score: str = "probability") -> ScoringHead:
    """Build the model and transform that turn masked inputs into class scores."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    if head != "auto" and head not in HEAD_KINDS:
        raise ValueError(f"head must be 'auto' or one of {HEAD_KINDS}, got {head!r}")
    kind = detect_head(model) if head == "auto" else head
    output_shape = tuple(model.outputs[0].shape)
    if len(output_shape) != 2 or output_shape[-1] is None:
        raise ValueError(
            f"the model's output has shape {output_shape}; expected class scores "
            "(batch, num_classes)"
        )
    num_classes = int(output_shape[-1])
    if score == "probability":
        if kind == "logits" and num_classes == 1:
            return ScoringHead(kind, num_classes, model, lambda x: ops.sigmoid(_as_float(x)))
        if kind == "logits":
            softmax = lambda x: ops.softmax(_as_float(x), axis=-1)  # noqa: E731
            return ScoringHead(kind, num_classes, model, softmax)
        return ScoringHead(kind, num_classes, model, _as_float)
    if kind == "logits":
        return ScoringHead(kind, num_classes, model, _as_float)
    return _pre_activation(model, kind, num_classes)


def gradient_head(model: keras.Model, head: str = "auto") -> ScoringHead:
    """The class score gradient methods differentiate: the logit (``scoring_head(...,
    "logit")``) where it can be recovered, else the log-probability (see the module)."""
    try:
        return scoring_head(model, head, "logit")
    except NoLogitError:
        probability = scoring_head(model, head, "probability")
    tiny = float(np.finfo(np.float32).tiny)
    return ScoringHead(
        probability.kind,
        probability.num_classes,
        probability.model,
        lambda x: ops.log(ops.maximum(probability.transform(x), tiny)),
    )
