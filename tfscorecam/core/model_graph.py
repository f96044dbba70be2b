"""Re-running a model's graph to tap the target layer: one forward pass that returns the
target layer's activations and the model's predictions, the part of the model after the layer,
what the layer receives, and the model without its final layer.

Tapping builds a new Keras model over the same layers (weights shared, the user's model is
never modified). This works for Sequential and functional models and for backbones nested
inside them (the nested models on the target's chain, ``layer_choice.Chain``, are re-run
too), where a plain ``keras.Model(model.input, inner_layer.output)`` fails with "Graph
disconnected".
"""

from __future__ import annotations

from collections.abc import Sequence

import keras


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


def tail(model: keras.Model, chain: Sequence[keras.layers.Layer], strip_final: bool) -> keras.Model:
    """The model's *tail*, the part that follows the target layer: a model from chain[-1]'s
    output to the model's output (with ``strip_final``, to the input of its innermost final
    layer, as ``without_final_layer``), over the same layers. It is the re-run with the outermost
    model on the chain tapped, cut at that tap, after the same cut inside it; a clear error
    when some path reaches the output without passing through the target layer."""
    found = _tail(model, list(chain), strip_final)
    if found is None:
        raise ValueError(f"{chain[-1].name!r} is the model's output itself")
    return found


def _tail(model: keras.Model, chain: list, strip_final: bool) -> keras.Model | None:
    """``tail``, or None where nothing follows the target layer (it is ``model``'s output,
    as a nested backbone's last layer is its own)."""
    head, rest = chain[0], chain[1:]
    _, captured, outputs = _rerun(model, [head], strip_final)
    inner = _tail(head, rest, strip_final and head is final_layer(model)) if rest else None
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
    does not give), and the tail runs on what the layer gives."""
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
