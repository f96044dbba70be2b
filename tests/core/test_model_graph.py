"""The model view, the layer choice and the model tap (``core/model_view.py``,
``layer_choice.py``, ``model_graph.py``): one graph re-run with taps, on nested, wrapped,
shared-layer, dict-output and Keras 2 models. Every tapped value is compared with the same
value computed layer by layer in the test."""

import keras
import numpy as np
import pytest

from tfscorecam.core.layer_choice import resolve_layer
from tfscorecam.core.model_graph import input_of, tail, tap, without_final_layer
from tfscorecam.core.model_view import select_output

X = np.random.default_rng(0).uniform(-1, 1, (2, 12, 12, 3)).astype("float32")


def _backbone() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    outputs = keras.layers.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name="backbone")


def _wrapped() -> tuple[keras.Model, keras.Model]:
    """A functional wrapper: Rescaling, then the backbone, then nothing else."""
    backbone = _backbone()
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(0.5, offset=0.25, name="rescale")(inputs)
    return keras.Model(inputs, backbone(x), name="wrapper"), backbone


def _by_hand(backbone: keras.Model, x: np.ndarray, upto: str) -> np.ndarray:
    """The backbone run layer by layer up to and including ``upto``."""
    for layer in backbone.layers[1:]:
        x = layer(x)
        if layer.name == upto:
            break
    return keras.ops.convert_to_numpy(x)


def test_tap_of_a_backbone_nested_in_a_sequential():
    backbone = _backbone()
    model = keras.Sequential([keras.Input((12, 12, 3)), backbone, keras.layers.Dense(2)])
    path, chain, _ = resolve_layer(model, "conv_b")
    assert path == "backbone/conv_b" and [layer.name for layer in chain] == ["backbone", "conv_b"]
    acts, out = tap(model, chain)(X)
    np.testing.assert_allclose(acts, _by_hand(backbone, X, "conv_b"), atol=1e-6)
    np.testing.assert_allclose(out, model(X), atol=1e-6)


def test_tap_input_of_and_without_final_layer_of_a_wrapped_backbone():
    model, backbone = _wrapped()
    _, chain, _ = resolve_layer(model, "backbone/conv_a")
    scaled = X * 0.5 + 0.25
    acts, out = tap(model, chain)(X)
    np.testing.assert_allclose(acts, _by_hand(backbone, scaled, "conv_a"), atol=1e-6)
    np.testing.assert_allclose(out, model(X), atol=1e-6)
    np.testing.assert_allclose(input_of(model, chain[:1])(X), scaled, atol=1e-6)
    logits = _by_hand(backbone, scaled, "logits")
    np.testing.assert_allclose(without_final_layer(model)(X), logits, atol=1e-5)
    _, stripped = tap(model, chain, strip_final=True)(X)
    np.testing.assert_allclose(stripped, logits, atol=1e-5)


def test_after_runs_the_rest_of_the_model_from_the_feature_map():
    model, backbone = _wrapped()
    _, chain, _ = resolve_layer(model, "backbone/conv_a")
    acts = _by_hand(backbone, X * 0.5 + 0.25, "conv_a")
    np.testing.assert_allclose(tail(model, chain, False)(acts), model(X), atol=1e-6)
    logits = _by_hand(backbone, X * 0.5 + 0.25, "logits")
    np.testing.assert_allclose(tail(model, chain, True)(acts), logits, atol=1e-5)


def test_a_skip_connection_around_the_layer_is_refused_by_after():
    inputs = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(3, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(3, 3, padding="same", name="b")(a)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    _, chain, _ = resolve_layer(model, "b")
    acts, _ = tap(model, chain)(X)  # tapping is fine: only the tail is cut off
    assert acts.shape == (2, 12, 12, 3)
    with pytest.raises(ValueError, match="reached without passing through 'b'"):
        tail(model, chain, False)


def test_a_shared_layer_is_refused_with_how_often_it_is_called():
    inputs = keras.Input((12, 12, 3))
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    x = shared(keras.layers.Conv2D(3, 3, padding="same", name="first")(inputs))
    x = shared(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    chain = [model.get_layer("shared")]
    for build in (lambda: tap(model, chain), lambda: tail(model, chain, False)):
        with pytest.raises(ValueError, match="'shared' is called 2 times in the model"):
            build()


def test_a_dict_output_is_chosen_by_key_or_layer_name():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    cls = keras.layers.Dense(4, activation="softmax", name="cls_layer")(pooled)
    box = keras.layers.Dense(2, name="box_layer")(pooled)
    model = keras.Model(inputs, {"classes": cls, "box": box})
    for name in ("classes", "cls_layer"):
        view = select_output(model, name)
        np.testing.assert_allclose(view(X), model(X)["classes"], atol=1e-6)
    with pytest.raises(ValueError, match="pass output="):
        select_output(model)
    _, chain, _ = resolve_layer(select_output(model, "box"), "conv")
    _, out = tap(select_output(model, "box"), chain)(X)
    np.testing.assert_allclose(out, model(X)["box"], atol=1e-6)


def test_a_keras_2_model_is_tapped_through_its_keras_3_copy():
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((12, 12, 3))
    x = tf_keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    legacy = tf_keras.Model(inputs, tf_keras.layers.Dense(3, activation="softmax")(x))
    view = select_output(legacy)
    assert isinstance(view, keras.Model)
    _, chain, _ = resolve_layer(view, "conv")
    acts, out = tap(view, chain)(X)
    np.testing.assert_allclose(out, legacy(X).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts, legacy.get_layer("conv")(X).numpy(), atol=1e-5)
