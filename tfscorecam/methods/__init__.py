"""The methods: the registry of every explainer, and the cache that lets ``explain()`` reuse
them.

``METHODS`` is the one list of methods: its name (the slug ``explain()``, the command line,
``explain_dataset`` and the tests use), its class, its display name and, for a method that
scores each channel with several masked passes, the option that counts them (the command
line's cost note reads it). Classes are
named as ``"module:Class"`` and imported on first use, so ``import tfscorecam`` reads this
module without loading NumPy or TensorFlow. Adding a method is its own module, one line here,
and its own reference test; ``tests/test_contract.py`` runs every method listed here through
the same checks (see ARCHITECTURE.md).

``cached_explainer`` keeps the explainers built for a model, per (method, layer, options), in
a ``weakref.WeakKeyDictionary`` keyed by the model: an explainer holds only a view over the
model's layers (``model_view.select_output``), never the model object, so when the user drops
the model its explainers go with it. A loop of ``explain()`` calls then traces its compiled
steps once.
"""

from __future__ import annotations

import importlib
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # this module is imported by the command line before TensorFlow
    import keras

    from tfscorecam.core.explainer import Explainer


class Method(NamedTuple):
    """A registered explainer."""

    path: str  # "module:Class"
    title: str  # display name
    passes: str | None = None  # the option that counts masked passes per channel, if any

    @property
    def class_name(self) -> str:
        return self.path.split(":")[1]

    @property
    def module(self) -> str:
        return self.path.split(":")[0]


METHODS: dict[str, Method] = {
    "scorecam": Method("tfscorecam.methods.scorecam:ScoreCAM", "Score-CAM"),
    "augmented": Method(
        "tfscorecam.methods.augmented.asc:AugmentedScoreCAM", "Augmented Score-CAM"
    ),
    "gradcam": Method("tfscorecam.methods.gradcam:GradCAM", "Grad-CAM"),
    "gradcam++": Method("tfscorecam.methods.gradcampp:GradCAMPlusPlus", "Grad-CAM++"),
    "iscam": Method("tfscorecam.methods.iscam:ISCAM", "IS-CAM", passes="num_samples"),
    "sscam": Method("tfscorecam.methods.sscam:SSCAM", "SS-CAM", passes="num_samples"),
    "layercam": Method("tfscorecam.methods.layercam:LayerCAM", "LayerCAM"),
    "hirescam": Method("tfscorecam.methods.hirescam:HiResCAM", "HiResCAM"),
    "xgradcam": Method("tfscorecam.methods.xgradcam:XGradCAM", "XGrad-CAM"),
    "eigencam": Method("tfscorecam.methods.eigencam:EigenCAM", "EigenCAM"),
    "ablationcam": Method("tfscorecam.methods.ablationcam:AblationCAM", "Ablation-CAM"),
    "reciprocam": Method("tfscorecam.methods.reciprocam:ReciproCAM", "Recipro-CAM"),
    "polycam": Method("tfscorecam.methods.polycam:PolyCAM", "Poly-CAM"),
}


PER_MODEL = 8  # explainers kept per model (least recently used dropped first)

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_method(method: str) -> None:
    """A clear error unless ``method`` is one of ``METHODS`` (without importing its class)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def make_explainer(model: keras.Model, method: str, layer=None, **options: Any) -> Explainer:
    """A new explainer for ``method`` (one of ``METHODS``)."""
    check_method(method)
    return method_class(method)(model, layer, **options)


def method_class(method: str) -> type[Explainer]:
    """The explainer class of ``method``."""
    entry = METHODS[method]
    return getattr(importlib.import_module(entry.module), entry.class_name)


def method_options(method: str) -> list[str]:
    """The keyword options ``method``'s class takes after ``model`` and ``layer`` (its own and
    those it passes on to its base classes)."""
    return list(method_class(method).option_defaults())


def _frozen(value: object) -> object:
    """A hashable stand-in for an option value; TypeError if it has none."""
    import numpy as np  # here: importing the registry must not load NumPy

    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", *sorted((k, _frozen(v)) for k, v in value.items()))
    hash(value)
    return value


def cached_explainer(model: keras.Model, method: str, layer=None, **options: Any) -> Explainer:
    """The explainer ``make_explainer`` would build, reused while ``model`` lives."""
    try:
        key = (method, _frozen(layer), _frozen(options))
        per_model = _cache.setdefault(model, OrderedDict())
    except TypeError:  # an unhashable option, or a model that cannot be weakly referenced
        return make_explainer(model, method, layer, **options)
    if key in per_model:
        per_model.move_to_end(key)
        return per_model[key]
    explainer = make_explainer(model, method, layer, **options)
    per_model[key] = explainer
    if len(per_model) > PER_MODEL:
        per_model.popitem(last=False)
    return explainer
