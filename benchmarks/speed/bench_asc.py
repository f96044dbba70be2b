"""Augmented Score-CAM's cost on MobileNetV2 with real photos, against one Score-CAM.

    python -m benchmarks.speed.bench_asc \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 2

Prints seconds per image (the median of --repeat interleaved rounds, each one call of every
explainer on --n photos, after a tracing call) and its ratio to Score-CAM's in the same round
(median over rounds) of
Score-CAM, the default Augmented Score-CAM (129 views zoomed 3x and 4x, shared weights),
v0.4's default (81 views zoomed 1.5x and 2x, ``cell_shift=(0, 0)``), v0.2's default
(16 rotations, shared weights), with --authors the authors' settings with
shared weights (K = 100, fusion at the input resolution) and, with --per-copy-k, the authors'
per_copy scoring at K = --per-copy-k; and the fusion alone (operators built once, one solve).
Then the docs' stand-alone call, ``tsc.superres.super_resolve(low_res, T, (224, 224))`` with
32 random copies of 7 x 7 and of 14 x 14 maps (operators built and solved in each call).
"""

from __future__ import annotations

import argparse

import numpy as np

import tfscorecam as tsc
from benchmarks.common import (
    DEFAULT_IMAGES,
    DEFAULT_WEIGHTS,
    dev_inputs,
    mobilenet_v2,
)
from benchmarks.report import best_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=2, help="photos")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--max-channels", type=int, default=None)
    parser.add_argument("--per-copy-k", type=int, default=0, help="also time per_copy at this K")
    parser.add_argument("--authors", action="store_true", help="also the authors' settings")
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    options = {"max_channels": args.max_channels, "verbose": 0}
    explainers = {
        "Score-CAM": tsc.ScoreCAM(model, **options),
        "Augmented Score-CAM, default (129 zoomed views, shared)": tsc.AugmentedScoreCAM(
            model, **options
        ),
        "Augmented Score-CAM, v0.4 default (81 zoomed views, shared)": tsc.AugmentedScoreCAM(
            model, zoom_scales=(1.5, 2.0), cell_shift=(0.0, 0.0), **options
        ),
        "Augmented Score-CAM, v0.2 default (16 rotations, shared)": tsc.AugmentedScoreCAM(
            model, views="rotations", multiply_coarse=False, **options
        ),
    }
    if args.authors:
        explainers["Augmented Score-CAM, authors' settings with shared weights (K=100)"] = (
            tsc.AugmentedScoreCAM.authors_settings(model, weights="shared", **options)
        )
    if args.per_copy_k:
        explainers[f"Augmented Score-CAM, per_copy (K={args.per_copy_k})"] = tsc.AugmentedScoreCAM(
            model,
            num_augmentations=args.per_copy_k,
            weights="per_copy",
            views="rotations",
            **options,
        )
    for explainer in explainers.values():
        explainer(x[:1])  # trace
    rounds = [  # interleaved, so that the machine's drift falls on every row alike
        {name: best_of(lambda e=e: e(x), 1) / len(x) for name, e in explainers.items()}
        for _ in range(args.repeat)
    ]
    seconds = {name: float(np.median([r[name] for r in rounds])) for name in explainers}
    ratios = {
        name: float(np.median([r[name] / r["Score-CAM"] for r in rounds])) for name in explainers
    }
    print(f"MobileNetV2, {len(x)} photos, max_channels={args.max_channels}")
    print("| explainer | s / image | / Score-CAM | fusion s / image |\n|---|---|---|---|")
    features = explainers["Score-CAM"].feature_size()
    for name, explainer in explainers.items():
        fusion = "-"
        if isinstance(explainer, tsc.AugmentedScoreCAM):
            resolver = explainer.resolver(x.shape[1:3], features)
            low = np.random.default_rng(0).random((len(resolver.transforms), *features))
            resolver(low)
            fusion = f"{best_of(lambda r=resolver, g=low: r(g), args.repeat):.3f}"
        print(f"| {name} | {seconds[name]:.2f} | {ratios[name]:.2f} | {fusion} |", flush=True)
    transforms = tsc.augment.random_transforms(32, (224, 224), max_angle=0.5, max_shift=30)
    for cells in (7, 14):
        low = np.random.default_rng(0).random((32, cells, cells))
        call = lambda g=low: tsc.superres.super_resolve(g, transforms, (224, 224))  # noqa: E731
        print(f"super_resolve, 32 copies of {cells}x{cells} at 224: {best_of(call, 2):.2f} s")


if __name__ == "__main__":
    main()
