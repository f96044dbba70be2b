"""IS-CAM and SS-CAM cost in Score-CAMs, and the one-pass methods' seconds, on real photos.

    python -m benchmarks.speed.bench_family \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 1 --max-channels 64

IS-CAM and SS-CAM score N masked inputs per channel (N = 10 and 35), built inside the compiled
step; their seconds per image over Score-CAM's with the same channels is their cost in
Score-CAMs (ideal: N). Then the methods that need no masked input passes (Grad-CAM and its
family, EigenCAM, Ablation-CAM and Recipro-CAM, both running only the layers after the target)
and, with --all-channels, Score-CAM over all channels. Best of --repeat calls after a tracing call.
"""

from __future__ import annotations

import argparse

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
    parser.add_argument("--n", type=int, default=1, help="photos")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--max-channels", type=int, default=64)
    parser.add_argument("--all-channels", action="store_true", help="also Score-CAM, all")
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    options = {"max_channels": args.max_channels, "verbose": 0}
    explainers = {
        "Score-CAM": (tsc.ScoreCAM(model, **options), 1),
        "IS-CAM (N=10)": (tsc.ISCAM(model, **options), 10),
        "SS-CAM (N=35)": (tsc.SSCAM(model, **options), 35),
        "Grad-CAM": (tsc.GradCAM(model, verbose=0), None),
        "LayerCAM": (tsc.LayerCAM(model, verbose=0), None),
        "HiResCAM": (tsc.HiResCAM(model, verbose=0), None),
        "XGrad-CAM": (tsc.XGradCAM(model, verbose=0), None),
        "EigenCAM": (tsc.EigenCAM(model, verbose=0), None),
        "Ablation-CAM": (tsc.AblationCAM(model, verbose=0), None),
        "Recipro-CAM": (tsc.ReciproCAM(model, verbose=0), None),
    }
    if args.all_channels:
        explainers["Score-CAM, all channels"] = (tsc.ScoreCAM(model, verbose=0), None)
    seconds = {}
    for name, (explainer, _) in explainers.items():
        explainer(x[:1])  # trace
        seconds[name] = best_of(lambda e=explainer: e(x), args.repeat) / len(x)
    print(f"MobileNetV2, {len(x)} photos, max_channels={args.max_channels}")
    print("| explainer | s / image | Score-CAMs (ideal N) |\n|---|---|---|")
    for name, (_, samples) in explainers.items():
        cost = "-" if samples is None else f"{seconds[name] / seconds['Score-CAM']:.2f} ({samples})"
        print(f"| {name} | {seconds[name]:.3f} | {cost} |", flush=True)


if __name__ == "__main__":
    main()
