"""Every bad input gets a clear error that says what to do, and the model is left unchanged."""

import keras
import numpy as np
import pytest
from conftest import SIZE, build_classifier, images, subclassed_net

import tfscorecam as tsc


@pytest.fixture
def model():
    return build_classifier("softmax")


def _unchanged(model, before):
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.zeros((SIZE, SIZE)), ValueError, r"one image \(H, W, C\) or a batch"),
        (np.zeros((1, 1, SIZE, SIZE, 3)), ValueError, r"one image \(H, W, C\) or a batch"),
        (np.zeros((2, SIZE, SIZE, 4)), ValueError, "wrong channel count"),
        (np.zeros((2, SIZE + 1, SIZE, 3)), ValueError, "wrong size"),
        (np.zeros((0, SIZE, SIZE, 3)), ValueError, "empty batch"),
        (np.full((SIZE, SIZE, 3), np.nan), ValueError, "NaN or infinite"),
        (np.array([["a"]]), TypeError, "numeric array"),
    ],
)
def test_bad_images(model, bad, error, message):
    before = model.get_weights()
    with pytest.raises(error, match=message):
        tsc.ScoreCAM(model)(bad)
    _unchanged(model, before)


def test_non_finite_image_is_named(model):
    x = images(3)
    x[2, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"images \[2\]"):
        tsc.ScoreCAM(model)(x)


@pytest.mark.parametrize(
    "class_index, error, message",
    [
        (5, ValueError, r"out of range: the model has 5 classes \(0..4\)"),
        (-1, ValueError, "out of range"),
        ([0, 1, 2], ValueError, r"does not fit 2 image\(s\)"),
        (np.zeros((3, 2), int), ValueError, "does not fit"),
        (np.zeros((2, 2, 2), int), ValueError, "does not fit"),
        (1.5, TypeError, "class_index must be"),
        (True, TypeError, "class_index must be"),
        ("cat", TypeError, "class_index must be"),
        ([[0, 9]] * 2, ValueError, "out of range"),
    ],
)
def test_bad_class_index(model, class_index, error, message):
    with pytest.raises(error, match=message):
        tsc.ScoreCAM(model)(images(2), class_index=class_index)


def test_unknown_layer_lists_candidates(model):
    with pytest.raises(ValueError, match="no layer named 'nope'; the last feature maps: conv1, "):
        tsc.ScoreCAM(model, "nope")
    with pytest.raises(ValueError, match="no layer named 'targte'; did you mean 'target'"):
        tsc.ScoreCAM(model, "targte")
    big = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(96, 96, 3))
    with pytest.raises(ValueError) as error:  # about 100 candidates: the last 8, not a wall
        tsc.ScoreCAM(big, "block_16_projekt")
    text = str(error.value)
    assert "did you mean 'block_16_project'" in text and len(text) < 400, text


def test_layer_without_spatial_output(model):
    with pytest.raises(ValueError, match=r"'gap' has output shape \(None, 6\).*Candidate layers"):
        tsc.ScoreCAM(model, "gap")
    with pytest.raises(ValueError, match="not part of this model"):
        tsc.ScoreCAM(model, keras.layers.Conv2D(3, 3))
    with pytest.raises(TypeError, match="layer must be"):
        tsc.ScoreCAM(model, 3)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"max_channels": 0}, ValueError, "max_channels must be at least 1 and at most 6"),
        ({"max_channels": 7}, ValueError, "at most 6, got 7"),
        ({"max_channels": 2.0}, TypeError, "max_channels must be a positive integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"score": "logits"}, ValueError, "score must be one of"),
        ({"head": "relu"}, ValueError, "head must be 'auto' or one of"),
        ({"baseline": np.zeros((3, 3))}, ValueError, "does not broadcast"),
        ({"baseline": np.nan}, ValueError, "baseline contains NaN"),
    ],
)
def test_bad_options(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        tsc.ScoreCAM(model, **kwargs)


def test_models_we_cannot_handle():
    inputs = [keras.Input((SIZE, SIZE, 3)), keras.Input((SIZE, SIZE, 3))]
    x = keras.layers.Conv2D(2, 3)(keras.layers.Add()(inputs))
    two_inputs = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"2 inputs .* 2 of them are images .* pass input="):
        tsc.ScoreCAM(two_inputs)  # which one to explain is ambiguous

    inp = keras.Input((SIZE, SIZE, 3))
    y = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inp))
    two_outputs = keras.Model(inp, [keras.layers.Dense(2)(y), keras.layers.Dense(3)(y)])
    with pytest.raises(ValueError, match="1 inputs and 2 outputs"):
        tsc.ScoreCAM(two_outputs)

    with pytest.raises(TypeError, match="subclassed keras.Model.*functional or Sequential"):
        tsc.ScoreCAM(subclassed_net(keras))

    with pytest.raises(ValueError, match="has not been built"):
        tsc.ScoreCAM(keras.Sequential([keras.layers.Conv2D(2, 3)]))

    with pytest.raises(TypeError, match="expected a keras.Model"):
        tsc.ScoreCAM(lambda x: x)

    relu_head = keras.Sequential(
        [
            inp,
            keras.layers.Conv2D(2, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="relu"),
        ]
    )
    with pytest.raises(ValueError, match="pass head='softmax', 'sigmoid' or 'logits'"):
        tsc.ScoreCAM(relu_head)
    tsc.ScoreCAM(relu_head, head="logits")  # the user's word settles it


def test_logit_score_needs_a_recoverable_head():
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    x = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t)(x))
    with pytest.raises(ValueError, match="cannot be recovered from the last layer"):
        tsc.ScoreCAM(model, head="softmax", score="logit")
