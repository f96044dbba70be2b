"""tfscorecam: faithful, fast Score-CAM and Augmented Score-CAM for Keras CNNs.

Names are imported on first use (PEP 562), so ``import tfscorecam`` and the command line
start without loading TensorFlow until it is needed.
"""

import importlib

__version__ = "0.1.0"

_CLASSES = {
    "AugmentedScoreCAM": "tfscorecam.augmented",
    "Explanation": "tfscorecam.explanation",
    "Explanations": "tfscorecam.explanation",
    "GradCAM": "tfscorecam.gradcam",
    "GradCAMPlusPlus": "tfscorecam.gradcam",
    "ISCAM": "tfscorecam.iscam",
    "LayerCAM": "tfscorecam.layercam",
    "SSCAM": "tfscorecam.sscam",
    "CAM": "tfscorecam.base",
    "ScoreCAM": "tfscorecam.scorecam",
    "explain": "tfscorecam.explanation",
    "plot_comparison": "tfscorecam.explanation",
}
_MODULES = (
    "augment",
    "dataset",
    "images",
    "maps",
    "methods",
    "metrics",
    "serving",
    "superres",
    "targets",
    "tokens",
    "zoo",
)

__all__ = [*_CLASSES, *_MODULES, "__version__"]


def __getattr__(name: str):
    if name in _CLASSES:
        value = getattr(importlib.import_module(_CLASSES[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"tfscorecam.{name}")
    else:
        raise AttributeError(f"module 'tfscorecam' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
