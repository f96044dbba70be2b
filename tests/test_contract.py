"""The contract every registered method keeps (``methods.METHODS``), checked the same way for
each: a method added to the registry is tested here without a line of this file changing.

The last test adds a method the way ARCHITECTURE.md says (a class, one registry entry) and
finds it served by ``tsc.explain``, the explainer cache and export with nothing else touched.
"""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import BACKEND, SIZE, as_numpy, images, minmax_each, resize_bilinear

import tfscorecam as tsc
from tfscorecam import methods
from tfscorecam.core import progress
from tfscorecam.core.explainer import Explainer
from tfscorecam.core.maps import score_cam_maps
from tfscorecam.methods import METHODS, Method, method_class


@pytest.fixture(scope="module")
def model():
    return build_classifier("softmax")


def _explainer(model, method: str, **options):
    return method_class(method)(model, verbose=0, **options)


@pytest.mark.parametrize("method", list(METHODS))
def test_maps_are_finite_in_range_and_independent_of_batching_and_chunks(
    model, method, monkeypatch, capsys
):
    x = images(3)
    cam = _explainer(model, method)
    maps = cam(x)
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and maps.min() >= 0 and maps.max() <= 1
    peaks = maps.reshape(3, -1).max(axis=1)
    assert np.all((peaks == 0) | np.isclose(peaks, 1)), peaks  # min-max scaled, or all zero
    for i in range(3):  # one image at a time, as a batch of one image, gives the same map
        np.testing.assert_allclose(cam(x[i]), maps[i], atol=1e-5)
    chunked = _explainer(model, method, batch_size=1)
    np.testing.assert_allclose(chunked(x), maps, atol=1e-5)
    shown = method_class(method)(model, verbose=1, batch_size=1)
    np.testing.assert_allclose(shown(x), maps, atol=1e-5)
    assert capsys.readouterr().out == ""  # not a terminal: no bar
    monkeypatch.setattr(progress, "interactive", lambda: True)  # as on a terminal
    np.testing.assert_allclose(shown(x), maps, atol=1e-5)  # chunks counted on a bar
    assert capsys.readouterr().out
    chosen = [cam(x[i], c) for i, c in enumerate([4, 0, 2])]
    np.testing.assert_allclose(cam(x, [4, 0, 2]), chosen, atol=1e-5)


@pytest.mark.parametrize("method", list(METHODS))
def test_raw_maps_scale_to_the_maps_and_the_smoothing_options_hold(model, method):
    x = images(2, seed=3)
    cam = _explainer(model, method)
    maps, raw = cam(x, [1, 3]), cam(x, [1, 3], normalize=False)
    assert raw.shape == maps.shape and np.all(np.isfinite(raw))
    np.testing.assert_allclose(minmax_each(raw), maps, atol=1e-5)
    # aug_smooth: the mean of the six scaled maps of the mirrored and multiplied images
    expected = np.zeros_like(maps)
    for mirrored in (False, True):
        for factor in (0.9, 1.0, 1.1):
            shown = (x[:, :, ::-1] if mirrored else x) * np.float32(factor)
            one = cam(np.ascontiguousarray(shown), [1, 3])
            expected += one[:, :, ::-1] if mirrored else one
    smoothed = _explainer(model, method, aug_smooth=True)(x, [1, 3])
    np.testing.assert_allclose(smoothed, np.stack(minmax_each(expected)), atol=1e-5)
    if not method_class(method).weighs_activations:
        with pytest.raises(ValueError, match="does not sum weighted activations"):
            _explainer(model, method, eigen_smooth=True)
    else:
        smooth = _explainer(model, method, eigen_smooth=True)(x, [1, 3])
        assert smooth.shape == maps.shape and smooth.min() >= 0 and smooth.max() <= 1


def _served(cam, tmp_path, x, classes=None) -> dict[str, np.ndarray]:
    """The outputs (maps, classes, scores, peaks) of ``cam`` exported, reloaded and called
    (TensorFlow's alone)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tsc.serving.export(cam, tmp_path)))
    if classes is None:
        served = loaded.signatures["serving_default"](images=tf.constant(x))
    else:
        served = loaded.signatures["explain_class"](
            images=tf.constant(x), class_index=tf.constant(classes, tf.int32)
        )
    return {name: value.numpy() for name, value in served.items()}


@pytest.mark.tensorflow
@pytest.mark.parametrize("method", list(METHODS))
def test_the_reloaded_saved_model_gives_the_eager_maps(model, method, tmp_path):
    cam = _explainer(model, method, batch_size=2)
    x = images(2, seed=4)
    served = _served(cam, tmp_path / method, x, [3, 1])
    np.testing.assert_allclose(served["maps"], cam(x, [3, 1]), atol=cam.served_tolerance)
    raw = cam(x, [3, 1], normalize=False).max(axis=(1, 2))  # the raw maps' peaks
    np.testing.assert_allclose(served["peaks"], raw, rtol=cam.served_tolerance * 10, atol=1e-7)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda cam: cam(np.zeros((SIZE, SIZE))), r"one image \(H, W, C\) or a batch"),
        (lambda cam: cam(np.full((SIZE, SIZE, 3), np.nan, np.float32)), "NaN or infinite"),
        (lambda cam: cam(images(1), 5), r"out of range: the model has 5 classes"),
    ],
    ids=["rank", "non-finite", "class"],
)
def test_bad_input_is_a_clear_error(model, method, call, message):
    with pytest.raises(ValueError, match=message):
        call(_explainer(model, method))


@pytest.mark.parametrize("method", list(METHODS))
def test_options_are_keyword_only_and_shown_by_repr(model, method):
    cam = _explainer(model, method, batch_size=7)
    name = METHODS[method].class_name
    assert repr(cam) == f"{name}(layer='target', verbose=0, batch_size=7)"
    assert repr(method_class(method)(model)) == f"{name}(layer='target')"
    with pytest.raises(TypeError, match="positional"):
        method_class(method)(model, "target", 7)
    with pytest.raises(ValueError, match="no layer named 'nope'; the last feature maps: conv1"):
        _explainer(model, method, layer="nope")


def test_every_registered_class_is_a_public_name():
    for name, method in METHODS.items():
        assert getattr(tsc, method.class_name) is method_class(name)


def test_a_registered_pass_count_is_an_integer_option_of_its_method():
    """The command line's cost note reads the passes per channel from the registry."""
    counted = {name for name, method in METHODS.items() if method.passes}
    assert counted == {"iscam", "sscam"}
    for name in counted:
        assert isinstance(method_class(name).option_defaults()[METHODS[name].passes], int)


class MeanActivation(Explainer):
    """A test-only method: ReLU of the target layer's mean channel, upsampled (no class)."""

    def _maps(self, images, activations, request, progress):
        mean = np.maximum(activations.mean(axis=-1, keepdims=True), 0.0)
        maps = as_numpy(score_cam_maps(mean, images.shape[1:3]))
        return np.repeat(maps, request.scores.shape[1], axis=1)

    def graph_maps(self, images, activations, classes):
        mean = keras.ops.relu(keras.ops.mean(activations, axis=-1, keepdims=True))
        return score_cam_maps(mean, keras.ops.shape(images)[1:3])[:, 0]


def test_a_new_method_is_one_class_and_one_registry_line(model, monkeypatch, tmp_path):
    monkeypatch.setitem(METHODS, "mean", Method("test_contract:MeanActivation", "Mean"))
    photo = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    result = tsc.explain(model, photo, "mean", verbose=0)
    cam = methods.cached_explainer(model, "mean", verbose=0)
    assert isinstance(cam, MeanActivation) and result.heatmap.shape == (SIZE, SIZE)
    x = images(2)
    acts, _ = cam.forward(x)
    expected = np.maximum(acts.mean(axis=-1), 0)  # NumPy reference: bilinear, then min-max
    expected = np.stack([resize_bilinear(one, SIZE, SIZE) for one in expected])
    low, high = expected.min(axis=(1, 2), keepdims=True), expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(cam(x), (expected - low) / (high - low), atol=1e-5)
    if BACKEND == "tensorflow":
        served = _served(cam, tmp_path / "mean", x)["maps"]
        np.testing.assert_allclose(served, cam(x), atol=cam.served_tolerance)
