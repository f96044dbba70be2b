"""Where Augmented Score-CAM's localisation gain comes from, and what Average Drop rewards.

    python -m benchmarks.studies.asc_values --boxes ../shared/data/imagenet-val-boxes \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5

The photos, model, caches and default fusion of ``benchmarks/studies/asc_study.py`` (run that first:
this script reuses its cached Score-CAM weights over all channels and copy activations at
``out_relu``; its own first run adds the same for MobileNetV2's last 14x14 layer,
``block_13_expand_relu``: 576 channels per photo, about 20 min on 2 CPU cores).

1. Order and values. A saliency map is an order of its pixels (which come first: all that
   deletion, insertion and, nearly, box accuracy see) and the values along that order (how
   concentrated the map is: what EPG and AD/IC also see). Per photo, ASC's order is given
   Score-CAM's sorted values and Score-CAM's order ASC's values, which splits ASC's gain
   between a better order and more contrast.
2. Oracles: the true boxes themselves as the map (hard, and blurred with sigma 16 px), and the
   pixel-wise maximum of the boxes and Score-CAM's map: what AD and IC make of a map that is
   exactly the object, against one that adds the object to Score-CAM's context.
3. A finer layer: Score-CAM and ASC (default fusion on a 28x28 grid) at 14x14.
4. Another model: EfficientNet-Lite0 (``tsc.zoo``, the pip package's ImageNet weights), its
   last layer, Faster Score-CAM's 128 channels for time (about 11 min on 2 cores), ASC with the
   package defaults on the same channels; its differences are paired with Lite0's Score-CAM.

Every row: mean [95% bootstrap interval] over the photos, and paired differences with
Score-CAM at ``out_relu`` on the same photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

import tfscorecam as tsc
from benchmarks.common import DEFAULT_BOXES, DEFAULT_WEIGHTS
from benchmarks.report import RESULTS
from benchmarks.studies.asc_study import (
    FINE_LAYER,
    cell,
    copies_cache,
    fused_maps,
    layer_cache,
    measures,
    scorecam_maps,
    study_inputs,
)
from tfscorecam import metrics
from tfscorecam.core.maps import minmax, upsample


def with_values(order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per map, the pixels of ``order`` in their order, given the sorted values of ``values``
    (the k-th smallest pixel of ``order`` gets the k-th smallest value of ``values``)."""
    out = np.empty(order.shape, np.float32)
    for i, (o, v) in enumerate(zip(order, values, strict=True)):
        flat = np.empty(o.size, np.float32)
        flat[np.argsort(o.ravel(), kind="stable")] = np.sort(v.ravel())
        out[i] = flat.reshape(o.shape)
    return out


def lite0_maps(photos: np.ndarray, labels: np.ndarray, channels: int) -> tuple:
    """EfficientNet-Lite0, its inputs, its Faster Score-CAM maps (``channels``, in [0, 1]) and
    default ASC maps on the same channels (the first copy is the photo: its map is
    Score-CAM's)."""
    lite0 = tsc.zoo.efficientnet_lite0()
    images = lite0.preprocess(photos)
    cam = tsc.AugmentedScoreCAM(lite0.model, max_channels=channels, verbose=0)
    scorecam, asc = [], []
    for i, image in enumerate(images):
        acts, outputs = cam.forward(image[None])
        request = cam.scorings.resolve(int(labels[i]), None, outputs, False)
        resolver = cam.resolver(image.shape[:2], acts.shape[1:3])
        low = cam.copy_maps(image, acts[0], request, 0, resolver.transforms)[0]
        scorecam.append(upsample(low[0][..., None], image.shape[:2]).numpy()[..., 0])
        asc.append(np.maximum(resolver(low), 0.0))
    return lite0.model, images, minmax(np.stack(scorecam)).numpy(), np.stack(asc)


def table_rows(rows: dict, model, x, labels, boxes) -> list[str]:
    """One table row per maps, differences paired with the first."""
    lines, reference = [], None
    for label, maps in rows.items():
        m = measures(maps, model, x, labels, boxes)
        reference = reference or m
        cells = [
            cell(m["epg"]),
            "-" if m is reference else cell(m["epg"] - reference["epg"], True),
            cell(m["box"]),
            "-" if m is reference else cell(m["box"] - reference["box"], True),
            cell(m["ad"], digits=1),
            "-" if m is reference else cell(m["ad"] - reference["ad"], True, 1),
            cell(m["ic"], digits=1),
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--max-channels", type=int, default=None, help="MobileNetV2's (all)")
    parser.add_argument("--lite0-channels", type=int, default=128)
    parser.add_argument("--cache", default=str(RESULTS / "asc_study_cache"))
    parser.add_argument("--out", default=str(RESULTS / "asc_values.md"))
    args = parser.parse_args()

    model, photos, x, labels, boxes, cache = study_inputs(args)
    shape = x.shape[1:3]

    acts, weights = layer_cache(model, x, labels, args.max_channels, cache)
    scorecam = scorecam_maps(acts, weights, shape)
    default = copies_cache(model, x, labels, "default", cache)
    asc = fused_maps(default, 16, weights, shape, {})[0]
    asc_one = fused_maps(default, 1, weights, shape, {})[0]
    fine_acts, fine_weights = layer_cache(model, x, labels, args.max_channels, cache, FINE_LAYER)
    fine = copies_cache(model, x, labels, "fine", cache)
    box = metrics.box_masks(boxes, shape).astype(np.float32)

    rows = {
        "Score-CAM": scorecam,
        "ASC (default: K = 16)": asc,
        "ASC, K = 1": asc_one,
        "1. ASC's order, Score-CAM's values": with_values(asc, scorecam),
        "1. ASC K = 1's order, Score-CAM's values": with_values(asc_one, scorecam),
        "1. Score-CAM's order, ASC's values": with_values(scorecam, asc),
        "1. control: Score-CAM squared": scorecam**2,
        "2. oracle: the boxes": box,
        "2. oracle: the boxes blurred (sigma 16 px)": np.stack(
            [gaussian_filter(b, 16.0) for b in box]
        ),
        "2. oracle: max(boxes, Score-CAM)": np.maximum(box, scorecam),
        f"3. Score-CAM at {FINE_LAYER} (14x14)": scorecam_maps(fine_acts, fine_weights, shape),
        f"3. ASC at {FINE_LAYER}": fused_maps(fine, 16, fine_weights, shape, {})[0],
    }
    lines = [
        f"MobileNetV2, {len(x)} photos ({args.boxes}), true class, Score-CAM weights over "
        f"{args.max_channels or 'all'} channels (section 4: {args.lite0_channels}); mean [95% "
        "bootstrap interval]; differences paired with Score-CAM (out_relu; section 4: Lite0's) "
        "on the same photos.",
        "",
        "| maps | EPG | EPG - Score-CAM | box accuracy | box - Score-CAM | AD % | "
        "AD - Score-CAM | IC % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += table_rows(rows, model, x, labels, boxes)
    lite0, lite_x, lite_scorecam, lite_asc = lite0_maps(
        photos.astype(np.float32), labels, args.lite0_channels
    )
    lite_rows = {
        f"4. EfficientNet-Lite0 Score-CAM ({args.lite0_channels} channels)": lite_scorecam,
        "4. Lite0 ASC (default, same channels)": lite_asc,
        "4. Lite0 ASC's order, Score-CAM's values": with_values(lite_asc, lite_scorecam),
        "4. Lite0 control: Score-CAM squared": lite_scorecam**2,
        "4. Lite0 oracle: the boxes": box,
    }
    lines += table_rows(lite_rows, lite0, lite_x, labels, boxes)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
