"""Keras 2 (tf_keras) models (core/legacy.py): converted once, the same maps, one loader."""

import warnings

import keras
import numpy as np
import pytest
from conftest import subclassed_net
from PIL import Image

import tfscorecam as tsc
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


def _photo(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3)).astype(np.uint8)


def test_a_keras2_transfer_model_is_converted_and_explained_like_its_keras3_twin():
    legacy = _transfer_model(tf_keras)
    copy = as_keras3(legacy)
    x = np.stack([_photo(0), _photo(1)]).astype(np.float32)
    np.testing.assert_allclose(copy(x), legacy(x), atol=1e-5)
    twin = _transfer_model(keras)
    twin.set_weights(legacy.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras' "structure of inputs" warning must not leak
        warnings.filterwarnings("ignore", category=InputWarning)
        ours = tsc.explain(legacy, _photo(), "gradcam", verbose=0)
    theirs = tsc.explain(twin, _photo(), "gradcam", verbose=0)
    np.testing.assert_allclose(ours.heatmap, theirs.heatmap, atol=1e-5)


def test_the_cli_loads_a_keras2_h5_file_as_explain_loads_the_model(tmp_path, capsys):
    legacy = _transfer_model(tf_keras)
    path = tmp_path / "transfer.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy.save(path)
    assert saved_by_keras2(path)
    photo = tmp_path / "p.png"
    Image.fromarray(_photo()).save(photo)
    argv = ["explain", str(photo), "--model", str(path), "--method", "gradcam", "--quiet",
            "--class", "1", "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    written = Image.open(tmp_path / "out" / "p_gradcam_1_1.png")
    expected = tsc.explain(legacy, _photo(), "gradcam", class_index=1, verbose=0)
    np.testing.assert_array_equal(np.asarray(written), expected.overlay())


def test_a_subclassed_keras2_model_is_told_what_to_do():
    net = subclassed_net(tf_keras)
    with pytest.raises(TypeError, match=r"Net is a subclassed Keras 2 \(tf_keras\) model.*set_w"):
        tsc.explain(net, np.zeros((16, 16, 3), np.uint8), verbose=0)
