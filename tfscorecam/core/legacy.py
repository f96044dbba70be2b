"""Keras 2 models (``tf_keras``, or ``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``).

tfscorecam works on Keras 3 graphs. A Keras 2 model is converted once through its HDF5 save:
saved to a temporary ``.h5`` file by tf_keras and read back by Keras 3, then checked to give
the same predictions as the original on a random input. Keras 3 reads most Keras 2 layers;
its reader rejects the ``groups`` argument tf_keras writes for ``DepthwiseConv2D``, which is
dropped here (it is always 1 there). A model Keras 3 cannot read (custom layers, layer names
with "/", ...) gets an error that says how to convert it by hand.
"""

from __future__ import annotations

import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any

import keras
import numpy as np

_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

HOW_TO_CONVERT = (
    "Convert it by hand: build the same architecture with Keras 3 (`import keras`, e.g. "
    "keras.applications.DenseNet121(weights=None)) and copy the weights with "
    "new_model.set_weights(old_model.get_weights())"
)


class _DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """Keras 3's DepthwiseConv2D reading a Keras 2 config (which has ``groups=1``)."""

    def __init__(self, *args, groups: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)


def is_keras2(model: object) -> bool:
    """Whether ``model`` is a Keras 2 (tf_keras) model."""
    return type(model).__module__.startswith("tf_keras") and hasattr(model, "get_weights")


def as_keras3(model: Any) -> Any:
    """``model`` itself, or for a Keras 2 model its Keras 3 copy (made once per model)."""
    if not is_keras2(model):
        return model
    if model in _converted:
        return _converted[model]
    name = type(model).__name__
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.h5"
        try:
            with warnings.catch_warnings():  # tf_keras calls its own .h5 format legacy
                warnings.simplefilter("ignore", UserWarning)
                model.save(path)
            copy = keras.models.load_model(
                path, compile=False, custom_objects={"DepthwiseConv2D": _DepthwiseConv2D}
            )
        except Exception as error:  # whatever either Keras raises for a layer it cannot carry
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            raise TypeError(
                f"{name} is a Keras 2 (tf_keras) model, which Keras 3 cannot read from its .h5 "
                f"save ({type(error).__name__}: {first}). {HOW_TO_CONVERT}"
            ) from None
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else ()
    if shape and None not in shape:
        x = np.random.default_rng(0).uniform(0, 1, (1, *shape)).astype(np.float32)
        ours = [np.asarray(o) for o in keras.tree.flatten(copy(x, training=False))]
        theirs = [np.asarray(o) for o in keras.tree.flatten(model(x, training=False))]
        if len(ours) != len(theirs) or not all(
            np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(ours, theirs, strict=False)
        ):
            raise TypeError(
                f"{name} is a Keras 2 (tf_keras) model whose Keras 3 copy predicts "
                f"differently. {HOW_TO_CONVERT}"
            )
    _converted[model] = copy
    return copy
