"""Classifiers wrapped the way users wrap them: a keras.applications backbone behind a
Rescaling layer, a head that ends in a layer whose logit cannot be recovered."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from references import gradient_cam, minmax, random_photo, resize_bilinear

import tfscorecam as tsc
from tfscorecam import targets

SIDE = 96


@pytest.fixture(scope="module")
def wrapped():
    """MobileNetV2 (random weights) with its preprocessing as a Rescaling layer in front."""
    keras.utils.set_random_seed(3)
    backbone = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(SIDE, SIDE, 3))
    model = keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            backbone,
        ]
    )
    return model, backbone


def _gradcam_reference(backbone, x: np.ndarray, class_index: int, log_probability=False):
    """Grad-CAM of the backbone's logit (or log-probability) by GradientTape and NumPy."""
    split = keras.Model(
        backbone.inputs[0],
        [backbone.get_layer("out_relu").output, backbone.get_layer("predictions").input],
    )
    dense = backbone.get_layer("predictions")
    with tf.GradientTape() as tape:
        acts, features = split(tf.constant(x[None]))
        logits = features @ dense.kernel + dense.bias
        score = (
            tf.nn.log_softmax(logits)[0, class_index] if log_probability else logits[0, class_index]
        )
    g = tape.gradient(score, acts)[0].numpy().astype(np.float64)
    a = acts[0].numpy().astype(np.float64)
    low = np.maximum(gradient_cam(a, g).sum(-1), 0)
    cam = resize_bilinear(low, SIDE, SIDE)
    return minmax(cam)


def test_gradient_methods_find_the_logit_inside_a_wrapped_backbone(wrapped):
    model, backbone = wrapped
    photo = random_photo(SIDE, SIDE).astype(np.float32)
    x = photo / 127.5 - 1
    probabilities = backbone(x[None]).numpy()[0]
    top = int(np.argmax(probabilities))
    reference = _gradcam_reference(backbone, x.astype(np.float32), top)
    result = tsc.explain(model, photo, "gradcam", verbose=0)
    assert result.class_index == top
    assert result.score == pytest.approx(float(probabilities[top]), rel=1e-4)
    np.testing.assert_allclose(tsc.GradCAM(model, verbose=0)(photo), reference, atol=1e-4)
    for how in (
        {"target": targets.classes(top)},
        {"class_index": top, "head": "softmax"},
    ):
        np.testing.assert_allclose(
            tsc.explain(model, photo, "gradcam", verbose=0, **how).heatmap,
            result.heatmap,
            atol=1e-5,
        )
    # a target is differentiated on the raw output as it is: here the probability
    lam = tsc.explain(model, photo, "gradcam", target=lambda out: out[:, top], verbose=0)
    assert lam.score == pytest.approx(float(probabilities[top]), rel=1e-4)
    for method in ("gradcam++", "layercam"):
        ours = tsc.explain(model, photo, method, verbose=0).heatmap
        same = tsc.explain(backbone, photo, method, verbose=0, preprocess=lambda v: v / 127.5 - 1)
        np.testing.assert_allclose(ours, same.heatmap, atol=1e-5)


def test_logit_score_of_a_wrapped_backbone_for_score_cam(wrapped):
    model, backbone = wrapped
    photo = random_photo(SIDE, SIDE, 1).astype(np.float32)
    ours = tsc.ScoreCAM(model, score="logit", max_channels=8, verbose=0)(photo)
    same = tsc.ScoreCAM(backbone, score="logit", max_channels=8, verbose=0)(photo / 127.5 - 1)
    np.testing.assert_allclose(ours, same, atol=1e-5)


def test_gradient_methods_fall_back_to_the_log_probability(wrapped):
    _, backbone = wrapped
    inp = keras.Input((SIDE, SIDE, 3))
    ends_in_lambda = keras.Model(inp, keras.layers.Lambda(lambda t: t * 1.0)(backbone(inp)))
    with pytest.raises(ValueError, match="use score='probability'"):
        tsc.ScoreCAM(ends_in_lambda, head="softmax", score="logit")
    # the advice of that message works as written
    tsc.ScoreCAM(ends_in_lambda, head="softmax", score="probability")
    x = (random_photo(SIDE, SIDE, 2) / 127.5 - 1).astype(np.float32)
    top = int(np.argmax(backbone(x[None])[0]))
    maps = tsc.GradCAM(ends_in_lambda, head="softmax", verbose=0)(x)
    np.testing.assert_allclose(
        maps, _gradcam_reference(backbone, x, top, log_probability=True), atol=1e-4
    )
