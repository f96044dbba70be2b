"""Ablation-CAM against its floor: the same passes of the model after the target layer, bare.

    python -m benchmarks.speed.bench_ablation \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 2

Ablation-CAM zeroes one channel per row of a chunk of ``batch_size`` feature maps and runs
only the rest of the model on it (and once on the unablated map). The floor runs that rest
model, compiled, on ready batches of the same sizes, one per ``batch_size`` ablated channels of
each photo, plus the one forward pass of each photo that any method needs. ``--layer``: the
target (the rest of the model is a pool and a Dense after ``out_relu``; a 1x1 conv, batch norm,
pool and Dense after ``block_16_project``). Interleaved rounds, medians; after a tracing
call of each.
"""

from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf

import tfscorecam as tsc
from benchmarks.common import DEFAULT_IMAGES, DEFAULT_WEIGHTS, dev_inputs, mobilenet_v2
from benchmarks.report import best_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=2, help="photos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-channels", type=int, default=None)
    parser.add_argument("--layer", default="out_relu")
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    cam = tsc.AblationCAM(model, args.layer, max_channels=args.max_channels, verbose=0)
    acts, _ = cam.forward(x)
    counts = [int(tf.size(cam.scorer.selected(a))) for a in acts]
    rest = tf.function(lambda t: cam.rest_of_model(cam.class_scoring)(t, training=False))
    size = cam.batch_size
    batches = {
        c: tf.random.uniform((c, *acts.shape[1:])) for c in {1, size, *(n % size for n in counts)}
    }
    forward = tf.function(lambda t: model(t, training=False))

    def floor_run() -> None:
        for i, n in enumerate(counts):
            forward(x[i : i + 1]).numpy()
            for start in range(0, n, size):
                rest(batches[1]).numpy()
                rest(batches[min(size, n - start)]).numpy()

    cam(x), floor_run()  # trace both
    rounds = [(best_of(lambda: cam(x), 1), best_of(floor_run, 1)) for _ in range(args.rounds)]
    ours = float(np.median([o for o, _ in rounds])) / len(x)
    floor = float(np.median([f for _, f in rounds])) / len(x)
    ratios = sorted(o / f for o, f in rounds)
    print(f"MobileNetV2 {cam.layer_path}, {len(x)} photos, {np.mean(counts):.0f} channels ablated")
    print(f"Ablation-CAM: {ours:.3f} s/image; floor (a forward, then the rest alone): {floor:.3f}")
    print(
        f"ratio ours/floor, median of {args.rounds} interleaved rounds: "
        f"{ratios[len(ratios) // 2]:.3f} (all: {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
