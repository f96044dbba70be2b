"""Models built under a mixed-precision policy explain like their float32 twin: every method,
maps in float32, within a stated tolerance (the model itself computes in 16 bits)."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from references import images

from tfscorecam.methods import METHODS, make_explainer

# (policy) -> the relative rounding step of its 16-bit compute type: float16 keeps 11
# significant bits (2^-11), bfloat16 8 (2^-8)
EPSILON = {"mixed_float16": 2.0**-11, "mixed_bfloat16": 2.0**-8}
# A map is min-max scaled to [0, 1], so a cell's error is the rounding of the scores and
# activations it comes from (about one step per layer: four layers here) divided by the
# map's raw span; on a model whose class scores vary over the image (a confident head, as a
# trained model's) the span is at least a quarter of the peak: at most 4 x 4 = 16 steps in the
# worst cell, and on average within 2 steps.
WORST_STEPS, MEAN_STEPS = 16, 2
SAMPLED = {"iscam", "sscam", "augmented"}  # several passes per channel: a few channels
CONFIDENT = 30.0  # the head's weights times this: class probabilities that vary over cells


def _built_under(policy: str, weights: list) -> keras.Model:
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_classifier("softmax", flat_channel=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("policy", list(EPSILON))
def test_every_method_explains_a_mixed_precision_model(policy):
    reference = build_classifier("softmax", flat_channel=False)
    kernel, bias = reference.get_layer("head").get_weights()
    reference.get_layer("head").set_weights([kernel * CONFIDENT, bias])
    model = _built_under(policy, reference.get_weights())
    assert model.get_layer("target").compute_dtype != "float32"
    x, classes = images(3), [0, 1, 2]
    worst, mean = WORST_STEPS * EPSILON[policy], MEAN_STEPS * EPSILON[policy]
    for name in METHODS:
        options = {"verbose": 0, **({"max_channels": 3} if name in SAMPLED else {})}
        expected = make_explainer(reference, name, "target", **options)(x, class_index=classes)
        maps = make_explainer(model, name, "target", **options)(x, class_index=classes)
        assert maps.dtype == np.float32, name
        difference = np.abs(maps - expected)
        assert difference.max() < worst and difference.mean() < mean, (name, difference.max())
