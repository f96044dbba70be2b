"""Similarity targets on keras_hub's dual encoders (CLIP, SigLIP) built from configs with random
weights, against Score-CAM written here in NumPy."""

import keras
import numpy as np
import pytest
from references import score_cam_of_features

import tfscorecam as tsc
from tfscorecam import targets
from tfscorecam.core import embeddings
from tfscorecam.methods import METHODS, method_class
from tfscorecam.methods.tail import TailCAM

keras_hub = pytest.importorskip("keras_hub")

SIZE, PATCH, WIDTH = 32, 8, 16  # a 4 x 4 token grid of 16 channels
TOL = 1e-4


def _clip() -> keras.Model:
    keras.utils.set_random_seed(0)
    common = dict(hidden_dim=WIDTH, num_layers=2, num_heads=2, intermediate_dim=32)
    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=PATCH, image_shape=(SIZE, SIZE, 3), **common
    )
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=50, embedding_dim=WIDTH, max_sequence_length=8, **common
    )
    return keras_hub.models.CLIPBackbone(vision, text, projection_dim=12)


def _siglip() -> keras.Model:
    keras.utils.set_random_seed(0)
    common = dict(hidden_dim=WIDTH, num_layers=2, num_heads=2, intermediate_dim=32)
    vision = keras_hub.models.SigLIPVisionEncoder(
        patch_size=PATCH, image_shape=(SIZE, SIZE, 3), **common
    )
    text = keras_hub.models.SigLIPTextEncoder(
        vocabulary_size=50, embedding_dim=WIDTH, max_sequence_length=8, **common
    )
    return keras_hub.models.SigLIPBackbone(vision, text)


BUILDERS = {"clip": _clip, "siglip": _siglip}
# the token input of the last attention, inside the vision tower: CLIP's last encoder block's
# input (class token first), SigLIP's normalised last tokens before its attention-pooling head
# (no class token); (layer name, leading extra tokens)
DEFAULT_LAYERS = {"clip": ("encoder_block_0", 1), "siglip": ("post_layer_norm", 0)}


@pytest.fixture(scope="module", params=list(BUILDERS))
def dual(request):
    return request.param, BUILDERS[request.param]()


def _tokens(n: int = 3) -> np.ndarray:
    return np.random.default_rng(5).integers(1, 50, (n, 8)).astype(np.int32)


def _image(seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (SIZE, SIZE, 3)).astype(np.float32)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    return a @ (b / np.linalg.norm(b, axis=-1, keepdims=True)).T


def _reference(model, kind: str, image: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Score-CAM one channel at a time: the vision tower's tokens at the default layer as a
    grid, each channel upsampled, min-max scaled and multiplied into the image, and the cosine
    similarity of each masked image's embedding with every vector. (P, H, W)."""
    name, extra = DEFAULT_LAYERS[kind]
    tower = model.vision_encoder
    tokens = keras.Model(tower.inputs[0], tower.get_layer(name).output)
    acts = np.asarray(tokens(image[None]), np.float64)[0, extra:]
    grid = SIZE // PATCH

    def score(masked):
        return _cosine(np.asarray(model.get_vision_embeddings(masked), np.float64), vectors)[0]

    return score_cam_of_features(acts.reshape(grid, grid, -1), image, score)


def test_score_cam_of_prompts_equals_the_reference(dual):
    kind, model = dual
    text = embeddings.text_embeddings(model, _tokens())
    np.testing.assert_allclose(
        text, np.asarray(model.get_text_embeddings(_tokens())), rtol=1e-6, atol=1e-6
    )
    preprocessed = {"token_ids": _tokens(), "padding_mask": np.ones_like(_tokens(), bool)}
    np.testing.assert_array_equal(embeddings.text_embeddings(model, preprocessed), text)
    with pytest.raises(ValueError, match="needs the key 'token_ids'"):
        embeddings.text_embeddings(model, {"ids": _tokens()})
    cam = tsc.ScoreCAM(model, verbose=0)
    assert cam.layer_path == f"{model.vision_encoder.name}/{DEFAULT_LAYERS[kind][0]}"
    image = _image()
    maps = cam(image, target=targets.similarity(text))
    assert maps.shape == (3, SIZE, SIZE)
    np.testing.assert_allclose(maps, _reference(model, kind, image, text), atol=TOL)
    one = cam(image, target=targets.similarity(text[1]))  # one vector: one map
    np.testing.assert_allclose(one, maps[1], atol=1e-5)
    photo = np.round((image + 1) * 127.5).astype(np.uint8)
    explained = tsc.explain(
        model, photo, target=targets.similarity(text), preprocess=lambda v: v / 127.5 - 1
    )
    assert len(explained) == 3  # one result per prompt
    embedded = embeddings.image_embeddings(model, photo / 127.5 - 1)
    np.testing.assert_allclose(
        [r.score for r in explained], _cosine(embedded, text)[0], rtol=1e-5, atol=1e-6
    )


def test_dot_metric_and_image_to_image_similarity(dual):
    _, model = dual
    a, b = _image(2), _image(3)
    embedded = embeddings.image_embeddings(model, np.stack([a, b]))
    view = keras.Model(model.inputs[0], model.get_vision_embeddings(model.inputs[0]))
    np.testing.assert_allclose(embedded, np.asarray(view(np.stack([a, b]))), atol=1e-6)
    dot = targets.similarity(embedded[1], metric="dot")
    np.testing.assert_allclose(
        np.asarray(dot(keras.ops.convert_to_tensor(embedded))), embedded @ embedded[1], rtol=1e-5
    )
    cosine = targets.similarity(embedded[1])
    np.testing.assert_allclose(
        np.asarray(cosine(keras.ops.convert_to_tensor(embedded))),
        _cosine(embedded, embedded[1:])[:, 0],
        rtol=1e-5,
    )
    maps = tsc.GradCAM(model, verbose=0)(a, target=dot)  # "why is a like b"
    assert maps.shape == (SIZE, SIZE) and np.isfinite(maps).all()


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_similarity(method):
    model = _clip()
    text = embeddings.text_embeddings(model, _tokens(2))
    if issubclass(method_class(method), TailCAM):  # they perturb a feature map, not tokens
        with pytest.raises(ValueError, match="perturbs the layer's own output"):
            method_class(method)(model, verbose=0)
        return
    cam = method_class(method)(model, verbose=0)
    maps = cam(np.stack([_image(2), _image(4)]), target=targets.similarity(text))
    assert maps.shape == (2, 2, SIZE, SIZE) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, t: tsc.ScoreCAM(m, verbose=0)(_image()), "an image embedding"),
        (lambda m, t: tsc.ScoreCAM(m, verbose=0)(_image(), target=targets.similarity(t[:, :5])),
         "needs an embedding output"),
        (lambda m, t: targets.similarity(np.zeros(12)), "zero vector"),
        (lambda m, t: targets.similarity(t, metric="l2"), "metric must be one of"),
        (lambda m, t: targets.similarity(np.ones((2, 3, 4))), "one vector"),
        (lambda m, t: targets.similarity([np.nan, 1.0]), "finite"),
        (lambda m, t: embeddings.text_embeddings(m, np.ones((2, 4), np.float32)), "token ids"),
        (lambda m, t: embeddings.text_embeddings(keras.Sequential(), [[1]]), "no text tower"),
        (lambda m, t: embeddings.image_embeddings(m, np.ones((4, 4))), "images must be"),
    ],
)
def test_bad_similarity_input_is_one_clear_error(call, message):
    model = _clip()
    text = embeddings.text_embeddings(model, _tokens(2))
    with pytest.raises(ValueError, match=message):
        call(model, text)
