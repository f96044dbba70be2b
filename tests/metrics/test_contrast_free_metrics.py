"""MaxBoxAccV2, the argmax pointing game and ROAD on hand-built cases with exact answers."""

import keras
import numpy as np
import pytest

from tfscorecam import metrics


def _blocks(shape, *blocks) -> np.ndarray:
    """A map of zeros with ``value`` on each (y0, y1, x0, x1, value) block."""
    out = np.zeros(shape)
    for y0, y1, x0, x1, value in blocks:
        out[y0:y1, x0:x1] = value
    return out


def test_max_box_accuracy_takes_every_region_and_one_threshold_for_the_set():
    exact = _blocks((10, 10), (2, 6, 2, 6, 1.0), (7, 9, 7, 9, 0.5))  # object and a distractor
    result = metrics.max_box_accuracy(exact, [[2, 2, 6, 6]])
    assert result.value == 1.0 and result.ious[0, 0] == 1.0
    half = _blocks((8, 8), (0, 2, 0, 4, 1.0))  # box (0, 0, 4, 2) against (0, 0, 4, 4): IoU 0.5
    result = metrics.max_box_accuracy(half, [[0, 0, 4, 4]])
    assert result.accuracy(0.3) == result.accuracy(0.5) == 1.0 and result.accuracy(0.7) == 0.0
    assert result.value == pytest.approx(2 / 3)
    # a: right for tau in [0.2, 1) (below, the touching 0.2 block joins the object's region);
    # b: right for tau in [0, 0.1) only (the object is at 0.1). No tau serves both.
    a = _blocks((10, 10), (2, 5, 2, 5, 1.0), (5, 9, 2, 9, 0.2))
    b = _blocks((10, 10), (2, 5, 2, 5, 0.1), (7, 9, 7, 9, 1.0))
    both = metrics.max_box_accuracy(np.stack([a, b]), [[2, 2, 5, 5], [2, 2, 5, 5]])
    assert both.accuracy(0.5) == 0.5 and both.value == 0.5
    assert metrics.max_box_accuracy(a, [[2, 2, 5, 5]]).best_thresholds[0.5] == 0.2
    assert both.score(rows=np.array([0, 0])) == 1.0  # a bootstrap resample of image a twice


def test_max_box_accuracy_does_not_move_when_a_map_is_squared_or_scaled():
    rng = np.random.default_rng(0)
    maps = rng.choice([0.0, 0.25, 0.5, 1.0], size=(6, 12, 12))
    boxes = [[2, 2, 7, 8], [0, 0, 12, 12], [3, 1, 5, 9], [6, 6, 12, 12], [1, 1, 4, 4], [5, 0, 9, 6]]
    plain = metrics.max_box_accuracy(maps, boxes).value
    assert metrics.max_box_accuracy(maps**2, boxes).value == plain
    assert metrics.max_box_accuracy(3 * maps + 1, boxes).value == plain
    with pytest.raises(ValueError, match="got boxes for 2 images and 6 maps"):
        metrics.max_box_accuracy(maps, boxes[:2])
    with pytest.raises(ValueError, match="thresholds must be in"):
        metrics.max_box_accuracy(maps, boxes, thresholds=[0.5, 1.0])


def test_argmax_pointing_game_tolerance_and_ties():
    box = [[10, 10, 20, 20]]  # pixels 10..19
    peak_at = lambda y, x: _blocks((40, 40), (y, y + 1, x, x + 1, 1.0))  # noqa: E731
    assert metrics.argmax_pointing_game(peak_at(15, 15), box, tolerance=0)[0]
    assert metrics.argmax_pointing_game(peak_at(15, 29), box, tolerance=10)[0]  # 10 px right
    assert not metrics.argmax_pointing_game(peak_at(15, 30), box, tolerance=10)[0]
    two = np.maximum(peak_at(15, 15), peak_at(35, 35))  # one peak inside, one far outside
    assert not metrics.argmax_pointing_game(two, box, ties="all")[0]
    assert metrics.argmax_pointing_game(two, box, ties="any")[0]
    assert metrics.argmax_pointing_game(two, box, ties="first")[0]  # (15, 15) comes first
    flat = np.zeros((1, 40, 40))
    assert not metrics.argmax_pointing_game(flat, box)[0]
    assert metrics.argmax_pointing_game(flat, [[0, 0, 40, 40]])[0]
    with pytest.raises(ValueError, match="ties must be one of"):
        metrics.argmax_pointing_game(flat, box, ties="mean")


def test_noisy_linear_imputation_recovers_a_linear_image_and_adds_the_noise():
    y, x = np.mgrid[0:16, 0:20].astype(np.float64)
    image = np.stack([2 * x + 3 * y, x - y + 7], axis=-1)
    removed = np.zeros((16, 20), bool)
    removed[3:12, 4:15] = True
    removed[0, 0] = True  # a corner: the weighted mean of its 3 neighbours 2, 3 and 5
    imputed = metrics.noisy_linear_imputation(image, removed, noise=0.0)
    inside = removed.copy()
    inside[0, 0] = False
    np.testing.assert_allclose(imputed[inside], image[inside], atol=1e-4)  # a linear image
    corner = (2 / 6 + 3 / 6 + 5 / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    assert imputed[0, 0, 0] == pytest.approx(corner, rel=1e-6)
    noisy = metrics.noisy_linear_imputation(image, removed, noise=0.5, seed=3)
    difference = (noisy - imputed)[removed]
    assert difference.std() == pytest.approx(0.5, rel=0.1)
    np.testing.assert_array_equal(noisy[~removed], image[~removed].astype(np.float32))


def test_road_removes_pixels_in_the_map_order():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    # class 1's logit is the mean of the left half: removing (imputing) it moves the score
    left = keras.layers.Lambda(lambda t: keras.ops.mean(t[:, :, :4], axis=(1, 2, 3)))(inputs)
    logits = keras.layers.Lambda(lambda v: keras.ops.stack([0 * v, 10 * v], axis=1))(left)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, :, :4] = 1.0
    right_first = np.zeros((1, 8, 8))
    right_first[0, :, 4:] = 1.0
    left_first = 1.0 - right_first
    good = metrics.road(model, image, left_first, 1, percentages=(0.25, 0.5), noise=0.0)
    bad = metrics.road(model, image, right_first, 1, percentages=(0.25, 0.5), noise=0.0)
    assert good.morf_auc < bad.morf_auc and good.lerf_auc > bad.lerf_auc
    # each value is the model on the imputed image, computed here one by one
    order = np.argsort(-left_first[0].ravel(), kind="stable")
    removed = np.zeros(64, bool)
    removed[order[:16]] = True
    one = metrics.noisy_linear_imputation(image[0], removed.reshape(8, 8), 0.0)
    expected = float(model.predict(one[None], verbose=0)[0, 1])
    assert good.morf[0, 0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="percentages must be in"):
        metrics.road(model, image, left_first, 1, percentages=(0.0, 0.5))
