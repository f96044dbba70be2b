"""Grad-CAM, Grad-CAM++, HiResCAM and XGrad-CAM against a GradientTape + NumPy reference
written here."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import (
    SIZE,
    as_numpy,
    first_component,
    gradient_cam,
    images,
    layer_gradient,
    minmax,
    resize_bilinear,
)

import tfscorecam as tsc


def _reference(
    logits_model: keras.Model,
    image: np.ndarray,
    class_index: int,
    method: str,
    eigen_smooth: bool = False,
    scaled: bool = True,
):
    a, g = layer_gradient(logits_model, "target", image, lambda out: out[0, class_index])
    weighted = gradient_cam(a, g, method)
    low = first_component(weighted) if eigen_smooth else weighted.sum(axis=-1)
    cam = resize_bilinear(np.maximum(low, 0), SIZE, SIZE)
    return minmax(cam) if scaled else cam


METHODS = {
    "gradcam": tsc.GradCAM,
    "gradcam++": tsc.GradCAMPlusPlus,
    "hirescam": tsc.HiResCAM,
    "xgradcam": tsc.XGradCAM,
}


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("deep_head", [False, True], ids=["gap-head", "deep-head"])
def test_matches_reference_on_logits_of_a_softmax_head(name, deep_head):
    probs = build_classifier("softmax", flat_channel=False, deep_head=deep_head)
    logits = build_classifier(None, flat_channel=False, deep_head=deep_head)  # linear head
    x = images(3)
    method = METHODS[name]
    maps = method(probs, "target", batch_size=2)(x, class_index=[1, 4, 0])
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    for image, cls, cam in zip(x, [1, 4, 0], maps, strict=True):
        np.testing.assert_allclose(cam, _reference(logits, image, cls, name), atol=1e-4)
    np.testing.assert_allclose(method(logits, "target")(x[0], class_index=1), maps[0], atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_eigen_smooth_and_raw_maps_match_the_reference(name):
    probs = build_classifier("softmax", flat_channel=False, deep_head=True)
    logits = build_classifier(None, flat_channel=False, deep_head=True)
    x = images(2)
    smooth = METHODS[name](probs, "target", eigen_smooth=True, verbose=0)(x, class_index=[3, 1])
    raw = METHODS[name](probs, "target", verbose=0)(x, class_index=[3, 1], normalize=False)
    for image, cls, cam, unscaled in zip(x, [3, 1], smooth, raw, strict=True):
        expected = _reference(logits, image, cls, name, eigen_smooth=True)
        np.testing.assert_allclose(cam, expected, atol=1e-4)
        expected = _reference(logits, image, cls, name, scaled=False)
        np.testing.assert_allclose(unscaled, expected, rtol=1e-4, atol=1e-7)
        assert np.abs(cam - _reference(logits, image, cls, name)).max() > 0.05  # not the sum


def test_the_gradient_methods_differ():
    """The references above are not one map under four names (with a GAP right after the
    target, HiResCAM and XGrad-CAM equal Grad-CAM: the gradient is the same in every cell)."""
    model = build_classifier(None, flat_channel=False, deep_head=True)
    x = images(1)[0]
    maps = {name: _reference(model, x, 2, name) for name in METHODS}
    for a in METHODS:
        for b in METHODS:
            if a < b:
                assert np.abs(maps[a] - maps[b]).max() > 0.05, (a, b)


def test_top1_multi_class_and_single_image():
    model = build_classifier("softmax", flat_channel=False)
    x = images(2)
    cam = tsc.GradCAM(model)
    top1 = np.argmax(as_numpy(model(x)), axis=1)
    np.testing.assert_allclose(cam(x), cam(x, class_index=top1), atol=1e-6)
    both = cam(x, class_index=np.array([[0, 3], [2, 1]]))
    assert both.shape == (2, 2, SIZE, SIZE)
    np.testing.assert_allclose(both[:, 1], cam(x, class_index=[3, 1]), atol=1e-6)
    np.testing.assert_allclose(cam(x[1]), cam(x)[1], atol=1e-6)


def test_bad_input_is_reported():
    model = build_classifier("softmax")
    with pytest.raises(ValueError, match="out of range"):
        tsc.GradCAM(model)(images(1), class_index=9)
    with pytest.raises(ValueError, match="no layer named"):
        tsc.GradCAMPlusPlus(model, "nope")
    with pytest.raises(ValueError, match="wrong channel count"):
        tsc.GradCAM(model)(np.zeros((SIZE, SIZE, 1)))


def test_nested_sequential_with_shared_head_layers():
    flat = build_classifier("softmax", flat_channel=False)
    backbone = keras.Model(flat.inputs[0], flat.get_layer("target").output, name="backbone")
    wrapped = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), backbone, flat.get_layer("gap"), flat.get_layer("head")]
    )
    x = images(2)
    for method in (tsc.GradCAM, tsc.GradCAMPlusPlus):
        np.testing.assert_allclose(
            method(wrapped)(x, class_index=2), method(flat, "target")(x, class_index=2), atol=1e-5
        )
    np.testing.assert_allclose(
        tsc.ScoreCAM(wrapped, score="logit")(x, class_index=1),
        tsc.ScoreCAM(flat, "target", score="logit")(x, class_index=1),
        atol=1e-5,
    )
