"""The cascading randomisation check, against the same steps done by hand here."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build_classifier
from references import SIZE, images
from scipy import stats

import tfscorecam as tsc
from tfscorecam import metrics


def _gradcam(model):
    return tsc.GradCAM(model, "target", verbose=0)


def test_matches_the_cascade_done_by_hand():
    model = build_classifier("softmax", flat_channel=False, deep_head=True)
    before = [w.copy() for w in model.get_weights()]
    x = images(3)
    check = metrics.randomisation_check(_gradcam, model, x, seed=3, keep=2)
    assert check.layers == ["head", "after", "target", "conv1"]  # top first, weighted only
    assert check.original.shape == (2, SIZE, SIZE) and check.maps.shape == (4, 2, SIZE, SIZE)
    for w, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, b)  # the trained model is untouched

    classes = np.argmax(model(x), axis=1)
    original = _gradcam(model)(x, classes)
    np.testing.assert_allclose(check.original, original[:2], atol=1e-6)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    keras.utils.set_random_seed(3)
    for step, name in enumerate(check.layers):
        layer = clone.get_layer(name)
        fresh = type(layer).from_config(layer.get_config())
        fresh.build(layer.input.shape)
        layer.set_weights(fresh.get_weights())
        maps = _gradcam(clone)(x, classes)
        np.testing.assert_allclose(check.maps[step], maps[:2], atol=1e-6)
        for i in range(len(x)):
            if np.ptp(maps[i]) > 0:
                expected = stats.spearmanr(original[i].ravel(), maps[i].ravel()).statistic
                assert check.spearman[step, i] == pytest.approx(expected, abs=1e-6)
            else:
                assert np.isnan(check.spearman[step, i])
        ssim = tf.image.ssim(original[..., None], maps[..., None], max_val=1.0).numpy()
        np.testing.assert_allclose(check.ssim[step], ssim, atol=1e-6)


def test_a_map_that_ignores_the_top_layers_survives_their_randomisation():
    """EigenCAM reads the target layer only: randomising the layers after it leaves its maps
    as they were (correlation 1), while Grad-CAM's follow the randomised head."""
    model = build_classifier("softmax", flat_channel=False, deep_head=True)
    x = images(3)
    eigen = metrics.randomisation_check(
        lambda m: tsc.EigenCAM(m, "target", verbose=0), model, x, layers=["head", "conv1"]
    )
    np.testing.assert_allclose(eigen.spearman[0], 1.0, atol=1e-6)
    np.testing.assert_allclose(eigen.ssim[0], 1.0, atol=1e-6)
    assert np.nanmean(eigen.spearman[1]) < 0.9
    grad = metrics.randomisation_check(_gradcam, model, x, layers=["head"])
    assert np.nanmean(grad.spearman[0]) < 0.9
    assert [name for name, _, _ in grad.means()] == ["head"]


def test_an_unknown_layer_lists_the_cascade():
    model = build_classifier("softmax")
    with pytest.raises(ValueError, match=r"no layer with weights named \['nope'\].*'head'"):
        metrics.randomisation_check(_gradcam, model, images(1), layers=["nope"])




def test_layers_of_several_inputs_are_re_initialised():
    tokens = keras.Input((16, 8))
    attended = keras.layers.MultiHeadAttention(2, 4, name="mha")(tokens, tokens)  # build(q, v)
    scaled = keras.layers.Attention(use_scale=True, name="scaled")([attended, tokens])  # ([q, v])
    pooled = keras.layers.GlobalAveragePooling1D()(scaled)
    model = keras.Model(tokens, keras.layers.Dense(2, name="head")(pooled))
    model.get_layer("scaled").set_weights([np.array(3.0, np.float32)])  # trained off its init
    trained = {name: model.get_layer(name).get_weights() for name in ("mha", "scaled")}
    last = dict(metrics.cascade(model, seed=1))["mha"]
    for name, weights in trained.items():
        fresh = last.get_layer(name).get_weights()
        assert len(fresh) == len(weights) and not np.allclose(fresh[0], weights[0]), name
