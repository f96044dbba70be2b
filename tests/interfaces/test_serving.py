"""SavedModel export with options, image bytes, and without tfscorecam: the reloaded
signatures give the eager maps."""

import io
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build_classifier
from PIL import Image
from references import SIZE, images, random_photo

import tfscorecam as tsc

# every registered method with its defaults is exported in test_contract.py; these are options
METHODS = {
    "scorecam-options": lambda m: tsc.ScoreCAM(m, channel_softmax=True, max_channels=3, verbose=0),
    "layercam-layers": lambda m: tsc.LayerCAM(m, layers=["conv1", "target"], verbose=0),
    "asc-shared": lambda m: tsc.AugmentedScoreCAM(
        m, num_augmentations=3, weights="shared", verbose=0
    ),
    "asc-zoom": lambda m: tsc.AugmentedScoreCAM(m, views="zoom", zoom_crops=2, verbose=0),
    "asc-calibrated": lambda m: tsc.AugmentedScoreCAM(
        m, zoom_crops=2, cell_shift=(0.3, -0.2), sigma=1.2, verbose=0
    ),
    "asc-per-copy": lambda m: tsc.AugmentedScoreCAM(
        m, num_augmentations=3, weights="per_copy", batch_size=4, verbose=0
    ),
}


def _export_and_load(explainer, path, **options):
    return tf.saved_model.load(str(tsc.serving.export(explainer, path, **options)))


@pytest.mark.parametrize("name", list(METHODS))
def test_exported_signatures_equal_eager_maps(tmp_path, name):
    model = build_classifier("softmax")
    explainer = METHODS[name](model)
    tolerance = explainer.served_tolerance
    x = images(3)
    loaded = _export_and_load(explainer, tmp_path / name)
    top1 = loaded.signatures["serving_default"](images=tf.constant(x))
    np.testing.assert_allclose(top1["maps"].numpy(), explainer(x), atol=tolerance)
    np.testing.assert_array_equal(top1["classes"].numpy(), np.argmax(model(x), axis=1))
    np.testing.assert_allclose(top1["scores"].numpy(), np.max(model(x), axis=1), rtol=1e-5)
    chosen = loaded.signatures["explain_class"](
        images=tf.constant(x), class_index=tf.constant([4, 0, 2], tf.int32)
    )
    np.testing.assert_allclose(chosen["maps"].numpy(), explainer(x, [4, 0, 2]), atol=tolerance)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "preprocess",
    ["tf", keras.layers.Rescaling(1 / 127.5, offset=-1)],
    ids=["by-name", "keras-layer"],
)
def test_explain_image_bytes_decodes_resizes_and_preprocesses_in_the_graph(tmp_path, preprocess):
    model = build_classifier("softmax", flat_channel=False)
    cam = tsc.ScoreCAM(model, verbose=0)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, shape).astype(np.uint8) for shape in ((20, 30, 3), (16, 12, 3))]
    loaded = _export_and_load(cam, tmp_path / "bytes", preprocess=preprocess)
    result = loaded.signatures["explain_image_bytes"](
        image_bytes=tf.constant([_png(p) for p in photos])
    )
    np.testing.assert_array_equal(result["image_height"].numpy(), [20, 16])
    np.testing.assert_array_equal(result["image_width"].numpy(), [30, 12])
    x = np.stack([tsc.images.resize(p.astype(np.float32), (SIZE, SIZE)) for p in photos])
    x = x / 127.5 - 1.0
    np.testing.assert_allclose(result["maps"].numpy(), cam(x), atol=1e-4)
    np.testing.assert_array_equal(result["classes"].numpy(), np.argmax(model(x), axis=1))


def test_the_saved_model_runs_without_tfscorecam(tmp_path):
    model = build_classifier("softmax", flat_channel=False)
    path = tsc.serving.export(
        tsc.AugmentedScoreCAM(model, num_augmentations=2, verbose=0), tmp_path / "asc", "tf"
    )
    photo = tmp_path / "photo.png"
    photo.write_bytes(_png(np.random.default_rng(1).integers(0, 256, (24, 24, 3), np.uint8)))
    script = (
        "import sys; sys.modules['tfscorecam'] = None\n"
        "import tensorflow as tf\n"
        f"loaded = tf.saved_model.load({str(path)!r})\n"
        "data = tf.io.read_file(" + repr(str(photo)) + ")\n"
        "out = loaded.signatures['explain_image_bytes'](image_bytes=tf.stack([data]))\n"
        "print(out['maps'].shape, float(tf.reduce_max(out['maps'])), int(out['image_height'][0]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == f"(1, {SIZE}, {SIZE}) 1.0 24"


def test_export_errors_are_clear(tmp_path):
    model = build_classifier("softmax")
    with pytest.raises(TypeError, match="export takes a tfscorecam explainer"):
        tsc.serving.export(model, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown preprocess 'imagenet'"):
        tsc.serving.export(tsc.GradCAM(model), tmp_path / "x", preprocess="imagenet")
    with pytest.raises(ValueError, match="preprocess cannot be traced"):
        tsc.serving.export(tsc.GradCAM(model), tmp_path / "x", preprocess=lambda x: x.numpy())
    with pytest.raises(ValueError, match=r"preprocess gives images of shape \(16, 16, 1\)"):
        tsc.serving.export(tsc.GradCAM(model), tmp_path / "x", preprocess=lambda x: x[..., :1])
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="target")(inputs)
    variable = keras.Model(
        inputs,
        keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)),
    )
    with pytest.raises(ValueError, match="fixed input size"):
        tsc.serving.export(tsc.ScoreCAM(variable), tmp_path / "x")
    segmenter = keras.Model(model.inputs, model.get_layer("target").output)
    with pytest.raises(ValueError, match="a SavedModel explains class scores"):
        tsc.serving.export(tsc.GradCAM(segmenter, "conv1", head="logits"), tmp_path / "x")


def test_the_savedmodel_runs_in_a_tf1_session_as_tf_serving_loads_it(tmp_path):
    """TensorFlow Serving and saved_model_cli restore variables through the SavedModel's
    saver in a session; Keras 3 variables must be tracked for that to find them."""
    model = build_classifier("softmax")
    cam = tsc.ScoreCAM(model, verbose=0)
    x = images(2)
    path = str(tsc.serving.export(cam, tmp_path / "tf1"))
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta.signature_def["serving_default"]
        maps = session.run(signature.outputs["maps"].name, {signature.inputs["images"].name: x})
    np.testing.assert_allclose(maps, cam(x), atol=1e-5)


def test_served_jpeg_scores_equal_eager_ones(tmp_path):
    model = build_classifier("softmax", flat_channel=False)
    photo = random_photo(64, 48, seed=3)
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
