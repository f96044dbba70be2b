"""The speed figures of one Keras backend (the one ``KERAS_BACKEND`` picks), in one run:

    KERAS_BACKEND=jax python -m benchmarks.speed.bench_backend \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 4

Prints: images/s of the bare forward pass at ``--batch-size`` (64); exact Score-CAM's s/image
and images/s, and its ratio to the floor (the same masked passes, one per non-flat channel, run
bare at that batch size), the median of interleaved rounds; Augmented Score-CAM's s/image (the
default: 81 zoomed views, channels scored once); Grad-CAM's and Recipro-CAM's s/image. Each
explainer is traced before it is timed. ``--weights random --images random`` is the smoke run
(MobileNetV2 at width 0.35, random inputs; not a figure to report). ``--max-channels`` times
Faster Score-CAM instead (for slow CPUs: JAX's MobileNetV2 forward on a CPU is about 6x
TensorFlow's, from XLA's depthwise convolutions).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_IMAGES, DEFAULT_WEIGHTS, dev_inputs, device_line, mobilenet_v2
from benchmarks.report import best_of
from benchmarks.speed.bench_scorecam import floor_run, forward_rate


def seconds_per_image(explainer, x: np.ndarray) -> float:
    """Seconds per image of one call on ``x``, after a traced first call on one image."""
    explainer(x[:1])
    return best_of(lambda: explainer(x), repeat=1) / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=4, help="photos per timed call")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved Score-CAM rounds")
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--max-channels", type=int, default=None, help="Faster Score-CAM")
    parser.add_argument("--layer", default="out_relu")
    args = parser.parse_args()

    start = time.perf_counter()
    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    print(f"{device_line()}; MobileNetV2 ({args.weights}), layer {args.layer}, {len(x)} images")
    rate = forward_rate(model, args.batch_size, args.rate_seconds)
    print(f"bare forward, batch {args.batch_size}: {rate:.1f} images/s")

    cam = tsc.ScoreCAM(
        model, args.layer, batch_size=args.batch_size, max_channels=args.max_channels, verbose=0
    )
    bare, passes = floor_run(model, cam, x, args.batch_size)
    cam(x[:1]), bare()  # trace both
    rounds = [(best_of(lambda: cam(x), 1), best_of(bare, 1)) for _ in range(args.rounds)]
    ours = float(np.median([o for o, _ in rounds])) / len(x)
    ratios = sorted(o / f for o, f in rounds)
    kind = "exact" if args.max_channels is None else f"max_channels={args.max_channels}"
    print(
        f"Score-CAM ({kind}, {np.mean(passes):.0f} passes/image): {ours:.3f} s/image "
        f"({1 / ours:.2f} images/s); ratio to the floor, median of {args.rounds} rounds: "
        f"{ratios[len(ratios) // 2]:.3f} (all: {', '.join(f'{r:.3f}' for r in ratios)})"
    )
    for name, explainer in (
        ("Augmented Score-CAM (81 zoomed views)", tsc.AugmentedScoreCAM),
        ("Grad-CAM", tsc.GradCAM),
        ("Recipro-CAM", tsc.ReciproCAM),
    ):
        options = {"max_channels": args.max_channels} if explainer is tsc.AugmentedScoreCAM else {}
        built = explainer(model, args.layer, batch_size=args.batch_size, verbose=0, **options)
        print(f"{name}: {seconds_per_image(built, x):.3f} s/image")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
