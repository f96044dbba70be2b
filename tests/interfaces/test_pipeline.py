"""One image pipeline: explain(), the command line, the dataset workers and a served
SavedModel's explain_image_bytes give the same model input for one file."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import build_classifier
from PIL import Image

import tfscorecam as tsc
from tfscorecam.core.explainer import Explainer
from tfscorecam.interfaces import cli, pipeline, serving
from tfscorecam.interfaces.dataset import workers
from tfscorecam.interfaces.images import display_image
from tfscorecam.zoo.preprocessing import PREPROCESS


@pytest.fixture
def photo(tmp_path):
    """A 23x37 RGB PNG (lossless, so PIL and TensorFlow decode the same pixels)."""
    pixels = np.random.default_rng(3).integers(0, 256, (23, 37, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny.keras"
    build_classifier().save(path)
    return path


def _spy(monkeypatch) -> list:
    """Record the images every explain_batch call is given, as (N, H, W, C)."""
    seen: list = []
    original = Explainer.explain_batch

    def recording(self, images, *args, **kwargs):
        seen.append(np.asarray(images, np.float32).reshape((-1, *self.input_shape[1:])))
        return original(self, images, *args, **kwargs)

    monkeypatch.setattr(Explainer, "explain_batch", recording)
    return seen


def test_every_front_door_gives_the_same_model_input(photo, model_file, tmp_path, monkeypatch):
    path, pixels = photo
    model = tsc.zoo.load(str(model_file), None, "tf").model
    preprocess = PREPROCESS["tf"]
    # the reference, written out: bilinear antialiased resize of the float pixels, then [-1, 1]
    resized = tf.image.resize(pixels.astype(np.float32), (16, 16), "bilinear", antialias=True)
    expected = resized.numpy()[None] / 127.5 - 1.0

    seen = _spy(monkeypatch)
    tsc.explain(model, str(path), "gradcam", preprocess=preprocess, verbose=0)
    argv = ["explain", str(path), "--model", str(model_file), "--preprocess", "tf"]
    assert cli.main([*argv, "--method", "gradcam", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    decoded = workers.decode({"path": np.asarray([str(path)])}, (16, 16, 3))
    job = workers.Job(str(model_file), None, "tf", None, "gradcam", None, {})
    row = workers.BatchExplainer(job, 0)(decoded)
    assert row["error"][0] == ""
    explain_input, cli_input, dataset_input = seen

    cam = tsc.GradCAM(model, verbose=0)
    served = serving._ServedExplainer(cam, preprocess)
    graph_inputs: list = []
    monkeypatch.setattr(cam, "graph_explain", lambda x: graph_inputs.append(x.numpy()) or {})
    served._explain_bytes(tf.constant([path.read_bytes()]), preprocess)

    for name, x in [
        ("explain()", explain_input),
        ("command line", cli_input),
        ("dataset", dataset_input),
        ("SavedModel", graph_inputs[0]),
    ]:
        np.testing.assert_allclose(x, expected, atol=1e-5, err_msg=name)
    assert np.array_equal(explain_input, cli_input)
    assert np.array_equal(explain_input, dataset_input)


def test_model_input_checks_resizes_and_preprocesses_without_changing_its_input():
    cam = tsc.GradCAM(build_classifier(), verbose=0)
    image = np.random.default_rng(0).uniform(0, 255, (20, 30, 3)).astype(np.float32)
    kept = image.copy()

    def in_place(batch):  # as Keras' preprocess_input does on float arrays
        batch -= 100.0
        return batch

    x = pipeline.model_input(cam, [image], in_place, ["image 0"])
    np.testing.assert_allclose(x[0], tsc.images.resize(kept, (16, 16)) - 100.0, atol=1e-4)
    assert np.array_equal(image, kept)
    with pytest.raises(ValueError, match=r"image 0 is 5x30 pixels, smaller than the 8x8"):
        pipeline.model_input(cam, [image[:5]], None, ["image 0"])


def test_decode_in_graph_reads_a_jpeg_as_pil_does(tmp_path):
    """The accurate integer DCT: TensorFlow's default fast DCT would differ by several levels."""
    pixels = np.random.default_rng(4).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path = tmp_path / "p.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    image, shape = pipeline.decode_in_graph(tf.constant(path.read_bytes()), (40, 48))
    assert tuple(shape.numpy()) == (40, 48)
    np.testing.assert_array_equal(image.numpy(), display_image(str(path)))
