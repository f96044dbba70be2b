"""IS-CAM, SS-CAM and LayerCAM against NumPy references written here."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import SIZE, as_numpy, gradient_cam, images, layer_gradient, minmax, resize_bilinear

import tfscorecam as tsc
from tfscorecam.core import backend
from tfscorecam.methods.masking import NoisyMasking

TOL = 1e-4


def _channels(model, image, layer="target"):
    acts = keras.Model(model.inputs[0], model.get_layer(layer).output)(image[None])[0]
    acts = np.asarray(acts, np.float64)
    ups = [resize_bilinear(acts[..., k], SIZE, SIZE) for k in range(acts.shape[-1])]
    return acts, ups


def _prob(model, batch, cls):
    return np.asarray(model(np.asarray(batch, np.float32)), np.float64)[:, cls]


def _reference(model, image, cls, masked_inputs):
    """ReLU(sum_k w_k Up(A_k)), w_k the mean probability over ``masked_inputs(k, up, m)``."""
    _, ups = _channels(model, image)
    cam = np.zeros((SIZE, SIZE))
    for k, up in enumerate(ups):
        if up.max() == up.min():
            continue
        m = (up - up.min()) / (up.max() - up.min())
        cam += _prob(model, masked_inputs(k, up, m), cls).mean() * up
    return minmax(np.maximum(cam, 0))


@pytest.mark.parametrize("path", ["linear", "cumulative"])
def test_iscam_averages_the_scores_along_the_path(softmax_model, path):
    x = images(2)
    n = 4
    scales = np.arange(1, n + 1) / n
    if path == "cumulative":
        scales = np.cumsum(scales)
    maps = tsc.ISCAM(softmax_model, "target", batch_size=9, num_samples=n, path=path)(x, 3)
    for image, cam in zip(x, maps, strict=True):
        expected = _reference(
            softmax_model,
            image,
            3,
            lambda k, up, m, x=image: [x * s * m[..., None] for s in scales],
        )
        np.testing.assert_allclose(cam, expected, atol=TOL)


@pytest.mark.parametrize("noise_on, squared", [("mask", True), ("input", True), ("mask", False)])
def test_sscam_with_the_official_noise_scale(softmax_model, noise_on, squared, monkeypatch):
    image = images(1)[0]
    n, noise, channels = 5, 0.3, 6
    shape = (SIZE, SIZE) if noise_on == "mask" else (SIZE, SIZE, 3)
    table = np.random.default_rng(5).standard_normal((channels, n, *shape)).astype(np.float32)
    monkeypatch.setattr(  # the reference's own noise, injected: channel k draws table[k]
        NoisyMasking, "normal", lambda self, units, _: keras.ops.take(table, units, axis=0)
    )
    cam = tsc.SSCAM(
        softmax_model, "target", batch_size=7, num_samples=n, noise=noise, noise_on=noise_on,
        squared=squared, seed=11,
    )(image, class_index=2)  # fmt: skip

    def noisy(k, up, m):
        if noise_on == "mask":
            sigma = noise / (up.max() - up.min())
            std = (sigma**2 if squared else sigma) / (up.max() - up.min())
            return [image * (m + std * z)[..., None] for z in table[k]]
        masked = image * m[..., None]
        sigma = noise / (masked.max() - masked.min())
        return [masked + (sigma**2 if squared else sigma) * z for z in table[k]]

    np.testing.assert_allclose(cam, _reference(softmax_model, image, 2, noisy), atol=TOL)


def test_sscam_noise_is_standard_normal_per_channel_and_seeded():
    units = keras.ops.convert_to_tensor(np.array([0, 1, 2, 7], np.int32))
    draws = as_numpy(backend.unit_normals(3, units, (40, 50)))  # 2000 per channel
    assert draws.shape == (4, 40, 50) and draws.dtype == np.float32
    per_channel = draws.reshape(4, -1)
    np.testing.assert_allclose(per_channel.mean(axis=1), 0, atol=0.1)  # 4.5 standard errors
    np.testing.assert_allclose(per_channel.std(axis=1), 1, atol=0.06)  # 4 standard errors
    correlation = np.corrcoef(per_channel)[np.triu_indices(4, 1)]
    assert np.abs(correlation).max() < 0.1  # channels draw apart, not one noise repeated
    again = as_numpy(backend.unit_normals(3, units[::-1], (40, 50)))[::-1]
    np.testing.assert_array_equal(again, draws)  # by (seed, channel), whatever the order
    other = as_numpy(backend.unit_normals(4, units, (40, 50)))
    assert np.abs(other - draws).max() > 1


def test_sscam_without_noise_is_score_cam_and_its_noise_is_seeded(softmax_model):
    x = images(2)
    expected = tsc.ScoreCAM(softmax_model)(x, class_index=[1, 4])
    quiet = tsc.SSCAM(softmax_model, num_samples=3, noise=0.0)(x, class_index=[1, 4])
    np.testing.assert_allclose(quiet, expected, atol=1e-6)
    noisy = tsc.SSCAM(softmax_model, num_samples=3, noise=2.0, seed=1)
    maps = noisy(x, class_index=[1, 4])
    assert np.abs(maps - expected).max() > 1e-3
    np.testing.assert_array_equal(maps, noisy(x, class_index=[1, 4]))
    other_chunks = tsc.SSCAM(softmax_model, batch_size=1, num_samples=3, noise=2.0, seed=1)
    np.testing.assert_allclose(other_chunks(x, class_index=[1, 4]), maps, atol=1e-5)
    other_seed = tsc.SSCAM(softmax_model, num_samples=3, noise=2.0, seed=2)
    assert np.abs(other_seed(x, class_index=[1, 4]) - maps).max() > 1e-4


def _layer_reference(logits, image, cls, layer):
    a, g = layer_gradient(logits, layer, image, lambda out: out[0, cls])
    low = np.maximum(gradient_cam(a, g, "layercam").sum(axis=-1), 0)
    return resize_bilinear(low, SIZE, SIZE)


def test_layercam_one_layer_and_the_fusion_of_two():
    probs = build_classifier("softmax", flat_channel=False)
    logits = build_classifier(None, flat_channel=False)  # same weights, linear head
    x = images(2)
    single = tsc.LayerCAM(probs, "target")(x, class_index=[2, 0])
    fused = tsc.LayerCAM(probs, layers=["conv1", "target"], gamma=2.0)(x, class_index=[2, 0])
    for image, cls, one, both in zip(x, [2, 0], single, fused, strict=True):
        deep = _layer_reference(logits, image, cls, "target")
        np.testing.assert_allclose(one, minmax(deep), atol=TOL)
        shallow = _layer_reference(logits, image, cls, "conv1")
        expected = np.maximum(np.tanh(2.0 * shallow / shallow.max()), deep / deep.max())
        np.testing.assert_allclose(both, minmax(expected), atol=TOL)


def test_the_family_in_explain_and_its_bad_options(softmax_model):
    photo = np.random.default_rng(0).integers(0, 256, (20, 24, 3)).astype(np.uint8)
    for method in ("iscam", "sscam", "layercam"):
        options = {} if method == "layercam" else {"num_samples": 2}
        result = tsc.explain(softmax_model, photo, method, verbose=0, **options)
        assert result.method == method and result.heatmap.shape == (20, 24)
    bad = [
        (tsc.ISCAM, {"num_samples": 0}, "num_samples must be at least 1"),
        (tsc.ISCAM, {"path": "log"}, "path must be one of"),
        (tsc.SSCAM, {"noise": -1}, "noise must be >= 0"),
        (tsc.SSCAM, {"noise_on": "both"}, "noise_on must be one of"),
        (tsc.SSCAM, {"seed": 1.5}, "seed must be an int"),
        (tsc.LayerCAM, {"layers": []}, "non-empty list"),
        (tsc.LayerCAM, {"layers": ["conv1"], "layer": "target"}, "layer or layers"),
        (tsc.LayerCAM, {"layers": ["conv1", "nope"]}, "no layer named 'nope'"),
    ]
    for method, options, message in bad:
        layer = options.pop("layer", None)
        with pytest.raises((ValueError, TypeError), match=message):
            method(softmax_model, layer, **options)
