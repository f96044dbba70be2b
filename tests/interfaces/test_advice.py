"""Inputs that look wrong get a warning or an error saying what to fix (interfaces/advice.py)."""

import re
import warnings

import keras
import numpy as np
import pytest
from conftest import BACKBONE_SIDE, build_classifier, stderr_lines
from PIL import Image
from references import SIZE, random_photo, save_random_photo

import tfscorecam as tsc
from tfscorecam.interfaces import cli
from tfscorecam.interfaces.advice import InputWarning


def test_missing_preprocessing_of_a_known_backbone_is_a_warning_with_the_fix(backbone):
    photo = random_photo(BACKBONE_SIDE, BACKBONE_SIDE)
    with pytest.warns(InputWarning, match=r"--preprocess tf") as caught:
        tsc.explain(backbone, photo, "gradcam", verbose=0)
    assert "[-1, 1]" in str(caught[0].message) and "mobilenetv2" in str(caught[0].message)
    wrapped = keras.Sequential(
        [
            keras.Input((BACKBONE_SIDE, BACKBONE_SIDE, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            backbone,
        ]
    )
    for model, preprocess in ((backbone, lambda v: v / 127.5 - 1), (wrapped, None)):
        with pytest.warns() as caught:  # the top-1 warning of random weights may come
            tsc.explain(model, photo, "gradcam", preprocess=preprocess, verbose=0)
        assert not [w for w in caught if "with values in" in str(w.message)]
    # 0-255 values reaching the backbone through a wrapper without its Rescaling
    bare = keras.Sequential([keras.Input((BACKBONE_SIDE, BACKBONE_SIDE, 3)), backbone])
    with pytest.warns(InputWarning, match="reach 'mobilenetv2_0.35_96' with values in"):
        tsc.explain(bare, photo, "gradcam", verbose=0)


def test_a_low_top1_probability_is_a_warning(tmp_path):
    flat = build_classifier("softmax", units=20, flat_channel=False)
    kernel, bias = flat.get_layer("head").get_weights()
    flat.get_layer("head").set_weights([kernel * 0, bias * 0])  # 1/20 for every class
    with pytest.warns(InputWarning, match=r"top-1 probability on .* is only 0\.0"):
        tsc.explain(flat, random_photo(), verbose=0)
    sure = build_classifier("softmax", units=20, flat_channel=False)
    kernel, bias = sure.get_layer("head").get_weights()
    bias[3] = 50.0
    sure.get_layer("head").set_weights([kernel, bias])

    with warnings.catch_warnings():  # no top-1 warning (its map may still be near-empty:
        warnings.filterwarnings("error", message=".*top-1 probability")  # a bias decides)
        assert tsc.explain(sure, random_photo(), verbose=0).class_index == 3


def test_a_one_unit_linear_output_needs_a_head_or_a_target(tmp_path, capsys):
    classifier = build_classifier("softmax", flat_channel=False)
    age = keras.layers.Dense(1, name="age")(classifier.get_layer("gap").output)
    model = keras.Model(classifier.inputs, {"species": classifier.output, "age": age})
    with pytest.raises(ValueError, match="one linear unit: a regression"):
        tsc.explain(model, random_photo(), output="age", verbose=0)
    regression = tsc.explain(
        model, random_photo(), output="age", target=tsc.targets.regression(0), verbose=0
    )
    x = tsc.images.resize(random_photo().astype(np.float32), (SIZE, SIZE))[None]
    assert regression.score == pytest.approx(float(model(x)["age"][0, 0]), rel=1e-5)
    assert regression.class_index is None
    path = tmp_path / "two_heads.keras"
    model.save(path)
    argv = ["explain", save_random_photo(tmp_path / "p.png"), "--model", str(path), "--quiet",
            "--out", str(tmp_path / "out"), "--output", "age"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "--head logits" in stderr_lines(capsys)[0]
    assert cli.main([*argv, "--head", "logits"]) == 0  # that advice works as written
    assert "class (0)" in capsys.readouterr().out


def _spike_regression() -> keras.Model:
    """A regression on the image's red channel less 0.5, averaged: Grad-CAM's map is
    ReLU(red - 0.5) / cells, positive only where the red channel is above 0.5."""
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(1, 1, name="target")
    features = conv(inputs)
    conv.set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1), np.array([-0.5])])
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    head = keras.layers.Dense(1, name="value")
    model = keras.Model(inputs, head(pooled))
    head.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    return model


def _spike_photo(pixels: int) -> np.ndarray:
    photo = np.zeros((SIZE, SIZE, 3), np.uint8)
    photo.reshape(-1, 3)[:pixels, 0] = 255  # the first ``pixels`` pixels red
    return photo


def test_a_near_empty_map_is_a_warning_with_the_fix_and_its_raw_map_is_kept(tmp_path, capsys):
    model = _spike_regression()
    target = tsc.targets.regression(0)
    explain = {"preprocess": lambda x: x / 255.0, "target": target, "verbose": 0}
    share = re.escape(f"only {2 / SIZE**2:.2%} of it is above zero")
    with pytest.warns(InputWarning, match=rf"near-empty: {share}.*regression\(0, negate=True\)"):
        result = tsc.explain(model, _spike_photo(2), "gradcam", **explain)
    assert result.heatmap.max() == 1 and np.mean(result.heatmap > 0) == pytest.approx(2 / SIZE**2)
    cells = SIZE * SIZE  # the raw map: ReLU(red - 0.5) times the gradient 1 / cells
    assert result.peak == pytest.approx(0.5 / cells, rel=1e-5)
    expected = np.maximum(_spike_photo(2)[..., 0] / 255 - 0.5, 0) / cells
    np.testing.assert_allclose(result.raw, expected, atol=1e-9)
    with warnings.catch_warnings():  # 11% of the pixels: above the 10% threshold
        warnings.simplefilter("error")
        tsc.explain(model, _spike_photo(int(0.11 * SIZE**2) + 1), "gradcam", **explain)
    path = tmp_path / "spike.keras"
    model.save(path)
    photo = tmp_path / "spike.png"
    Image.fromarray(_spike_photo(2)).save(photo)
    argv = ["explain", str(photo), "--model", str(path), "--quiet", "--method", "gradcam",
            "--out", str(tmp_path / "out"), "--target", "regression:0",
            "--preprocess", "tf"]  # fmt: skip
    assert cli.main(argv) == 0  # a warning, not an error: the map is still written
    (line,) = stderr_lines(capsys)
    assert "near-empty" in line and "--target regression:0:negate" in line


def test_a_linear_head_of_several_units_is_read_as_logits_and_says_so_once():
    model = build_classifier(None, flat_channel=False)  # Dense(5), no activation
    with pytest.warns(InputWarning, match="linear layer of 5 units, read as class logits"):
        tsc.explain(model, random_photo(), "gradcam", verbose=0)
    with warnings.catch_warnings():  # once per explainer, and never with head= given
        warnings.simplefilter("error")
        tsc.explain(model, random_photo(), "gradcam", verbose=0)
        tsc.explain(model, random_photo(), "gradcam", head="logits", verbose=0)
