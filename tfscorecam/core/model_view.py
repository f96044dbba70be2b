"""The view of a user's model that an explainer works on, and the checks that refuse a model
it cannot explain.

Explainers work on a *view* of the user's model: a new functional model over the same layers
with the one output being explained (``select_output``), a Keras 2 model through its Keras 3
copy, a detector through its detections, a dual encoder through its image embedding, a model
of several inputs on its image input. Nothing keeps a reference to the user's model object,
so an explainer cached for a model never keeps that model alive.
"""

from __future__ import annotations

import keras
from keras.src.models.functional import Functional

from tfscorecam.core.detectors import detection_view, detector_kind
from tfscorecam.core.embeddings import explains_embedding, image_embedding_view
from tfscorecam.core.inputs import image_view
from tfscorecam.core.legacy import as_keras3


def check_model(model: keras.Model) -> None:
    """Raise a clear error for models we cannot explain (not Keras, subclassed, unbuilt,
    several inputs, non-image input)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if not isinstance(model, (Functional, keras.Sequential)):
        raise TypeError(
            f"{type(model).__name__} is a subclassed keras.Model: its layers have no symbolic "
            "graph to take the target layer's output from. Build it as a functional or "
            "Sequential model (e.g. `inp = keras.Input(shape); model = keras.Model(inp, "
            "subclassed(inp))` only works if its conv layers are themselves functional), or pass "
            "the functional backbone with its head layers as a Sequential."
        )
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ValueError(
            "the model has not been built: create it with keras.Input(shape=...) as first "
            "layer, or call model.build((None, H, W, C)) before explaining it"
        )
    if len(inputs) != 1:
        raise ValueError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; tfscorecam "
            "explains models with one image input. Wrap it in a keras.Model that takes the "
            "image and feeds the other inputs fixed values (e.g. keras.ops.ones_like)."
        )
    if len(inputs[0].shape) not in (4, 5):
        raise ValueError(
            f"the model's input has shape {tuple(inputs[0].shape)}; expected images "
            "(batch, height, width, channels), or volumes or video (batch, depth or time, "
            "height, width, channels)"
        )


def output_names(model: keras.Model) -> list[list[str]]:
    """For each of ``model.outputs``, the names it answers to: its dict key (a model built
    with a dict of outputs) and the name of the layer that produces it."""
    names = [[t._keras_history.operation.name] for t in model.outputs]
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        for key, tensor in struct.items():
            for index, output in enumerate(model.outputs):
                if output is tensor and key not in names[index]:
                    names[index].insert(0, key)
    return names


def select_output(
    model: keras.Model,
    output: str | int | None = None,
    input: str | None = None,
    input_shapes: dict | None = None,
) -> keras.Model:
    """A new functional model over the same layers that returns the one output to explain.

    ``output``: the output's name (its dict key, or the name of the layer producing it) or
    its index in ``model.outputs``; None for a model with one output. A Keras 2 (tf_keras)
    model is viewed through its Keras 3 copy (``legacy.as_keras3``). A keras_hub detector
    without ``output`` gives its detection output (``detectors.detection_view``), a dual
    encoder (CLIP, SigLIP) its image embedding (``embeddings.image_embedding_view``). A model
    with several inputs is viewed on its image input ``input`` (None: its one image input),
    the others held fixed (``inputs.image_view``; ``input_shapes``: the shapes of those whose
    size varies).
    """
    if output is None and detector_kind(model) is not None:
        model = detection_view(model)
    if explains_embedding(model, output):
        model = image_embedding_view(model)
    model = as_keras3(model)
    if isinstance(model, keras.Model) and len(getattr(model, "inputs", None) or []) > 1:
        model = image_view(model, input, input_shapes)
    elif input is not None or input_shapes is not None:
        raise ValueError(
            "input= and input_shapes= are for models with several inputs; this one has one"
        )
    check_model(model)
    outputs = model.outputs
    names = output_names(model)
    listed = ", ".join(n[0] for n in names)
    if output is None:
        if len(outputs) != 1:
            raise ValueError(
                f"the model has {len(model.inputs)} inputs and {len(outputs)} outputs "
                f"({listed}); pass output= (a name or an index; command line: --output) to "
                "choose the one to explain"
            )
        index = 0
    elif isinstance(output, bool) or not isinstance(output, (int, str)):
        raise TypeError(f"output must be a name or an index, got {output!r}")
    elif isinstance(output, int):
        if not -len(outputs) <= output < len(outputs):
            raise ValueError(
                f"output {output} is out of range: the model has {len(outputs)} outputs ({listed})"
            )
        index = output % len(outputs)
    else:
        matches = [i for i, n in enumerate(names) if output in n]
        if not matches:
            raise ValueError(f"the model has no output {output!r}; its outputs: {listed}")
        index = matches[0]
    return keras.Model(model.inputs[0], outputs[index], name=f"{model.name}_explained")


def spatial_rank(model: keras.Model) -> int:
    """2 for a model on images (batch, H, W, C), 3 on volumes or video (batch, D, H, W, C)."""
    return len(model.inputs[0].shape) - 2
