"""The probe of where a layer's cells look, on layers whose cells look a known way off."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import images

import tfscorecam as tsc
from tfscorecam.methods.augmented.calibration import probe_cell_shift

CELL = 8  # px per cell of the looking layer


def _looking(dx: int, dy: int, size: int = 64) -> keras.Model:
    """Feature maps of |image| averaged over 8-px cells after moving the image by (-dx, -dy)
    px: cell i covers pixels [8i + d, 8i + 8 + d], so its cells look (dx, dy) px off."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Cropping2D(((max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0))))(inputs)
    x = keras.layers.ZeroPadding2D(((max(-dy, 0), max(dy, 0)), (max(-dx, 0), max(dx, 0))))(x)
    x = keras.layers.Lambda(keras.ops.abs)(x)
    return keras.Model(inputs, keras.layers.AveragePooling2D(CELL)(x))


def _maps(model: keras.Model):
    """``model`` as the probe calls it: images to NumPy feature maps, on any backend."""
    return lambda images: keras.ops.convert_to_numpy(model(images))


@pytest.mark.parametrize("dx, dy", [(0, 0), (2, -3), (-4, 1)])
def test_the_probe_finds_where_the_cells_look(dx, dy):
    model = _looking(dx, dy)
    shift = probe_cell_shift(_maps(model), (64, 64), (8, 8), 3)
    np.testing.assert_allclose(shift, (dx / CELL, dy / CELL), atol=0.03)


def test_an_axis_too_short_to_probe_gets_no_shift():
    model = _looking(2, 2, size=16)  # 2 x 2 cells
    assert probe_cell_shift(_maps(model), (16, 16), (2, 2), 3) == (0.0, 0.0)


def test_auto_fuses_with_the_probes_shift(softmax_model):
    x = images(1)[0]
    auto = tsc.AugmentedScoreCAM(softmax_model, "target", zoom_crops=2, verbose=0)
    shift = auto.shift_for((16, 16), (8, 8))
    features = keras.Model(softmax_model.inputs, softmax_model.get_layer("target").output)
    assert shift == probe_cell_shift(_maps(features), (16, 16), (8, 8), 3)
    assert shift != (0.0, 0.0)
    given = tsc.AugmentedScoreCAM(softmax_model, "target", zoom_crops=2, cell_shift=shift)
    np.testing.assert_array_equal(auto(x, class_index=1), given(x, class_index=1))
    assert auto.resolver((16, 16), (8, 8)).cell_shift == shift
    area = tsc.AugmentedScoreCAM(build_classifier("softmax"), observation="area")
    assert area.shift_for((16, 16), (8, 8)) == (0.0, 0.0)  # no cell centres to move
