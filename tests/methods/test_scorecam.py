"""ScoreCAM against the NumPy reference, and its invariances."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import (
    SIZE,
    as_numpy,
    images,
    reference_scorecam,
    reference_weights,
    sigmoid,
    softmax,
)

import tfscorecam as tsc
from tfscorecam.core.head import scoring_head

TOL = 1e-4


@pytest.mark.parametrize(
    "activation, units, to_score",
    [("softmax", 5, lambda o: o), (None, 5, softmax), ("sigmoid", 1, lambda o: o)],
    ids=["softmax-head", "logit-head", "single-unit-sigmoid"],
)
def test_matches_numpy_reference(activation, units, to_score):
    model = build_classifier(activation, units)
    x = images(2)
    maps = tsc.ScoreCAM(model, "target", batch_size=4)(x)
    assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
    for image, cam in zip(x, maps, strict=True):
        top1 = int(np.argmax(as_numpy(model(image[None]))[0]))
        expected = reference_scorecam(model, image, top1, to_score)
        np.testing.assert_allclose(cam, expected, atol=TOL)
        assert cam.min() == 0.0 and cam.max() == 1.0


def test_eigen_smooth_and_raw_maps_match_numpy_reference():
    model = build_classifier("softmax", 5)
    x = images(2)
    smooth = tsc.ScoreCAM(model, "target", eigen_smooth=True, verbose=0)(x, [2, 4])
    raw = tsc.ScoreCAM(model, "target", verbose=0)(x, [2, 4], normalize=False)
    for image, cls, cam, unscaled in zip(x, [2, 4], smooth, raw, strict=True):
        expected = reference_scorecam(model, image, cls, eigen_smooth=True)
        np.testing.assert_allclose(cam, expected, atol=TOL)
        expected = reference_scorecam(model, image, cls, scaled=False)
        np.testing.assert_allclose(unscaled, expected, rtol=1e-4, atol=1e-7)
        assert np.abs(cam - reference_scorecam(model, image, cls)).max() > 0.05  # not the sum


def test_single_unit_logit_head_uses_sigmoid_not_equal_weights():
    model = build_classifier(None, units=1)
    kernel, bias = model.get_layer("head").get_weights()
    x = images(1)[0]
    model.get_layer("head").set_weights([kernel * 100, bias])
    _, logits, _ = reference_weights(model, x, 0)  # each masked input's logit
    model.get_layer("head").set_weights([kernel * 100, bias - np.median(logits)])  # spread
    cam = tsc.ScoreCAM(model, "target")(x)
    np.testing.assert_allclose(cam, reference_scorecam(model, x, 0, sigmoid), atol=TOL)
    # equal weights would give the plain channel sum: Score-CAM must differ from it
    equal = reference_scorecam(model, x, 0, lambda o: np.ones_like(o))
    assert np.abs(cam - equal).max() > 1e-2


def test_logit_score_recovers_pre_softmax_scores():
    probs_model = build_classifier("softmax")
    logits_model = build_classifier(None)  # same seed: same weights
    x = images(1)[0]
    cam = tsc.ScoreCAM(probs_model, "target", score="logit")(x, class_index=2)
    expected = reference_scorecam(probs_model, x, 2, score_model=logits_model)
    np.testing.assert_allclose(cam, expected, atol=TOL)
    np.testing.assert_allclose(
        tsc.ScoreCAM(logits_model, "target", score="logit")(x, class_index=2), expected, atol=TOL
    )


def test_logit_of_a_softmax_dense_computes_the_explained_columns_only():
    """score="logit" on a softmax Dense head: the chosen classes' kernel columns, for every
    row (K,) or per row (N, K), equal the logits model's outputs."""
    head = scoring_head(build_classifier("softmax"), score="logit")
    assert head.stripped and head.columns is not None
    x = images(3)
    features, logits = head.model(x), as_numpy(build_classifier(None)(x))
    np.testing.assert_allclose(head.transform(features), logits, atol=1e-5)
    chosen = head.scores(features, keras.ops.convert_to_tensor(np.array([2, 0], np.int32)))
    np.testing.assert_allclose(chosen, logits[:, [2, 0]], atol=1e-5)
    per_row = np.array([[1, 3], [4, 4], [0, 2]], np.int32)
    np.testing.assert_allclose(
        head.scores(features, keras.ops.convert_to_tensor(np.asarray(per_row, np.int32))),
        np.take_along_axis(logits, per_row, axis=1),
        atol=1e-5,
    )


def test_channel_softmax_and_baseline_options(softmax_model):
    x = images(1)[0]
    cam = tsc.ScoreCAM(softmax_model, "target", channel_softmax=True)(x, class_index=1)
    expected = reference_scorecam(softmax_model, x, 1, channel_softmax=True)
    np.testing.assert_allclose(cam, expected, atol=TOL)
    cam = tsc.ScoreCAM(softmax_model, "target", baseline=0.5)(x, class_index=1)
    np.testing.assert_allclose(cam, reference_scorecam(softmax_model, x, 1, baseline=0.5), atol=TOL)


def test_max_channels_scores_the_most_varied_channels(softmax_model):
    x = images(1)[0]
    acts = np.asarray(
        keras.Model(softmax_model.inputs[0], softmax_model.get_layer("target").output)(x[None])[0]
    )
    top3 = np.argsort(-acts.reshape(-1, acts.shape[-1]).std(axis=0))[:3]
    cam = tsc.ScoreCAM(softmax_model, "target", max_channels=3)(x, class_index=4)
    expected = reference_scorecam(softmax_model, x, 4, channels=top3)
    np.testing.assert_allclose(cam, expected, atol=TOL)
    assert np.abs(cam - tsc.ScoreCAM(softmax_model, "target")(x, class_index=4)).max() > 1e-3


def test_same_maps_for_any_batch_size_and_batch_vs_single(softmax_model):
    x = images(3)
    reference = tsc.ScoreCAM(softmax_model, batch_size=64)(x)
    for batch_size in (1, 7):
        np.testing.assert_allclose(
            tsc.ScoreCAM(softmax_model, batch_size=batch_size)(x), reference, atol=1e-5
        )
    one_by_one = np.stack([tsc.ScoreCAM(softmax_model)(image) for image in x])
    np.testing.assert_allclose(one_by_one, reference, atol=1e-5)


def test_multi_class_equals_separate_calls(softmax_model):
    x = images(2)
    cam = tsc.ScoreCAM(softmax_model)
    classes = np.array([[0, 3, 4], [2, 2, 1]])
    both = cam(x, class_index=classes)
    assert both.shape == (2, 3, SIZE, SIZE)
    for k in range(3):
        np.testing.assert_allclose(both[:, k], cam(x, class_index=classes[:, k]), atol=1e-6)
    assert cam(x[0], class_index=[0, 3]).shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(cam(x, class_index=3), cam(x, class_index=[3, 3]), atol=0)


def test_flat_channels_and_zero_image_give_no_nan(softmax_model):
    zeros = np.zeros((SIZE, SIZE, 3), np.float32)
    cam = tsc.ScoreCAM(softmax_model)(zeros)
    assert np.all(np.isfinite(cam)) and cam.min() >= 0 and cam.max() <= 1
    constant = build_classifier("softmax")
    kernel, bias = constant.get_layer("target").get_weights()
    constant.get_layer("target").set_weights([np.zeros_like(kernel), bias])
    flat = tsc.ScoreCAM(constant)(images(1)[0])  # every channel flat: nothing to score
    np.testing.assert_array_equal(flat, np.zeros((SIZE, SIZE), np.float32))


def _nested(kind: str) -> tuple[keras.Model, keras.Model]:
    """The tiny classifier, and the same layers with a nested functional backbone."""
    flat = build_classifier("softmax")
    backbone = keras.Model(flat.inputs, flat.get_layer("target").output, name="backbone")
    head = [flat.get_layer("gap"), flat.get_layer("head")]
    if kind == "sequential":
        return flat, keras.Sequential([keras.Input((SIZE, SIZE, 3)), backbone, *head])
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0, name="identity")(inputs)
    x = backbone(x)
    for layer in head:
        x = layer(x)
    return flat, keras.Model(inputs, x)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_nested_backbone_gives_same_map(kind):
    flat, wrapped = _nested(kind)
    x = images(2)
    expected = tsc.ScoreCAM(flat, "target")(x)
    for layer in (None, "target", "backbone/target", flat.get_layer("target")):
        cam = tsc.ScoreCAM(wrapped, layer)
        assert cam.layer_path == "backbone/target"
        np.testing.assert_allclose(cam(x), expected, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_policy_gives_same_map(policy):
    reference_model = build_classifier("softmax", flat_channel=False)
    x = images(2)
    expected = tsc.ScoreCAM(reference_model)(x)
    try:
        keras.mixed_precision.set_global_policy(policy)
        model = build_classifier("softmax", flat_channel=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(reference_model.get_weights())
    cam = tsc.ScoreCAM(model)(x)
    assert cam.dtype == np.float32 and np.all(np.isfinite(cam))
    tolerance = 0.02 if policy == "mixed_float16" else 0.1
    assert np.abs(cam - expected).max() < tolerance
    assert np.corrcoef(cam.ravel(), expected.ravel())[0, 1] > 0.99


def test_variable_input_size_model_matches_reference():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="target")(x)
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    cam = tsc.ScoreCAM(model, verbose=0)
    for size in (16, 24):
        image = np.random.default_rng(size).normal(size=(size, size, 3)).astype(np.float32)
        top1 = int(np.argmax(as_numpy(model(image[None]))[0]))
        np.testing.assert_allclose(cam(image), reference_scorecam(model, image, top1), atol=TOL)
