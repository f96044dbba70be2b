"""EigenCAM against a NumPy reference (np.linalg.svd, ``conftest.first_component``)."""

import keras
import numpy as np
from conftest import build_classifier
from references import SIZE, as_numpy, first_component, images, minmax, resize_bilinear

import tfscorecam as tsc
from tfscorecam.core.maps import principal_projection


def _reference(model: keras.Model, image: np.ndarray) -> np.ndarray:
    split = keras.Model(model.inputs[0], model.get_layer("target").output)
    a = as_numpy(split(image[None]))[0].astype(np.float64)  # (h, w, C)
    cam = resize_bilinear(np.maximum(first_component(a), 0), SIZE, SIZE)
    return minmax(cam)


def test_matches_reference_and_ignores_the_class():
    model = build_classifier("softmax", flat_channel=False)
    x = images(3)
    cam = tsc.EigenCAM(model, "target", batch_size=2)
    maps = cam(x)
    for image, one in zip(x, maps, strict=True):
        np.testing.assert_allclose(one, _reference(model, image), atol=1e-4)
    both = cam(x, class_index=[[0, 3]] * 3)
    np.testing.assert_allclose(both[:, 0], maps, atol=1e-6)
    np.testing.assert_allclose(both[:, 1], maps, atol=1e-6)


def test_the_sign_is_fixed_not_left_to_the_svd():
    """A cell strongly active in every channel is the map's peak, never cut by the ReLU as an
    inverted component would be; negated features give the negated projection."""
    rng = np.random.default_rng(0)
    acts = rng.random((4, 5, 6, 8)) * 0.1
    acts[:, 2, 3, :] = 10.0
    direct = keras.ops.convert_to_numpy(principal_projection(acts))
    for one in direct:
        assert np.unravel_index(np.argmax(one), one.shape) == (2, 3)
    flipped = keras.ops.convert_to_numpy(principal_projection(-acts))
    np.testing.assert_allclose(flipped, -direct, atol=1e-9)
