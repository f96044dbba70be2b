"""Targets and outputs: segmentation, regression and multi-output models against NumPy."""

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build_classifier
from references import SIZE, gradient_cam, images, minmax, reference_weights, resize_bilinear

import tfscorecam as tsc
from tfscorecam import targets
from tfscorecam.core.request import TARGET_CACHE_SIZE
from tfscorecam.methods import method_class

TOL = 1e-4


def _reference(model, image, score_of, **options) -> np.ndarray:
    """Score-CAM one channel at a time with the score ``score_of(output) -> (1,)``."""
    acts, scores, scored = reference_weights(model, image, 0, score_of=score_of, **options)
    ups = [resize_bilinear(acts[..., k], *image.shape[:2]) for k in scored]
    return minmax(np.maximum(sum(s * u for s, u in zip(scores, ups, strict=True)), 0))


def _segmenter() -> keras.Model:
    """Conv -> Conv("target", 8x8) -> upsample -> 1x1 conv softmax: (N, 16, 16, 3)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="target")(x)
    x = keras.layers.UpSampling2D(2)(x)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax", name="segments")(x)
    return keras.Model(inputs, outputs)


def _two_outputs() -> tuple[keras.Model, keras.Model]:
    """The tiny classifier with a second regression output, and its classifier alone."""
    classifier = build_classifier("softmax")
    features = classifier.get_layer("gap").output
    aux = keras.layers.Dense(3, name="aux")(features)
    both = keras.Model(classifier.inputs, {"cls": classifier.output, "aux": aux})
    return both, classifier


def _aux_model(both: keras.Model) -> keras.Model:
    """The regression output alone (dict outputs are ordered by key: "aux" first)."""
    return keras.Model(both.inputs, both.get_layer("aux").output)


def test_segmentation_target_is_the_mean_probability_over_the_mask():
    model = _segmenter()
    x = images(2)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[2:9, 4:12] = True
    target = targets.segmentation(2, mask)
    maps = tsc.ScoreCAM(model, "target", verbose=0)(x, target=target)
    assert maps.shape == (2, SIZE, SIZE)
    for image, cam in zip(x, maps, strict=True):
        expected = _reference(model, image, lambda out: [out[0, ..., 2][mask].mean()])
        np.testing.assert_allclose(cam, expected, atol=TOL)
    box = targets.segmentation(2, (4, 2, 12, 9))  # the same pixels as a box
    np.testing.assert_allclose(tsc.ScoreCAM(model, "target")(x, target=box), maps, atol=1e-6)
    # explain() reports the target's value on the photo, and no class
    result = tsc.explain(model, (x[0] * 40 + 128).clip(0, 255), target=target, verbose=0)
    assert result.class_index is None and 0 < result.score < 1


@pytest.mark.tensorflow
def test_a_box_region_is_traced_without_autograph_noise(caplog):
    """A box's mask is made by a NumPy helper while the step is traced: TensorFlow's AutoGraph
    must not try to convert it (it logged "could not transform box_lists ... report this to
    the TensorFlow team")."""
    import tensorflow as tf

    logger = tf.get_logger()  # its own handler: caplog's must be added to it
    logger.addHandler(caplog.handler)
    try:
        for method in (tsc.ScoreCAM, tsc.GradCAM):
            target = targets.segmentation(1, region=(1.5, 2, 9, 11.5))
            method(_segmenter(), "target", verbose=0)(images(1), target=target)
    finally:
        logger.removeHandler(caplog.handler)
    assert "AutoGraph" not in caplog.text


def test_named_output_of_a_two_output_model():
    both, classifier = _two_outputs()
    x = images(2)
    expected = tsc.ScoreCAM(classifier, "target")(x, class_index=[1, 3])
    index = [t._keras_history.operation.name for t in both.outputs].index("head")
    for output in ("cls", "head", index, index - 2):  # dict key, layer name, index
        cam = tsc.ScoreCAM(both, "target", output=output, verbose=0)
        np.testing.assert_allclose(cam(x, class_index=[1, 3]), expected, atol=1e-6)
    np.testing.assert_allclose(
        expected[0], _reference(classifier, x[0], lambda out: [out[0, 1]]), atol=TOL
    )
    grad = tsc.GradCAM(both, "target", output="cls")(x, class_index=2)
    np.testing.assert_allclose(grad, tsc.GradCAM(classifier, "target")(x, class_index=2), atol=1e-6)


def test_regression_target_and_a_callable_on_the_raw_output():
    both, _ = _two_outputs()
    aux_model = _aux_model(both)
    x = images(2)
    cam = tsc.ScoreCAM(both, "target", output="aux", verbose=0)
    by_builtin = cam(x, target=targets.regression(1))
    by_callable = cam(x, target=lambda out: out[:, 1])
    np.testing.assert_allclose(by_builtin, by_callable, atol=1e-6)
    for image, result in zip(x, by_builtin, strict=True):
        expected = _reference(aux_model, image, lambda out: [out[0, 1]])
        np.testing.assert_allclose(result, expected, atol=TOL)
    # a target giving K scores gives K maps, each the single-score map
    both_scores = cam(x, target=lambda out: tf.stack([out[:, 1], out[:, 2]], axis=1))
    assert both_scores.shape == (2, 2, SIZE, SIZE)
    np.testing.assert_allclose(both_scores[:, 0], by_builtin, atol=1e-6)
    # one target per image
    mixed = cam(x, target=[targets.regression(1), targets.regression(2)])
    np.testing.assert_allclose(mixed[1], both_scores[1, 1], atol=1e-6)


def test_gradcam_differentiates_a_target():
    both, _ = _two_outputs()
    aux_model = _aux_model(both)
    x = images(2)
    maps = tsc.GradCAM(both, "target", output="aux")(x, target=targets.regression(2))
    split = keras.Model(aux_model.inputs, [aux_model.get_layer("target").output, aux_model.output])
    for image, cam in zip(x, maps, strict=True):
        with tf.GradientTape() as tape:
            acts, out = split(image[None])
            score = out[0, 2]
        g = tape.gradient(score, acts)[0].numpy().astype(np.float64)
        a = acts[0].numpy().astype(np.float64)
        low = np.maximum(gradient_cam(a, g).sum(axis=-1), 0)
        np.testing.assert_allclose(cam, minmax(resize_bilinear(low, SIZE, SIZE)), atol=TOL)


@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_compiled_steps_of_dropped_targets_are_freed(method):
    """A new target per call (one detection box per image, say) keeps at most
    TARGET_CACHE_SIZE scorings, and their compiled steps go with them."""
    cam = method_class(method)(build_classifier("softmax"), "target", verbose=0)
    x = images(1)
    for c in range(TARGET_CACHE_SIZE + 4):
        cam(x, target=lambda output, c=c: output[:, c % 5])  # a new object each time
    gc.collect()
    assert len(cam.scorings.targets) == TARGET_CACHE_SIZE
    assert len(cam.scorer._steps) == len(cam.scorer._loops) == TARGET_CACHE_SIZE


def test_classes_target_equals_class_index():
    model = build_classifier("softmax")
    x = images(2)
    cam = tsc.ScoreCAM(model)
    np.testing.assert_array_equal(cam(x, target=targets.classes([2, 4])), cam(x, [2, 4]))


def test_top_k_explains_each_images_most_probable_classes_in_order():
    model = build_classifier("softmax")
    x = images(3)
    cam = tsc.GradCAM(model, verbose=0)
    order = np.argsort(-model.predict(x, verbose=0), axis=1)[:, :2]
    explained = cam.explain_batch(x, target=targets.top_k(2))
    np.testing.assert_array_equal(explained.classes, order)
    np.testing.assert_allclose(explained.maps, cam(x, order), atol=1e-6)
    one = cam.explain_batch(x[0], target=targets.top_k(5))
    assert one.output().shape == (5, SIZE, SIZE)  # one image: (K, H, W)
    with pytest.raises(ValueError, match="top_k=6 but the model has 5 classes"):
        cam(x, target=targets.top_k(6))
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="top_k takes a positive int"):
            targets.top_k(bad)


@pytest.mark.parametrize(
    "kwargs, call, message",
    [
        ({"output": "nope"}, {}, "has no output 'nope'; its outputs: aux, cls"),
        ({"output": 2}, {}, "output 2 is out of range: the model has 2 outputs"),
        ({"output": 1.5}, {}, "output must be a name or an index"),
        ({}, {}, r"2 outputs \(aux, cls\); pass output="),
        (
            {"output": "aux"},
            {"target": lambda out: tf.reduce_sum(out)},
            r"one score per image \(batch,\) .* returned shape \(\)",
        ),
        ({"output": "aux"}, {"target": lambda out: out[..., None]}, r"returned shape \(2, 3, 1\)"),
        ({"output": "aux"}, {"target": "cls"}, "a target must be a callable"),
        ({"output": "aux"}, {"target": [targets.regression()]}, "1 targets for 2 images"),
        ({"output": "aux"}, {"target": targets.regression(5)}, "needs a .* D > 5"),
        ({"output": "cls"}, {"target": targets.classes(1), "class_index": 1}, "not both"),
        ({"output": "cls"}, {"target": targets.segmentation(1)}, r"needs a \(batch, H, W"),
    ],
)
def test_bad_outputs_and_targets(kwargs, call, message):
    both, _ = _two_outputs()
    with pytest.raises((ValueError, TypeError), match=message):
        tsc.ScoreCAM(both, "target", verbose=0, **kwargs)(images(2), **call)


def test_bad_segmentation_targets():
    model = _segmenter()
    with pytest.raises(ValueError, match=r"has shape \(None, 16, 16, 3\), not class scores"):
        tsc.ScoreCAM(model, "target")(images(1), class_index=1)
    with pytest.raises(ValueError, match=r"the region mask has shape \(4, 4\)"):
        tsc.ScoreCAM(model, "target")(images(1), target=targets.segmentation(0, np.ones((4, 4))))
    with pytest.raises(ValueError, match="out of range: the output has 3 classes"):
        tsc.ScoreCAM(model, "target")(images(1), target=targets.segmentation(3))
    with pytest.raises(ValueError, match="activation must be one of"):
        targets.segmentation(0, activation="relu")
    with pytest.raises(TypeError, match="class_index must be an int"):
        targets.segmentation(1.5)


def _negative_regressor() -> keras.Model:
    """Conv -> Conv(ReLU, "target") -> GAP -> Dense(1), its kernel negative: a negative value
    whose every gradient and masked score is negative too."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="target")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, name="value")(x)
    model = keras.Model(inputs, outputs)
    kernel, _ = model.get_layer("value").get_weights()
    model.get_layer("value").set_weights([-np.abs(kernel) * 0.01, np.array([-3.7], np.float32)])
    return model


@pytest.mark.parametrize("method", ["scorecam", "gradcam", "layercam"])
def test_an_all_zero_map_warns_why_and_negate_explains_the_negative_value(method):
    from tfscorecam.interfaces.advice import InputWarning

    model = _negative_regressor()
    photo = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    assert float(model(photo[None].astype("float32"))[0, 0]) < 0
    with pytest.warns(InputWarning, match=r"all zero.*regression\(0, negate=True\)"):
        plain = tsc.explain(model, photo, method, target=targets.regression(0), verbose=0)
    assert not plain.heatmap.any()
    negated = tsc.explain(
        model, photo, method, target=targets.regression(0, negate=True), verbose=0
    )
    by_hand = tsc.explain(model, photo, method, target=lambda y: -y[:, 0], verbose=0)
    assert negated.heatmap.max() == pytest.approx(1.0)
    np.testing.assert_allclose(negated.heatmap, by_hand.heatmap, atol=1e-6)
    assert negated.score == pytest.approx(-plain.score)
    with pytest.raises(TypeError, match="negate must be True or False"):
        targets.regression(0, negate="yes")
