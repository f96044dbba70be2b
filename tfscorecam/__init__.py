"""tfscorecam: faithful, fast Score-CAM and Augmented Score-CAM for Keras CNNs.

Names are imported on first use (PEP 562), so ``import tfscorecam`` and the command line
start without loading TensorFlow until it is needed.
"""

import importlib

from tfscorecam.methods import METHODS
from tfscorecam.version import __version__

_CLASSES = {
    **{method.class_name: method.module for method in METHODS.values()},
    "Explanation": "tfscorecam.interfaces.explanation",
    "Explanations": "tfscorecam.interfaces.explanation",
    "Explainer": "tfscorecam.core.explainer",
    "CAM": "tfscorecam.core.explainer",
    "explain": "tfscorecam.interfaces.explanation",
    "plot_comparison": "tfscorecam.interfaces.explanation",
}
_MODULES = {  # public name -> module
    "augment": "tfscorecam.methods.augmented.augment",
    "dataset": "tfscorecam.interfaces.dataset",
    "embeddings": "tfscorecam.core.embeddings",
    "images": "tfscorecam.interfaces.images",
    "maps": "tfscorecam.core.maps",
    "methods": "tfscorecam.methods",
    "metrics": "tfscorecam.metrics",
    "serving": "tfscorecam.interfaces.serving",
    "superres": "tfscorecam.methods.augmented.superres",
    "targets": "tfscorecam.core.targets",
    "tokens": "tfscorecam.core.tokens",
    "zoo": "tfscorecam.zoo",
}

__all__ = [*_CLASSES, *_MODULES, "__version__"]


def __getattr__(name: str):
    if name in _CLASSES:
        value = getattr(importlib.import_module(_CLASSES[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'tfscorecam' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
