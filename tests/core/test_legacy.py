"""Keras 2 (tf_keras) models (core/legacy.py): converted once, the same maps, one loader."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import subclassed_net
from PIL import Image
from references import SIZE, images, random_photo

import tfscorecam as tsc
from tfscorecam import methods
from tfscorecam.core.legacy import as_keras3, saved_by_keras2
from tfscorecam.interfaces import cli
from tfscorecam.interfaces.advice import InputWarning

tf_keras = pytest.importorskip("tf_keras")
SIDE = 64


def _transfer_model(library):
    """The usual Keras 2 transfer model: Rescaling, a headless MobileNetV2, a Dense head."""
    library.utils.set_random_seed(0)
    backbone = library.applications.MobileNetV2(
        include_top=False, pooling="avg", weights=None, alpha=0.35, input_shape=(SIDE, SIDE, 3)
    )
    return library.Sequential(
        [
            library.Input((SIDE, SIDE, 3)),
            library.layers.Rescaling(1 / 127.5, offset=-1),
            backbone,
            library.layers.Dense(3, activation="softmax"),
        ]
    )


def test_a_keras2_transfer_model_is_converted_and_explained_like_its_keras3_twin():
    legacy = _transfer_model(tf_keras)
    copy = as_keras3(legacy)
    x = np.stack([random_photo(SIDE, SIDE, 0), random_photo(SIDE, SIDE, 1)]).astype(np.float32)
    np.testing.assert_allclose(copy(x), legacy(x), atol=1e-5)
    twin = _transfer_model(keras)
    twin.set_weights(legacy.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras' "structure of inputs" warning must not leak
        warnings.filterwarnings("ignore", category=InputWarning)
        ours = tsc.explain(legacy, random_photo(SIDE, SIDE), "gradcam", verbose=0)
    theirs = tsc.explain(twin, random_photo(SIDE, SIDE), "gradcam", verbose=0)
    np.testing.assert_allclose(ours.heatmap, theirs.heatmap, atol=1e-5)


def test_the_cli_loads_a_keras2_h5_file_as_explain_loads_the_model(tmp_path, capsys):
    legacy = _transfer_model(tf_keras)
    path = tmp_path / "transfer.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy.save(path)
    assert saved_by_keras2(path)
    photo = tmp_path / "p.png"
    Image.fromarray(random_photo(SIDE, SIDE)).save(photo)
    argv = ["explain", str(photo), "--model", str(path), "--method", "gradcam", "--quiet",
            "--class", "1", "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    written = Image.open(tmp_path / "out" / "p_gradcam_1_1.png")
    expected = tsc.explain(legacy, random_photo(SIDE, SIDE), "gradcam", class_index=1, verbose=0)
    np.testing.assert_array_equal(np.asarray(written), expected.overlay())


def test_a_subclassed_keras2_model_is_told_what_to_do():
    net = subclassed_net(tf_keras)
    with pytest.raises(TypeError, match=r"Net is a subclassed Keras 2 \(tf_keras\) model.*set_w"):
        tsc.explain(net, np.zeros((16, 16, 3), np.uint8), verbose=0)


def _small_net(library):
    """One architecture in either Keras (tf_keras and Keras 3 spell it alike)."""
    return library.Sequential(
        [
            library.Input((SIZE, SIZE, 3)),
            library.layers.Rescaling(1 / 255.0),
            library.layers.Conv2D(8, 3, padding="same", activation="relu"),
            library.layers.DepthwiseConv2D(3, padding="same", name="target"),
            library.layers.GlobalAveragePooling2D(),
            library.layers.Dense(4, activation="softmax"),
        ]
    )


def test_keras2_models_are_explained_through_their_keras3_copy():
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    legacy = _small_net(tf_keras)
    same = _small_net(keras)
    same.set_weights(legacy.get_weights())
    x = images(2) * 50 + 128
    for method in ("scorecam", "gradcam"):
        ours = methods.make_explainer(legacy, method, "target", verbose=0)(x)
        np.testing.assert_allclose(
            ours, methods.make_explainer(same, method, "target", verbose=0)(x), atol=1e-5
        )
    result = tsc.explain(legacy, random_photo(), "gradcam", verbose=0)
    assert result.heatmap.shape == (40, 50)
    converted = as_keras3(legacy)  # the Keras 3 copy, made once and its explainer cached
    assert as_keras3(legacy) is converted and len(methods._cache[converted]) == 1
    cached = next(iter(methods._cache[converted].values()))
    again = tsc.explain(legacy, random_photo(), "gradcam", verbose=0)
    assert next(iter(methods._cache[converted].values())) is cached
    np.testing.assert_array_equal(again.heatmap, result.heatmap)

    mobilenet = tf_keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    same_mobilenet = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3)
    )
    same_mobilenet.set_weights(mobilenet.get_weights())
    x = (images(1) * 0.5).clip(-1, 1)
    x = np.asarray(tf.image.resize(x, (96, 96)))
    np.testing.assert_allclose(
        tsc.GradCAM(mobilenet, verbose=0)(x), tsc.GradCAM(same_mobilenet, verbose=0)(x), atol=1e-5
    )

    inp = tf_keras.Input((SIZE, SIZE, 3))
    conv = tf_keras.layers.Conv2D(4, 3, name="stem/conv")(inp)  # Keras 3 refuses "/" in names
    out = tf_keras.layers.Dense(2, activation="softmax")(
        tf_keras.layers.GlobalAveragePooling2D()(conv)
    )
    with pytest.raises(TypeError, match=r"Keras 2 \(tf_keras\) model.*set_weights"):
        tsc.ScoreCAM(tf_keras.Model(inp, out))


def test_a_keras2_model_whose_copy_predicts_otherwise_is_refused(monkeypatch):
    from tfscorecam.core import legacy

    net = _small_net(tf_keras)
    other = _small_net(keras)  # the same layers with other weights: a copy that went wrong
    monkeypatch.setattr(legacy, "load_keras2_h5", lambda path: other)
    with pytest.raises(TypeError, match=r"Keras 2 \(tf_keras\) model whose Keras 3 copy predicts "):
        as_keras3(net)
