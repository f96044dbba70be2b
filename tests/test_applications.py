"""keras.applications CNNs (random weights) explain with layer=None: one model per family.

``benchmarks/quality/check_applications.py`` runs the same check on every keras.applications model.
"""

import keras
import numpy as np
import pytest

import tfscorecam as tsc

FAMILIES = {  # the smallest model of each family, and its last conv feature map's stable name
    "MobileNet": "conv_pw_13_relu",
    "MobileNetV2": "out_relu",
    "MobileNetV3Small": None,
    "ResNet50": "conv5_block3_out",
    "ResNet50V2": "post_relu",
    "DenseNet121": "relu",
    "EfficientNetB0": "top_activation",
    "EfficientNetV2B0": "top_activation",
    "ConvNeXtTiny": "convnext_tiny_stage_3_block_2_identity",
    "InceptionV3": None,
    "Xception": "block14_sepconv2_act",
    "VGG16": "block5_pool",
    "NASNetMobile": None,
}


def _last_feature_map(model: keras.Model) -> str:
    """The last layer, in the model's order, with a 4-D output of spatial size > 1."""
    names = [
        layer.name
        for layer in model.layers
        if len(layer.output.shape) == 4 and layer.output.shape[1] * layer.output.shape[2] > 1
    ]
    return names[-1]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_application_explains_with_the_default_layer(name):
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(96, 96, 3), classes=7)
    x = np.random.default_rng(0).normal(size=(1, 96, 96, 3)).astype(np.float32)
    grad = tsc.GradCAM(model, verbose=0)
    expected = FAMILIES[name] or _last_feature_map(model)
    assert grad.layer_path == expected == _last_feature_map(model)
    for maps in (grad(x), tsc.ScoreCAM(model, max_channels=2, verbose=0)(x)):
        assert maps.shape == (1, 96, 96) and np.all(np.isfinite(maps))
        assert maps.min() == 0 and maps.max() == 1
