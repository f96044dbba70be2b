"""keras_hub's segmenters, depth estimator and token-grid backbones (DeepLabV3, SegFormer,
Depth Anything, DINOv2 with register tokens, Swin) built from configs with random weights:
the layer ``layer=None`` picks, and Score-CAM's maps of their targets against NumPy."""

import keras
import numpy as np
import pytest
from conftest import build_deeplab, build_depth_anything, build_sam
from references import score_cam_of_features, softmax

import tfscorecam as tsc
from tfscorecam import targets
from tfscorecam.core.maps import box_masks
from tfscorecam.methods import METHODS, method_class
from tfscorecam.methods.gradients import GradientCAM
from tfscorecam.methods.tail import TailCAM

keras_hub = pytest.importorskip("keras_hub")

TOL = 1e-4
FEW_VIEWS = {"num_augmentations": 2}  # Augmented Score-CAM in the contract runs: it runs, fast


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
    pooled = keras.layers.Concatenate()([tokens[:, 0], keras.ops.mean(tokens[:, 5:], axis=1)])
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


def test_dinov3_drops_its_class_and_register_tokens():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.DINOV3Backbone(
        patch_size=8, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
        num_register_tokens=4, image_shape=(64, 64, 3),
    )  # fmt: skip
    tokens = backbone.output
    pooled = keras.layers.Concatenate()([tokens[:, 0], keras.ops.mean(tokens[:, 5:], axis=1)])
    model = keras.Model(backbone.inputs, keras.layers.Dense(5, activation="softmax")(pooled))
    image = _image(64)

    def score(masked):
        return _run(model, masked)[0, 2]

    # its attention is its own layer, not MultiHeadAttention: layer=None takes the last token
    # grid, the final layer norm; its token count is known only when the graph runs
    for layer, expected in ((None, "layernorm"), ("embeddings", "embeddings")):
        cam = tsc.ScoreCAM(model, layer, verbose=0)
        assert cam.layer_path == expected and cam.feature_size() == (8, 8)
        features = _features(model, expected, image)[5:].reshape(8, 8, 16)
        reference = score_cam_of_features(features, image, score)[0]
        np.testing.assert_allclose(cam(image, class_index=2), reference, atol=TOL)


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
    kwargs.update(FEW_VIEWS if method == "augmented" else {})
    if issubclass(cls, (GradientCAM, TailCAM)):  # one map to differentiate or perturb
        with pytest.raises(ValueError, match="differentiates one feature map|own output"):
            cls(model, verbose=0, **kwargs)
        return
    maps = cls(model, verbose=0, **kwargs)(
        _image(126), target=targets.regression(0, region=(20, 30, 80, 90))
    )
    assert maps.shape == (126, 126) and np.isfinite(maps).all() and maps.max() == 1


@pytest.fixture(scope="module")
def sam() -> keras.Model:
    return build_sam()


SAM_SHAPES = {"points": (1, 2), "labels": (1,), "boxes": (0, 2, 2), "masks": (0, 64, 64, 1)}


def _prompt(x: float, y: float) -> dict:
    """One foreground point at (x, y) pixels, no box, no mask prompt."""
    return {
        "points": np.array([[x, y]], np.float32),
        "labels": np.ones((1,), np.float32),
        "boxes": np.zeros((0, 2, 2), np.float32),
        "masks": np.zeros((0, 64, 64, 1), np.float32),
    }


def _sam_masks(sam: keras.Model, images: np.ndarray, prompt: dict) -> np.ndarray:
    batch = {k: np.repeat(v[None], len(images), 0) for k, v in prompt.items()}
    return np.asarray(sam({"images": images, **batch}, training=False)["masks"], np.float64)


not_on_jax = pytest.mark.skipif(
    keras.config.backend() == "jax", reason="JAX refuses several inputs"
)


@not_on_jax
def test_sam_explains_one_predicted_mask_given_its_prompt(sam):
    image = _image(64)
    prompt = _prompt(20.0, 30.0)
    predicted = _sam_masks(sam, image[None], prompt)[0, 1] > 0  # "why this mask"
    target = targets.mask(1, region=predicted)
    cam = tsc.ScoreCAM(sam, output="masks", input="images", input_shapes=SAM_SHAPES, verbose=0)
    got = cam(image, target=target, inputs=prompt)
    features = _run(sam.backbone.image_encoder, image[None])[0]  # the image embedding

    def score(masked):
        probability = 1 / (1 + np.exp(-_sam_masks(sam, masked, prompt)[0, 1]))
        return probability[predicted].mean()

    np.testing.assert_allclose(got, score_cam_of_features(features, image, score)[0], atol=TOL)
    # another prompt, another mask: its values are fed, not the first call's
    other = cam(image, target=targets.mask(1), inputs=_prompt(50.0, 10.0))
    assert not np.allclose(other, cam(image, target=targets.mask(1), inputs=prompt), atol=1e-3)


@not_on_jax
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_sam_mask_or_says_why_not(sam, method):
    cls = method_class(method)
    options = dict(output="masks", input="images", input_shapes=SAM_SHAPES, verbose=0)
    options.update(FEW_VIEWS if method == "augmented" else {})
    off_tf = keras.config.backend() != "tensorflow"
    if issubclass(cls, TailCAM) or (off_tf and issubclass(cls, GradientCAM)):
        with pytest.raises(ValueError, match="cannot carry a multi-input model's other inputs"):
            cls(sam, **options)(_image(64), target=targets.mask(0), inputs=_prompt(20.0, 30.0))
        return
    maps = cls(sam, **options)(_image(64), target=targets.mask(0), inputs=_prompt(20.0, 30.0))
    assert maps.shape == (64, 64) and np.isfinite(maps).all()


@not_on_jax
def test_sam_prompt_shapes_are_checked_in_one_line(sam):
    with pytest.raises(ValueError, match=r"its size varies; pass input_shapes=\{'boxes'"):
        tsc.ScoreCAM(sam, output="masks", input="images")
    with pytest.raises(ValueError, match=r"input_shapes\['points'\] = \(1, 3\) does not fit"):
        tsc.ScoreCAM(
            sam, output="masks", input="images", input_shapes={**SAM_SHAPES, "points": (1, 3)}
        )
    with pytest.raises(ValueError, match="the held inputs are"):
        tsc.ScoreCAM(sam, output="masks", input="images", input_shapes={"images": (64, 64, 3)})


def test_a_mask_target_checks_its_output_and_index():
    with pytest.raises(ValueError, match="mask index 4 is out of range: the output has 4 masks"):
        targets.mask(4)(keras.ops.zeros((1, 4, 8, 8)))
    with pytest.raises(ValueError, match=r"mask needs a \(batch, masks, H, W\) output"):
        targets.mask(0)(keras.ops.zeros((1, 8, 8)))
