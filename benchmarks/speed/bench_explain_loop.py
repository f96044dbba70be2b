"""explain() in a loop against a reused explainer: time per call and memory growth.

    python -m benchmarks.speed.bench_explain_loop --calls 200

A small model (MobileNetV2, alpha 0.35, 96x96, random weights: the per-call overhead is what is
measured, so the weights do not matter) and synthetic photos (uint8, 120x160, resized by
explain()). Per call: ``tsc.explain(model, photo)`` (a cached explainer, the photo resized and
preprocessed, the heatmap resized back) against ``cam(x)`` on the same photo already resized
and preprocessed, with the explainer built once. Both are warmed up first; the rounds
alternate. Memory: the growth of resident memory (VmRSS) over ``--calls`` explain() calls
after the warm-up.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfscorecam as tsc  # noqa: E402
from benchmarks.report import rss_mib


def per_call(fn, photos) -> float:
    start = time.perf_counter()
    for photo in photos:
        fn(photo)
    return (time.perf_counter() - start) / len(photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--method", default="scorecam")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (120, 160, 3)).astype(np.uint8) for _ in range(20)]
    inputs = [
        preprocess(tsc.images.resize(p.astype(np.float32), (96, 96))[None])[0] for p in photos
    ]
    options = {"verbose": 0, "max_channels": 64} if args.method != "gradcam" else {"verbose": 0}
    cam = tsc.methods.make_explainer(model, args.method, **options)

    def front_door(photo):
        return tsc.explain(model, photo, args.method, preprocess=preprocess, **options)

    front_door(photos[0])
    cam(inputs[0])
    ratios = []
    for _ in range(args.rounds):
        ours = per_call(front_door, photos)
        reused = per_call(cam, inputs)
        ratios.append(ours / reused)
        print(
            f"explain() {ours * 1e3:.1f} ms/call, reused {args.method} {reused * 1e3:.1f} ms/call, "
            f"ratio {ours / reused:.3f}",
            flush=True,
        )
    print(f"median ratio explain()/reused: {np.median(ratios):.3f}")

    before = rss_mib("VmRSS")
    for i in range(args.calls):
        front_door(photos[i % len(photos)])
    after = rss_mib("VmRSS")
    print(
        f"RSS over {args.calls} explain() calls: {before:.1f} -> {after:.1f} MiB "
        f"(growth {after - before:+.1f} MiB)"
    )


if __name__ == "__main__":
    main()
