"""The command line (interfaces/cli.py, filenames.py): names that never collide, --target."""

import keras
import numpy as np
import pytest
from conftest import build_classifier, stderr_lines
from PIL import Image
from references import SIZE, save_random_photo

import tfscorecam as tsc
from tfscorecam.interfaces import cli
from tfscorecam.interfaces.filenames import distinct_stems, overlay_name


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_distinct_stems_tell_equal_names_apart():
    assert distinct_stems(["d/a/pic.jpg", "d/b/pic.jpg", "x/y.png"]) == ["a_pic", "b_pic", "y"]
    assert distinct_stems(["a/pic.jpg", "a/pic.png", "b/pic.jpg"]) == [
        "pic_jpg",
        "pic_png",
        "b_pic",
    ]
    assert distinct_stems(["a/p.jpg", "a/p.jpg"]) == ["p", "p-2"]
    assert distinct_stems(["a/x y.jpg"]) == ["x_y"]
    assert overlay_name("p", "gradcam", None, 3, "tabby cat") == "p_gradcam_3_tabby_cat.png"
    assert overlay_name("p", "gradcam", "age", None) == "p_gradcam_output-age_target.png"
    assert overlay_name("p", "gradcam", None, None, target="regression-0-negate") == (
        "p_gradcam_regression-0-negate.png"
    )


def test_same_stem_in_two_folders_writes_two_overlays(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)
    model.save(tmp_path / "m.keras")
    first, second = (
        save_random_photo(tmp_path / "a" / "pic.jpg", 0),
        save_random_photo(tmp_path / "b" / "pic.jpg", 1),
    )
    out = tmp_path / "out"
    argv = ["explain", first, second, "--model", str(tmp_path / "m.keras"), "--method",
            "gradcam", "--class", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["a_pic_gradcam_1_1.png", "b_pic_gradcam_1_1.png"]
    assert "replaced" not in capsys.readouterr().out
    assert cli.main(argv) == 0  # a rerun says that it replaces the earlier files
    assert capsys.readouterr().out.count("(replaced an earlier file)") == 2


def test_two_outputs_of_one_model_get_two_files_and_the_flag_in_the_fix(tmp_path, capsys):
    classifier = build_classifier("softmax", flat_channel=False)
    age = keras.layers.Dense(1, name="age")(classifier.get_layer("gap").output)
    both = keras.Model(classifier.inputs, {"species": classifier.output, "age": age})
    both.save(tmp_path / "two.keras")
    photo = save_random_photo(tmp_path / "p.png")
    argv = ["explain", photo, "--model", str(tmp_path / "two.keras"), "--out",
            str(tmp_path / "out"), "--quiet", "--class", "0"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "--output" in capsys.readouterr().err
    assert cli.main([*argv, "--output", "species"]) == 0
    assert cli.main([*argv, "--output", "age", "--head", "logits"]) == 0
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == ["p_scorecam_output-age_0_0.png", "p_scorecam_output-species_0_0.png"]


def test_target_flag_explains_a_regression_and_warns_of_an_all_zero_map(tmp_path, capsys):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, bias_initializer="ones")(x))
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([-np.abs(kernel) * 0.001, np.array([-3.7], np.float32)])
    model.save(tmp_path / "reg.keras")
    photo = save_random_photo(tmp_path / "p.png")
    argv = ["explain", photo, "--model", str(tmp_path / "reg.keras"), "--out",
            str(tmp_path / "out"), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "--target regression:0" in capsys.readouterr().err
    assert cli.main([*argv, "--target", "regression:0"]) == 0
    captured = capsys.readouterr()
    assert "target: -3." in captured.out and "p_scorecam_regression-0.png" in captured.out
    warning = _lines(captured.err)
    assert len(warning) == 1 and "all zero" in warning[0] and "regression:0:negate" in warning[0]
    assert cli.main([*argv, "--target", "regression:0:negate"]) == 0
    captured = capsys.readouterr()
    assert "target: 3." in captured.out and not _lines(captured.err)
    assert "replaced" not in captured.out  # each target its own file
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == ["p_scorecam_regression-0-negate.png", "p_scorecam_regression-0.png"]
    with pytest.raises(SystemExit):
        cli.main([*argv, "--target", "regression:x"])
    assert "expected regression:INDEX" in capsys.readouterr().err
    assert cli.main([*argv, "--target", "regression:0", "--class", "0"]) == 1
    assert "not both" in capsys.readouterr().err
    assert cli.main([*argv, "--class", "0", "--top-k", "2"]) == 1
    assert "give --class or --top-k, not both" in capsys.readouterr().err


def test_messages_name_the_fix_a_user_can_type(tmp_path, capsys, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        print("Downloading data from https://storage.example/mobilenet_v2.h5")
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    photo = save_random_photo(tmp_path / "p.png")
    assert cli.main(["explain", photo, "--model", "MobileNetV2", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "Downloading" not in captured.out and "--weights PATH" in captured.err
    not_hdf5 = tmp_path / "weights.h5"
    not_hdf5.write_text("not weights")
    argv = ["explain", photo, "--model", "MobileNetV2", "--weights", str(not_hdf5), "--quiet"]
    assert cli.main(argv) == 1
    errors = _lines(capsys.readouterr().err)
    assert len(errors) == 1 and "weights.h5 is not an HDF5 file" in errors[0], errors


def test_option_typos_and_folders_get_a_clear_error(tmp_path):
    import tfscorecam as tsc

    model = build_classifier("softmax")
    photo = np.zeros((SIZE, SIZE, 3), np.uint8)
    with pytest.raises(TypeError, match=r"no option 'max_channel' \(did you mean 'max_channels'"):
        tsc.explain(model, photo, max_channel=3)
    with pytest.raises(TypeError, match=r"GradCAM has no option 'foo'; its options: batch_size"):
        tsc.GradCAM(model, foo=1)
    with pytest.raises(ValueError, match="is a folder, not an image file"):
        tsc.explain(model, str(tmp_path))


def test_preprocessing_twice_is_told_to_remove_preprocess(tmp_path):
    import tfscorecam as tsc
    from tfscorecam.interfaces.advice import InputWarning

    keras.utils.set_random_seed(1)
    backbone = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    wrapped = keras.Sequential(
        [keras.Input((96, 96, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), backbone]
    )
    photo = np.random.default_rng(0).integers(0, 256, (96, 96, 3)).astype(np.uint8)
    twice = keras.applications.mobilenet_v2.preprocess_input
    with pytest.warns(InputWarning, match=r"preprocessed twice.*Remove preprocess="):
        tsc.explain(wrapped, photo, "gradcam", preprocess=twice, verbose=0)


def test_cli_passes_method_options_and_checks_them(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)
    path = tmp_path / "tiny.keras"
    model.save(path)
    photo = save_random_photo(tmp_path / "p.png")
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
        errors = stderr_lines(capsys)
        assert len(errors) == 1 and message in errors[0], errors
    assert cli.main([*argv, "--method", "iscam", "--num-samples", "2"]) == 0


def test_cli_runs_n_pass_methods_as_python_does_and_says_what_they_cost(tmp_path, backbone, capsys):
    note = cli._cost_note(backbone, "sscam", None, {"num_samples": 40})
    assert "sscam scores all 1280 channels with 40 masked passes each (51200 passes" in note
    assert "--max-channels 32 scores only the 32" in note
    assert cli._cost_note(backbone, "sscam", None, {"max_channels": 4}) is None
    path = tmp_path / "mobilenet.keras"
    backbone.save(path)
    photo = save_random_photo(tmp_path / "p.png")
    argv = ["explain", photo, "--model", str(path), "--preprocess", "tf", "--quiet",
            "--out", str(tmp_path / "o"), "--method", "iscam", "--max-channels", "4"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "masked passes" not in capsys.readouterr().err  # the user's choice is kept
    written = next((tmp_path / "o").glob("p_iscam_*.png"))
    python = tsc.explain(
        backbone, photo, "iscam", preprocess=lambda v: v / 127.5 - 1, max_channels=4, verbose=0
    )
    np.testing.assert_array_equal(np.asarray(Image.open(written)), python.overlay())


def test_a_failed_weights_download_is_one_line(tmp_path, capsys, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.example: None -- no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    argv = ["explain", save_random_photo(tmp_path / "p.png"), "--model", "MobileNetV2", "--quiet"]
    assert cli.main(argv) == 1
    errors = stderr_lines(capsys)
    assert len(errors) == 1 and "cannot download the ImageNet weights of MobileNetV2" in errors[0]
    assert "--weights PATH" in errors[0]


def test_cli_messages_say_what_is_wrong(tmp_path, capsys):
    photo = save_random_photo(tmp_path / "p.png")
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
        errors = stderr_lines(capsys)
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
    first = save_random_photo(tmp_path / "cat.png", 1)
    last = save_random_photo(tmp_path / "dog.png", 2)
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


def test_each_flag_arrives_as_its_keyword(tmp_path, monkeypatch, capsys):
    """--input, --num-augmentations and --batch-size reach the method (explain and demo);
    --actors, --address and --batch-size reach explain_dataset."""
    from tfscorecam.interfaces import dataset, explanation
    from tfscorecam.zoo import models

    calls = []
    real_explain = explanation.explain

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real_explain(*args, **kwargs)

    monkeypatch.setattr(explanation, "explain", recording)
    model = build_classifier("softmax", flat_channel=False)
    model.save(tmp_path / "m.keras")
    photo = save_random_photo(tmp_path / "p.png")
    argv = ["explain", photo, "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path),
            "--quiet", "--method", "augmented", "--num-augmentations", "3", "--batch-size", "5",
            "--max-channels", "2", "--input", "input_layer"]  # fmt: skip
    cli.main(argv)  # the model has one input: --input is checked against it
    wanted = {"num_augmentations": 3, "batch_size": 5, "input": "input_layer"}
    assert wanted.items() <= calls[-1].items()
    zoo_model = models.ZooModel(model, lambda x: x / 255.0, list("abcde"), (SIZE, SIZE))
    monkeypatch.setattr(models, "efficientnet_lite0", lambda: zoo_model)
    assert cli.main(["demo", "--quiet", "--out", str(tmp_path), "--batch-size", "7"]) == 0
    assert calls[-1]["batch_size"] == 7
    seen = {}

    def explain_dataset(*args, **kwargs):
        seen.update(kwargs)
        return {"explained": 0, "warnings": 0, "errors": 0, "skipped": 0, "total": 0,
                "images_per_second": 0.0}  # fmt: skip

    monkeypatch.setattr(dataset, "explain_dataset", explain_dataset)
    argv = ["explain-dataset", str(tmp_path), "--out", str(tmp_path / "ds"), "--actors", "3",
            "--address", "ray://head:10001", "--batch-size", "6", "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    assert (seen["actors"], seen["address"], seen["batch_size"]) == (3, "ray://head:10001", 6)
    capsys.readouterr()
