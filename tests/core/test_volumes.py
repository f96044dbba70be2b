"""Models on volumes (batch, D, H, W, C) and video (batch, T, H, W, C): maps of (D, H, W),
against Score-CAM, Grad-CAM, HiResCAM, Ablation-CAM, Recipro-CAM and EigenCAM written here in
NumPy (trilinear upsampling: ``references.resize_linear``)."""

import keras
import numpy as np
import pytest
from conftest import VOLUME_SHAPE, build_conv3d
from references import (
    BACKEND,
    as_numpy,
    gradient_cam,
    layer_gradient,
    minmax_each,
    resize_linear,
    score_cam_of_features,
)

import tfscorecam as tsc
from tfscorecam.methods import METHODS, method_class

TOL = 1e-4


def video_model() -> keras.Model:
    """Frames (4, 16, 16, 3) through a per-frame Conv2D, then a Conv3D over time."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 16, 16, 3))
    frames = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")
    x = keras.layers.TimeDistributed(frames, name="frames")(inputs)
    x = keras.layers.Conv3D(5, (2, 3, 3), padding="same", activation="relu", name="target")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def volumes(n: int = 2, shape: tuple = VOLUME_SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def features(model: keras.Model, volume: np.ndarray, layer: str = "target") -> np.ndarray:
    tapped = keras.Model(model.inputs[0], model.get_layer(layer).output)
    return as_numpy(tapped(volume[None]))[0].astype(np.float64)


def tail_of(model: keras.Model, layer: str = "target") -> keras.Model:
    """The model after ``layer`` (its output as the input)."""
    source = keras.Input(model.get_layer(layer).output.shape[1:])
    x = source
    for later in model.layers[model.layers.index(model.get_layer(layer)) + 1 :]:
        x = later(x)
    return keras.Model(source, x)


def upsampled_map(low: np.ndarray, size: tuple) -> np.ndarray:
    """ReLU(Up(low)) min-max scaled: one map (D, H, W)."""
    return minmax_each(np.maximum(resize_linear(low, size), 0)[None])[0]


@pytest.mark.parametrize("build", [build_conv3d, video_model], ids=["conv3d", "video"])
def test_score_cam_on_a_volume_matches_numpy(build):
    model = build()
    batch = volumes(2, tuple(model.inputs[0].shape[1:]))
    cam = tsc.ScoreCAM(model, batch_size=3, verbose=0)
    assert cam.layer_path == "target"  # layer=None: the last 5-D feature map
    maps = cam(batch, class_index=[1, 2])
    assert maps.shape == (2, *batch.shape[1:4])
    for i, c in enumerate([1, 2]):

        def prob(masked, c=c):
            return as_numpy(model(masked)).astype(np.float64)[0, c]  # softmax output

        expected = score_cam_of_features(features(model, batch[i]), batch[i], prob)[0]
        np.testing.assert_allclose(maps[i], expected, atol=TOL)


def test_score_cam_on_a_volume_is_the_same_in_any_chunks_and_alone_or_in_a_batch():
    model, batch = build_conv3d(), volumes(3)
    maps = tsc.ScoreCAM(model, batch_size=64, verbose=0)(batch)
    np.testing.assert_allclose(tsc.ScoreCAM(model, batch_size=1, verbose=0)(batch), maps, atol=1e-5)
    np.testing.assert_allclose(tsc.ScoreCAM(model, verbose=0)(batch[1]), maps[1], atol=1e-5)


@pytest.mark.parametrize("name", ["gradcam", "hirescam"])
def test_gradient_methods_on_a_volume_pool_over_three_axes(name):
    model, volume, c = build_conv3d(logits=True), volumes(1)[0], 2
    acts, grads = layer_gradient(model, "target", volume, lambda out: out[0, c])
    low = gradient_cam(acts, grads, name).sum(axis=-1)  # Grad-CAM: mean over d, h and w
    expected = upsampled_map(np.maximum(low, 0), VOLUME_SHAPE[:3])
    got = method_class(name)(model, "target", verbose=0)(volume, c)
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_ablation_cam_on_a_volume_matches_numpy():
    model, volume, c = build_conv3d(logits=True), volumes(1)[0], 0
    acts, tail = features(model, volume), tail_of(model)
    full = as_numpy(tail(acts[None].astype(np.float32)))[0, c]
    weights = np.zeros(acts.shape[-1])
    for k in range(acts.shape[-1]):
        if np.abs(acts[..., k]).max() == 0:
            continue
        ablated = acts.copy()
        ablated[..., k] = 0
        weights[k] = (full - as_numpy(tail(ablated[None].astype(np.float32)))[0, c]) / full
    expected = upsampled_map(np.maximum(acts @ weights, 0), VOLUME_SHAPE[:3])
    got = tsc.AblationCAM(model, "target", verbose=0)(volume, c)
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_recipro_cam_on_a_volume_keeps_one_cell_of_three_axes_at_a_time():
    model, volume, c = build_conv3d(), volumes(1)[0], 1
    acts, tail = features(model, volume), tail_of(model)
    low = np.zeros(acts.shape[:-1])
    for cell in np.ndindex(*acts.shape[:-1]):
        kept = np.zeros_like(acts)
        kept[cell] = acts[cell]
        low[cell] = as_numpy(tail(kept[None].astype(np.float32)))[0, c]
    expected = upsampled_map(minmax_each(low[None])[0], VOLUME_SHAPE[:3])
    got = tsc.ReciproCAM(model, "target", verbose=0)(volume, c)
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_eigen_cam_on_a_volume_projects_every_cell():
    model, volume = build_conv3d(), volumes(1)[0]
    acts = features(model, volume)
    cells = acts.reshape(-1, acts.shape[-1])
    centred = cells - cells.mean(axis=0)
    first = np.linalg.svd(centred, full_matrices=False)[2][0]
    first = -first if first.sum() < 0 else first
    low = (centred @ first).reshape(acts.shape[:-1])
    expected = upsampled_map(np.maximum(low, 0), VOLUME_SHAPE[:3])
    np.testing.assert_allclose(tsc.EigenCAM(model, verbose=0)(volume), expected, atol=TOL)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_explains_a_volume_or_says_why_not(name):
    model, batch = build_conv3d(), volumes(2)
    if name in ("augmented", "polycam"):
        with pytest.raises(ValueError, match="2-D (views|maps) .* volumes or video"):
            method_class(name)(model, verbose=0)
        return
    cam = method_class(name)(model, verbose=0)
    maps = cam(batch, class_index=[[0, 2], [1, 0]])
    assert maps.shape == (2, 2, *VOLUME_SHAPE[:3])
    assert np.all(np.isfinite(maps)) and maps.min() >= 0 and maps.max() <= 1
    peaks = maps.max(axis=(2, 3, 4))  # each map scaled over its whole volume
    assert np.all((peaks == 0) | np.isclose(peaks, 1, atol=1e-6))
    np.testing.assert_allclose(cam(batch[1], class_index=1), maps[1, 0], atol=1e-5)


def test_a_one_channel_volume_may_come_without_its_channel_axis():
    model = build_conv3d(channels=1)
    batch = volumes(2, (*VOLUME_SHAPE[:3], 1))
    cam = tsc.ScoreCAM(model, verbose=0)
    np.testing.assert_allclose(cam(batch[..., 0]), cam(batch), atol=1e-6)
    np.testing.assert_allclose(cam(batch[0, ..., 0]), cam(batch)[0], atol=1e-6)


def test_wrong_inputs_for_volumes_are_refused_in_one_line(tmp_path):
    model = build_conv3d()
    cam = tsc.ScoreCAM(model, verbose=0)
    with pytest.raises(ValueError, match=r"one volume \(D, H, W, C\) or a batch"):
        cam(np.zeros((12, 10, 2), np.float32))  # an image for a volume model
    with pytest.raises(ValueError, match=r"expects inputs of shape \(6, 12, 10, 2\)"):
        cam(np.zeros((1, 5, 12, 10, 2), np.float32))
    image_model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ValueError, match=r"one image \(H, W, C\) or a batch"):
        tsc.ScoreCAM(image_model, verbose=0)(np.zeros((1, 4, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="a volume's positions are kept alone"):
        tsc.ReciproCAM(model, gaussian=True)
    with pytest.raises(ValueError, match="needs a .*batch, d, h, w, channels"):
        tsc.ScoreCAM(model, "classes")
    if BACKEND == "tensorflow":
        from tfscorecam import serving

        with pytest.raises(ValueError, match="export serves images"):
            serving.export(cam, tmp_path / "served")
