"""Ready-to-explain models: a real ImageNet classifier that works offline, and keras.applications.

Each returns a ``ZooModel`` (``zoo.models``): the Keras model, the function that maps
display-range RGB images (0-255) to its input, its class names and input size. Class names
(``zoo.class_names``) and named preprocessings (``zoo.preprocessing``) are read by the command
line before TensorFlow loads, so this package imports ``zoo.models`` (and Keras) only when
one of its names is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfscorecam.zoo.models import (  # noqa: F401
        DATA,
        DEMO_IMAGE,
        ZooModel,
        efficientnet_lite0,
        imagenet_class_names,
        keras_application,
        load,
    )

_MODELS = (
    "DATA",
    "DEMO_IMAGE",
    "ZooModel",
    "efficientnet_lite0",
    "imagenet_class_names",
    "keras_application",
    "load",
)
__all__ = list(_MODELS)


def __getattr__(name: str) -> object:
    if name in _MODELS:
        return getattr(importlib.import_module("tfscorecam.zoo.models"), name)
    raise AttributeError(f"module 'tfscorecam.zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODELS])
