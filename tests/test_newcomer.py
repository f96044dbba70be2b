"""What a newcomer hit at the front door (issue 17): each problem reproduced and guarded."""

import io
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SIZE, build_classifier, images
from PIL import Image

import tfscorecam as tsc
from tfscorecam import methods, zoo
from tfscorecam.interfaces import cli
from tfscorecam.interfaces.advice import InputWarning

SIDE = 96


def _photo(height=40, width=50, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


def _save_photo(path, seed=0, fmt=None):
    Image.fromarray(_photo(seed=seed)).save(path, format=fmt)
    return str(path)


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(1)
    return keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(SIDE, SIDE, 3))


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# 2. silent wrong answers without preprocessing ------------------------------------------------


def test_missing_preprocessing_of_a_known_backbone_is_a_warning_with_the_fix(backbone):
    photo = _photo(SIDE, SIDE)
    with pytest.warns(InputWarning, match=r"--preprocess tf") as caught:
        tsc.explain(backbone, photo, "gradcam", verbose=0)
    assert "[-1, 1]" in str(caught[0].message) and "mobilenetv2" in str(caught[0].message)
    wrapped = keras.Sequential(
        [keras.Input((SIDE, SIDE, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), backbone]
    )
    for model, preprocess in ((backbone, lambda v: v / 127.5 - 1), (wrapped, None)):
        with pytest.warns() as caught:  # the top-1 warning of random weights may come
            tsc.explain(model, photo, "gradcam", preprocess=preprocess, verbose=0)
        assert not [w for w in caught if "with values in" in str(w.message)]
    # 0-255 values reaching the backbone through a wrapper without its Rescaling
    bare = keras.Sequential([keras.Input((SIDE, SIDE, 3)), backbone])
    with pytest.warns(InputWarning, match="reach 'mobilenetv2_0.35_96' with values in"):
        tsc.explain(bare, photo, "gradcam", verbose=0)


def test_a_low_top1_probability_is_a_warning(tmp_path):
    flat = build_classifier("softmax", units=20, flat_channel=False)
    kernel, bias = flat.get_layer("head").get_weights()
    flat.get_layer("head").set_weights([kernel * 0, bias * 0])  # 1/20 for every class
    with pytest.warns(InputWarning, match=r"top-1 probability on .* is only 0\.0"):
        tsc.explain(flat, _photo(), verbose=0)
    sure = build_classifier("softmax", units=20, flat_channel=False)
    kernel, bias = sure.get_layer("head").get_weights()
    bias[3] = 50.0
    sure.get_layer("head").set_weights([kernel, bias])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tsc.explain(sure, _photo(), verbose=0).class_index == 3


def test_a_one_unit_linear_output_needs_a_head_or_a_target(tmp_path, capsys):
    classifier = build_classifier("softmax", flat_channel=False)
    age = keras.layers.Dense(1, name="age")(classifier.get_layer("gap").output)
    model = keras.Model(classifier.inputs, {"species": classifier.output, "age": age})
    with pytest.raises(ValueError, match="one linear unit: a regression"):
        tsc.explain(model, _photo(), output="age", verbose=0)
    regression = tsc.explain(
        model, _photo(), output="age", target=tsc.targets.regression(0), verbose=0
    )
    x = tsc.images.resize(_photo().astype(np.float32), (SIZE, SIZE))[None]
    assert regression.score == pytest.approx(float(model(x)["age"][0, 0]), rel=1e-5)
    assert regression.class_index is None
    path = tmp_path / "two_heads.keras"
    model.save(path)
    argv = ["explain", _save_photo(tmp_path / "p.png"), "--model", str(path), "--quiet",
            "--out", str(tmp_path / "out"), "--output", "age"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "--head logits" in _errors(capsys)[0]
    assert cli.main([*argv, "--head", "logits"]) == 0  # that advice works as written
    assert "class (0)" in capsys.readouterr().out


# 3. method options on the command line -------------------------------------------------------


def test_cli_passes_method_options_and_checks_them(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)
    path = tmp_path / "tiny.keras"
    model.save(path)
    photo = _save_photo(tmp_path / "p.png")
    argv = ["explain", photo, "--model", str(path), "--quiet", "--out", str(tmp_path / "o"),
            "--class", "1"]  # fmt: skip
    assert cli.main([*argv, "--option", "score=logit", "--max-channels", "3"]) == 0
    written = next((tmp_path / "o").glob("p_scorecam_1_*.png"))
    expected = tsc.explain(model, photo, class_index=1, score="logit", max_channels=3)
    np.testing.assert_array_equal(np.asarray(Image.open(written)), expected.overlay())
    for bad, message in (
        (["--option", "colour=red"], "scorecam has no option 'colour'; its options: batch_size"),
        (["--option", "score"], "--option takes KEY=VALUE"),
        (["--num-samples", "3"], "scorecam has no option 'num_samples'"),
    ):
        assert cli.main([*argv, *bad]) == 1
        errors = _errors(capsys)
        assert len(errors) == 1 and message in errors[0], errors
    assert cli.main([*argv, "--method", "iscam", "--num-samples", "2"]) == 0


def test_cli_runs_n_pass_methods_as_python_does_and_says_what_they_cost(tmp_path, backbone, capsys):
    note = cli._cost_note(backbone, "sscam", None, {"num_samples": 40})
    assert "sscam scores all 1280 channels with 40 masked passes each (51200 passes" in note
    assert "--max-channels 32 scores only the 32" in note
    assert cli._cost_note(backbone, "sscam", None, {"max_channels": 4}) is None
    path = tmp_path / "mobilenet.keras"
    backbone.save(path)
    photo = _save_photo(tmp_path / "p.png")
    argv = ["explain", photo, "--model", str(path), "--preprocess", "tf", "--quiet",
            "--out", str(tmp_path / "o"), "--method", "iscam", "--max-channels", "4"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "masked passes" not in capsys.readouterr().err  # the user's choice is kept
    written = next((tmp_path / "o").glob("p_iscam_*.png"))
    python = tsc.explain(
        backbone, photo, "iscam", preprocess=lambda v: v / 127.5 - 1, max_channels=4, verbose=0
    )
    np.testing.assert_array_equal(np.asarray(Image.open(written)), python.overlay())


# 5. one line where the docs promise one line ----------------------------------------------


def test_a_failed_weights_download_is_one_line(tmp_path, capsys, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.example: None -- no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    argv = ["explain", _save_photo(tmp_path / "p.png"), "--model", "MobileNetV2", "--quiet"]
    assert cli.main(argv) == 1
    errors = _errors(capsys)
    assert len(errors) == 1 and "cannot download the ImageNet weights of MobileNetV2" in errors[0]
    assert "--weights PATH" in errors[0]


# 6. Keras 2 models ---------------------------------------------------------------------------


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
    result = tsc.explain(legacy, _photo(), "gradcam", verbose=0)
    assert result.heatmap.shape == (40, 50)
    assert tsc.explain(legacy, _photo(), "gradcam", verbose=0) is not result  # cached explainer

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


# 7. and 8. command-line messages, and every image of a list ----------------------------------


def test_cli_messages_say_what_is_wrong(tmp_path, capsys):
    photo = _save_photo(tmp_path / "p.png")
    (tmp_path / "folder").mkdir()
    corrupt = tmp_path / "model.keras"
    corrupt.write_bytes(b"garbage")
    cases = [
        (["explain", str(tmp_path / "folder"), "--method", "gradcam"], "is a folder: explain"),
        (["explain", photo, "--model", str(corrupt)], "it is not a zip archive"),
        (["explain", photo, "--out", photo], "is a file; give a folder"),
    ]
    for argv, message in cases:
        assert cli.main([*argv, "--quiet"]) == 1
        errors = _errors(capsys)
        assert len(errors) == 1 and message in errors[0], errors
        assert "File not found" not in errors[0]
    with pytest.raises(SystemExit) as stopped:
        cli.main(["explain", photo, "--top-k", "0"])
    assert stopped.value.code == 2
    assert "--top-k: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == (
        f"tfscorecam {tsc.__version__}"
    )


def test_cli_explains_every_readable_image_and_fails_at_the_end(tmp_path, capsys):
    first = _save_photo(tmp_path / "cat.png", 1)
    last = _save_photo(tmp_path / "dog.png", 2)
    missing = str(tmp_path / "missing.png")
    code = cli.main(
        ["explain", first, missing, last, "--method", "gradcam", "--quiet",
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 1
    printed = capsys.readouterr()
    assert [line.split(":")[0] for line in printed.out.splitlines()] == [first, last]
    errors = [line for line in printed.err.splitlines() if " error: " in line]
    assert errors == [
        f"tfscorecam: error: image file not found: {missing}",
        "tfscorecam: error: 1 of 3 images failed",
    ]


# 9. no retracing warnings in ordinary loops --------------------------------------------------


def test_a_loop_over_methods_and_layers_prints_no_retracing_warning(caplog):
    model = build_classifier("softmax", flat_channel=False)
    small = {"num_augmentations": 2, "num_samples": 2}
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for layer in ("target", "conv1"):
            for method in methods.METHODS:
                options = {k: v for k, v in small.items() if k in methods.method_options(method)}
                for photo in (_photo(seed=1), _photo(seed=2)):
                    tsc.explain(model, photo, method, layer=layer, verbose=0, **options)
    assert "retracing" not in caplog.text


# 10. class names ----------------------------------------------------------------------------


def test_class_names_from_lists_and_files_and_names_as_classes(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)
    names = ["ant", "bee", "cat", "dog", "eel"]
    as_text = tmp_path / "names.txt"
    as_text.write_text("\n".join(names) + "\n")
    as_json = tmp_path / "names.json"
    as_json.write_text(json.dumps({str(i): ["wnid", n] for i, n in enumerate(names)}))
    photo = _photo()
    for source in (names, as_text, str(as_json)):
        result = tsc.explain(model, photo, class_index="dog", class_names=source, verbose=0)
        assert (result.class_index, result.class_name) == (3, "dog")
    both = tsc.explain(model, photo, class_index=["cat", 4], class_names=names, verbose=0)
    assert [e.class_name for e in both] == ["cat", "eel"]
    with pytest.raises(ValueError, match="unknown class 'dgo'; did you mean dog"):
        tsc.explain(model, photo, class_index="dgo", class_names=names, verbose=0)
    with pytest.raises(ValueError, match="pass class_names="):
        tsc.explain(model, photo, class_index="dog", verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    argv = ["explain", _save_photo(tmp_path / "p.png"), "--model", str(path), "--quiet",
            "--class-names", str(as_text), "--class", "bee",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 0
    assert "bee (1):" in capsys.readouterr().out


def test_a_1000_class_model_gets_imagenet_names(tmp_path, backbone, capsys):
    photo = _photo(SIDE, SIDE)
    result = tsc.explain(backbone, photo, "gradcam", preprocess=lambda v: v / 127.5 - 1)
    assert result.class_name == zoo.imagenet_class_names()[result.class_index]
    assert tsc.explain(backbone, photo, "gradcam", class_index="tabby").class_index == 281


# 12. small things ---------------------------------------------------------------------------


def test_greyscale_images_without_a_channel_axis():
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    cam = tsc.ScoreCAM(keras.Model(inp, out), verbose=0)
    batch = images(2)[..., 0]
    np.testing.assert_array_equal(cam(batch[0]), cam(batch[0][..., None]))
    np.testing.assert_array_equal(cam(batch), cam(batch[..., None]))
    assert cam(batch).shape == (2, SIZE, SIZE)


def test_explanation_repr_is_short_and_explain_lists_every_method():
    model = build_classifier("softmax", flat_channel=False)
    result = tsc.explain(model, _photo(), class_names=list("abcde"), verbose=0)
    text = repr(result)
    assert len(text) < 200 and "heatmap=<40x50 float32>" in text and "image=<40x50x3 uint8>" in text
    for method in methods.METHODS:
        assert f'"{method}"' in tsc.explain.__doc__


def test_served_jpeg_scores_equal_eager_ones(tmp_path):
    model = build_classifier("softmax", flat_channel=False)
    photo = _photo(64, 48, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=80)
    path = tmp_path / "p.jpg"
    path.write_bytes(buffer.getvalue())
    cam = tsc.GradCAM(model, verbose=0)
    tsc.serving.export(cam, tmp_path / "served", preprocess="tf")
    served = tf.saved_model.load(str(tmp_path / "served")).signatures["explain_image_bytes"]
    out = served(image_bytes=tf.constant([buffer.getvalue()]))
    eager = tsc.explain(model, path, "gradcam", preprocess=lambda v: v / 127.5 - 1, verbose=0)
    assert float(out["scores"][0]) == pytest.approx(eager.score, rel=1e-5)
    small = tsc.images.resize(eager.heatmap[..., None], (SIZE, SIZE))[..., 0]
    assert np.corrcoef(small.ravel(), out["maps"][0].numpy().ravel())[0, 1] > 0.99
