"""Keras 2 models (``tf_keras``, or ``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``).

tfscorecam works on Keras 3 graphs. A Keras 2 model is converted once through its HDF5 save:
saved to a temporary ``.h5`` file by tf_keras and read back by Keras 3, then checked to give
the same predictions as the original on a random input. Keras 3 reads most Keras 2 layers;
its reader rejects the ``groups`` argument tf_keras writes for ``DepthwiseConv2D`` (always 1
there) and the one-element list ``axis`` that a built tf_keras ``BatchNormalization`` writes
(``[3]``, in every keras.applications backbone), so the saved config is mended before it is
read (``_readable``). A model Keras 3 cannot read (custom layers, layer names
with "/", ...) gets an error that says how to convert it by hand.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

HOW_TO_CONVERT = (
    "Convert it by hand: build the same architecture with Keras 3 (`import keras`, e.g. "
    "keras.applications.DenseNet121(weights=None)) and copy the weights with "
    "new_model.set_weights(old_model.get_weights())"
)


def _readable(config: Any) -> Any:
    """A Keras 2 model config (parsed JSON) as Keras 3's reader takes it, nested models
    included: ``DepthwiseConv2D`` without ``groups``, ``BatchNormalization``'s ``[axis]`` as
    ``axis``, a functional model's one input or output as itself, not a list of one (which
    Keras 3 reads as a list output, and a layer after it as called on a list)."""
    if isinstance(config, list):
        return [_readable(item) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: _readable(value) for key, value in config.items()}
    layer = config.get("config")
    if isinstance(layer, dict):
        if config.get("class_name") == "DepthwiseConv2D":
            layer.pop("groups", None)
        for ends in ("input_layers", "output_layers"):
            one = layer.get(ends)
            if isinstance(one, list) and len(one) == 1 and isinstance(one[0], list):
                layer[ends] = one[0]
        axis = layer.get("axis")
        if config.get("class_name") == "BatchNormalization" and isinstance(axis, list):
            layer["axis"] = axis[0] if len(axis) == 1 else axis
    return config


def is_keras2(model: object) -> bool:
    """Whether ``model`` is a Keras 2 (tf_keras) model, subclassed ones included."""
    keras2 = any(k.__module__.startswith("tf_keras") for k in type(model).__mro__)
    return keras2 and hasattr(model, "get_weights")


def _is_graph_model(model: Any) -> bool:
    """Whether a Keras 2 model is functional or Sequential (has a graph of layers)."""
    return any(k.__name__ in ("Functional", "Sequential") for k in type(model).__mro__)


def saved_by_keras2(path: str | Path) -> bool:
    """Whether the ``.h5`` file at ``path`` holds a model saved by Keras 2 (tf_keras)."""
    with h5py.File(path, "r") as file:
        version = file.attrs.get("keras_version", "")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return version.startswith("2.")


def load_keras2_h5(path: str | Path) -> keras.Model:
    """A Keras 3 model from a ``.h5`` model file saved by Keras 2: its config mended
    (``_readable``) in a temporary copy, then read by Keras 3 with its weights."""
    with tempfile.TemporaryDirectory() as folder:
        mended = Path(folder) / "model.h5"
        shutil.copyfile(path, mended)
        with h5py.File(mended, "r+") as file:
            saved = json.loads(file.attrs["model_config"])
            file.attrs["model_config"] = json.dumps(_readable(saved))
        return keras.models.load_model(mended, compile=False)


def as_keras3(model: Any) -> Any:
    """``model`` itself, or for a Keras 2 model its Keras 3 copy (made once per model)."""
    if not is_keras2(model):
        return model
    if model in _converted:
        return _converted[model]
    name = type(model).__name__
    if not _is_graph_model(model):
        raise TypeError(
            f"{name} is a subclassed Keras 2 (tf_keras) model: it has no graph of layers to "
            "convert to Keras 3 or to take a layer's output from. Build the same network as a "
            "functional or Sequential Keras 3 model (`import keras`) and copy the weights with "
            "new_model.set_weights(old_model.get_weights())"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.h5"
        try:
            with warnings.catch_warnings():  # tf_keras calls its own .h5 format legacy
                warnings.simplefilter("ignore", UserWarning)
                model.save(path)
            copy = load_keras2_h5(path)
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
