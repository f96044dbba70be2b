"""Models with several inputs: one image input explained, the others held fixed.

An explainer of a model with inputs ``{"image": ..., "depth": ...}`` (or image + tabular
features) explains one image input; every other input is fed, for each image, the value the
caller gives for that image, unchanged while the image is masked or differentiated. The
explainer works on a one-input view: the model called on the image and on a ``FixedInput``
layer per other input, which holds that image's value in a variable and repeats it over the
batch, so the compiled steps are traced once and read each image's value when they run
(TensorFlow's ``tf.function`` and PyTorch's eager steps do; ``jax.jit`` would bake the first
value in, so JAX refuses these models).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core import backend


class FixedInput(keras.layers.Layer):
    """The value of one of the model's other inputs (a variable (1, ...)), repeated over the
    batch of the images it is called on."""

    def __init__(self, input_name: str, shape: tuple, dtype: str, **kwargs: Any) -> None:
        super().__init__(name=f"fixed_{input_name}", **kwargs)
        self.input_name = input_name
        self.value_shape = tuple(shape)
        self.value = self.add_weight(
            shape=(1, *self.value_shape),
            initializer="zeros",
            dtype=dtype,
            trainable=False,
            name="value",
        )

    def call(self, images: Any) -> Any:
        return ops.broadcast_to(self.value, (ops.shape(images)[0], *self.value_shape))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.value_shape)


def _input_names(model: keras.Model) -> list[str]:
    """The name each input answers to: its dict key, else its Input layer's name."""
    struct = getattr(model, "_inputs_struct", None)
    if isinstance(struct, dict):
        keys = {id(tensor): key for key, tensor in struct.items()}
        return [keys.get(id(t), t._keras_history.operation.name) for t in model.inputs]
    return [t._keras_history.operation.name for t in model.inputs]


def value_for(model: keras.Model, name: str, values: np.ndarray, index: int, count: int) -> Any:
    """Image ``index``'s value of input ``name`` from ``values``: one value of that input's
    shape for every image, or ``count`` of them (one per image, in order)."""
    names = _input_names(model)
    if name not in names:
        raise ValueError(f"the model has no input {name!r}; its inputs: {', '.join(names)}")
    shape = tuple(model.inputs[names.index(name)].shape[1:])
    return per_image(name, shape, values, count)[index]


def per_image(name: str, shape: tuple, values: object, count: int) -> np.ndarray:
    """``values`` of input ``name`` as (count, *shape): ``count`` values, or one for all."""
    array = np.asarray(values)
    if array.shape == shape:
        array = np.broadcast_to(array, (count, *shape))
    if array.shape != (count, *shape):
        raise ValueError(
            f"input {name!r} takes {shape} per image: give {count} of them "
            f"({(count, *shape)}) or one for all, got shape {array.shape}"
        )
    return array


def explained_input(model: keras.Model, name: str | None) -> int:
    """The position of the image input to explain: ``name``, or the one 4-D (or 5-D)
    input."""
    names = _input_names(model)
    if name is not None:
        if name not in names:
            raise ValueError(f"the model has no input {name!r}; its inputs: {', '.join(names)}")
        return names.index(name)
    images = [i for i, t in enumerate(model.inputs) if len(t.shape) in (4, 5)]
    if len(images) != 1:
        found = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, model.inputs, strict=True))
        raise ValueError(
            f"the model has {len(model.inputs)} inputs ({found}) and {len(images)} of them "
            "are images (batch, H, W, C) or volumes (batch, D, H, W, C); pass input= "
            "(command line: --input) to name the one to explain"
        )
    return images[0]


def image_view(
    model: keras.Model, name: str | None, shapes: dict | None = None
) -> keras.Model:
    """A one-input model over ``model``: its image input ``name`` (None: the one image input)
    and a ``FixedInput`` for each other input, of its declared shape or, where that varies,
    of the shape ``shapes`` gives it by name; outputs as ``model``'s."""
    if backend.name() == "jax":
        raise ValueError(
            "models with several inputs are explained on TensorFlow and PyTorch: jax.jit "
            "would keep the other inputs' first values in its compiled steps; run with "
            "KERAS_BACKEND=tensorflow or torch"
        )
    index = explained_input(model, name)
    names = _input_names(model)
    source = model.inputs[index]
    if len(source.shape) not in (4, 5):
        raise ValueError(
            f"input {names[index]!r} has shape {tuple(source.shape)}; the explained input "
            "must be images (batch, height, width, channels) or volumes (batch, depth, "
            "height, width, channels)"
        )
    images = keras.Input(batch_shape=source.shape, dtype=source.dtype, name=names[index])
    shapes = _checked_shapes(shapes, model, names, index)
    fed = []
    for i, (tensor, input_name) in enumerate(zip(model.inputs, names, strict=True)):
        if i == index:
            fed.append(images)
            continue
        shape = shapes.get(input_name, tuple(tensor.shape[1:]))
        if any(size is None for size in shape):
            raise ValueError(
                f"input {input_name!r} has shape {tuple(tensor.shape)}: its size varies; pass "
                f"input_shapes={{{input_name!r}: (...)}}, the shape of one value after the "
                "batch axis (e.g. a SAM's points: (1, 2) for one point)"
            )
        fed.append(FixedInput(input_name, shape, tensor.dtype)(images))
    struct = getattr(model, "_inputs_struct", None)
    arguments = dict(zip(names, fed, strict=True)) if isinstance(struct, dict) else fed
    return keras.Model(images, model(arguments), name=f"{model.name}_on_{names[index]}")


def _checked_shapes(shapes: object, model: keras.Model, names: list, index: int) -> dict:
    """``input_shapes`` as {name: shape tuple}, each fitting the input's declared shape."""
    if shapes is None:
        return {}
    if not isinstance(shapes, dict):
        raise TypeError(f"input_shapes must be a dict from input names to shapes, got {shapes!r}")
    checked = {}
    for name, shape in shapes.items():
        if name not in names or names.index(name) == index:
            others = [n for i, n in enumerate(names) if i != index]
            raise ValueError(f"input_shapes names {name!r}; the held inputs are {others}")
        declared = tuple(model.inputs[names.index(name)].shape[1:])
        shape = tuple(shape)
        if len(shape) != len(declared) or any(
            not isinstance(s, (int, np.integer)) or s < 0 or (d is not None and s != d)
            for s, d in zip(shape, declared, strict=True)
        ):
            raise ValueError(
                f"input_shapes[{name!r}] = {shape} does not fit the input's shape {declared} "
                "(after the batch axis; None where any size goes)"
            )
        checked[name] = tuple(int(s) for s in shape)
    return checked


def fixed_inputs(view: keras.Model) -> dict[str, FixedInput]:
    """The ``FixedInput`` layers of a view, by the input name they feed."""
    return {
        layer.input_name: layer for layer in view.layers if isinstance(layer, FixedInput)
    }


def check_values(fixed: dict[str, FixedInput], values: object, count: int) -> dict:
    """``values`` (a dict from each fixed input's name to N values, one per image, or one
    value for all) as arrays (N, ...), or a clear error."""
    if not fixed:
        if values is not None:
            raise ValueError("inputs= is for models with several inputs; this model has one")
        return {}
    if not isinstance(values, dict) or set(values) != set(fixed):
        given = (
            sorted(values)
            if isinstance(values, dict)
            else "none" if values is None else type(values).__name__
        )
        raise ValueError(
            f"the model's other inputs {sorted(fixed)} need values: pass inputs= a dict with "
            f"exactly those names (command line: --feed NAME=FILE.npy for each) (got {given})"
        )
    return {
        name: per_image(name, layer.value_shape, values[name], count)
        for name, layer in fixed.items()
    }


def split_model_inputs(view: keras.Model, images: object, inputs: object) -> tuple:
    """``(images, inputs)`` from a call given the model's own input dict (``{"image": x,
    "meta": m}``, as the model is called): the explained image input by its name, the others
    as ``inputs``; anything else passes unchanged."""
    if not isinstance(images, dict):
        return images, inputs
    name = _input_names(view)[0]
    if name not in images:
        raise ValueError(
            f"the input dict has no {name!r}, the explained image input (keys: "
            f"{', '.join(map(str, images))}); name it, or choose another with input="
        )
    if inputs is not None:
        raise ValueError("give the other inputs in the dict or as inputs=, not both")
    others = {key: value for key, value in images.items() if key != name}
    return images[name], others or None


def bind(fixed: dict[str, FixedInput], values: dict, index: int) -> None:
    """Set every fixed input to image ``index``'s value."""
    for name, layer in fixed.items():
        layer.value.assign(np.asarray(values[name][index : index + 1], layer.value.dtype))


def row(per_image: object, index: int) -> object:
    """Image ``index``'s part of a call's ``class_index`` or ``target`` for a batch of N > 1
    images, as the argument for that image alone in a batch of one: classes given per image
    (N ints, or N rows of K) give that image's row, a list of targets its target; one class,
    one target or ``targets.top_k`` is shared."""
    if isinstance(per_image, np.ndarray):
        return per_image[index : index + 1]
    if isinstance(per_image, (list, tuple)):
        numbers = all(isinstance(v, (int, np.integer, list, tuple, np.ndarray)) for v in per_image)
        return np.asarray(per_image)[index : index + 1] if numbers else [per_image[index]]
    return per_image
