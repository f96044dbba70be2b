"""Ablation-CAM against a NumPy reference written here (the tiny model's head is a global
average pool and a Dense layer, so the ablated scores are computed by hand)."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import SIZE, as_numpy, images, minmax, resize_bilinear, softmax

import tfscorecam as tsc


def _reference(model: keras.Model, image: np.ndarray, class_index: int, score: str):
    split = keras.Model(model.inputs[0], model.get_layer("target").output)
    a = as_numpy(split(image[None]))[0].astype(np.float64)  # (h, w, C)
    kernel, bias = (w.astype(np.float64) for w in model.get_layer("head").get_weights())

    def y(acts: np.ndarray) -> float:
        logits = acts.mean(axis=(0, 1)) @ kernel + bias
        return (logits if score == "logit" else softmax(logits))[class_index]

    full = y(a)
    weights = []
    for k in range(a.shape[-1]):
        ablated = a.copy()
        ablated[..., k] = 0.0
        weights.append((full - y(ablated)) / full)
    low = np.maximum(np.tensordot(a, np.array(weights), axes=1), 0)
    cam = resize_bilinear(low, SIZE, SIZE)
    return minmax(cam)


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_matches_reference(score):
    model = build_classifier("softmax")  # channel 0 is flat but not zero: it is ablated too
    x = images(3)
    cam = tsc.AblationCAM(model, "target", score=score, batch_size=4)
    maps = cam(x, class_index=[1, 4, 0])
    for image, cls, one in zip(x, [1, 4, 0], maps, strict=True):
        np.testing.assert_allclose(one, _reference(model, image, cls, score), atol=1e-4)
    np.testing.assert_allclose(
        tsc.AblationCAM(model, "target", score=score, batch_size=1)(x, class_index=[1, 4, 0]),
        maps,
        atol=1e-5,
    )


def test_channels_zero_everywhere_are_not_run():
    model = build_classifier("softmax")
    kernel, bias = model.get_layer("target").get_weights()
    kernel[..., 2], bias[2] = 0.0, 0.0  # channel 2 is 0 in every cell
    model.get_layer("target").set_weights([kernel, bias])
    cam = tsc.AblationCAM(model, "target", batch_size=2)
    acts, _ = cam.forward(images(1))
    assert 2 not in as_numpy(cam.scorer.selected(acts[0]))
    assert cam.scorer.num_chunks(acts[0]) == 3  # the 5 other channels, 2 per pass
    x = images(1)
    np.testing.assert_allclose(
        cam(x, class_index=3)[0], _reference(model, x[0], 3, "logit"), atol=1e-4
    )


def test_a_layer_bypassed_by_a_skip_connection_is_a_clear_error():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="branch")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(ValueError, match="without passing through 'branch'"):
        tsc.AblationCAM(model, "branch")
    tsc.AblationCAM(model, "add")  # every path goes through the sum


def test_the_rest_of_a_nested_model_equals_the_model():
    backbone = build_classifier(None)
    inputs = keras.Input((SIZE, SIZE, 3))
    logits = backbone(keras.layers.Rescaling(2.0)(inputs))
    wrapper = keras.Model(inputs, keras.layers.Softmax()(logits))
    cam = tsc.AblationCAM(wrapper, "tiny/target", score="probability")
    acts, outputs = cam.forward(images(2))
    rest = cam.tail(cam.scorings.of_classes())
    np.testing.assert_allclose(rest(acts), outputs, atol=1e-6)
