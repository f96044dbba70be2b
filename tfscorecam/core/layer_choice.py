"""Choosing the target layer: every layer of a model by its path (nested models descended
into), the ones whose output is a feature map or a token grid, ``layer=None``'s choice, a name
or a Layer resolved with a clear error, and Poly-CAM's finer levels.

A target layer is addressed by a *chain*: the list of layers from the outermost model down
to the layer itself (``[backbone, out_relu]`` for ``"mobilenetv2_1.00_224/out_relu"``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import keras
import numpy as np

from tfscorecam.core.model_view import spatial_rank
from tfscorecam.core.tokens import Reshape, feature_grid

Chain = list  # list[keras.layers.Layer], outermost first


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
    return (
        not isinstance(layer, keras.Model)
        and len(levels) > 1
        and all(_is_feature_map(tuple(level.shape)) for level in levels)
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
            f"layer {path!r} has {error}. {needs}. Candidate layers: {_candidates_text(model)}"
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
