"""Metrics: exact values on hand-built cases."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import SIZE, images

from tfscorecam import metrics


def _brightness_model() -> keras.Model:
    """Two classes; class 1's logit is the mean of the image, class 0's is 0."""
    inputs = keras.Input((4, 4, 1))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant([[0.0, 1.0]]), bias_initializer="zeros"
    )(mean)
    return keras.Model(inputs, keras.layers.Softmax()(logits))


def test_a_map_that_keeps_everything_drops_nothing():
    model = build_classifier("softmax")
    x = images(4)
    ones = np.ones((4, SIZE, SIZE))
    assert metrics.average_drop(model, x, ones, 2) == 0.0
    assert metrics.increase_in_confidence(model, x, ones, 2) == 0.0


def test_a_map_of_zeros_gives_the_drop_to_the_blank_image():
    model = build_classifier("softmax")
    x = images(3)
    y = metrics.class_probabilities(model, x, 1)
    o = metrics.class_probabilities(model, np.zeros_like(x), 1)
    expected = np.mean(np.maximum(0, y - o) / y) * 100
    zeros = np.zeros((3, SIZE, SIZE))
    assert metrics.average_drop(model, x, zeros, 1) == pytest.approx(expected, rel=1e-6)
    assert metrics.increase_in_confidence(model, x, zeros, 1) == pytest.approx(np.mean(o > y) * 100)


def test_per_image_drop_and_increase_terms():
    y, o = np.array([0.5, 0.2, 0.4]), np.array([0.25, 0.4, 0.4])
    np.testing.assert_allclose(metrics.drops(y, o), [50.0, 0.0, 0.0])
    np.testing.assert_array_equal(metrics.increases(y, o), [0.0, 100.0, 0.0])


def test_keep_fraction_mutes_the_lowest_pixels():
    model = _brightness_model()
    x = np.ones((1, 4, 4, 1), np.float32)
    saliency = np.arange(16, dtype=np.float32).reshape(1, 4, 4) / 15
    # keep the top half: pixels 8..15 keep their saliency, the rest are 0
    kept = np.where(saliency >= 8 / 15, saliency, 0)
    expected_o = 1 / (1 + np.exp(-kept.mean()))
    y = 1 / (1 + np.exp(-1.0))
    drop = metrics.average_drop(model, x, saliency, 1, keep_fraction=0.5)
    assert drop == pytest.approx((y - expected_o) / y * 100, rel=1e-5)


def test_deletion_and_insertion_two_step_curves():
    model = _brightness_model()
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, :2] = 4.0  # the top half is bright
    saliency = np.zeros((1, 4, 4), np.float32)
    saliency[0, :2] = 1.0
    p = lambda mean: 1 / (1 + np.exp(-mean))  # noqa: E731
    deletion = metrics.deletion_auc(model, x, saliency, 1, steps=2)
    np.testing.assert_allclose(deletion.curves[0], [p(2.0), p(0.0), p(0.0)], rtol=1e-5)
    assert deletion.auc == pytest.approx((p(2.0) / 2 + p(0.0) + p(0.0) / 2) / 2, rel=1e-5)
    insertion = metrics.insertion_auc(model, x, saliency, 1, steps=2, blur_sigma=0.5)
    w = np.exp(-1 / (2 * 0.5**2))
    kernel = np.array([w, 1, w]) / (1 + 2 * w)  # radius 1 at sigma 0.5
    padded = np.pad(x[0, ..., 0], 1, mode="reflect")
    blurred = sum(kernel[i] * padded[i : i + 4, 1:-1] for i in range(3))
    blurred = np.pad(blurred, ((0, 0), (1, 1)), mode="reflect")
    blurred = sum(kernel[j] * blurred[:, j : j + 4] for j in range(3))
    half = np.where(saliency[0] > 0, x[0, ..., 0], blurred)  # bright half inserted first
    expected = [p(blurred.mean()), p(half.mean()), p(2.0)]
    np.testing.assert_allclose(insertion.curves[0], expected, rtol=1e-5)
    assert half.mean() > 2.0 + 1e-3  # the blur leaks brightness across the step


def test_pointing_games():
    maps = np.zeros((2, 8, 8))
    maps[0, :4, :4] = 1.0
    maps[1, :, :] = 1.0
    np.testing.assert_allclose(
        metrics.pointing_game(maps, [[0, 0, 4, 4], [0, 0, 4, 4]]), [1.0, 0.25]
    )
    np.testing.assert_allclose(metrics.grid_pointing_game(maps, 2, [0, 3]), [1.0, 0.25])
    np.testing.assert_allclose(metrics.pointing_game(np.zeros((1, 8, 8)), [[0, 0, 8, 8]]), [0.0])
    tiles = np.stack([np.full((8, 8, 1), v, np.float32) for v in range(4)])
    m = metrics.mosaic(tiles, 2)
    assert m[0, 0, 0] == 0 and m[0, 7, 0] == 1 and m[7, 0, 0] == 2 and m[7, 7, 0] == 3


def test_energy_pointing_game_over_the_union_of_float_boxes():
    maps = np.zeros((2, 10, 10))
    maps[0, 2:4, 2:4] = 1.0  # 4 pixels of energy 1
    maps[0, 8, 8] = 4.0  # 4 more in one pixel
    maps[1] = np.arange(100).reshape(10, 10)
    # image 0: two overlapping boxes cover the 2x2 square once; the lone pixel is outside.
    # Pixel centres decide: centre 3.5 is inside [1.2, 3.6], centre 4.5 is not.
    boxes = [np.array([[1.2, 1.2, 3.6, 3.6], [2.0, 2.0, 3.5, 3.5]]), np.array([[0, 0, 10, 1]])]
    np.testing.assert_allclose(metrics.energy_pointing_game(maps, boxes), [0.5, 45 / 4950])
    masks = metrics.box_masks(boxes, (10, 10))
    assert masks[0].sum() == 9 and masks[0, 1:4, 1:4].all() and masks[1].sum() == 10
    np.testing.assert_allclose(metrics.energy_pointing_game(maps, masks), [0.5, 45 / 4950])
    # a single box for one map, and (N, B, 4) with the same number of boxes each
    assert metrics.energy_pointing_game(maps[0], [2, 2, 4, 4])[0] == 0.5
    same = np.array([[[2, 2, 4, 4], [8, 8, 9, 9]], [[0, 0, 10, 10], [0, 0, 1, 1]]])
    np.testing.assert_allclose(metrics.energy_pointing_game(maps, same), [1.0, 1.0])


def test_localisation_boxes_take_the_largest_component_above_the_threshold():
    maps = np.zeros((4, 12, 12))
    maps[0, 1:3, 1:4] = 1.0  # 6 pixels
    maps[0, 6:10, 5:9] = 0.5  # 16 pixels: the largest region wins, not the brightest
    maps[0, 11, 0] = 0.1  # below 0.15 x max: ignored
    maps[1, 2, 2] = maps[1, 3, 3] = maps[1, 4, 4] = 1.0  # diagonal: one 8-connected region
    maps[3] = 0.2  # flat: everything is above 0.15 x max
    boxes = metrics.localisation_boxes(maps, threshold=0.15)
    np.testing.assert_array_equal(boxes[0], [5, 6, 9, 10])
    np.testing.assert_array_equal(boxes[1], [2, 2, 5, 5])
    assert np.isnan(boxes[2]).all()  # a map of zeros has no region
    np.testing.assert_array_equal(boxes[3], [0, 0, 12, 12])
    np.testing.assert_array_equal(metrics.localisation_boxes(maps[0], 0.6)[0], [1, 1, 4, 3])


def test_box_accuracy_is_iou_with_any_true_box():
    maps = np.zeros((3, 12, 12))
    maps[:, 6:10, 5:9] = 1.0  # predicted box (5, 6, 9, 10): area 16
    truth = [
        np.array([[0, 0, 2, 2], [5, 6, 9, 12]]),  # IoU 16 / 24 with the second box
        np.array([[5, 6, 9, 14]]),  # IoU 16 / 32 = 0.5 exactly: counts
        np.array([[5, 6, 9, 14.1]]),  # just under 0.5
    ]
    np.testing.assert_allclose(metrics.box_iou(np.array([5, 6, 9, 10]), truth[0]), [0, 2 / 3])
    np.testing.assert_array_equal(metrics.box_accuracy(maps, truth), [True, True, False])
    np.testing.assert_array_equal(metrics.box_accuracy(maps, truth, iou=0.7), [False] * 3)
    assert not metrics.box_accuracy(np.zeros((1, 12, 12)), [[0, 0, 12, 12]])[0]


@pytest.mark.parametrize(
    "boxes, message",
    [
        ([[0, 0, 4]], r"boxes must be \(N, 4\)"),
        ([np.zeros((1, 4)), np.zeros((2, 3))], r"boxes must be \(N, 4\)"),
        ([[4, 0, 2, 4]], "x0 <= x1"),
        ([[0, 0, np.nan, 4]], "NaN"),
        ([[0, 0, 4, 4]] * 2, "regions for 2 images and 1 maps"),
    ],
)
def test_bad_boxes(boxes, message):
    with pytest.raises(ValueError, match=message):
        metrics.energy_pointing_game(np.ones((1, 8, 8)), boxes)


def test_bad_metric_input():
    model = build_classifier("softmax")
    with pytest.raises(ValueError, match="maps must be"):
        metrics.average_drop(model, images(2), np.ones((3, SIZE, SIZE)), 0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        metrics.average_drop(model, images(1), np.full((1, SIZE, SIZE), 2.0), 0)
    with pytest.raises(ValueError, match="keep_fraction"):
        metrics.average_drop(model, images(1), np.ones((1, SIZE, SIZE)), 0, keep_fraction=0)
    with pytest.raises(ValueError, match="out of range"):
        metrics.class_probabilities(model, images(1), 7)
    with pytest.raises(ValueError, match="takes 4 images"):
        metrics.mosaic(np.zeros((3, 8, 8, 1)), 2)
