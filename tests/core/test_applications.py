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
    "VGG16": "block5_conv3",  # not block5_pool after it: the official code's VGG16 layer
    "NASNetMobile": None,
}


def _last_feature_map(model: keras.Model) -> str:
    """The last layer, in the model's order, with a 4-D output of spatial size > 1 that is not
    a pooling layer."""
    names = [
        layer.name
        for layer in model.layers
        if len(layer.output.shape) == 4
        and layer.output.shape[1] * layer.output.shape[2] > 1
        and not isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))
    ]
    return names[-1]


def test_the_default_layer_is_the_last_map_before_a_final_pooling():
    """conv -> max pool -> flatten: layer=None explains the conv, as Score-CAM's official code
    explains VGG16 before its last pool; a model whose only maps are pools still gets one."""
    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(inputs)
    pooled = keras.layers.MaxPooling2D(name="pool")(conv)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(pooled))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    model = keras.Model(inputs, outputs)
    default = tsc.ScoreCAM(model, verbose=0)
    assert default.layer_path == "last_conv"
    np.testing.assert_array_equal(default(x), tsc.ScoreCAM(model, "last_conv", verbose=0)(x))
    only_pools = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.AveragePooling2D(2, name="avg"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    assert tsc.GradCAM(only_pools, verbose=0).layer_path == "avg"


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
