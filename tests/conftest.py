"""Fixtures and the tiny model builders the tests share; the NumPy references they compare
against are in ``references.py``."""

import os
import re
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from references import BACKEND, SIZE  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tests marked ``tensorflow`` (SavedModel export, TensorFlow's own ops) are skipped on
    the other backends, saying so."""
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow's alone; Keras runs on {BACKEND}")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


# Skips a CI stage expects: a backend's own paths, each run in the stage of its backend.
# Any other skip (a missing package, a test that skips itself) fails a run with CI set.
EXPECTED_SKIPS = ("TensorFlow's alone", "JAX refuses", "JAX's refusal")
_skips: list[str] = []


def pytest_runtest_logreport(report):
    """Collect each skip's test and reason (on xdist's controller, every worker's)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        _skips.append(f"{report.nodeid}: {report.longrepr[2].removeprefix('Skipped: ')}")


# The error catalogue's coverage: every message the package raises must be raised by a test
# (``pytest.raises`` or the command line's error line). With TFSCORECAM_CHECK_RAISED=1, which
# a whole run with CI set implies (no paths, -k or -m given), each process records what it saw
# and the run fails on a catalogue message no test triggered, unless tests/untested_errors.txt
# lists it (the known debt, which may only shrink).
CHECK_RAISED = "TFSCORECAM_CHECK_RAISED"
_raised: list[str] = []


def _whole_run(config) -> bool:
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
    )


def pytest_configure(config):
    """Record the messages of exceptions that ``pytest.raises`` catches and of the command
    line's error lines, when the catalogue's coverage is checked."""
    controller = not hasattr(config, "workerinput")
    if controller and os.environ.get("CI") and _whole_run(config):
        os.environ.setdefault(CHECK_RAISED, "1")  # xdist's workers, started later, inherit it
    if not os.environ.get(CHECK_RAISED):
        return
    if controller:  # a folder every process writes to
        os.environ.setdefault(f"{CHECK_RAISED}_DIR", tempfile.mkdtemp(prefix="raised-"))
    from _pytest.raises import RaisesExc

    from tfscorecam.interfaces import cli

    exit_ = RaisesExc.__exit__

    def recording_exit(self, exc_type, exc_val, exc_tb):
        if exc_val is not None:
            _raised.append(str(exc_val))
        return exit_(self, exc_type, exc_val, exc_tb)

    error_line = cli.error_line

    def recording_error_line(text: str) -> None:
        _raised.append(text)
        error_line(text)

    RaisesExc.__exit__ = recording_exit
    cli.error_line = recording_error_line


def _untested_messages(raised: list[str]) -> list[str]:
    """The catalogue's messages (``docs/scripts/error_catalogue.py``) that match none of
    ``raised`` (``…`` standing for any text)."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "error_catalogue.py"
    spec = importlib.util.spec_from_file_location("error_catalogue", script)
    catalogue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(catalogue)
    seen = "\n".join(" ".join(text.split()) for text in raised)
    untested = set()
    for _, _, message in catalogue.messages():
        pattern = ".*?".join(re.escape(part) for part in message.split("…"))
        if not re.search(pattern, seen):
            untested.add(message)
    return sorted(untested)


def _check_raised(session) -> None:
    folder = Path(os.environ[f"{CHECK_RAISED}_DIR"])
    (folder / f"{os.getpid()}.txt").write_text("\0".join(_raised))
    if hasattr(session.config, "workerinput"):
        return
    raised = [t for f in folder.glob("*.txt") for t in f.read_text().split("\0") if t]
    untested = set(_untested_messages(raised))
    debt_file = Path(__file__).with_name("untested_errors.txt")
    lines = debt_file.read_text().splitlines()
    debt = {line for line in lines if line.strip() and not line.startswith("#")}
    new, paid = sorted(untested - debt), sorted(debt - untested)
    if new or paid:
        print("\nerror messages no test raises (add a test):", *new, sep="\n  ")
        print("listed in tests/untested_errors.txt but raised now, or gone (remove them):",
              *paid, sep="\n  ")  # fmt: skip
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_sessionfinish(session, exitstatus):
    """With ``CI`` set, a skip whose reason is not in ``EXPECTED_SKIPS`` fails the run; with
    ``TFSCORECAM_CHECK_RAISED``, an error message no test raises does."""
    if os.environ.get(CHECK_RAISED):
        _check_raised(session)
    if not os.environ.get("CI") or hasattr(session.config, "workerinput"):
        return
    unexpected = [s for s in _skips if not any(r in s.split(": ", 1)[1] for r in EXPECTED_SKIPS)]
    if unexpected:
        print("\nunexpected skips (CI runs every test it collects):", *unexpected, sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


if BACKEND == "torch":  # the references call models eagerly: no autograd graph to hold
    import torch

    torch.set_grad_enabled(False)


def build_classifier(
    activation: str | None = "softmax",
    units: int = 5,
    seed: int = 0,
    flat_channel: bool = True,
    deep_head: bool = False,
) -> keras.Model:
    """Conv(8) -> Conv(6, linear, "target", 8x8) -> GAP -> Dense(units, activation); with
    ``deep_head`` a Conv(4, ReLU) follows the target, so that the score's gradient varies
    over the target's cells (after a GAP alone it is the same in every cell)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="target")(x)
    if deep_head:
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="after")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(units, activation=activation, name="head")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    if flat_channel:  # channel 0 of the target layer is its bias alone: a flat map
        kernel, bias = model.get_layer("target").get_weights()
        kernel[..., 0] = 0.0
        bias[0] = 0.3
        model.get_layer("target").set_weights([kernel, bias])
    return model


def subclassed_net(library) -> object:
    """A built subclassed model (conv, global pool) of ``library``: ``keras`` or ``tf_keras``;
    such a model has no graph of layers to explain."""

    class Net(library.Model):
        def __init__(self):
            super().__init__()
            self.conv = library.layers.Conv2D(2, 3)
            self.pool = library.layers.GlobalAveragePooling2D()

        def call(self, x):
            return self.pool(self.conv(x))

    net = Net()
    net(np.zeros((1, SIZE, SIZE, 3), np.float32))
    return net


def build_retinanet(size: int = 256, classes: int = 4) -> keras.Model:
    """keras_hub's RetinaNet from its config: a small ResNet, pyramid levels P3-P5, random
    weights. Its box head's output conv is scaled down so that boxes stay near their anchors
    for any input (random weights otherwise send them far off the image)."""
    import keras_hub

    keras.utils.set_random_seed(0)
    encoder = _small_resnet(size, [64, 32, 32, 64])
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=5, use_p5=False, image_shape=(size, size, 3)
    )
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone,
        num_classes=classes,
        bounding_box_format="xyxy",
        pre_logits_num_conv_layers=1,
    )
    for weight in detector.box_head.weights[-2:]:  # the output conv's kernel and bias
        weight.assign(weight * 0.001)
    return detector


def _small_resnet(size: int, filters: list[int]) -> keras.Model:
    """keras_hub's ResNet from its config: four stages of one basic block, ``filters`` wide."""
    import keras_hub

    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=filters,
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(size, size, 3),
    )


def build_deeplab() -> keras.Model:
    """keras_hub's DeepLabV3 segmenter (3 classes, 64 px) from its config, random weights."""
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=_small_resnet(64, [64, 16, 16, 16]),
        spatial_pyramid_pooling_key="P4",
        upsampling_size=4,
        dilation_rates=[6, 12],
        low_level_feature_key="P2",
        projection_filters=8,
        image_shape=(64, 64, 3),
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=3)


def build_depth_anything() -> keras.Model:
    """keras_hub's Depth Anything (a 4-block DINOv2, 126 px) from its config, random weights."""
    import keras_hub

    keras.utils.set_random_seed(0)
    encoder = keras_hub.models.DINOV2Backbone(
        patch_size=14,
        num_layers=4,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        image_shape=(126, 126, 3),
        position_embedding_shape=(126, 126, 3),
    )
    backbone = keras_hub.models.DepthAnythingBackbone(
        image_encoder=encoder,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_dims=[8, 8, 8, 8],
        fusion_hidden_dim=8,
        head_hidden_dim=8,
        head_in_index=-1,
        feature_keys=["stage1", "stage2", "stage3", "stage4"],
    )
    return keras_hub.models.DepthAnythingDepthEstimator(
        backbone=backbone, depth_estimation_type="relative"
    )


def build_sam(size: int = 64) -> keras.Model:
    """A small SAM (keras_hub's SAMImageSegmenter) from its config: a ViTDet image encoder
    whose neck gives an 8 x 8 x 8 image embedding, masks of (4, 32, 32) logits."""
    import keras_hub

    keras.utils.set_random_seed(0)
    encoder = keras_hub.models.ViTDetBackbone(
        hidden_size=16, num_layers=4, intermediate_dim=64, num_heads=2,
        global_attention_layer_indices=[1, 3], patch_size=8, num_output_channels=8,
        window_size=2, image_shape=(size, size, 3),
    )  # fmt: skip
    prompts = keras_hub.layers.SAMPromptEncoder(
        hidden_size=8, image_embedding_size=(8, 8), input_image_size=(size, size),
        mask_in_channels=16,
    )  # fmt: skip
    decoder = keras_hub.layers.SAMMaskDecoder(
        num_layers=2, hidden_size=8, intermediate_dim=32, num_heads=2, embedding_dim=8,
        num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=8,
    )  # fmt: skip
    backbone = keras_hub.models.SAMBackbone(
        image_encoder=encoder, prompt_encoder=prompts, mask_decoder=decoder
    )
    return keras_hub.models.SAMImageSegmenter(backbone)


VOLUME_SHAPE = (6, 12, 10, 2)  # depth, height, width, channels


def build_conv3d(logits: bool = False, channels: int = VOLUME_SHAPE[-1]) -> keras.Model:
    """A small Conv3D classifier of volumes ``VOLUME_SHAPE``: its layer "target" gives a
    (3, 6, 5, 5) feature map; 3 classes, softmax (or ``logits``)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((*VOLUME_SHAPE[:3], channels))
    x = keras.layers.Conv3D(4, 3, padding="same", activation="relu", name="early")(inputs)
    x = keras.layers.MaxPooling3D(2)(x)
    x = keras.layers.Conv3D(5, 3, padding="same", activation="relu", name="target")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    activation = None if logits else "softmax"
    return keras.Model(inputs, keras.layers.Dense(3, activation=activation, name="classes")(x))


@pytest.fixture
def softmax_model() -> keras.Model:
    return build_classifier("softmax")


BACKBONE_SIDE = 96  # the input side of the ``backbone`` fixture


def stderr_lines(capsys) -> list[str]:
    """The non-blank lines written to stderr since the last read."""
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def backbone() -> keras.Model:
    """A random-weight MobileNetV2 (alpha 0.35) at ``BACKBONE_SIDE`` pixels."""
    keras.utils.set_random_seed(1)
    return keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(BACKBONE_SIDE, BACKBONE_SIDE, 3)
    )
