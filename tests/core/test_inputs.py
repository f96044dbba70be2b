"""Models with several inputs: one image input explained, the others held at each image's
value, against Score-CAM and Grad-CAM written here."""

import keras
import numpy as np
import pytest
from references import BACKEND, minmax, resize_bilinear, score_cam_of_features

import tfscorecam as tsc
from tfscorecam.methods import METHODS, method_class
from tfscorecam.methods.gradients import GradientCAM
from tfscorecam.methods.tail import TailCAM

SIZE = 16
TOL = 1e-4

not_on_jax = pytest.mark.skipif(BACKEND == "jax", reason="JAX refuses several inputs (below)")


def _image_and_meta() -> keras.Model:
    """{"image": (16, 16, 3), "meta": (4,)} -> 3 softmax classes; the meta features shift
    the class scores, so the maps depend on them."""
    keras.utils.set_random_seed(0)
    image = keras.Input((SIZE, SIZE, 3), name="image")
    meta = keras.Input((4,), name="meta")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="target")(image)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    joined = keras.layers.Concatenate()([pooled, keras.layers.Dense(6, name="meta_dense")(meta)])
    outputs = keras.layers.Dense(3, activation="softmax", name="classes")(joined)
    return keras.Model({"image": image, "meta": meta}, outputs)


def _image_and_depth() -> keras.Model:
    """Two image inputs, RGB (16, 16, 3) and depth (16, 16, 1), as a list."""
    keras.utils.set_random_seed(1)
    rgb = keras.Input((SIZE, SIZE, 3), name="rgb")
    depth = keras.Input((SIZE, SIZE, 1), name="depth")
    x = keras.layers.Concatenate()([rgb, depth])
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="target")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model([rgb, depth], keras.layers.Dense(3, activation="softmax")(x))


def _data(n: int = 2):
    rng = np.random.default_rng(3)
    images = rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32)
    return images, rng.normal(size=(n, 4)).astype(np.float32) * 3


def _reference_score_cam(model, image, meta, class_index) -> np.ndarray:
    """Score-CAM one channel at a time: the image masked, the meta features as given."""
    features = keras.Model(model.inputs, model.get_layer("target").output)
    acts = np.asarray(features({"image": image[None], "meta": meta[None]}), np.float64)[0]

    def score(masked):
        return np.asarray(model({"image": masked, "meta": meta[None]}))[0, class_index]

    return score_cam_of_features(acts, image, score)[0]


@not_on_jax
def test_score_cam_holds_each_images_other_inputs():
    model = _image_and_meta()
    images, meta = _data()
    cam = tsc.ScoreCAM(model, verbose=0)
    assert cam.layer_path.split("/")[-1] == "target"  # inside the model, under its image view
    maps = cam(images, [2, 1], inputs={"meta": meta})
    for i, c in enumerate([2, 1]):
        expected = _reference_score_cam(model, images[i], meta[i], c)
        np.testing.assert_allclose(maps[i], expected, atol=TOL)
        alone = cam(images[i], c, inputs={"meta": meta[i]})  # one image, one value
        np.testing.assert_allclose(alone, maps[i], atol=1e-5)
    shared = cam(images, 0, inputs={"meta": meta[0]})  # one value for every image
    np.testing.assert_allclose(
        shared[1], _reference_score_cam(model, images[1], meta[0], 0), atol=TOL
    )
    assert not np.allclose(shared[1], cam(images[1], 0, inputs={"meta": meta[1]}), atol=1e-3)
    as_called = cam({"image": images, "meta": meta}, [2, 1])  # the model's own input dict
    np.testing.assert_allclose(as_called, maps, atol=1e-6)
    with pytest.raises(ValueError, match="the input dict has no 'image'"):
        cam({"photo": images, "meta": meta})
    with pytest.raises(ValueError, match="in the dict or as inputs=, not both"):
        cam({"image": images, "meta": meta}, inputs={"meta": meta})


@not_on_jax
@pytest.mark.tensorflow
def test_grad_cam_differentiates_the_image_path_alone():
    import tensorflow as tf

    model = _image_and_meta()
    images, meta = _data()
    maps = tsc.GradCAM(model, verbose=0)(images, 1, inputs={"meta": meta})
    target = model.get_layer("target").output
    head = model.get_layer("classes")  # Grad-CAM differentiates its logit, before the softmax
    tail = keras.Model([target, model.inputs[1]], head.input)
    features = keras.Model(model.inputs[0], target)
    for i in range(2):
        acts = features(images[i : i + 1])
        with tf.GradientTape() as tape:
            tape.watch(acts)
            joined = tail([acts, tf.constant(meta[i : i + 1])])
            score = (tf.matmul(joined, head.kernel) + head.bias)[0, 1]
        grads = tape.gradient(score, acts).numpy()[0].astype(np.float64)
        acts = acts.numpy()[0].astype(np.float64)
        low = np.maximum((acts * grads.mean(axis=(0, 1))).sum(-1), 0)
        np.testing.assert_allclose(maps[i], minmax(resize_bilinear(low, SIZE, SIZE)), atol=TOL)


@not_on_jax
def test_two_image_inputs_need_input_to_say_which():
    model = _image_and_depth()
    images, _ = _data()
    depth = np.random.default_rng(4).normal(size=(2, SIZE, SIZE, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=r"2 of them are images .* pass input="):
        tsc.ScoreCAM(model, verbose=0)
    rgb = tsc.ScoreCAM(model, input="rgb", verbose=0)(images, 0, inputs={"depth": depth})
    on_depth = tsc.ScoreCAM(model, input="depth", verbose=0)(depth, 0, inputs={"rgb": images})
    assert rgb.shape == on_depth.shape == (2, SIZE, SIZE)
    assert np.isfinite(rgb).all() and np.isfinite(on_depth).all()


@not_on_jax
def test_explain_takes_the_other_inputs():
    model = _image_and_meta()
    images, meta = _data()
    photo = np.round((np.tanh(images[0]) + 1) * 127.5).astype(np.uint8)
    scale = lambda v: v / 127.5 - 1  # noqa: E731
    explanation = tsc.explain(
        model, photo, preprocess=scale, class_index=2, inputs={"meta": meta[0]}
    )
    expected = _reference_score_cam(model, scale(photo.astype(np.float32)), meta[0], 2)
    np.testing.assert_allclose(explanation.heatmap, expected, atol=TOL)


@not_on_jax
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_multi_input_model_or_says_why_not(method):
    model = _image_and_meta()
    images, meta = _data()
    cls = method_class(method)
    runs_the_rest = issubclass(cls, TailCAM) or (
        issubclass(cls, GradientCAM) and BACKEND != "tensorflow"  # autodiff of the rest
    )
    if runs_the_rest:  # they run the model from the layer on, without the other inputs
        with pytest.raises(ValueError, match="cannot carry a multi-input model's other inputs"):
            cls(model, verbose=0)(images, inputs={"meta": meta})  # when built, or first run
        return
    cam = cls(model, verbose=0)
    maps = cam(images, inputs={"meta": meta})
    assert maps.shape == (2, SIZE, SIZE) and np.isfinite(maps).all()
    np.testing.assert_allclose(cam(images[1], inputs={"meta": meta[1]}), maps[1], atol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda cam, x, m: cam(x), r"other inputs \['meta'\] need values"),
        (lambda cam, x, m: cam(x, inputs={"metadata": m}), "exactly those names"),
        (lambda cam, x, m: cam(x, inputs={"meta": m[:, :3]}), r"takes \(4,\) per image"),
        (lambda cam, x, m: cam(x, inputs={"meta": m[:1].repeat(3, 0)}), "give 2 of them"),
        (lambda cam, x, m: tsc.ScoreCAM(_image_and_meta(), input="photo"), "no input 'photo'"),
        (lambda cam, x, m: tsc.ScoreCAM(_image_and_meta(), input="meta"), "must be images"),
        (lambda cam, x, m: tsc.ScoreCAM(keras.Sequential([keras.Input((8, 8, 3)),
                                         keras.layers.Conv2D(2, 3)]), input="x"), "has one"),
    ],
)
@not_on_jax
def test_bad_multi_input_calls_are_one_clear_error(call, message):
    cam = tsc.ScoreCAM(_image_and_meta(), verbose=0)
    images, meta = _data()
    with pytest.raises(ValueError, match=message):
        call(cam, images, meta)


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's refusal")
def test_jax_refuses_several_inputs_in_one_line():
    with pytest.raises(ValueError, match="explained on TensorFlow and PyTorch"):
        tsc.ScoreCAM(_image_and_meta(), verbose=0)


@not_on_jax
def test_command_line_feeds_the_other_inputs_per_image(tmp_path, capsys):
    from PIL import Image

    from tfscorecam.interfaces import cli

    model = _image_and_meta()
    model.save(tmp_path / "m.keras")
    _, meta = _data()
    np.save(tmp_path / "meta.npy", meta)
    photos = []
    for i in range(2):
        photos.append(str(tmp_path / f"p{i}.png"))
        pixels = np.random.default_rng(i).integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(photos[-1])
    argv = ["explain", *photos, "--model", str(tmp_path / "m.keras"), "--preprocess", "tf",
            "--class", "2", "--out", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert "need values" in error and "--feed NAME=FILE.npy" in error and "got none" in error
    assert cli.main([*argv, "--feed", f"meta={tmp_path / 'meta.npy'}"]) == 0
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for i, photo in enumerate(photos):
        expected = tsc.explain(loaded, photo, preprocess=lambda v: v / 127.5 - 1, class_index=2,
                               inputs={"meta": meta[i]})  # fmt: skip
        written = np.asarray(Image.open(tmp_path / "out" / f"p{i}_scorecam_2_2.png"))
        np.testing.assert_array_equal(written, expected.overlay())
    bad = [*argv, "--feed", f"meta={tmp_path / 'meta.npy'}", "--feed", "size=nothing.txt"]
    with pytest.raises(SystemExit):
        cli.main(bad)
    assert "NAME=FILE.npy" in capsys.readouterr().err


@not_on_jax
@pytest.mark.tensorflow
def test_export_refuses_a_model_with_other_inputs(tmp_path):
    cam = tsc.ScoreCAM(_image_and_meta(), verbose=0)
    with pytest.raises(ValueError, match="also takes meta"):
        tsc.serving.export(cam, tmp_path / "m")


@not_on_jax
def test_per_image_classes_and_targets_follow_their_image():
    from tfscorecam import targets

    model = _image_and_meta()
    images, meta = _data(3)
    cam = tsc.ScoreCAM(model, verbose=0)
    alone = [cam(images[i], inputs={"meta": meta[i]}) for i in range(3)]  # top-1 of each
    np.testing.assert_allclose(cam(images, inputs={"meta": meta}), alone, atol=1e-5)
    rows = cam(images, [[0, 2], [1, 0], [2, 1]], inputs={"meta": meta})
    for i, pair in enumerate([[0, 2], [1, 0], [2, 1]]):
        expected = cam(images[i], pair, inputs={"meta": meta[i]})
        np.testing.assert_allclose(rows[i], expected, atol=1e-5)
    top = cam(images, target=targets.top_k(2), inputs={"meta": meta})
    assert top.shape == (3, 2, SIZE, SIZE)
    np.testing.assert_allclose(top[:, 0], alone, atol=1e-5)
    one_each = [targets.regression(2), targets.regression(0), targets.regression(1)]
    by_target = cam(images, target=one_each, inputs={"meta": meta})
    np.testing.assert_allclose(by_target, cam(images, [2, 0, 1], inputs={"meta": meta}), atol=1e-5)
