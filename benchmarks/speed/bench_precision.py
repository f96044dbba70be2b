"""Score-CAM on a model built under a bfloat16 (or float16) policy against the float32 model:
speed and how far the maps move.

    python -m benchmarks.speed.bench_precision \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 8 --max-channels 128

The same weights are loaded into MobileNetV2 built under ``mixed_bfloat16`` (compute in
bfloat16, variables in float32); each model explains the photos' float32 top-1 class. Reports
seconds per photo (median of interleaved rounds, after a tracing call), the ratio, and per
photo the Spearman correlation and largest absolute difference between the two maps, with
95% bootstrap intervals. Whether the CPU has native bfloat16 instructions (``avx512_bf16``,
``amx_bf16``) is printed: without them TensorFlow emulates bfloat16 and it is slower.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_IMAGES, DEFAULT_WEIGHTS, dev_inputs, mobilenet_v2
from benchmarks.report import best_of, bootstrap
from tfscorecam.metrics import rank_correlation


def cpu_flags() -> str:
    """The CPU's bfloat16-related flags, from /proc/cpuinfo where there is one."""
    info = Path("/proc/cpuinfo")
    flags = set(info.read_text().split()) if info.exists() else set()
    found = [f for f in ("avx512_bf16", "amx_bf16", "avx512f", "amx_tile") if f in flags]
    return ", ".join(found) or "none of avx512_bf16, amx_bf16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=8, help="photos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--policy", default="mixed_bfloat16")
    args = parser.parse_args()

    x = dev_inputs(args.images, args.n)
    full = mobilenet_v2(args.weights)
    keras.mixed_precision.set_global_policy(args.policy)
    try:
        reduced = mobilenet_v2(args.weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if args.weights == "random":
        reduced.set_weights(full.get_weights())
    classes = np.argmax(full.predict(x, verbose=0), axis=1)
    cams = {
        name: tsc.ScoreCAM(model, max_channels=args.max_channels, verbose=0)
        for name, model in (("float32", full), (args.policy, reduced))
    }
    maps = {name: cam(x, class_index=classes) for name, cam in cams.items()}  # traces too
    rounds = [
        {name: best_of(lambda c=cam: c(x, class_index=classes), 1) for name, cam in cams.items()}
        for _ in range(args.rounds)
    ]
    times = {name: float(np.median([r[name] for r in rounds])) / len(x) for name in cams}
    spearman = rank_correlation(maps["float32"], maps[args.policy])
    worst = np.abs(maps["float32"] - maps[args.policy]).max(axis=(1, 2))
    print(f"CPU flags: {cpu_flags()}")
    print(f"MobileNetV2, {len(x)} photos, {args.max_channels} channels, {args.rounds} rounds")
    for name, seconds in times.items():
        print(f"  {name}: {seconds:.3f} s/photo")
    print(f"  {args.policy} / float32 time: {times[args.policy] / times['float32']:.3f}")
    for label, values in (("Spearman", spearman), ("largest |difference|", worst)):
        mean, low, high = bootstrap(values[np.isfinite(values)])
        print(f"  {label} of the maps, per photo: {mean:.3f} [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
