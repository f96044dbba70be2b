"""Inputs that look wrong get a warning or an error saying what to fix (interfaces/advice.py)."""

import warnings

import keras
import numpy as np
import pytest
from conftest import (
    BACKBONE_SIDE,
    SIZE,
    build_classifier,
    random_photo,
    save_random_photo,
    stderr_lines,
)

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

    with warnings.catch_warnings():
        warnings.simplefilter("error")
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
