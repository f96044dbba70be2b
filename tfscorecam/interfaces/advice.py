"""Warnings, with the fix, for inputs that look wrong for the model.

A photo fed without the model's preprocessing is still classified, often confidently and
wrongly, and its map then explains the wrong class. ``explain()`` therefore warns
(``InputWarning``) when

- the values reaching a known ``keras.applications`` backbone (the model itself, or a backbone
  nested behind the wrapper's own layers such as ``Rescaling``) are far outside the range its
  preprocessing gives, e.g. 0-255 pixels for MobileNetV2, which expects [-1, 1];
- the model's top-1 probability on an image is below ``LOW_TOP1`` (a model with at least
  ``1 / LOW_TOP1`` classes), which is what an untrained model or a wrongly preprocessed image
  usually gives;
- a map is all zero or near-empty (``empty_map_advice``).

``input_warnings`` gathers them for each image of an explanation: every front door (``explain``,
the command line, the dataset workers) reports these warnings.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from tfscorecam.core.layer_choice import walk_layers
from tfscorecam.core.model_graph import input_of
from tfscorecam.core.targets import Regression

LOW_TOP1 = 0.1
# below this share of positive pixels a raw map is near-empty: real top-1 maps of every method
# keep at least 25% (EigenCAM; Grad-CAM 74%, Score-CAM 89%) on 533 ImageNet photos, negative
# regressions leave 0.6% to 8% (benchmarks/studies/near_empty_maps.py)
MIN_POSITIVE_SHARE = 0.10


class InputWarning(UserWarning):
    """An image or its preprocessing looks wrong for the model."""


# preprocessing of keras.applications families: name, (low, high) of its output
_RANGES = {
    "tf": (-1.0, 1.0),
    "caffe": (-123.68, 151.061),
    "torch": (-2.118, 2.64),
    "none": (0.0, 255.0),
}
_CAFFE = ("resnet50", "resnet101", "resnet152", "vgg16", "vgg19")
_TF = (
    "mobilenetv2_",
    "mobilenet_",
    "inception_v3",
    "inception_resnet_v2",
    "xception",
    "nasnet",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
)
_RESCALING_INSIDE = ("efficientnetb", "efficientnetv2", "convnext", "resnetrs", "regnet")


def _scheme(model: keras.Model) -> str | None:
    """The preprocessing a keras.applications model expects, from its name; None if unknown."""
    name = model.name.lower()
    if name.startswith(_RESCALING_INSIDE) or name.startswith("mobilenetv3"):
        first = [layer for layer in model.layers[:4] if not isinstance(layer, keras.InputLayer)]
        return "none" if any(isinstance(x, keras.layers.Rescaling) for x in first) else None
    if name in _CAFFE:
        return "caffe"
    if name.startswith("densenet"):
        return "torch"
    if name.startswith(_TF):
        return "tf"
    return None


def _backbone(model: keras.Model) -> tuple[str, list | None] | None:
    """(scheme, chain to the backbone; None: the model itself) of the first known backbone."""
    scheme = _scheme(model)
    if scheme is not None:
        return scheme, None
    for _, chain in walk_layers(model):
        inner = _scheme(chain[-1]) if isinstance(chain[-1], keras.Model) else None
        if inner is not None:
            return inner, chain
    return None


_probes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def range_advice(model: keras.Model, inputs: np.ndarray) -> str | None:
    """A warning text if ``inputs`` (fed to ``model``) reach a known backbone far outside the
    range of its preprocessing; None if they fit or no backbone is known."""
    if model not in _probes:
        found = _backbone(model)
        probe = input_of(model, found[1]) if found and found[1] else None
        _probes[model] = (found, probe)
    found, probe = _probes[model]
    if found is None:
        return None
    scheme, chain = found
    values = inputs if probe is None else np.asarray(probe(inputs, training=False))
    if _fits(values, scheme):
        return None
    name = chain[-1].name if chain else model.name
    low, high = float(np.min(values)), float(np.max(values))
    want_low, want_high = _RANGES[scheme]
    if chain and _fits(inputs, scheme):
        return (
            f"the images reach {name!r} with values in [{low:.3g}, {high:.3g}], but its "
            f"preprocessing ({scheme!r}) gives values in [{want_low:g}, {want_high:g}]: they "
            "were preprocessed twice, once before the model and once by its own layers in "
            f"front of {name!r} (e.g. Rescaling). Remove preprocess= (command line: "
            "--preprocess) and feed display-range images"
        )
    return (
        f"the images reach {name!r} with values in [{low:.3g}, {high:.3g}], but its "
        f"preprocessing ({scheme!r}) gives values in [{want_low:g}, {want_high:g}]: the "
        "explanation is likely of a wrong class. Pass the model's preprocessing, e.g. "
        "preprocess=keras.applications.<family>.preprocess_input (command line: "
        f"--preprocess {scheme})"
    )


def _fits(values: np.ndarray, scheme: str) -> bool:
    """Whether ``values`` look like the output of preprocessing ``scheme`` (a constant image
    always does: it tells nothing)."""
    low, high = float(np.min(values)), float(np.max(values))
    want_low, want_high = _RANGES[scheme]
    span = want_high - want_low
    return high == low or (
        high - low >= 0.05 * span
        and low >= want_low - 0.5 * span
        and high <= want_high + 0.5 * span
    )


def confidence_advice(top1: float, num_classes: int, what: str = "the image") -> str | None:
    """A warning text if the top-1 probability ``top1`` is low for ``num_classes`` classes."""
    if num_classes * LOW_TOP1 < 1 or top1 >= LOW_TOP1:
        return None
    return (
        f"the model's top-1 probability on {what} is only {top1:.3f}: check that the images get "
        "the model's preprocessing (preprocess=, command line: --preprocess); a class the model "
        "barely predicts is explained by little evidence"
    )


def positive_share(raw: np.ndarray) -> float:
    """The fraction of a raw (unscaled) map's pixels above zero: below
    ``MIN_POSITIVE_SHARE`` the map is near-empty, and min-max scaling would show its speck as
    a confident hot spot."""
    return float(np.mean(np.asarray(raw) > 0))


def linear_head_advice(explainer: Any) -> str | None:
    """Once per explainer: which reading of a linear output of two or more units was taken
    (class logits, their softmax explained), and the fix if it is a regression head; None for
    any other output, or when ``head=`` was given."""
    head = explainer.probability_head
    if explainer.head != "auto" or head is None or head.kind != "logits" or head.num_classes < 2:
        return None
    if explainer in _told:
        return None
    _told.add(explainer)
    return (
        f"the explained output is a linear layer of {head.num_classes} units, read as class "
        "logits (their softmax is explained); if it is a regression head, pass "
        "target=tfscorecam.targets.regression(i) (command line: --target regression:i); "
        "head='logits' (--head logits) says the logits reading is meant and silences this"
    )


_told: weakref.WeakSet = weakref.WeakSet()


def input_warnings(
    model: keras.Model,
    explainer: Any,
    x: np.ndarray,
    explained: Any,
    what: Sequence[str],
    target: object = None,
    top1: bool = False,
) -> list[list[str]]:
    """The warnings (``InputWarning`` texts) for each image of an explanation: values
    far outside a known backbone's range (``range_advice``, on every image of the
    batch), a low top-1 probability when ``top1`` (the top-1 class was explained), and an
    all-zero or near-empty map (less than ``MIN_POSITIVE_SHARE`` of its raw pixels
    above zero, which min-max scaling would show as a confident hot spot), with why and what
    to do."""
    batch_wide = range_advice(model, x)
    found: list[list[str]] = [[batch_wide] if batch_wide else [] for _ in what]
    top1 = top1 and target is None and explainer.probability_head is not None
    for n, name in enumerate(what):
        if top1:
            text = confidence_advice(
                float(explained.scores[n, 0]), explainer.probability_head.num_classes, name
            )
            found[n].extend([text] if text else [])
        for k in range(explained.maps.shape[1]):
            share = positive_share(explained.raw[n, k]) if explained.maps[n, k].any() else 0.0
            if share < MIN_POSITIVE_SHARE:
                found[n].append(empty_map_advice(name, int(explained.classes[n, k]), target, share))
    return found


def empty_map_advice(what: str, class_index: int, target: object, share: float = 0.0) -> str:
    """Why the map of ``what`` is all zero (``share`` 0) or near-empty (only ``share`` of its
    pixels above zero), and what to do."""
    one = target[0] if isinstance(target, (list, tuple)) and target else target
    explained = f"class {class_index}" if class_index >= 0 else f"target {one!r}"
    if class_index >= 0:
        fix = (
            "the model finds no evidence for this class at this layer (an untrained or wrongly "
            "preprocessed model often gives none): try another layer or method"
        )
    elif isinstance(one, Regression) and not one.negate:
        fix = (
            "the regression value is probably negative: explain its negative, "
            f"target=tfscorecam.targets.regression({one.index}, negate=True) (command line: "
            f"--target regression:{one.index}:negate), or subtract a baseline in a target of "
            "your own"
        )
    else:
        fix = (
            "if the score is negative, explain its negative (for a regression "
            "targets.regression(i, negate=True), command line --target regression:i:negate)"
        )
    state = (
        "is all zero"
        if share == 0
        else f"is near-empty: only {share:.2%} of it is above zero, and min-max scaling shows "
        "that speck as a confident hot spot"
    )
    return (
        f"the map of {what} for {explained} {state}: no part of the feature map adds "
        f"{'' if share == 0 else 'much '}positive evidence for it (the methods keep only "
        f"positive evidence) or the map is flat; {fix}"
    )
