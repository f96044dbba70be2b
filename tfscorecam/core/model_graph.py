"""Finding the target layer of a Keras model and tapping its output.

A target layer is addressed by a *chain*: the list of layers from the outermost model down
to the layer itself (``[backbone, out_relu]`` for ``"mobilenetv2_1.00_224/out_relu"``).
Tapping builds a new Keras model over the same layers (weights shared, the user's model is
never modified) that returns the target layer's activations and the model's predictions from
one forward pass. This works for Sequential and functional models and for backbones nested
inside them, where a plain ``keras.Model(model.input, inner_layer.output)`` fails with
"Graph disconnected".

Explainers work on a *view* of the user's model: a new functional model over the same layers
with the one output being explained (``select_output``). Nothing keeps a reference to the
user's model object, so an explainer cached for a model never keeps that model alive.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

import keras
import numpy as np
from keras.src.models.functional import Functional

from tfscorecam.core.detectors import detection_view, detector_kind
from tfscorecam.core.embeddings import explains_embedding, image_embedding_view
from tfscorecam.core.inputs import image_view
from tfscorecam.core.legacy import as_keras3
from tfscorecam.core.tokens import Reshape, feature_grid

Chain = list  # list[keras.layers.Layer], outermost first


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


def walk_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, Chain]]:
    """Yield ``(path, chain)`` for every layer, descending into nested models, in order."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            for sub_path, sub_chain in walk_layers(layer, path + "/"):
                yield sub_path, [layer, *sub_chain]
        yield path, [layer]


def output_shape(layer: keras.layers.Layer) -> tuple | None:
    """The layer's symbolic output shape, or None if it has no single defined output."""
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return None


def _is_feature_map(shape: tuple | None, rank: int = 2) -> bool:
    """A (batch, h, w, C) map (``rank`` 3: (batch, d, h, w, C)) of more than one cell."""
    if shape is None or len(shape) != rank + 2:
        return False
    cells = shape[1:-1]
    return None in cells or int(np.prod(cells)) > 1


# layers that only border a map, never a level of its own (Poly-CAM's levels)
BORDERS = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)


def finer_levels(model: keras.Model, chain: Chain) -> list[str]:
    """The paths of the layers whose maps are finer than the target layer's (chain[-1]): for
    each (h, w) larger than the target's, the last layer before it with a (batch, h, w, C)
    output of that size, from the first layer with a kernel on (a convolution: not the
    preprocessing in front of it, even a ``Normalization`` with weights), in the model's
    order, nested models descended into; padding and cropping layers are not levels. This is
    the official Poly-CAM code's discovery (the last layer before each change of size) in
    Keras terms. Empty for a target that is not a 4-D feature map."""
    target = _map_cells(output_shape(chain[-1]))
    if target is None:
        return []
    found: dict[tuple, str] = {}
    started = False
    for path, layer_chain in walk_layers(model):
        layer = layer_chain[-1]
        if layer is chain[-1]:
            break
        started = started or _has_kernel(layer)
        cells = _map_cells(output_shape(layer))
        if started and not isinstance(layer, (keras.Model, *BORDERS)) and cells is not None:
            if cells[0] * cells[1] > target[0] * target[1]:
                found[cells] = path  # the last of its size, at its size's first place
    return list(found.values())


def _has_kernel(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` computes with a learnt kernel (a convolution or a dense layer), not
    only with statistics (a ``Normalization`` in front of a backbone has weights too)."""
    try:
        return getattr(layer, "kernel", None) is not None
    except (AttributeError, ValueError):  # a layer whose kernel is not built
        return False


def _map_cells(shape: tuple | None) -> tuple[int, int] | None:
    """(h, w) of a (batch, h, w, C) map of known size, else None."""
    if not _is_feature_map(shape) or shape is None or None in shape[1:3]:
        return None
    return int(shape[1]), int(shape[2])


def spatial_rank(model: keras.Model) -> int:
    """2 for a model on images (batch, H, W, C), 3 on volumes or video (batch, D, H, W, C)."""
    return len(model.inputs[0].shape) - 2


def _is_token_grid(shape: tuple | None, image_size: tuple) -> bool:
    if shape is None or len(shape) != 3:
        return False
    try:
        feature_grid(shape, image_size, None)
    except ValueError:
        return False
    return True


def _calls(container: keras.Model, layer: keras.layers.Layer) -> int:
    """How many times ``container``'s own graph calls ``layer`` (1 for a Sequential)."""
    depths = getattr(container, "_nodes_by_depth", None)
    if depths is None:
        return 1
    return sum(node.operation is layer for nodes in depths.values() for node in nodes)


def explainable_layers(model: keras.Model) -> list[tuple[str, Chain]]:
    """All (path, chain) whose layer outputs a feature map of more than one cell (4-D; for a
    model on volumes, 5-D), or tokens that fit an image model's patch grid (no containers,
    and no layer shared by several calls, such as a detector's head run on every pyramid
    level)."""
    image_size, rank = tuple(model.inputs[0].shape[1:3]), spatial_rank(model)
    return [
        (path, chain)
        for path, chain in walk_layers(model)
        if not isinstance(chain[-1], keras.Model)
        and _calls(chain[-2] if len(chain) > 1 else model, chain[-1]) <= 1
        and (
            _is_feature_map(output_shape(chain[-1]), rank)
            or (rank == 2 and _is_token_grid(output_shape(chain[-1]), image_size))
        )
    ]


def _candidates_text(model: keras.Model, most: int = 30) -> str:
    """The names of the model's last ``most`` explainable layers, for an error message."""
    names = [path for path, _ in explainable_layers(model)]
    if len(names) > most:
        names = ["..."] + names[-most:]
    return ", ".join(names) if names else "(none)"


def _is_attention(layer: keras.layers.Layer) -> bool:
    """A multi-head attention layer, or a block (not a model) that contains one."""
    if isinstance(layer, keras.Model):
        return False
    return any(isinstance(sub, keras.layers.MultiHeadAttention) for sub in layer._flatten_layers())


# skipped by layer=None: they resample or pass on the map before them, adding nothing to it
SKIPPED = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.UpSampling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling3D,
    keras.layers.UpSampling3D,
    keras.layers.Resizing,
    keras.layers.Dropout,
)


def _dense_head_index(model: keras.Model, walked: list) -> int | None:
    """For a dense prediction model (output (batch, H, W, K): a segmenter, a depth model), the
    position in ``walked`` of its head: the last Conv2D or Dense giving K channels, else the
    first layer whose output has the prediction's shape; None for other models."""
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 4 or shape[-1] is None:
        return None
    shapes = [output_shape(chain[-1]) for _, chain in walked]
    classifiers = [
        i
        for i, (_, chain) in enumerate(walked)
        if isinstance(chain[-1], (keras.layers.Conv2D, keras.layers.Dense))
        and (shapes[i] or (None,))[-1] == shape[-1]
    ]
    if classifiers:
        return classifiers[-1]
    return next((i for i, found in enumerate(shapes) if found == shape), None)


def _is_pyramid(layer: keras.layers.Layer) -> bool:
    """A layer (not a model) whose output is a list of feature maps, e.g. a neck's levels."""
    try:
        levels = list(layer.output) if isinstance(layer.output, (list, tuple)) else []
    except (AttributeError, ValueError):
        return False
    return not isinstance(layer, keras.Model) and len(levels) > 1 and all(
        _is_feature_map(tuple(level.shape)) for level in levels
    )


def _default_layer(model: keras.Model) -> tuple[str, Chain]:
    """The layer explained when none is given (see ``resolve_layer``)."""
    walked = list(walk_layers(model))
    head = _dense_head_index(model, walked)
    attention = [chain[-1] for _, chain in walked if _is_attention(chain[-1])]
    if attention and head is None:  # a dense prediction reads its patch tokens at the end
        nodes = attention[-1]._inbound_nodes
        query = nodes[-1].input_tensors[0] if nodes and nodes[-1].input_tensors else None
        producer = query._keras_history.operation if query is not None else None
        image_size = tuple(model.inputs[0].shape[1:3])
        for path, chain in walked:
            if chain[-1] is producer and _is_token_grid(output_shape(producer), image_size):
                return path, chain
    before = walked if head is None else walked[:head]  # a dense prediction's features only
    kept_ids = {id(chain[-1]) for _, chain in before}
    candidates = [(p, c) for p, c in explainable_layers(model) if id(c[-1]) in kept_ids]
    rank = spatial_rank(model)
    maps = [(p, c) for p, c in candidates if _is_feature_map(output_shape(c[-1]), rank)]
    kept = [(p, c) for p, c in maps if not isinstance(c[-1], SKIPPED)]
    found = kept or maps or candidates
    if not found:
        raise ValueError(
            f"the model has no layer with a {_map_text(rank)} output of more than one cell "
            "or a (batch, tokens, channels) output that fits a patch grid, so there is no "
            "feature map to explain; pass layer= and reshape="
        )
    if head is not None:
        order = [chain[-1] for _, chain in walked]
        last = order.index(found[-1][1][-1])
        later = [path for path, chain in before[last + 1 :] if _is_pyramid(chain[-1])]
        if later:
            raise ValueError(
                f"the last features before the prediction are the levels of {later[-1]!r} "
                f"(a list of feature maps), not one map; layer=None would take "
                f"{found[-1][0]!r}, far before them. Pass layer={later[-1]!r} and "
                "reshape=lambda levels: levels[-1] (the level its head reads)"
            )
    return found[-1]


def resolve_layer(
    model: keras.Model,
    layer: str | keras.layers.Layer | None = None,
    reshape: Reshape | None = None,
) -> tuple[str, Chain, Reshape | None]:
    """Turn ``layer`` (None, a name, a "outer/inner" path or a Layer) into (path, chain,
    reshape): ``reshape`` maps the layer's output to a (batch, h, w, C) map (None: already one).

    ``None`` picks, for a transformer classifier (attention layers), the token input of its
    last attention layer (the last block's normalised tokens: the class score still depends on
    every patch token there; for a layer holding every block, as keras_hub's ViT and DINOv2
    encoders, that is the encoder's input, the patch embeddings); otherwise the last layer
    whose output is a 4-D feature map with spatial size > 1 (the last convolutional block
    before the head; for a dense prediction model, output (batch, H, W, K), the last before
    its classifier, the last Conv2D or Dense with K channels), not counting pooling,
    resampling and dropout layers: VGG16 is explained at ``block5_conv3``, the last conv's
    ReLU output, not at ``block5_pool`` after it, as the official Score-CAM code explains
    VGG16 (``features_29``, before the last max pool); failing that, the last layer whose
    tokens fit a patch grid.
    """
    if layer is None:
        path, chain = _default_layer(model)
    elif isinstance(layer, keras.layers.Layer):
        matches = [(p, c) for p, c in walk_layers(model) if c[-1] is layer]
        if not matches:
            raise ValueError(
                f"layer {layer.name!r} is not part of this model; candidate layers: "
                f"{_candidates_text(model)}"
            )
        path, chain = matches[0]
    elif isinstance(layer, str):
        path, chain = _resolve_name(model, layer)
    else:
        raise TypeError(f"layer must be None, a name or a keras Layer, got {type(layer).__name__}")
    shape, rank = output_shape(chain[-1]), spatial_rank(model)
    needs = f"Score-CAM needs a {_map_text(rank)} feature map of more than one cell"
    if reshape is None and len(shape or ()) == rank + 2 and not _is_feature_map(shape, rank):
        raise ValueError(
            f"layer {path!r} has output shape {shape}; {needs}. Candidate layers: "
            f"{_candidates_text(model)}"
        )
    try:
        grid = feature_grid(shape, tuple(model.inputs[0].shape[1:-1]), reshape)
    except ValueError as error:
        raise ValueError(
            f"layer {path!r} has {error}. {needs}. Candidate layers: "
            f"{_candidates_text(model)}"
        ) from None
    return path, chain, grid


def _map_text(rank: int) -> str:
    return "(batch, d, h, w, channels)" if rank == 3 else "4-D (batch, h, w, channels)"


def _resolve_name(model: keras.Model, name: str) -> tuple[str, Chain]:
    all_layers = list(walk_layers(model))
    exact = [(p, c) for p, c in all_layers if p == name]
    if exact:
        return exact[0]
    by_name = [(p, c) for p, c in all_layers if c[-1].name == name]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise ValueError(
            f"layer name {name!r} is ambiguous: {', '.join(p for p, _ in by_name)}; "
            "pass the full path"
        )
    close = difflib.get_close_matches(name, [p for p, _ in all_layers], n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    raise ValueError(
        f"no layer named {name!r}; {hint}the last feature maps: {_candidates_text(model, 8)} "
        "(layer=None takes the last)"
    )


def final_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer that produces the model's output (not descending into nested models)."""
    if isinstance(model, keras.Sequential):
        return model.layers[-1]
    return model.outputs[0]._keras_history.operation


def _rebuild(model: keras.Model, call) -> tuple:
    """Re-run the model's graph on a new input, with ``call(layer, *args, **kwargs)`` for each
    layer call; return (input, output). Layers (and weights) are shared, nothing is copied."""
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
        outputs = inputs
        for layer in model.layers:
            outputs = call(layer, outputs)
        return inputs, outputs
    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    # a nested model may return a structure (keras_hub backbones return dicts of levels), and
    # take several inputs (a multi-input model under its image view)
    structure = getattr(clone, "_outputs_struct", None)
    inputs = clone.inputs[0] if len(clone.inputs) == 1 else clone._inputs_struct
    return inputs, clone.outputs[0] if structure is None else structure


def _rerun(
    model: keras.Model, chain: list, strip_final: bool, tap_input: bool = False
) -> tuple[object, object, object]:
    """The one re-run of ``model``'s graph on a new input, layers (and weights) shared, with
    its taps: what chain[-1] outputs (or, with ``tap_input``, receives) is captured, and with
    ``strip_final`` the innermost final layer is skipped (its input is the output).
    Descends into the nested models on ``chain`` and into a nested final model. Returns
    (input, captured or None without ``chain``, output); a layer called more than once on the
    way is refused."""
    head, rest = (chain[0], chain[1:]) if chain else (None, [])
    final = final_layer(model) if strip_final else None
    captured = []

    def call(layer, *args, **kwargs):
        tapped, stripped = layer is head, layer is final
        if tapped and not rest:
            out = layer(*args, **kwargs)
            captured.append(args[0] if tap_input else out)
            return out
        if tapped or (stripped and isinstance(layer, keras.Model)):
            inner = _as_model(*_rerun(layer, rest if tapped else [], stripped, tap_input))
            out = inner(_one_input(args[0]), *args[1:], **kwargs)
            if tapped:
                captured.append(out[0])
                return out[1]
            return out
        return args[0] if stripped else layer(*args, **kwargs)

    inputs, outputs = _rebuild(model, call)
    if chain and len(captured) != 1:
        raise ValueError(
            f"layer {chain[-1].name!r} is called {len(captured)} times in the model; "
            "choose a layer that is used once"
        )
    return inputs, captured[0] if chain else None, outputs


def _one_input(value: object) -> object:
    """A nested model's input as the one tensor its re-run takes: keras_hub encoders are
    called with a dict of one entry (``{"images": x}``)."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.values()))
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


def _as_model(inputs: object, captured: object, outputs: object) -> keras.Model:
    """A re-run as a model: [captured, outputs], or outputs alone without a tap."""
    return keras.Model(inputs, outputs if captured is None else [captured, outputs])


def tap(
    model: keras.Model, chain: Sequence[keras.layers.Layer], strip_final: bool = False
) -> keras.Model:
    """A model with the same input returning ``[chain[-1] activations, model predictions]``;
    with ``strip_final`` the predictions are the input of the innermost final layer (see
    ``without_final_layer``)."""
    return _as_model(*_rerun(model, list(chain), strip_final))


def input_of(model: keras.Model, chain: Sequence[keras.layers.Layer]) -> keras.Model:
    """A model with the same input returning what chain[-1] receives (the values that reach a
    nested backbone, after the wrapper's own preprocessing layers). Only the layers in front
    of chain[-1] run: the rest of the graph is not part of it."""
    inputs, captured, _ = _rerun(model, list(chain), False, tap_input=True)
    return keras.Model(inputs, captured)


def after(
    model: keras.Model, chain: Sequence[keras.layers.Layer], strip_final: bool
) -> keras.Model:
    """The part of ``model`` that follows the target layer: a model from chain[-1]'s output to
    the model's output (with ``strip_final``, to the input of its innermost final layer, as
    ``without_final_layer``), over the same layers. It is the re-run with the outermost
    model on the chain tapped, cut at that tap, after the same cut inside it; a clear error
    when some path reaches the output without passing through the target layer."""
    rest = _after(model, list(chain), strip_final)
    if rest is None:
        raise ValueError(f"{chain[-1].name!r} is the model's output itself")
    return rest


def _after(model: keras.Model, chain: list, strip_final: bool) -> keras.Model | None:
    """``after``, or None where nothing follows the target layer (it is ``model``'s output,
    as a nested backbone's last layer is its own)."""
    head, rest = chain[0], chain[1:]
    _, captured, outputs = _rerun(model, [head], strip_final)
    inner = _after(head, rest, strip_final and head is final_layer(model)) if rest else None
    outer = None
    if outputs is not captured:
        try:
            outer = _unchecked(keras.Model(captured, outputs))
        except ValueError:
            raise ValueError(
                f"the model's output is reached without passing through {chain[-1].name!r} "
                "(a skip connection around it): choose a layer every path goes through, such "
                "as the last feature map before the pooling"
            ) from None
    if inner is None or outer is None:
        return inner or outer
    acts = keras.Input(batch_shape=inner.inputs[0].shape, dtype=inner.inputs[0].dtype)
    return _unchecked(keras.Model(acts, outer(inner(acts))))


def _unchecked(model: keras.Model) -> keras.Model:
    """``model`` without the check of its input against the shape the target layer declares:
    a layer can declare a wrong one (keras_hub's SigLIP embedding declares a class token it
    does not give), and the rest of the model runs on what the layer gives."""
    model.input_spec = None
    return model


def innermost_final_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer that produces the model's output, descending into nested models (the
    ``predictions`` Dense of a keras.applications backbone wrapped in a Sequential)."""
    layer = final_layer(model)
    while isinstance(layer, keras.Model):
        layer = final_layer(layer)
    return layer


def without_final_layer(model: keras.Model) -> keras.Model:
    """The model up to the input of its innermost final layer (e.g. the logits before a
    softmax), descending into a nested model that produces the output."""
    return _as_model(*_rerun(model, [], True))
