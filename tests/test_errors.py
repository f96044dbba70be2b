"""Every bad input gets a clear error that says what to do, and the model is left unchanged."""

import keras
import numpy as np
import pytest
from conftest import build_classifier, subclassed_net
from references import SIZE, images, random_photo

import tfscorecam as tsc


@pytest.fixture
def model():
    return build_classifier("softmax")


def _unchanged(model, before):
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.zeros((SIZE, SIZE)), ValueError, r"one image \(H, W, C\) or a batch"),
        (np.zeros((1, 1, SIZE, SIZE, 3)), ValueError, r"one image \(H, W, C\) or a batch"),
        (np.zeros((2, SIZE, SIZE, 4)), ValueError, "wrong channel count"),
        (np.zeros((2, SIZE + 1, SIZE, 3)), ValueError, "wrong size"),
        (np.zeros((0, SIZE, SIZE, 3)), ValueError, "empty batch"),
        (np.full((SIZE, SIZE, 3), np.nan), ValueError, "NaN or infinite"),
        (np.array([["a"]]), TypeError, "numeric array"),
    ],
)
def test_bad_images(model, bad, error, message):
    before = model.get_weights()
    with pytest.raises(error, match=message):
        tsc.ScoreCAM(model)(bad)
    _unchanged(model, before)


def test_non_finite_image_is_named(model):
    x = images(3)
    x[2, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"images \[2\]"):
        tsc.ScoreCAM(model)(x)


@pytest.mark.parametrize(
    "class_index, error, message",
    [
        (5, ValueError, r"out of range: the model has 5 classes \(0..4\)"),
        (-1, ValueError, "out of range"),
        ([0, 1, 2], ValueError, r"does not fit 2 image\(s\)"),
        (np.zeros((3, 2), int), ValueError, "does not fit"),
        (np.zeros((2, 2, 2), int), ValueError, "does not fit"),
        (1.5, TypeError, "class_index must be"),
        (True, TypeError, "class_index must be"),
        ("cat", TypeError, "class_index must be"),
        ([[0, 9]] * 2, ValueError, "out of range"),
    ],
)
def test_bad_class_index(model, class_index, error, message):
    with pytest.raises(error, match=message):
        tsc.ScoreCAM(model)(images(2), class_index=class_index)


def test_unknown_layer_lists_candidates(model):
    with pytest.raises(ValueError, match="no layer named 'nope'; the last feature maps: conv1, "):
        tsc.ScoreCAM(model, "nope")
    with pytest.raises(ValueError, match="no layer named 'targte'; did you mean 'target'"):
        tsc.ScoreCAM(model, "targte")
    big = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(96, 96, 3))
    with pytest.raises(ValueError) as error:  # about 100 candidates: the last 8, not a wall
        tsc.ScoreCAM(big, "block_16_projekt")
    text = str(error.value)
    assert "did you mean 'block_16_project'" in text and len(text) < 400, text


def test_layer_without_spatial_output(model):
    with pytest.raises(ValueError, match=r"'gap' has output shape \(None, 6\).*Candidate layers"):
        tsc.ScoreCAM(model, "gap")
    with pytest.raises(ValueError, match="not part of this model"):
        tsc.ScoreCAM(model, keras.layers.Conv2D(3, 3))
    with pytest.raises(TypeError, match="layer must be"):
        tsc.ScoreCAM(model, 3)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"max_channels": 0}, ValueError, "max_channels must be at least 1 and at most 6"),
        ({"max_channels": 7}, ValueError, "at most 6, got 7"),
        ({"max_channels": 2.0}, TypeError, "max_channels must be a positive integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"score": "logits"}, ValueError, "score must be one of"),
        ({"head": "relu"}, ValueError, "head must be 'auto' or one of"),
        ({"baseline": np.zeros((3, 3))}, ValueError, "does not broadcast"),
        ({"baseline": np.nan}, ValueError, "baseline contains NaN"),
    ],
)
def test_bad_options(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        tsc.ScoreCAM(model, **kwargs)


def test_models_we_cannot_handle():
    inputs = [keras.Input((SIZE, SIZE, 3)), keras.Input((SIZE, SIZE, 3))]
    x = keras.layers.Conv2D(2, 3)(keras.layers.Add()(inputs))
    two_inputs = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"2 inputs .* 2 of them are images .* pass input="):
        tsc.ScoreCAM(two_inputs)  # which one to explain is ambiguous

    inp = keras.Input((SIZE, SIZE, 3))
    y = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inp))
    two_outputs = keras.Model(inp, [keras.layers.Dense(2)(y), keras.layers.Dense(3)(y)])
    with pytest.raises(ValueError, match="1 inputs and 2 outputs"):
        tsc.ScoreCAM(two_outputs)

    with pytest.raises(TypeError, match="subclassed keras.Model.*functional or Sequential"):
        tsc.ScoreCAM(subclassed_net(keras))

    with pytest.raises(ValueError, match="has not been built"):
        tsc.ScoreCAM(keras.Sequential([keras.layers.Conv2D(2, 3)]))

    with pytest.raises(TypeError, match="expected a keras.Model"):
        tsc.ScoreCAM(lambda x: x)

    relu_head = keras.Sequential(
        [
            inp,
            keras.layers.Conv2D(2, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="relu"),
        ]
    )
    with pytest.raises(ValueError, match="pass head='softmax', 'sigmoid' or 'logits'"):
        tsc.ScoreCAM(relu_head)
    tsc.ScoreCAM(relu_head, head="logits")  # the user's word settles it


def test_logit_score_needs_a_recoverable_head():
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    x = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t)(x))
    with pytest.raises(ValueError, match="cannot be recovered from the last layer"):
        tsc.ScoreCAM(model, head="softmax", score="logit")


def _calls_that_fail(model, tmp_path):
    """(call, error, message) for bad arguments across the package, each caught by its own
    check before anything runs."""
    from tfscorecam import augment, metrics, superres, targets
    from tfscorecam.interfaces import dataset
    from tfscorecam.zoo import class_names, models

    x = images(2)
    cam = tsc.ScoreCAM(model, verbose=0)
    rotations = tsc.AugmentedScoreCAM(model, views="rotations", verbose=0)
    low, ones = np.zeros((2, 4, 4)), np.ones((2, SIZE, SIZE))
    image, meta = keras.Input((SIZE, SIZE, 3), name="image"), keras.Input((2,), name="meta")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(image))
    joined = keras.layers.Concatenate()([pooled, meta])
    features = keras.Model(model.inputs, model.get_layer("target").output)  # not classes
    two_inputs = keras.Model({"image": image, "meta": meta}, keras.layers.Dense(2)(joined))
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("")
    return [
        (lambda: tsc.images.display_image(object()), TypeError, "a path, a PIL image or an array"),
        (lambda: cam(x, class_index=np.zeros((2, 0), int)), ValueError, "class_index is empty"),
        (lambda: cam(x, inputs={"meta": 1}), ValueError, "inputs= is for models with several"),
        (lambda: cam(x, normalize=1), TypeError, "normalize must be True or False"),
        (lambda: tsc.ScoreCAM(model, reshape=5), TypeError, "reshape must be a callable"),
        (lambda: tsc.ScoreCAM(two_inputs, input_shapes=[1]), TypeError,
         "input_shapes must be a dict"),
        (lambda: tsc.ScoreCAM(model, aug_smooth="yes"), TypeError, "aug_smooth must be True"),
        (lambda: tsc.GradCAM(model, eigen_smooth=1), TypeError, "eigen_smooth must be True"),
        (lambda: cam(x, target=[lambda out: out[:, :1], lambda out: out[:, :2]]), ValueError,
         "every image's target must give scores of the same shape"),
        (lambda: targets.mask(0, activation="softmax"), ValueError, "must be None or 'sigmoid'"),
        (lambda: targets.segmentation(0, region=(1, 2, 3)), ValueError, "region must be a mask"),
        (lambda: cam(x, target=targets.regression(0, region=(1, 1, 2, 2))), ValueError,
         "a regression region needs a dense output"),
        (lambda: rotations.transforms((SIZE, SIZE)), ValueError, "max_shift needs the feature"),
        (lambda: tsc.AugmentedScoreCAM(model).transforms((SIZE, SIZE)), ValueError,
         "zoomed views need the feature map's size"),
        (lambda: tsc.AugmentedScoreCAM(model, max_angle=float("nan")), TypeError,
         "max_angle must be a finite number"),
        (lambda: augment.warp(np.zeros((2, 2)), np.eye(1, 8)), ValueError,
         r"images must be \(H, W, C\) or \(K, H, W, C\)"),
        (lambda: augment.check_transforms(np.full(8, np.nan)), ValueError, "NaN or infinite"),
        (lambda: superres.SuperResolver(np.eye(1, 8), (4,), (8, 8)), ValueError,
         r"expected \(H, W\) and \(h, w\) shapes"),
        (lambda: superres.SuperResolver(np.eye(1, 8), (4, 4), (8, 8))(low), ValueError,
         "low_res must be 1 maps of"),
        (lambda: metrics.energy_pointing_game(np.ones((2, 2, 2, 2)), ones), ValueError,
         r"maps must be \(N, H, W\)"),
        (lambda: metrics.argmax_pointing_game(ones, ones > 0, tolerance=-1), ValueError,
         "tolerance must be a finite number >= 0"),
        (lambda: metrics.localisation_boxes(ones, threshold=1), ValueError, "threshold must be"),
        (lambda: metrics.grid_regions((SIZE, SIZE), 2, [4]), ValueError, r"tiles must be in 0..3"),
        (lambda: metrics.insertion_auc(model, x, ones, [0, 1], blur_sigma=0), ValueError,
         "blur_sigma must be > 0"),
        (lambda: metrics.confidences(model, x, ones, [[0, 1], [1, 2]]), ValueError,
         "metrics take one class per image"),
        (lambda: tsc.plot_comparison([]), ValueError, "no explanations to plot"),
        (lambda: tsc.ScoreCAM(features, "conv1").predict_probabilities(x), ValueError,
         "the explained output has shape .*, not classes"),
        (lambda: class_names.load_class_names(str(tmp_path / "none.json")), FileNotFoundError,
         "class names file not found"),
        (lambda: models.keras_application("NoSuchNet"), ValueError,
         "keras.applications has no model named 'NoSuchNet'"),
        (lambda: models.keras_application("MobileNetV2", str(tmp_path / "w.h5")),
         FileNotFoundError, "weights file not found"),
        (lambda: models.load(str(tmp_path / "m.keras"), preprocess="nope"), ValueError,
         "unknown preprocess 'nope'; choose one of none, tf"),
        (lambda: dataset.image_paths(tmp_path / "empty"), ValueError, "no images found in"),
        (lambda: dataset.read_results(tmp_path / "nowhere"), FileNotFoundError,
         "no results folder"),
    ]  # fmt: skip


def _more_calls_that_fail(model, tmp_path):
    """Class-name files, targets on a segmenter, models of other shapes."""
    from tfscorecam import targets
    from tfscorecam.core.head import scoring_head
    from tfscorecam.zoo.class_names import load_class_names

    files = {"broken.json": "{", "keys.json": '{"a": "cat"}', "gaps.json": '{"0": "a", "2": "b"}',
             "number.json": "3", "empty.txt": "\n"}  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", name="target")(inputs)
    segmenter = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(features))
    free = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="c")(free))
    any_size = keras.Model(free, keras.layers.Dense(2)(pooled))
    x = images(1)
    return [
        (lambda: load_class_names(tmp_path / "broken.json"), ValueError, "cannot read class names"),
        (lambda: load_class_names(tmp_path / "keys.json"), ValueError, "needs integer keys"),
        (lambda: load_class_names(tmp_path / "gaps.json"), ValueError, r"indices must be 0..1"),
        (lambda: load_class_names(tmp_path / "number.json"), ValueError, "a JSON list or object"),
        (lambda: load_class_names(tmp_path / "empty.txt"), ValueError, "no class names in"),
        (lambda: tsc.ScoreCAM(segmenter, verbose=0)(x, target=targets.segmentation(
            1, region=(0, 0, 0, 0))), ValueError, "the region holds no pixel of the output"),
        (lambda: tsc.ScoreCAM(segmenter, verbose=0)(x, target=targets.regression(
            5, region=(0, 0, 4, 4))), ValueError, "of a dense output needs more than 5 channels"),
        (lambda: tsc.ScoreCAM(model, verbose=0)(x, target=lambda out: out[:, 0] / 0.0),
         ValueError, "the target returned NaN or infinite scores"),
        (lambda: tsc.ScoreCAM(any_size, "c").feature_size(), ValueError,
         "the model's input size is variable"),
        (lambda: scoring_head(segmenter), ValueError, "expected class scores"),
        (lambda: tsc.ScoreCAM(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])),
         ValueError, "expected images"),
        (lambda: tsc.nope, AttributeError, "module 'tfscorecam' has no attribute 'nope'"),
        (lambda: tsc.zoo.nope, AttributeError, "module 'tfscorecam.zoo' has no attribute"),
    ]  # fmt: skip


def test_each_bad_argument_is_one_clear_error(model, tmp_path):
    for call, error, message in _more_calls_that_fail(model, tmp_path):
        with pytest.raises(error, match=message):
            call()


def test_each_bad_call_of_the_api_is_one_clear_error(model, tmp_path):
    for call, error, message in _calls_that_fail(model, tmp_path):
        with pytest.raises(error, match=message):
            call()


@pytest.mark.tensorflow
def test_export_refuses_what_a_saved_model_cannot_serve(model, tmp_path):
    from conftest import build_conv3d

    with pytest.raises(ValueError, match="export the explainer without it"):
        tsc.serving.export(tsc.ScoreCAM(model, aug_smooth=True), tmp_path / "a")
    volumes = tsc.ScoreCAM(build_conv3d())
    with pytest.raises(ValueError, match="export serves images; this model takes volumes"):
        tsc.serving.export(volumes, tmp_path / "b")
    with pytest.raises(ValueError, match="a SavedModel explains images; a model on volumes"):
        volumes.graph_explain(np.zeros((1, *volumes.input_shape[1:]), np.float32))
    with pytest.raises(TypeError, match="preprocess must be a name, a Keras layer or a function"):
        tsc.serving.export(tsc.ScoreCAM(model), tmp_path / "c", preprocess=5)


def test_command_line_usage_errors_are_one_line(capsys):
    from tfscorecam.interfaces import cli

    for argv, message in [
        (["explain", "p.png", "--max-channels", "many"], "expected an integer, got 'many'"),
        (["explain", "p.png", "--target", "regression:x"], "expected regression:INDEX"),
        (["explain", "p.png", "--feed", "meta"], "expected NAME=FILE.npy, got 'meta'"),
    ]:
        with pytest.raises(SystemExit):
            cli.main(argv)
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("tfscorecam: error: ") and message in line


# Each remaining message of the error catalogue, raised where its module refuses.


def _nested_twice(name: str) -> keras.Model:
    """A model holding two sub-models that each have a layer ``name``."""
    image = keras.Input((SIZE, SIZE, 3))
    x = image
    for block in ("block_a", "block_b"):
        inner_input = keras.Input((SIZE, SIZE, 3))
        inner = keras.layers.Conv2D(3, 3, padding="same", name=name)(inner_input)
        x = keras.Model(inner_input, inner, name=block)(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(2, activation="softmax")(pooled))


def _segmenter() -> keras.Model:
    image = keras.Input((SIZE, SIZE, 3))
    return keras.Model(image, keras.layers.Conv2D(2, 1, name="logits")(image))


def test_layer_names_and_outputs_that_cannot_be_explained():
    with pytest.raises(ValueError, match=r"'conv' is ambiguous: block_a/conv, block_b/conv; pa"):
        tsc.ScoreCAM(_nested_twice("conv"), "conv")
    tsc.ScoreCAM(_nested_twice("conv"), "block_b/conv")  # the full path is the way out
    with pytest.raises(ValueError, match="'logits' is the model's output itself"):
        tsc.AblationCAM(_segmenter(), "logits")


def test_models_of_other_kinds_are_refused_by_their_module(model):
    from tfscorecam.core import detectors, embeddings

    with pytest.raises(ValueError, match="Functional is not a detector tfscorecam knows"):
        detectors.detection_view(model)
    with pytest.raises(ValueError, match="Functional is not a dual encoder: it has no get_vis"):
        embeddings.image_embedding_view(model)
    with pytest.raises(ValueError, match="Functional does not output one embedding"):
        embeddings.image_embeddings(_segmenter(), images(1))

    class TwoImages(keras.Model):  # a dual encoder's two methods on a model of two images
        def get_vision_embeddings(self, images):
            return images

        def get_text_embeddings(self, ids):
            return ids

    first, second = keras.Input((SIZE, SIZE, 3)), keras.Input((SIZE, SIZE, 3))
    two = TwoImages([first, second], keras.layers.Add()([first, second]))
    with pytest.raises(ValueError, match=r"TwoImages has 2 image inputs .*needs exactly one"):
        embeddings.image_embedding_view(two)


def test_a_free_size_model_takes_images_of_one_size_per_call():
    image = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(4, 3, name="target")(image)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    free = keras.Model(image, keras.layers.Dense(2, activation="softmax")(pooled))
    photos = [random_photo(), random_photo()[:20]]
    with pytest.raises(ValueError, match="images of different sizes need a model with a fixed in"):
        tsc.explain(free, photos, "gradcam", verbose=0)


def test_volumes_given_as_none_or_of_two_sizes_are_refused():
    from conftest import VOLUME_SHAPE, build_conv3d

    volume_model = build_conv3d()
    with pytest.raises(ValueError, match="no volumes given"):
        tsc.explain(volume_model, [], verbose=0)
    image = keras.Input((None, None, None, VOLUME_SHAPE[-1]))
    features = keras.layers.Conv3D(3, 3, name="target")(image)
    pooled = keras.layers.GlobalAveragePooling3D()(features)
    free = keras.Model(image, keras.layers.Dense(2, activation="softmax")(pooled))
    volumes = [np.zeros(VOLUME_SHAPE, np.float32), np.zeros((8, 12, 10, 2), np.float32)]
    with pytest.raises(ValueError, match="volumes of different sizes: explain them one call each"):
        tsc.explain(free, volumes, "gradcam", verbose=0)


def test_what_one_backend_does_is_refused_on_the_others(monkeypatch):
    from tfscorecam.core import backend, inputs
    from tfscorecam.methods.augmented import augment

    monkeypatch.setattr(backend, "name", lambda: "jax")
    with pytest.raises(RuntimeError, match="export needs Keras' TensorFlow backend .*'jax'"):
        backend.tensorflow("export")
    projective = np.array([[1, 0, 0, 0, 1, 0, 0.01, 0]], np.float32)
    with pytest.raises(ValueError, match="projective transforms .*TensorFlow backend only"):
        augment.warp(np.zeros((SIZE, SIZE, 3), np.float32), projective)
    image, meta = keras.Input((SIZE, SIZE, 3), name="image"), keras.Input((2,), name="meta")
    two = keras.Model({"image": image, "meta": meta}, keras.layers.Concatenate()(
        [keras.layers.GlobalAveragePooling2D()(image), meta]
    ))
    with pytest.raises(ValueError, match="several inputs are explained on TensorFlow and PyT"):
        inputs.image_view(two, None)


def test_internal_contracts_name_what_is_wrong(monkeypatch):
    from tfscorecam.core import memory
    from tfscorecam.core.tokens import grid_reshape
    from tfscorecam.methods.tail import TailScorer

    with pytest.raises(ValueError, match=r"unit must be one of \('channel', 'position'\), got 'p"):
        TailScorer((1, 4, 4, 2), 1, None, unit="pixel", perturb=None, select=None, relative=False)
    with pytest.raises(ValueError, match=r"the layer gave 13 tokens, .*\(16, 16\) input; pass re"):
        grid_reshape((16, 16))(np.zeros((1, 13, 4), np.float32))
    monkeypatch.setattr(memory, "available_bytes", lambda: 3 * memory.GIB)
    with pytest.raises(MemoryError, match=r"needs about 2.00 GiB, more than half the 3.00 GiB"):
        memory.check_fits(2 * memory.GIB, 4 * memory.GIB, "the fusion", "use fewer views")


def test_metrics_take_models_of_one_image_input():
    from tfscorecam.metrics.faithfulness import probabilities

    image, meta = keras.Input((SIZE, SIZE, 3), name="image"), keras.Input((2,), name="meta")
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    two = keras.Model([image, meta], keras.layers.Concatenate()([pooled, meta]))
    with pytest.raises(ValueError, match=r"the model has 2 inputs and 1 outputs; .*ones_like\)\.$"):
        probabilities(two, images(1))


def test_models_that_cannot_be_built_or_loaded_say_why(model, tmp_path):
    from tfscorecam import zoo

    model.save_weights(tmp_path / "tiny.weights.h5")
    with pytest.raises(ValueError, match=r"cannot build MobileNetV2 with weights .*tiny.weights"):
        zoo.load("MobileNetV2", weights=tmp_path / "tiny.weights.h5")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 64)  # a zip's start, then nothing of a model
    with pytest.raises(ValueError, match=r"cannot load model .*broken.keras \(\w+: .*register_"):
        zoo.load(broken)
