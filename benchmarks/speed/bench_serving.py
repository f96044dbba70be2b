"""Latency of each exported method (tf.saved_model.load) against the eager explainer.

    python -m benchmarks.speed.bench_serving \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5

MobileNetV2 on --n photos of --images, one image per call, best of --repeat calls after a
warm-up. IS-CAM, SS-CAM and per-copy Augmented Score-CAM score --max-channels channels (they
cost N and K Score-CAMs). For the served Augmented Score-CAM, the fusion alone (its
``GraphFusion`` on the copies' maps) is timed too: the rest is the forward passes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import tensorflow as tf

import tfscorecam as tsc
from benchmarks.common import (
    DEFAULT_IMAGES,
    DEFAULT_WEIGHTS,
    dev_inputs,
    mobilenet_v2,
)
from benchmarks.report import best_of
from tfscorecam.methods.augmented.graph_fusion import GraphFusion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--max-channels", type=int, default=64)
    parser.add_argument("--methods", default="")
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    c = args.max_channels
    explainers = {
        "Grad-CAM": lambda: tsc.GradCAM(model, verbose=0),
        "Grad-CAM++": lambda: tsc.GradCAMPlusPlus(model, verbose=0),
        "LayerCAM": lambda: tsc.LayerCAM(model, verbose=0),
        "Score-CAM": lambda: tsc.ScoreCAM(model, verbose=0),
        f"IS-CAM (max_channels={c})": lambda: tsc.ISCAM(model, max_channels=c, verbose=0),
        f"SS-CAM (max_channels={c})": lambda: tsc.SSCAM(model, max_channels=c, verbose=0),
        "Augmented Score-CAM, shared": lambda: tsc.AugmentedScoreCAM(
            model, weights="shared", verbose=0
        ),
        f"Augmented Score-CAM, per_copy (max_channels={c})": lambda: tsc.AugmentedScoreCAM(
            model, weights="per_copy", max_channels=c, verbose=0
        ),
    }
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    print("| method | eager s / image | served s / image | served / eager |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, make in explainers.items():
            if chosen and not any(c in name for c in chosen):
                continue
            explainer = make()
            loaded = tf.saved_model.load(
                str(tsc.serving.export(explainer, Path(folder) / name.replace(" ", "_")))
            )
            serve = loaded.signatures["serving_default"]
            eager = sum(
                best_of(lambda i=i, e=explainer: e(x[i : i + 1]), args.repeat, warm=True)
                for i in range(len(x))
            )
            served = sum(
                best_of(
                    lambda i=i, s=serve: s(images=tf.constant(x[i : i + 1]))["maps"].numpy(),
                    args.repeat,
                    warm=True,
                )
                for i in range(len(x))
            )
            eager, served = eager / len(x), served / len(x)
            print(f"| {name} | {eager:.2f} | {served:.2f} | {served / eager:.2f} |", flush=True)
            if isinstance(explainer, tsc.AugmentedScoreCAM):
                resolver = explainer.resolver((224, 224), (7, 7))
                fusion = tf.function(GraphFusion(resolver))
                low = tf.random.uniform((len(resolver.transforms), 7, 7))
                seconds = best_of(lambda f=fusion, low=low: f(low).numpy(), args.repeat, warm=True)
                print(f"|   of which the fusion | | {seconds:.2f} | {seconds / served:.1%} |")


if __name__ == "__main__":
    main()
