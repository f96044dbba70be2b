"""Ablation-CAM against its floor: the same passes of the model after the target layer, bare.

    python -m benchmarks.speed.bench_ablation \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 2

Ablation-CAM zeroes one channel per row of a chunk of ``batch_size`` feature maps and runs
only the rest of the model on it (and once on the unablated map). Two floors, each per photo
one forward pass (which any method needs), then passes on ready batches of the same sizes (one
per ``batch_size`` ablated channels, and one unablated map each), all in one compiled
``tf.while_loop`` with no Python between passes:

- the head's passes: the model's own layers after the target (after ``out_relu``: the pool
  and the 1000-class Dense and softmax; after ``block_16_project`` a 1x1 conv, batch norm and
  ReLU before them);
- explained logit only: the same, but only the explained class's logit computed from the
  pooled features, as Ablation-CAM's default ``score="logit"`` does. What remains between it
  and Ablation-CAM is building the ablated copies, and the map.

Ablation-CAM runs silent (``verbose=0``), and with a progress bar shown (the same compiled
loop, advancing the bar after each chunk). Interleaved rounds, medians, after a tracing call
of each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import tensorflow as tf

import tfscorecam as tsc
from benchmarks.common import DEFAULT_IMAGES, DEFAULT_WEIGHTS, dev_inputs, mobilenet_v2
from benchmarks.report import bar_shown, best_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=2, help="photos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-channels", type=int, default=None)
    parser.add_argument("--layer", default="out_relu")
    parser.add_argument("--batch-size", type=int, default=64, help="ablated maps per pass")
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    cam = tsc.AblationCAM(
        model, args.layer, max_channels=args.max_channels, batch_size=args.batch_size, verbose=0
    )
    acts, outputs = cam.forward(x)
    counts = [int(tf.size(cam.scorer.selected(a))) for a in acts]
    classes = outputs.argmax(axis=1)  # explained: the top-1 classes
    size = cam.batch_size
    ready = tf.random.uniform((size, *acts.shape[1:]))
    head = cam.tail(None)  # the model's layers after the target, softmax and all
    stripped, scoring = cam.tail(cam.scorings.of_classes()), cam.scorings.of_classes().fn
    floors = {
        "the head's passes": lambda rows, _: head(rows, training=False),
        "explained logit only": lambda rows, c: scoring(stripped(rows, training=False), c[None]),
    }

    def floor_run(passes: Callable) -> Callable[[], None]:
        @tf.function
        def one(image: tf.Tensor, count: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
            total = tf.reduce_sum(model(image[None], training=False))

            def body(start: tf.Tensor, total: tf.Tensor) -> tuple:
                rows = ready[: tf.minimum(size, count - start)]
                unablated = tf.reduce_sum(passes(rows[:1], c))
                return start + size, total + unablated + tf.reduce_sum(passes(rows, c))

            return tf.while_loop(
                lambda start, _: start < count, body, (0, total), parallel_iterations=1
            )[1]

        def run() -> None:
            for image, count, c in zip(x, counts, classes, strict=True):
                one(tf.constant(image), tf.constant(count), tf.constant(c, tf.int32)).numpy()

        return run

    shown = tsc.AblationCAM(
        model, args.layer, max_channels=args.max_channels, batch_size=args.batch_size, verbose=1
    )

    def with_bar() -> None:
        with bar_shown():
            shown(x)

    runs = {"Ablation-CAM": lambda: cam(x), "Ablation-CAM with a progress bar": with_bar}
    runs |= {k: floor_run(p) for k, p in floors.items()}
    for run in runs.values():
        run()  # trace
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            times[name].append(best_of(run, 1) / len(x))
    print(f"MobileNetV2 {cam.layer_path}, {len(x)} photos, {np.mean(counts):.0f} channels ablated")
    for name, t in times.items():
        print(f"{name}: {np.median(t):.4f} s/image")
    bar = "Ablation-CAM with a progress bar"
    ratios = sorted(b / o for b, o in zip(times[bar], times["Ablation-CAM"], strict=True))
    print(f"with a progress bar / silent, median of {args.rounds}: {ratios[len(ratios) // 2]:.3f}")
    for name in floors:
        ratios = sorted(o / f for o, f in zip(times["Ablation-CAM"], times[name], strict=True))
        print(
            f"ratio to {name} (a forward, then those passes), median of {args.rounds} "
            f"interleaved rounds: {ratios[len(ratios) // 2]:.3f} "
            f"(all: {', '.join(f'{r:.3f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
