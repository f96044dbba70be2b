"""tfscorecam: faithful, fast Score-CAM, Augmented Score-CAM and their family for any Keras 3
model, on TensorFlow, JAX or PyTorch.

Names are imported on first use (PEP 562), so ``import tfscorecam`` and the command line
start without loading TensorFlow until it is needed.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from tfscorecam.core.install import backend_missing
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
    "overlay": "tfscorecam.interfaces.explanation",
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


class _PublicModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``from tfscorecam.dataset import read_results`` (any public module name of
    ``_MODULES`` that is not the path of its module) imports that module: the public names
    work in an import statement as they do as attributes."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        public = fullname.removeprefix(f"{__name__}.")
        if public == fullname or _MODULES.get(public, fullname) == fullname:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(_MODULES[spec.name.removeprefix(f"{__name__}.")])

    def exec_module(self, module) -> None:
        """The module is already imported: only its own spec, which the import system has
        just replaced by the public name's, is put back."""
        module.__spec__ = importlib.util.spec_from_file_location(module.__name__, module.__file__)


if not any(isinstance(finder, _PublicModules) for finder in sys.meta_path):
    sys.meta_path.append(_PublicModules())


def __getattr__(name: str):
    try:
        if name in _CLASSES:
            value = getattr(importlib.import_module(_CLASSES[name]), name)
        elif name in _MODULES:
            value = importlib.import_module(_MODULES[name])
        else:
            raise AttributeError(f"module 'tfscorecam' has no attribute {name!r}")
    except ImportError as error:  # Keras' backend not installed: say which, and the fix
        raise (backend_missing(error) or error) from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
