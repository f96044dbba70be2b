"""explain_dataset on a local Ray cluster: maps equal ScoreCAM, error rows, exactly-once runs."""

import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import VOLUME_SHAPE, build_classifier, build_conv3d
from PIL import Image

import tfscorecam as tsc
from tfscorecam.interfaces import cli

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")
from tfscorecam import dataset  # noqa: E402

COUNT = 12


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _photos(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = (20 + 3 * i, 30 + (i % 4) * 5)
        photo = rng.integers(0, 256, (*size, 3)).astype(np.uint8)
        suffix = ".png" if i % 2 else ".jpg"
        Image.fromarray(photo if i != 3 else photo[..., 0]).save(folder / f"p{i:02d}{suffix}")
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    model = build_classifier("softmax", flat_channel=False)
    model_path = root / "tiny.keras"
    model.save(model_path)
    photos = _photos(root / "photos", COUNT)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    return model, model_path, photos


def _reference_map(model, path):
    """The in-process map of one photo: decoded, resized and preprocessed as the run does."""
    image = tsc.images.display_image(path)
    x = tsc.images.resize(image, (16, 16)) / 127.5 - 1.0  # as explain() resizes: no rounding
    cam = tsc.ScoreCAM(model, verbose=0)
    probs = cam.predict_probabilities(x[None])[0]
    peak = float(cam(x, normalize=False).max())
    return cam(x), int(np.argmax(probs)), float(probs.max()), image.shape[:2], peak


def test_maps_equal_score_cam_and_a_bad_file_is_an_error_row(cluster, setup, tmp_path):
    model, model_path, photos = setup
    summary = dataset.explain_dataset(
        model_path, photos, tmp_path / "out", preprocess="tf", batch_size=4, verbose=0
    )
    assert summary["total"] == COUNT + 1 and summary["skipped"] == 0
    assert summary["explained"] == COUNT and summary["errors"] == 1
    table = dataset.read_results(tmp_path / "out")
    assert len(table) == COUNT + 1 and table["path"].is_unique
    assert list(table.columns) == list(dataset.COLUMNS)
    broken = table[table["path"].str.endswith("broken.jpg")].iloc[0]
    assert "cannot read image" in broken["error"] and broken["heatmap"] is None
    for _, row in table[table["error"].isna()].iterrows():
        expected, top1, probability, shape, peak = _reference_map(model, row["path"])
        heat = dataset.heatmap(row)
        assert heat.shape == (16, 16)
        np.testing.assert_allclose(heat, expected, atol=2e-3)  # float16 storage
        assert row["class_index"] == top1 and row["method"] == "scorecam"
        assert row["score"] == pytest.approx(probability, rel=1e-5)
        assert row["map_peak"] == pytest.approx(peak, rel=1e-5)
        assert (row["image_height"], row["image_width"]) == shape and row["seconds"] > 0
    assert dataset.write_overlays(tmp_path / "out") == COUNT
    overlay = next((tmp_path / "out" / "overlays").glob("p05_*.png"))
    assert Image.open(overlay).size == Image.open(photos / "p05.png").size


def test_a_rerun_skips_what_is_done_retries_errors_and_writes_no_duplicate(
    cluster, setup, tmp_path
):
    _, model_path, _ = setup
    photos = _photos(tmp_path / "photos", COUNT)
    broken = photos / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    run = dict(model=model_path, inputs=photos, out=out, preprocess="tf", verbose=0)
    dataset.explain_dataset(**run)
    again = dataset.explain_dataset(**run)
    assert again["skipped"] == COUNT and again["explained"] == 0 and again["errors"] == 1
    table = dataset.read_results(out)
    assert len(table) == COUNT + 1 and table["path"].is_unique
    assert table["error"].notna().sum() == 1
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(broken, format="JPEG")
    # the same images named by a glob: the repaired one is retried and replaces its error row
    repaired = dataset.explain_dataset(**{**run, "inputs": str(photos / "*")})
    assert repaired["skipped"] == COUNT and repaired["explained"] == 1
    table = dataset.read_results(out)
    assert len(table) == COUNT + 1 and table["path"].is_unique and table["error"].isna().all()
    assert list(out.glob("errors-*.parquet")) == []


def test_a_killed_run_then_a_rerun_gives_every_image_exactly_once(cluster, setup, tmp_path):
    _, model_path, _ = setup
    photos = _photos(tmp_path / "many", 60, seed=1)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "tfscorecam", "explain-dataset", str(photos), "--model",
        str(model_path), "--out", str(out), "--preprocess", "tf", "--batch-size", "1", "--quiet",
    ]  # fmt: skip
    env = {
        **os.environ,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        dataset.KILL_AFTER_FIRST_PART: "1",  # kill -9 itself once its first part is written
    }
    run = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, timeout=300)
    assert run.returncode == -signal.SIGKILL
    written = len(list(out.glob("part-*.parquet")))
    assert written == 1 and list(out.glob(".*.partial")) == []
    summary = dataset.explain_dataset(model_path, photos, out, preprocess="tf", verbose=0)
    assert summary["skipped"] == 1 and summary["explained"] == 59
    table = dataset.read_results(out)
    assert len(table) == 60 and table["path"].is_unique and table["error"].isna().all()


def test_ray_is_an_extra():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tfscorecam; tfscorecam.dataset; print('ray' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "False", done.stderr[-500:]


def test_missing_extra_and_bad_arguments(setup, tmp_path, monkeypatch):
    _, model_path, photos = setup
    with pytest.raises(FileNotFoundError, match="model file not found"):
        dataset.explain_dataset(tmp_path / "none.keras", photos, tmp_path / "out")
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        dataset.explain_dataset(model_path, photos, tmp_path / "out", method="lime")
    with pytest.raises(ValueError, match="unknown preprocess 'nope'; choose one of none, tf"):
        dataset.explain_dataset(model_path, photos, tmp_path / "out", preprocess="nope")
    with pytest.raises(FileNotFoundError, match="no folder, file or glob"):
        dataset.explain_dataset(model_path, tmp_path / "nothing", tmp_path / "out")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'ray\[data\]>=2.40,<3' 'pyarrow>=15'"):
        dataset.explain_dataset(model_path, photos, tmp_path / "out")


def test_a_rerun_with_other_settings_stops_instead_of_reusing_rows(cluster, setup, tmp_path):
    _, model_path, _ = setup
    photos = _photos(tmp_path / "photos", 3)
    out = tmp_path / "out"
    dataset.explain_dataset(model_path, photos, out, preprocess="tf", verbose=0)
    changes = [
        {"method": "gradcam"},
        {"layer": "conv1"},
        {"max_channels": 2},
        {"class_index": 1},
        {"preprocess": "none"},
    ]
    for change in changes:
        run = {"preprocess": "tf", "verbose": 0, **change}
        with pytest.raises(ValueError, match="holds results made with other settings"):
            dataset.explain_dataset(model_path, photos, out, **run)
    # the model file itself changed: saved again, same path
    build_classifier("softmax", seed=5).save(tmp_path / "copy.keras")
    copy = tmp_path / "copy.keras"
    dataset.explain_dataset(copy, photos, tmp_path / "copy_out", preprocess="tf", verbose=0)
    saved = copy.stat().st_mtime_ns
    build_classifier("softmax", seed=6).save(copy)
    os.utime(copy, ns=(saved + 10**9, saved + 10**9))  # a later save, whatever the clock's step
    with pytest.raises(ValueError, match="model="):
        dataset.explain_dataset(copy, photos, tmp_path / "copy_out", preprocess="tf", verbose=0)
    # the same settings resume as before, into their own folder another method runs fine
    again = dataset.explain_dataset(model_path, photos, out, preprocess="tf", verbose=0)
    assert again["skipped"] == 3
    other = dataset.explain_dataset(
        model_path, photos, tmp_path / "gradcam", "gradcam", preprocess="tf", verbose=0
    )
    assert other["explained"] == 3
    assert set(dataset.read_results(tmp_path / "gradcam")["method"]) == {"gradcam"}


def test_a_bad_layer_is_one_error_before_any_actor_and_int_columns_stay_int(
    cluster, setup, tmp_path, capsys
):
    _, model_path, photos = setup
    with pytest.raises(ValueError, match="no layer named 'conv5'; .*the last feature maps"):
        dataset.explain_dataset(
            model_path, photos, tmp_path / "bad", layer="conv5", preprocess="tf", verbose=0
        )
    out = tmp_path / "out"
    code = cli.main(
        ["explain-dataset", str(photos), "--model", str(model_path), "--layer", "conv5",
         "--out", str(tmp_path / "cli"), "--preprocess", "tf", "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("tfscorecam: error: no layer")
    dataset.explain_dataset(model_path, photos, out, preprocess="tf", verbose=0)
    table = dataset.read_results(out)
    assert table["error"].notna().sum() == 1  # broken.jpg: a null class_index
    assert str(table["class_index"].dtype) == "Int32"
    dataset.write_overlays(out)
    names = [p.name for p in (out / "overlays").glob("*.png")]
    assert names and all(n.rsplit("_", 1)[1][:-4].isdigit() for n in names), names


def test_names_classes_and_applications_by_name(cluster, tmp_path, capsys):
    keras.utils.set_random_seed(0)
    weights = tmp_path / "mobilenet_v2.weights.h5"
    keras.applications.MobileNetV2(weights=None).save_weights(weights)
    photos = _photos(tmp_path / "photos", 2)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class{i}" for i in range(1000)))
    out = tmp_path / "out"
    code = cli.main(
        ["explain-dataset", str(photos), "--model", "MobileNetV2", "--weights", str(weights),
         "--preprocess", "tf", "--method", "gradcam", "--class", "class7",
         "--class-names", str(names), "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    table = dataset.read_results(out)
    assert list(table["class_index"]) == [7, 7] and list(table["class_name"]) == ["class7"] * 2
    again = ["explain-dataset", str(photos), "--model", "MobileNetV2", "--weights", str(weights),
             "--preprocess", "tf", "--class-names", str(names), "--quiet"]  # fmt: skip
    for change, message in (
        (["--method", "scorecam", "--class", "class7", "--out", str(out)], "other settings"),
        (["--method", "gradcam", "--layer", "conv5", "--out", str(tmp_path / "o2")], "no layer"),
    ):
        assert cli.main([*again, *change]) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(errors) == 1 and message in errors[0], errors


def test_a_successful_run_prints_no_ray_warning_or_error_line(cluster, setup, tmp_path, capfd):
    _, model_path, _ = setup
    photos = _photos(tmp_path / "photos", 2)
    capfd.readouterr()
    dataset.explain_dataset(model_path, photos, tmp_path / "out", preprocess="tf", verbose=1)
    out, err = capfd.readouterr()
    assert out.startswith("\r0/2 images: starting Ray") and "2/2 images" in out
    noise = [line for line in err.splitlines() if line.strip()]
    assert not noise, noise


def test_failures_exit_non_zero_warnings_reach_rows_and_overlays_never_collide(
    cluster, tmp_path, capsys
):
    flat = build_classifier("softmax", units=20, flat_channel=False)
    kernel, bias = flat.get_layer("head").get_weights()
    flat.get_layer("head").set_weights([kernel * 0, bias * 0])  # 1/20 for every class: a warning
    flat.save(tmp_path / "flat.keras")
    first, second = _photos(tmp_path / "a", 1), _photos(tmp_path / "b", 1, seed=1)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    inputs = [str(first / "p00.jpg"), str(second / "p00.jpg"), str(tiny)]
    out = tmp_path / "out"
    code = cli.main(["explain-dataset", *inputs, "--model", str(tmp_path / "flat.keras"),
                     "--out", str(out), "--quiet", "--overlays"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "2 explained (2 with warnings), 1 errors" in captured.out
    assert "2 overlays" in captured.out and "1 images failed" in captured.err
    (hint,) = [line for line in captured.err.splitlines() if "read_results" in line]
    statement = hint.split("columns: ", 1)[1]  # the printed hint runs as written
    assert statement.startswith("from tfscorecam.dataset import read_results")
    found: dict = {}
    exec(statement.replace("read_results(", "table = read_results("), found)
    assert len(found["table"]) == 3
    table = dataset.read_results(out).set_index("path")
    assert "smaller than the 8x8 feature map" in table.loc[str(tiny), "error"]
    for path in inputs[:2]:
        assert "top-1 probability on" in table.loc[path, "warning"]
        assert path in table.loc[path, "warning"]
    names = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert len(names) == 2 and names[0].startswith("a_p00_") and names[1].startswith("b_p00_")


def test_volumes_from_npy_files_give_volume_rows_and_montages(cluster, tmp_path):
    model = build_conv3d()
    model.save(tmp_path / "volumes.keras")
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(5)
    scans = rng.random((3, *VOLUME_SHAPE)).astype(np.float32)
    for n, scan in enumerate(scans):
        np.save(folder / f"scan{n}.npy", scan)
    np.save(folder / "slice.npy", scans[0, 0])  # one slice, not a volume: an error row
    summary = dataset.explain_dataset(
        tmp_path / "volumes.keras", folder, tmp_path / "out", class_index=1, verbose=0
    )
    assert summary["explained"] == 3 and summary["errors"] == 1
    table = dataset.read_results(tmp_path / "out")
    assert list(table.columns) == list(dataset.COLUMNS)
    bad = table[table["path"].str.endswith("slice.npy")].iloc[0]
    assert "one volume (D, H, W, C)" in bad["error"]
    expected = tsc.ScoreCAM(model, verbose=0)(scans, 1)
    for _, row in table[table["error"].isna()].iterrows():
        n = int(row["path"][-5])
        assert row["map_depth"] == row["image_depth"] == VOLUME_SHAPE[0]
        np.testing.assert_allclose(dataset.heatmap(row), expected[n], atol=2e-3)
    assert dataset.write_overlays(tmp_path / "out") == 3
    montages = sorted((tmp_path / "out" / "overlays").iterdir())
    magnified = 18  # 6 slices of 10 x 12: 30 px wide, magnified to at least 512
    assert [Image.open(p).size for p in montages] == [(3 * 10 * magnified, 2 * 12 * magnified)] * 3


def test_a_model_of_several_inputs_or_free_size_is_one_error_before_any_actor(
    cluster, setup, tmp_path
):
    _, _, photos = setup
    image = keras.Input((16, 16, 3), name="image")
    meta = keras.Input((2,), name="meta")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    joined = keras.layers.Concatenate()([pooled, meta])
    model = keras.Model({"image": image, "meta": meta}, keras.layers.Dense(2)(joined))
    model.save(tmp_path / "two_inputs.keras")
    with pytest.raises(ValueError, match="explains models of one input; this one also takes meta"):
        dataset.explain_dataset(tmp_path / "two_inputs.keras", photos, tmp_path / "out", verbose=0)
    image = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    free = keras.Model(image, keras.layers.Dense(2, activation="softmax")(pooled))
    free.save(tmp_path / "free.keras")
    with pytest.raises(ValueError, match="explain_dataset needs a model with a fixed input size"):
        dataset.explain_dataset(tmp_path / "free.keras", photos, tmp_path / "free", verbose=0)


def test_an_output_that_is_a_file_or_holds_unrecorded_rows_is_refused(setup, tmp_path):
    _, model_path, photos = setup
    file = tmp_path / "results.parquet"
    file.write_bytes(b"")
    with pytest.raises(ValueError, match="results.parquet is a file; give a folder"):
        dataset.explain_dataset(model_path, photos, file, verbose=0)
    older = tmp_path / "older"
    older.mkdir()
    (older / "part-0123.parquet").write_bytes(b"")  # rows of a version that kept no settings
    with pytest.raises(ValueError, match="holds results without recorded settings"):
        dataset.explain_dataset(model_path, photos, older, verbose=0)
    assert (older / "part-0123.parquet").exists()


def test_a_failing_actor_stops_the_run_in_one_line(cluster, setup, tmp_path, monkeypatch):
    _, model_path, photos = setup

    class Failing(dataset.workers.BatchExplainer):  # defined here, so Ray ships it by value
        def __call__(self, batch):
            raise MemoryError("the actor ran out of memory")

    monkeypatch.setattr(dataset.driver, "BatchExplainer", Failing)
    with pytest.raises(RuntimeError, match="failed: MemoryError: the actor ran out of memory$"):
        dataset.explain_dataset(model_path, photos, tmp_path / "out", verbose=0)
