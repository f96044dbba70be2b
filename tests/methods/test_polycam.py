"""Poly-CAM against a NumPy loop of the official code (andralex/polycam: ``core.py``'s
``compute_cams``, ``normalize`` and ``local_relevance_normalization``; ``polycam.py``'s three
weightings), on a model of three resolutions built here."""

import keras
import numpy as np
import pytest
from conftest import build_conv3d
from references import SIZE, as_numpy, images, resize_bilinear

import tfscorecam as tsc

TOL = 1e-4


def _three_levels() -> keras.Model:
    """16x16 -> 8x8 -> 4x4 (the target) -> a softmax over 3 classes."""
    keras.utils.set_random_seed(3)
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="fine")(image)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="mid")(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", activation="relu", name="target")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax", name="head")(pooled))


def _normalise(a: np.ndarray) -> np.ndarray:
    """The official ``normalize``: minus the 0.1th percentile, over the 99.9th, in [0, 1]."""
    low, high = np.percentile(a, 0.1), np.percentile(a, 99.9)
    return np.clip((a - low) / max(high, 1e-12), 0, 1)


def _resize(a: np.ndarray, shape: tuple) -> np.ndarray:
    return resize_bilinear(a, *shape)


def _level(model, layer, image, class_index, variant, max_channels=None) -> np.ndarray:
    """S_l: every channel's mask (normalised at the layer's size, then upsampled) weighed by
    the variant's scores, one masked image at a time; ReLU of the weighted sum."""
    acts = as_numpy(keras.Model(model.inputs, model.get_layer(layer).output)(image[None]))[0]
    acts = acts.astype(np.float64)

    def probability(x):
        return float(as_numpy(model(x[None].astype(np.float32)))[0, class_index])

    own = probability(image)
    channels = range(acts.shape[-1])
    if max_channels is not None:  # the largest spatial standard deviations, lower index first
        spread = acts.reshape(-1, acts.shape[-1]).std(axis=0)
        channels = sorted(channels, key=lambda c: -spread[c])[:max_channels]
    low = np.zeros(acts.shape[:2])
    for c in channels:
        mask = _resize(_normalise(acts[..., c]), image.shape[:2])[..., None]
        kept, removed = probability(image * mask), probability(image * (1 - mask))
        weight = {
            "plus": kept,
            "minus": max(own - removed, 0),
            "plusminus": max(kept + own - removed, 0),
        }[variant]
        low += weight * acts[..., c]
    return np.maximum(low, 0)


def _reference(model, image, class_index, variant="plus", levels=("fine", "mid"), lnorm=True,
               max_channels=None) -> np.ndarray:  # fmt: skip
    """``compute_cams`` from the target up through ``levels`` (forward order), the last map
    normalised and resized to the image, then min-max scaled as every map here."""
    current = None
    for layer in ("target", *reversed(levels)):
        finer = _level(model, layer, image, class_index, variant, max_channels)
        if current is None:
            current = finer
            continue
        if lnorm:
            local = _resize(_resize(finer, current.shape), finer.shape)
            finer = finer / np.maximum(local, 1e-12)
        current = np.maximum(finer * _resize(current, finer.shape), 0)
    final = _resize(_normalise(current), image.shape[:2])
    span = final.max() - final.min()
    return (final - final.min()) / span if span > 0 else np.zeros_like(final)


@pytest.mark.parametrize("variant", ["plus", "minus", "plusminus"])
def test_each_variant_equals_the_official_loop(variant):
    model, x = _three_levels(), images(2, seed=5)
    cam = tsc.PolyCAM(model, variant=variant, verbose=0)
    assert [level.path for level in cam.levels] == ["fine", "mid"]
    top = np.argmax(as_numpy(model(x)), axis=1)  # the class that masking lowers
    classes = [top[0], (top[1] + 1) % 3]  # and one that it may not: a map of zeros there
    maps = cam(x, classes)
    for i, class_index in enumerate(classes):
        expected = _reference(model, x[i], class_index, variant)
        np.testing.assert_allclose(maps[i], expected, atol=TOL)
    assert maps[0].max() == 1
    raw = cam(x[0], 1, normalize=False)  # the official output, already in [0, 1]
    assert raw.min() >= 0 and raw.max() <= 1


def test_the_ablations_and_options_equal_the_loop_with_them():
    model, image = _three_levels(), images(1, seed=6)[0]
    checks = [
        ({"lnorm": False}, {"lnorm": False}),
        ({"levels": ["mid"]}, {"levels": ("mid",)}),
        ({"levels": []}, {"levels": ()}),
        ({"max_channels": 3}, {"max_channels": 3}),
    ]
    for options, reference in checks:
        got = tsc.PolyCAM(model, verbose=0, **options)(image, 0)
        np.testing.assert_allclose(got, _reference(model, image, 0, **reference), atol=TOL)


def test_levels_are_the_last_layer_of_each_finer_size_after_the_preprocessing():
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(image)  # before any kernel: not a level
    x = keras.layers.Normalization(mean=0.5, variance=0.1)(x)  # weights, but no kernel
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(x)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU(name="relu_a")(x)
    x = keras.layers.ZeroPadding2D(1, name="pad")(x)  # 18x18: borders a map, not a level
    x = keras.layers.Conv2D(6, 3, strides=2, name="conv_b")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="target")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(pooled))
    cam = tsc.PolyCAM(model, verbose=0)
    assert [level.path for level in cam.levels] == ["relu_a", "relu_b"]
    nested = keras.Sequential([keras.Input((SIZE, SIZE, 3)), model])  # a wrapped backbone
    assert [level.path for level in tsc.PolyCAM(nested, verbose=0).levels] == [
        f"{model.name}/relu_a",
        f"{model.name}/relu_b",
    ]


def test_bad_options_are_one_clear_error():
    model = _three_levels()
    with pytest.raises(ValueError, match=r"variant must be one of \('plus', 'minus', 'plusm"):
        tsc.PolyCAM(model, variant="both")
    with pytest.raises(ValueError, match=r"level 'target' gives \(None, 4, 4, 5\), not a featu"):
        tsc.PolyCAM(model, levels=["fine", "target"])
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        tsc.PolyCAM(model, levels=["nope"])
    with pytest.raises(ValueError, match="Poly-CAM multiplies 2-D maps of several layers"):
        tsc.PolyCAM(build_conv3d())
