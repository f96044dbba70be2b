"""What a detection target's two conventions change: the class score of the matching box
(ours) or that score plus the box's IoU (pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``).

    python -m benchmarks.studies.detection_score --images ../shared/data/imagenet-dev --n 12

No trained detector can be downloaded here, so this measures the mechanism, not quality: a
keras_hub RetinaNet built from its config (ResNet-18-like encoder, P3-P5, 256 px, random
weights, seeded; its box head's output scaled by ``--box-scale``, so that boxes stay near
their anchors as a trained detector's do, where random weights send them off the image)
explains, on real photos, its highest-scoring box of class 0 with Score-CAM and Grad-CAM, once
with ``add_iou=False`` and once with ``add_iou=True``. Reported per photo
(mean and 95% bootstrap interval): the Spearman correlation of the two maps, and for
Score-CAM the share of masked copies that still have a matching box and the share of the
channel weights' variance that the IoU term carries.
"""

from __future__ import annotations

import argparse

import keras
import keras_hub
import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_IMAGES, load_photo, photo_paths
from benchmarks.report import bootstrap
from tfscorecam import targets
from tfscorecam.core.detectors import detection_view
from tfscorecam.metrics import rank_correlation

SIZE = 256


def retinanet(box_scale: float) -> keras.Model:
    """keras_hub's RetinaNet from its config, random weights (seeded), 20 classes, the box
    head's output conv multiplied by ``box_scale``."""
    keras.utils.set_random_seed(0)
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(SIZE, SIZE, 3),
    )
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=5, use_p5=False, image_shape=(SIZE, SIZE, 3)
    )
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=20, bounding_box_format="xyxy"
    )
    for weight in detector.box_head.weights[-2:]:  # the output conv's kernel and bias
        weight.assign(weight * box_scale)
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=12, help="photos")
    parser.add_argument("--layer", default="stack3_block1_out")
    parser.add_argument("--max-channels", type=int, default=64)
    parser.add_argument("--box-scale", type=float, default=0.1)
    args = parser.parse_args()

    detector = retinanet(args.box_scale)
    view = detection_view(detector)
    photos = np.stack([load_photo(p, SIZE) for p in photo_paths(args.images, args.n)])
    x = (photos / 255.0).astype(np.float32)
    outputs = view.predict(x, verbose=0)
    boxes = outputs[np.arange(len(x)), np.argmax(outputs[..., 4], axis=1), :4]
    score_cam = tsc.ScoreCAM(detector, args.layer, max_channels=args.max_channels, verbose=0)
    grad_cam = tsc.GradCAM(detector, args.layer, verbose=0)
    results: dict[str, list[float]] = {"scorecam": [], "gradcam": [], "matched": [], "iou": []}
    for image, box in zip(x, boxes, strict=True):
        plain, with_iou = (targets.detection(box, 0, add_iou=a) for a in (False, True))
        for name, cam in (("scorecam", score_cam), ("gradcam", grad_cam)):
            a, b = cam(image, target=plain), cam(image, target=with_iou)
            results[name].append(float(rank_correlation(a[None], b[None])[0]))
        acts, raw = score_cam.forward(image[None])
        requests = [score_cam.scorings.resolve(None, t, raw, True) for t in (plain, with_iou)]
        weights = [score_cam.unit_weights(image, acts[0], request, 0) for request in requests]
        results["matched"].append(float(np.mean(weights[0] > 0)))
        iou_term = weights[1] - weights[0]
        results["iou"].append(float(np.var(iou_term) / max(np.var(weights[1]), 1e-12)))
    print(
        f"RetinaNet (random weights, seeded, box head x{args.box_scale}), {len(x)} photos, "
        f"layer {args.layer}, Score-CAM on {args.max_channels} channels"
    )
    labels = {
        "scorecam": "Score-CAM map Spearman, add_iou off vs on",
        "gradcam": "Grad-CAM map Spearman, add_iou off vs on",
        "matched": "Score-CAM masked copies with a matching box",
        "iou": "share of Score-CAM weight variance from the IoU term",
    }
    for key, label in labels.items():
        values = np.array(results[key])
        mean, low, high = bootstrap(values[np.isfinite(values)])
        print(f"  {label}: {mean:.3f} [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
