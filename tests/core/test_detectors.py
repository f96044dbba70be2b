"""Detection targets: one box among a detector's many, against NumPy and GradientTape
references written here, on a small single-stage detector built here and on keras_hub's
RetinaNet and D-FINE built from their configs (random weights, 256 px)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build_classifier, build_retinanet
from references import SIZE, images, minmax, reference_weights, resize_bilinear, sigmoid

import tfscorecam as tsc
from tfscorecam import targets
from tfscorecam.methods import METHODS, make_explainer

TOL = 1e-4


def _np_iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    areas = sides[:, 0] * sides[:, 1]
    union = areas + (box[2] - box[0]) * (box[3] - box[1]) - ix * iy
    return ix * iy / union


def _np_detection(outputs, box, cls, iou=0.5, match="score", add_iou=False) -> np.ndarray:
    """One image at a time: the class score of the matching box (see targets.Detection)."""
    values = []
    for out in np.asarray(outputs, np.float64):
        overlap, scores = _np_iou(out[:, :4], np.asarray(box, np.float64)), out[:, 4 + cls]
        eligible = np.flatnonzero(overlap >= iou)
        if not len(eligible):
            values.append(0.0)
            continue
        key = scores if match == "score" else overlap
        best = eligible[np.argmax(key[eligible])]
        values.append(scores[best] + (overlap[best] if add_iou else 0.0))
    return np.array(values)


# a small single-stage detector ------------------------------------------------------------

CLASSES = 3


class _GridBoxes(keras.layers.Layer):
    """(batch, h, w, 4 + classes) raw cell predictions -> (batch, h*w, 4 + classes): one box
    per cell, centred near the cell, as (x0, y0, x1, y1) pixels, then the class logits."""

    def __init__(self, cell: float, grid: int, **kwargs):
        super().__init__(**kwargs)
        self.cell, self.grid = cell, grid

    def call(self, raw):
        height = width = self.grid
        cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        centre = np.stack([cols, rows], -1).astype(np.float32) * self.cell
        centre = centre + self.cell * tf.tanh(raw[..., :2])
        extent = 2 * self.cell * tf.sigmoid(raw[..., 2:4])
        out = tf.concat([centre - extent, centre + extent, raw[..., 4:]], axis=-1)
        return tf.reshape(out, (-1, height * width, out.shape[-1]))


def _detector() -> keras.Model:
    """Conv -> Conv("target", 8x8) -> Conv(4 + classes) per cell -> decoded boxes (64 boxes)."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="target")(x)
    x = keras.layers.Conv2D(4 + CLASSES, 3, padding="same", name="cells")(x)
    return keras.Model(inputs, _GridBoxes(SIZE / 8, 8, name="boxes")(x), name="tiny_detector")


@pytest.fixture(scope="module")
def detector() -> keras.Model:
    return _detector()


def _box_of(model, image, cls) -> np.ndarray:
    """The predicted box with the highest class-``cls`` logit."""
    out = np.asarray(model(image[None]))[0]
    return out[np.argmax(out[:, 4 + cls]), :4]


def test_the_target_matches_numpy_in_every_mode():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 12, (4, 40, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(1, 6, (4, 40, 2))], axis=-1)
    outputs = np.concatenate([boxes, rng.normal(size=(4, 40, CLASSES))], -1).astype(np.float32)
    box = boxes[0, 7]
    for match in ("score", "iou"):
        for add_iou in (False, True):
            for iou in (0.0, 0.3, 0.6):
                target = targets.detection(box, 2, iou=iou, match=match, add_iou=add_iou)
                expected = _np_detection(outputs, box, 2, iou, match, add_iou)
                got = tf.function(target)(tf.constant(outputs)).numpy()
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.any(_np_detection(outputs, box, 2, 0.6) == 0)  # some rows match no box
    with pytest.raises(ValueError, match="no predicted box overlaps"):
        targets.detection(box, 2, iou=0.6)(tf.constant(outputs))  # eager: the unmasked images
    sigmoid_target = targets.detection(box, 1, iou=0.3, activation="sigmoid")
    expected = _np_detection(np.concatenate([boxes, sigmoid(outputs[..., 4:])], -1), box, 1, 0.3)
    np.testing.assert_allclose(
        tf.function(sigmoid_target)(tf.constant(outputs)), expected, rtol=1e-5, atol=1e-6
    )


def test_scorecam_matches_reference_on_a_single_stage_detector(detector):
    x = images(2, seed=4)
    box = _box_of(detector, x[0], 1)
    target = targets.detection(box, 1, iou=0.4)
    maps = tsc.ScoreCAM(detector, "target", batch_size=4)(x[:1], target=target)
    acts, scores, scored = reference_weights(
        detector, x[0], 0, score_of=lambda out: _np_detection(out, box, 1, 0.4)
    )
    ups = [resize_bilinear(acts[..., k], SIZE, SIZE) for k in scored]
    expected = minmax(np.maximum(sum(s * u for s, u in zip(scores, ups, strict=True)), 0))
    np.testing.assert_allclose(maps[0], expected, atol=TOL)
    one = tsc.ScoreCAM(detector, "target", batch_size=3)(x[0], target=target)
    np.testing.assert_allclose(one, maps[0], atol=1e-5)  # single image, other chunk size


def test_gradcam_matches_gradient_tape_on_a_single_stage_detector(detector):
    x = images(1, seed=4)
    box = _box_of(detector, x[0], 2)
    target = targets.detection(box, 2, iou=0.4, add_iou=True)
    cam = tsc.GradCAM(detector, "target")(x[0], target=target)
    split = keras.Model(detector.inputs, [detector.get_layer("target").output, detector.output])
    with tf.GradientTape() as tape:
        acts, out = split(x)
        tape.watch(acts)
        boxes, scores = out[0, :, :4], out[0, :, 4 + 2]
        overlap = _np_iou(boxes.numpy().astype(np.float64), box)
        best = int(np.argmax(np.where(overlap >= 0.4, scores.numpy(), -np.inf)))
        # the score of the chosen box plus its IoU, both differentiated
        b = boxes[best]
        ix = tf.maximum(tf.minimum(b[2], box[2]) - tf.maximum(b[0], box[0]), 0.0)
        iy = tf.maximum(tf.minimum(b[3], box[3]) - tf.maximum(b[1], box[1]), 0.0)
        union = (b[2] - b[0]) * (b[3] - b[1]) + float((box[2] - box[0]) * (box[3] - box[1]))
        score = scores[best] + ix * iy / (union - ix * iy)
    grads = tape.gradient(score, acts)[0].numpy().astype(np.float64)
    a = acts[0].numpy().astype(np.float64)
    low = np.maximum((a * grads.mean(axis=(0, 1))).sum(-1), 0)
    np.testing.assert_allclose(cam, minmax(resize_bilinear(low, SIZE, SIZE)), atol=TOL)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_detection(detector, method):
    x = images(2, seed=4)
    target = [targets.detection(_box_of(detector, i, 0), 0, iou=0.3) for i in x]
    options = {"max_channels": 4} if method in ("scorecam", "iscam", "sscam", "ablationcam") else {}
    if method == "augmented":
        options = {"num_augmentations": 2, "max_channels": 4}
    explainer = make_explainer(detector, method, "target", **options)
    maps = explainer(x, target=target)
    assert maps.shape == (2, SIZE, SIZE) and np.all(np.isfinite(maps))
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_errors_say_what_is_wrong(detector):
    for kwargs, message in [
        ({"box": (1, 2, 3), "class_index": 0}, "4 finite numbers"),
        ({"box": (5, 5, 2, 9), "class_index": 0}, "x1 > x0"),
        ({"box": (0, 0, 4, 4), "class_index": -1}, ">= 0"),
        ({"box": (0, 0, 4, 4), "class_index": 0, "iou": 1.5}, r"\[0, 1\]"),
        ({"box": (0, 0, 4, 4), "class_index": 0, "match": "area"}, "match must be"),
        ({"box": (0, 0, 4, 4), "class_index": 0, "activation": "relu"}, "activation must"),
    ]:
        with pytest.raises(ValueError, match=message):
            targets.detection(**kwargs)
    with pytest.raises(TypeError, match="class_index must be an int"):
        targets.detection((0, 0, 4, 4), 1.0)
    x = images(1)
    with pytest.raises(ValueError, match="more than 7 classes"):
        tsc.GradCAM(detector, "target")(x, target=targets.detection((0, 0, 4, 4), 7))
    with pytest.raises(ValueError, match=r"\(batch, boxes, 4 \+ classes\)"):
        tsc.GradCAM(build_classifier(), "target")(x, target=targets.detection((0, 0, 4, 4), 0))
    with pytest.raises(ValueError, match="no predicted box overlaps"):
        tsc.ScoreCAM(detector, "target")(x, target=targets.detection((40, 40, 50, 50), 0))
    with pytest.raises(ValueError, match="detection"):  # a target is needed, and named
        tsc.ScoreCAM(detector, "target")(x)


# keras_hub detectors -----------------------------------------------------------------------

HUB_SIZE = 256


@pytest.fixture(scope="module")
def retinanet() -> keras.Model:
    pytest.importorskip("keras_hub")
    return build_retinanet(HUB_SIZE)


def _capture(layer: keras.layers.Layer, delta: tf.Variable | None = None):
    """Patch ``layer.call`` to record its output (plus ``delta``, to differentiate by it)."""
    original, seen = layer.call, []

    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        out = out if delta is None else out + delta
        seen.append(out)
        return out

    layer.call = call
    return seen, lambda: setattr(layer, "call", original)


def _retinanet_outputs(detector, x) -> np.ndarray:
    """Decoded boxes (xyxy pixels) and sigmoid class scores, in NumPy from the raw outputs."""
    raw = detector(x)
    anchors = np.concatenate([np.asarray(a) for a in detector.anchor_generator(x).values()])
    anchors = anchors.astype(np.float64)  # xyxy
    deltas = np.asarray(raw["bbox_regression"], np.float64)
    size = anchors[:, 2:] - anchors[:, :2]
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2 + deltas[..., :2] * size
    extent = np.exp(deltas[..., 2:]) * size
    boxes = np.concatenate([centre - extent / 2, centre + extent / 2], -1)
    return np.concatenate([boxes, sigmoid(np.asarray(raw["cls_logits"], np.float64))], -1)


def _hub_scorecam(layer, x, score_of) -> np.ndarray:
    """Score-CAM one channel at a time at a nested ``layer`` (its output read by a patched
    call), with ``score_of(images) -> (N,)`` from the detector's raw outputs."""
    seen, restore = _capture(layer)
    score_of(x)
    restore()
    acts = np.asarray(seen[0][0], np.float64)
    low = np.zeros(acts.shape[:2])
    for k in range(acts.shape[-1]):
        up = resize_bilinear(acts[..., k], HUB_SIZE, HUB_SIZE)
        if up.max() > up.min():
            mask = ((up - up.min()) / (up.max() - up.min()))[..., None]
            low += score_of((x[0] * mask)[None].astype(np.float32))[0] * acts[..., k]
    return minmax(np.maximum(resize_bilinear(low, HUB_SIZE, HUB_SIZE), 0))


def _retinanet_box(detector, x, cls) -> np.ndarray:
    outputs = _retinanet_outputs(detector, x)[0]
    return outputs[np.argmax(outputs[:, 4 + cls]), :4]


def test_retinanet_scorecam_matches_reference(retinanet):
    detector = retinanet
    x = np.random.default_rng(2).uniform(0, 1, (1, HUB_SIZE, HUB_SIZE, 3)).astype(np.float32)
    box = _retinanet_box(detector, x, 1)
    target = targets.detection(box, 1)
    cam = tsc.ScoreCAM(detector, "stack2_block0_out", batch_size=8)(x[0], target=target)
    layer = detector.backbone.image_encoder.get_layer("stack2_block0_out")
    expected = _hub_scorecam(
        layer, x, lambda v: _np_detection(_retinanet_outputs(detector, v), box, 1)
    )
    np.testing.assert_allclose(cam, expected, atol=TOL)


def test_retinanet_gradcam_matches_gradient_tape(retinanet):
    detector = retinanet
    x = np.random.default_rng(2).uniform(0, 1, (1, HUB_SIZE, HUB_SIZE, 3)).astype(np.float32)
    box = _retinanet_box(detector, x, 3)
    cam = tsc.GradCAM(detector, "stack3_block0_out")(x[0], target=targets.detection(box, 3))
    layer = detector.backbone.image_encoder.get_layer("stack3_block0_out")
    outputs = _retinanet_outputs(detector, x)[0]
    eligible = _np_iou(outputs[:, :4], box) >= 0.5
    best = int(np.argmax(np.where(eligible, outputs[:, 4 + 3], -np.inf)))
    seen, restore = _capture(layer)
    detector(x)
    restore()
    delta = tf.Variable(tf.zeros_like(seen[0]))
    seen, restore = _capture(layer, delta)
    with tf.GradientTape() as tape:
        score = tf.sigmoid(detector(x)["cls_logits"][0, best, 3])
    restore()
    grads = tape.gradient(score, delta)[0].numpy().astype(np.float64)
    acts = np.asarray(seen[0][0], np.float64)
    low = np.maximum((acts * grads.mean(axis=(0, 1))).sum(-1), 0)
    np.testing.assert_allclose(cam, minmax(resize_bilinear(low, HUB_SIZE, HUB_SIZE)), atol=TOL)


def _dfine() -> keras.Model:
    """keras_hub's D-FINE from its config: the small HGNetV2 of its docstring, 80 classes."""
    pytest.importorskip("keras_hub")
    from keras_hub.src.models.d_fine.d_fine_backbone import DFineBackbone
    from keras_hub.src.models.d_fine.d_fine_object_detector import DFineObjectDetector
    from keras_hub.src.models.hgnetv2.hgnetv2_backbone import HGNetV2Backbone

    keras.utils.set_random_seed(0)
    shape, features = (HUB_SIZE, HUB_SIZE, 3), ["stage3", "stage4"]
    hgnet = HGNetV2Backbone(
        stem_channels=[3, 16, 16],
        stackwise_stage_filters=[
            [16, 16, 64, 1, 3, 3],
            [64, 32, 256, 1, 3, 3],
            [256, 64, 512, 2, 3, 5],
            [512, 128, 1024, 1, 3, 5],
        ],
        apply_downsample=[False, True, True, True],
        use_lightweight_conv_block=[False, False, True, True],
        depths=[1, 1, 2, 1],
        hidden_sizes=[64, 256, 512, 1024],
        embedding_size=16,
        use_learnable_affine_block=True,
        hidden_act="relu",
        image_shape=shape,
        out_features=features,
    )
    backbone = DFineBackbone(
        backbone=hgnet,
        decoder_in_channels=[128, 128],
        encoder_hidden_dim=128,
        num_denoising=100,
        num_labels=80,
        hidden_dim=128,
        learn_initial_query=False,
        num_queries=300,
        anchor_image_size=(HUB_SIZE, HUB_SIZE),
        feat_strides=[16, 32],
        num_feature_levels=2,
        encoder_in_channels=[512, 1024],
        encode_proj_layers=[1],
        num_attention_heads=8,
        encoder_ffn_dim=512,
        num_encoder_layers=1,
        hidden_expansion=0.34,
        depth_multiplier=0.5,
        eval_idx=-1,
        num_decoder_layers=3,
        decoder_attention_heads=8,
        decoder_ffn_dim=512,
        decoder_n_points=[6, 6],
        lqe_hidden_dim=64,
        num_lqe_layers=2,
        out_features=features,
        image_shape=shape,
    )
    return DFineObjectDetector(backbone=backbone, num_classes=80, bounding_box_format="yxyx")


def _dfine_outputs(detector, x) -> np.ndarray:
    """Query boxes (normalised cx, cy, w, h) as xyxy pixels, and sigmoid class scores."""
    raw = detector(x)
    centre = np.asarray(raw["pred_boxes"], np.float64)[..., :2] * HUB_SIZE
    extent = np.asarray(raw["pred_boxes"], np.float64)[..., 2:] * HUB_SIZE
    scores = sigmoid(np.asarray(raw["logits"], np.float64))
    return np.concatenate([centre - extent / 2, centre + extent / 2, scores], -1)


def test_dfine_scorecam_matches_reference():
    detector = _dfine()
    x = np.random.default_rng(2).uniform(0, 1, (1, HUB_SIZE, HUB_SIZE, 3)).astype(np.float32)
    outputs = _dfine_outputs(detector, x)[0]
    box = outputs[np.argmax(outputs[:, 4 + 7]), :4]
    cam = tsc.ScoreCAM(detector, "embedder", batch_size=8)(x[0], target=targets.detection(box, 7))
    layer = detector.backbone.backbone.get_layer("embedder")
    expected = _hub_scorecam(layer, x, lambda v: _np_detection(_dfine_outputs(detector, v), box, 7))
    np.testing.assert_allclose(cam, expected, atol=TOL)


# overlays ----------------------------------------------------------------------------------


def test_overlay_draws_boxes_and_renormalises_inside_them():
    heatmap = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
    picture = np.full((20, 30, 3), 100, np.uint8)
    explanation = tsc.Explanation(heatmap, None, None, 0.5, picture, "scorecam")
    boxes = np.array([[2, 3, 10, 9], [15, 5, 25, 18]])
    plain = explanation.overlay(alpha=0.0, boxes=boxes, box_colour=(255, 0, 0))
    outline = np.all(plain == (255, 0, 0), axis=-1)
    assert outline[3, 2:10].all() and outline[8, 2:10].all() and outline[3:9, 2].all()
    assert outline[5:18, 24].all() and not outline[5, 5] and not outline[0, 0]
    renormalised = tsc.maps.renormalise_in_boxes(heatmap, boxes)
    expected = np.zeros_like(heatmap)
    for x0, y0, x1, y1 in boxes:
        inside = heatmap[y0:y1, x0:x1]
        expected[y0:y1, x0:x1] += (inside - inside.min()) / (inside.max() - inside.min())
    np.testing.assert_allclose(renormalised, expected / expected.max(), atol=1e-6)
    shown = explanation.overlay(alpha=1.0, colormap="gray", boxes=boxes, renormalise=True)
    np.testing.assert_array_equal(shown[0, 0], (0, 0, 0))  # outside every box: zero
    direct = tsc.Explanation(expected / expected.max(), None, None, 0.5, picture, "scorecam")
    np.testing.assert_array_equal(shown, direct.overlay(alpha=1.0, colormap="gray", boxes=boxes))
    with pytest.raises(ValueError, match="pass boxes="):
        explanation.overlay(renormalise=True)
    with pytest.raises(ValueError, match="x0 <= x1"):
        explanation.overlay(boxes=[[5, 5, 1, 1]])
