"""keras_hub's segmenters, depth estimator and token-grid backbones (DeepLabV3, SegFormer,
Depth Anything, DINOv2 with register tokens, Swin) built from configs with random weights:
the layer ``layer=None`` picks, and Score-CAM's maps of their targets against NumPy."""

import keras
import numpy as np
import pytest
from conftest import build_deeplab, build_depth_anything, score_cam_of_features, softmax

import tfscorecam as tsc
from tfscorecam import targets
from tfscorecam.core.maps import box_masks
from tfscorecam.methods import METHODS, method_class
from tfscorecam.methods.gradients import GradientCAM
from tfscorecam.methods.tail import TailCAM

keras_hub = pytest.importorskip("keras_hub")

TOL = 1e-4


def _segformer() -> keras.Model:
    keras.utils.set_random_seed(0)
    encoder = keras_hub.models.MiTBackbone(
        layerwise_depths=[1, 1],
        num_layers=2,
        layerwise_num_heads=[1, 2],
        layerwise_sr_ratios=[4, 2],
        max_drop_path_rate=0.0,
        layerwise_patch_sizes=[7, 3],
        layerwise_strides=[4, 2],
        hidden_dims=[8, 16],
        image_shape=(64, 64, 3),
    )
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=16)
    return keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=3)


def _dinov2_classifier() -> keras.Model:
    """DINOv2 with 4 register tokens, a linear head on the class token and the patch mean."""
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.DINOV2Backbone(
        patch_size=8,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        num_register_tokens=4,
        image_shape=(64, 64, 3),
        position_embedding_shape=(64, 64, 3),
    )
    tokens = backbone.output
    pooled = keras.layers.Concatenate()(
        [tokens[:, 0], keras.ops.mean(tokens[:, 5:], axis=1)]
    )
    outputs = keras.layers.Dense(5, activation="softmax")(pooled)
    return keras.Model(backbone.inputs, outputs)


def _swin() -> keras.Model:
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.SwinTransformerBackbone(
        image_shape=(64, 64, 3), embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4
    )
    return keras_hub.models.SwinTransformerImageClassifier(
        backbone=backbone, num_classes=5, activation="softmax"
    )


def _image(size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (size, size, 3)).astype(np.float32)


def _run(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The model's one output at inference (keras_hub's DeepLabV3 differs with training=None)."""
    out = model(x, training=False)
    return np.asarray(next(iter(out.values())) if isinstance(out, dict) else out, np.float64)


def _features(model: keras.Model, path: str, image: np.ndarray) -> np.ndarray:
    """The output of the layer at ``path`` ("outer/.../inner") on one image, written out here."""
    *outer, name = path.split("/")
    nested = model
    for container in outer:
        nested = nested.get_layer(container)
    probe = keras.Model(nested.inputs[0], nested.get_layer(name).output)
    return _run(probe, image[None])[0]


@pytest.mark.parametrize(
    "build, layer",
    [
        (build_deeplab, ("segmentation_head_relu", keras.layers.ReLU)),
        (_segformer, ("", keras.layers.Activation)),  # the fused MLP's (auto-named) activation
    ],
)
def test_segmenters_explain_a_class_over_a_region(build, layer):
    model = build()
    cam = tsc.ScoreCAM(model, verbose=0)
    # the last features before the classifier: not the logits, not their upsampling
    name, kind = layer
    assert cam.layer_path.startswith(model.backbone.name + "/")
    assert cam.layer_path.endswith(name) and isinstance(cam.chain[-1], kind)
    image = _image(64)
    box = (8, 16, 40, 48)
    target = targets.segmentation(1, region=box, activation="softmax")
    maps = cam(image, target=target)
    inside = box_masks(np.array([box], np.float64), (64, 64))[0]

    def score(masked):
        probability = softmax(_run(model, masked))[0, ..., 1]
        return (probability * inside).sum() / inside.sum()

    *outer, name = cam.layer_path.split("/")
    parent = model.get_layer(outer[0])
    for container in outer[1:]:
        parent = parent.get_layer(container)
    if isinstance(parent, keras.Sequential):  # its input is not the image: read the block
        assert parent.layers[-1].name == name
        features = _features(model, "/".join(outer), image)
    else:
        features = _features(model, cam.layer_path, image)
    np.testing.assert_allclose(maps, score_cam_of_features(features, image, score)[0], atol=TOL)
    whole = cam(image, target=targets.segmentation(2, activation="softmax"))
    assert whole.shape == (64, 64) and np.isfinite(whole).all()


def test_depth_anything_explains_the_mean_depth_in_a_box():
    model = build_depth_anything()
    with pytest.raises(ValueError, match=f"levels of '{model.backbone.name}/neck'"):
        tsc.ScoreCAM(model, verbose=0)  # no single feature map: layer=None says what to pass
    neck = model.backbone.get_layer("neck")
    cam = tsc.ScoreCAM(model, neck, reshape=lambda levels: levels[-1], verbose=0)
    image = _image(126)
    box = (20, 30, 80, 90)
    maps = cam(image, target=targets.regression(0, region=box))
    inside = box_masks(np.array([box], np.float64), (126, 126))[0]
    backbone = model.backbone
    neck_input = keras.Model(backbone.inputs[0], neck.output[-1])
    features = _run(neck_input, image[None])[0]

    def score(masked):
        depth = _run(model, masked)[0, ..., 0]
        return (depth * inside).sum() / inside.sum()

    np.testing.assert_allclose(maps, score_cam_of_features(features, image, score)[0], atol=TOL)


def test_dinov2_drops_its_class_and_register_tokens():
    model = _dinov2_classifier()
    cam = tsc.ScoreCAM(model, verbose=0)
    # the encoder is one layer holding every block: its input, as for keras_hub's ViT
    assert cam.layer_path == "embeddings" and cam.feature_size() == (8, 8)
    image = _image(64)
    maps = cam(image, class_index=2)
    tokens = _features(model, "embeddings", image)
    assert tokens.shape == (1 + 4 + 64, 16)
    features = tokens[5:].reshape(8, 8, 16)

    def score(masked):
        return _run(model, masked)[0, 2]

    np.testing.assert_allclose(maps, score_cam_of_features(features, image, score)[0], atol=TOL)


def test_swin_is_explained_on_its_last_stage_grid():
    model = _swin()
    cam = tsc.ScoreCAM(model, verbose=0)
    assert cam.layer_path == f"{model.backbone.name}/norm" and cam.feature_size() == (8, 8)
    image = _image(64)
    maps = cam(image, class_index=3)
    features = _features(model, cam.layer_path, image).reshape(8, 8, -1)

    def score(masked):
        return _run(model, masked)[0, 3]

    np.testing.assert_allclose(maps, score_cam_of_features(features, image, score)[0], atol=TOL)
    assert tsc.GradCAM(model, verbose=0)(image, class_index=3).shape == (64, 64)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_depth_box_or_says_why_not(method):
    model = build_depth_anything()
    cls = method_class(method)
    kwargs = dict(layer=model.backbone.get_layer("neck"), reshape=lambda levels: levels[-1])
    if issubclass(cls, (GradientCAM, TailCAM)):  # one map to differentiate or perturb
        with pytest.raises(ValueError, match="differentiates one feature map|own output"):
            cls(model, verbose=0, **kwargs)
        return
    maps = cls(model, verbose=0, **kwargs)(
        _image(126), target=targets.regression(0, region=(20, 30, 80, 90))
    )
    assert maps.shape == (126, 126) and np.isfinite(maps).all() and maps.max() == 1
