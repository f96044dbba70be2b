"""Models built under a mixed-precision policy explain like their float32 twin: every method,
maps in float32, within a stated tolerance (the model itself computes in 16 bits)."""

import keras
import numpy as np
import pytest
from conftest import build_classifier, images

from tfscorecam.methods import METHODS, make_explainer

# (policy) -> (max, mean) absolute difference allowed against the float32 model's maps:
# float16 keeps 11 significant bits, bfloat16 8, and a map's min-max scaling magnifies a
# rounding in the weakest of its cells
TOLERANCE = {"mixed_float16": (0.02, 2e-3), "mixed_bfloat16": (0.1, 2e-3)}
SAMPLED = {"iscam", "sscam", "augmented"}  # several passes per channel: a few channels
# Recipro-CAM's map is the min-max of the class probability with one cell kept: on this random
# model those probabilities differ between cells by about one 16-bit step, which the scaling
# magnifies (measured: mean 0.007 under float16, 0.053 under bfloat16)
RECIPRO_TOLERANCE = {"mixed_float16": (0.05, 0.015), "mixed_bfloat16": (0.3, 0.1)}


def _built_under(policy: str, weights: list) -> keras.Model:
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_classifier("softmax", flat_channel=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("policy", list(TOLERANCE))
def test_every_method_explains_a_mixed_precision_model(policy):
    reference = build_classifier("softmax", flat_channel=False)
    model = _built_under(policy, reference.get_weights())
    assert model.get_layer("target").compute_dtype != "float32"
    x, classes = images(3), [0, 1, 2]
    for name in METHODS:
        worst, mean = (RECIPRO_TOLERANCE if name == "reciprocam" else TOLERANCE)[policy]
        options = {"verbose": 0, **({"max_channels": 3} if name in SAMPLED else {})}
        expected = make_explainer(reference, name, "target", **options)(x, class_index=classes)
        maps = make_explainer(model, name, "target", **options)(x, class_index=classes)
        assert maps.dtype == np.float32, name
        difference = np.abs(maps - expected)
        assert difference.max() < worst and difference.mean() < mean, (name, difference.max())
