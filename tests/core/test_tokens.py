"""Vision transformers: token layers explained on their patch grid, against NumPy references."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from references import gradient_cam, minmax, reference_weights, resize_bilinear

import tfscorecam as tsc
from tfscorecam.core.tokens import token_grid

PATCH = 4


class ClassToken(keras.layers.Layer):
    """Prepends a learned class token to (batch, tokens, dim)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal")

    def call(self, x):
        batch = keras.ops.shape(x)[0]
        return keras.ops.concatenate(
            [keras.ops.broadcast_to(self.token, (batch, 1, x.shape[-1])), x], axis=1
        )


class FirstToken(keras.layers.Layer):
    def call(self, x):
        return x[:, 0]


def build_vit(height=16, width=16, class_token=True, blocks=2, dim=8, seed=0) -> keras.Model:
    """Patch embedding, (class token), position embedding, pre-norm blocks, softmax head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((height, width, 3))
    x = keras.layers.Conv2D(dim, PATCH, strides=PATCH, name="patches")(inputs)
    x = keras.layers.Reshape(((height // PATCH) * (width // PATCH), dim))(x)
    if class_token:
        x = ClassToken(name="class_token")(x)
    x = keras.layers.Dense(dim, name="embed")(x)
    for b in range(blocks):
        y = keras.layers.LayerNormalization(name=f"block{b}_norm1")(x)
        y = keras.layers.MultiHeadAttention(2, 4, name=f"block{b}_attention")(y, y)
        x = keras.layers.Add(name=f"block{b}_add1")([x, y])
        y = keras.layers.LayerNormalization(name=f"block{b}_norm2")(x)
        y = keras.layers.Dense(2 * dim, activation="gelu", name=f"block{b}_mlp1")(y)
        y = keras.layers.Dense(dim, name=f"block{b}_mlp2")(y)
        x = keras.layers.Add(name=f"block{b}_out")([x, y])
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    pooled = FirstToken()(x) if class_token else keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="head")(pooled))


def _grid(acts: np.ndarray, class_token: bool, height: int, width: int) -> np.ndarray:
    patches = acts[1:] if class_token else acts
    return patches.reshape(height // PATCH, width // PATCH, -1)


@pytest.mark.parametrize(
    "class_token, height, width",
    [(True, 16, 16), (False, 16, 16), (True, 16, 24)],
    ids=["class-token", "no-class-token", "non-square"],
)
def test_score_cam_on_the_token_grid_matches_the_reference(class_token, height, width):
    model = build_vit(height, width, class_token)
    image = np.random.default_rng(0).normal(size=(height, width, 3)).astype(np.float32)
    cam = tsc.ScoreCAM(model, batch_size=5, verbose=0)
    assert cam.layer_path == "block1_norm1"  # the input of the last attention layer
    compared = 0
    for cls in range(5):  # normalised tokens are signed: some classes' maps are all ReLU'd away
        maps = cam(image, class_index=cls)
        assert maps.shape == (height, width)
        acts, scores, scored = reference_weights(
            model,
            image,
            cls,
            layer="block1_norm1",
            grid=lambda a: _grid(a, class_token, height, width),
        )
        ups = [resize_bilinear(acts[..., k], height, width) for k in scored]
        cam_sum = np.maximum(sum(s * u for s, u in zip(scores, ups, strict=True)), 0)
        if cam_sum.max() == 0:
            np.testing.assert_array_equal(maps, 0)
            continue
        np.testing.assert_allclose(maps, minmax(cam_sum), atol=1e-4)
        compared += 1
    assert compared >= 2


def test_grad_cam_on_the_token_grid_matches_the_reference():
    model = build_vit(16, 24, class_token=True)
    logits = keras.Model(model.inputs, model.get_layer("head").input)
    head = model.get_layer("head")
    split = keras.Model(model.inputs, [model.get_layer("block1_norm1").output, logits.output])
    x = np.random.default_rng(1).normal(size=(2, 16, 24, 3)).astype(np.float32)
    maps = tsc.GradCAM(model, verbose=0)(x, class_index=[1, 4])
    for image, cls, cam in zip(x, [1, 4], maps, strict=True):
        with tf.GradientTape() as tape:
            tokens, pooled = split(image[None])
            logit = (pooled @ head.kernel + head.bias)[0, cls]
        g = _grid(tape.gradient(logit, tokens)[0].numpy().astype(np.float64), True, 16, 24)
        a = _grid(tokens[0].numpy().astype(np.float64), True, 16, 24)
        low = np.maximum(gradient_cam(a, g).sum(axis=-1), 0)
        np.testing.assert_allclose(cam, minmax(resize_bilinear(low, 16, 24)), atol=1e-4)


def test_augmented_score_cam_and_explain_on_a_transformer():
    model = build_vit(16, 16, class_token=True)
    x = np.random.default_rng(2).normal(size=(2, 16, 16, 3)).astype(np.float32)
    maps = tsc.AugmentedScoreCAM(model, num_augmentations=3, verbose=0)(x)
    assert maps.shape == (2, 16, 16) and np.all(np.isfinite(maps))
    assert maps.min() == 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    photo = np.random.default_rng(3).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    result = tsc.explain(model, photo, "gradcam", preprocess=lambda p: p / 255.0)
    assert result.heatmap.shape == (20, 30)


def test_a_reshape_callable_and_an_explicit_token_layer():
    model = build_vit(16, 16, class_token=True)
    image = np.random.default_rng(4).normal(size=(16, 16, 3)).astype(np.float32)
    inferred = tsc.ScoreCAM(model, "block0_out", verbose=0)(image, class_index=2)
    explicit = tsc.ScoreCAM(
        model, "block0_out", reshape=lambda t: tf.reshape(t[:, 1:], (-1, 4, 4, 8)), verbose=0
    )(image, class_index=2)
    np.testing.assert_allclose(inferred, explicit, atol=1e-6)
    with pytest.raises(ValueError, match="reshape must return"):
        tsc.ScoreCAM(model, "block0_out", reshape=lambda t: t, verbose=0)(image)


def test_token_counts_and_the_grid_they_fit():
    assert token_grid(197, (224, 224)) == (1, 14, 14)
    assert token_grid(196, (224, 224)) == (0, 14, 14)
    assert token_grid(198, (224, 224)) == (2, 14, 14)  # class + distillation tokens
    assert token_grid(201, (224, 224)) == (5, 14, 14)  # class + 4 register tokens
    assert token_grid(25, (16, 24)) == (1, 4, 6)
    assert token_grid(49, (None, None)) == (0, 7, 7)
    assert token_grid(37, (16, 16)) is None and token_grid(37, (224, 224)) is None


def test_a_token_layer_that_fits_no_grid_is_refused():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Dense(37 * 32)(keras.layers.Flatten()(inputs))
    x = keras.layers.Reshape((37, 32), name="block1")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(ValueError, match=r"'block1' has output shape \(None, 37, 32\).*reshape="):
        tsc.ScoreCAM(model, "block1")
    with pytest.raises(ValueError, match="no layer with a 4-D"):
        tsc.ScoreCAM(model)


def test_a_keras_hub_vit_built_from_its_config():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    model = keras_hub.models.ViTImageClassifier(backbone, num_classes=4, activation="softmax")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    for method in (tsc.ScoreCAM, tsc.GradCAM):
        cam = method(model, verbose=0)
        # the encoder is one layer holding every block: its input is the last attention input
        assert cam.layer_path.endswith("vit_patching_and_embedding")
        maps = cam(x)
        assert maps.shape == (2, 32, 32) and np.allclose(maps.max(axis=(1, 2)), 1)
