"""Score-CAM speed and memory on MobileNetV2 with real photos, against the bare forward passes.

    python -m benchmarks.speed.bench_scorecam \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 2

Prints, from one run: our seconds per image; the floor (the same number of masked forward
passes, one per non-flat channel, run bare through the model at the best batch size) and the
ratio; a 5-class vs 1-class call; one photo with a progress bar shown (the same compiled
while loop, advancing the bar after each chunk) against a silent call; tf-keras-vis
Scorecam when installed; and peak resident memory of a process running our Score-CAM vs one
running a single bare forward pass of the same chunk
size (each measured in a fresh subprocess).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time

import numpy as np

import tfscorecam as tsc
from benchmarks.common import (
    DEFAULT_IMAGES,
    DEFAULT_WEIGHTS,
    dev_inputs,
    device_line,
    mobilenet_v2,
)
from benchmarks.report import bar_shown, best_of, rss_mib
from tfscorecam.core import backend


def bare_forward(model):
    """The model's forward pass compiled by the backend, as our steps are (``backend.compile``)."""
    return backend.compile(lambda x: model(x, training=False))


def random_batch(n: int):
    """n random inputs in MobileNetV2's range, as a backend tensor."""
    return backend.tensor(np.random.default_rng(0).uniform(-1, 1, (n, 224, 224, 3)))


def forward_rate(model, batch_size: int, seconds: float) -> float:
    """Bare forward passes per second at this batch size (compiled, warmed up)."""
    forward, x = bare_forward(model), random_batch(batch_size)
    backend.numpy(forward(x))
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backend.numpy(forward(x))
        runs += 1
    return runs * batch_size / (time.perf_counter() - start)


def floor_run(model, cam, x, batch_size: int):
    """A function running the passes ``cam`` runs for ``x`` (one per scored channel), bare,
    ``batch_size`` at a time; and the passes per image."""
    acts, _ = cam.forward(x)
    passes = [len(backend.numpy(cam.scorer.selected(a))) for a in acts]
    bare = bare_forward(model)
    chunks = {n: random_batch(n) for n in {batch_size, *(p % batch_size for p in passes)} if n}

    def run() -> None:
        for p in passes:
            for start in range(0, p, batch_size):
                backend.numpy(bare(chunks[min(batch_size, p - start)]))

    return run, passes


def rss_child(args) -> None:
    """Run in a fresh process: one bare forward chunk, or one Score-CAM; print peak RSS."""
    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, 1)
    if args.child == "bare":
        masked = np.repeat(x, args.rss_batch_size, axis=0)
        backend.numpy(bare_forward(model)(backend.tensor(masked)))
    elif args.child == "ours":
        tsc.ScoreCAM(
            model,
            args.layer,
            batch_size=args.rss_batch_size,
            max_channels=args.max_channels,
            verbose=0,
        )(x)
    else:
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore

        top1 = int(np.argmax(model(x)[0]))
        Scorecam(model)(CategoricalScore([top1]), x, penultimate_layer=args.layer, max_N=-1)
    print(json.dumps({"peak_rss_mib": rss_mib()}))


def child_rss(args, kind: str) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            __spec__.name,
            "--child",
            kind,
            "--weights",
            args.weights,
            "--images",
            args.images,
            "--layer",
            args.layer,
            "--rss-batch-size",
            str(args.rss_batch_size),
            *(["--max-channels", str(args.max_channels)] if args.max_channels else []),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]


def tf_keras_vis_seconds(model, x: np.ndarray, layer: str) -> float | None:
    try:
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    top1 = int(np.argmax(model(x)[0]))
    scorecam = Scorecam(model)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bar
        scorecam(CategoricalScore([top1]), x, penultimate_layer=layer, max_N=-1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=2, help="photos to explain")
    parser.add_argument("--layer", default="out_relu")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="our chunk size (default: the best bare batch size, as the floor uses)",
    )
    parser.add_argument(
        "--max-channels", type=int, default=None, help="Faster Score-CAM (default: exact)"
    )
    parser.add_argument("--rss-batch-size", type=int, default=64, help="chunk for the RSS runs")
    parser.add_argument("--batch-sizes", default="32,64,128", help="tried for the floor")
    parser.add_argument("--rate-seconds", type=float, default=6.0, help="per batch size tried")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--no-peer", action="store_true", help="skip tf-keras-vis")
    parser.add_argument("--child", choices=["bare", "ours", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return rss_child(args)

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    print(f"{device_line()}; MobileNetV2, layer {args.layer}, {len(x)} photos from {args.images}")

    sizes = map(int, args.batch_sizes.split(","))
    rates = {bs: forward_rate(model, bs, args.rate_seconds) for bs in sizes}
    best_bs = max(rates, key=rates.get)
    print("bare forward passes/s by batch size:", {k: round(v, 1) for k, v in rates.items()})

    batch_size = args.batch_size or best_bs
    cam = tsc.ScoreCAM(
        model, args.layer, batch_size=batch_size, max_channels=args.max_channels, verbose=0
    )
    bare_passes, passes = floor_run(model, cam, x, best_bs)  # the same passes, bare
    cam(x), bare_passes()  # trace both
    rounds = [(best_of(lambda: cam(x), 1), best_of(bare_passes, 1)) for _ in range(args.rounds)]
    ratios = sorted(o / f for o, f in rounds)
    ours = float(np.median([o for o, _ in rounds])) / len(x)
    floor = float(np.median([f for _, f in rounds])) / len(x)
    print(f"non-flat channels scored: {np.mean(passes):.0f} per image")
    print(f"ours: {ours:.2f} s/image ({1 / ours:.3f} images/s), batch_size {batch_size}")
    print(f"floor: {floor:.2f} s/image (the same passes bare at batch size {best_bs})")
    print(
        f"ratio ours/floor, median of {args.rounds} interleaved rounds: "
        f"{ratios[len(ratios) // 2]:.3f} (all: {', '.join(f'{r:.3f}' for r in ratios)})"
    )

    if batch_size != 64:
        default = tsc.ScoreCAM(model, args.layer, max_channels=args.max_channels, verbose=0)
        default(x[:1])  # trace
        seconds = best_of(lambda: default(x), repeat=1) / len(x)
        print(f"ours at the default batch_size 64: {seconds:.2f} s/image")

    top5 = np.argsort(-np.asarray(model(x)), axis=1)[:, :5]
    five = best_of(lambda: cam(x, class_index=top5), repeat=1) / len(x)
    print(f"5-class call: {five:.2f} s/image; ratio 5-class/1-class: {five / ours:.3f}")

    # a shown bar: the same compiled loop, advancing the bar after each chunk
    shown = tsc.ScoreCAM(
        model, args.layer, batch_size=batch_size, max_channels=args.max_channels, verbose=1
    )
    with bar_shown():
        shown(x[:1])  # trace
        pairs = [
            (best_of(lambda: shown(x[:1]), 1), best_of(lambda: cam(x[:1]), 1))
            for _ in range(args.rounds)
        ]
    bar, silent = (float(np.median(column)) for column in zip(*pairs, strict=True))
    print(
        f"one photo: with a progress bar shown {bar:.2f} s, silent {silent:.2f} s; "
        f"ratio {bar / silent:.3f}"
    )

    if not args.no_peer:
        try:
            peer = tf_keras_vis_seconds(model, x[:1], args.layer)
        except Exception as error:  # a peer failing is a finding to report, not a crash
            print(f"tf-keras-vis Scorecam failed: {type(error).__name__}: {error}"[:300])
        else:
            if peer is None:
                print("tf-keras-vis not installed (pip install tf-keras-vis) - peer skipped")
            else:
                print(
                    f"tf-keras-vis Scorecam: {peer:.2f} s/image; ratio peer/ours: {peer / ours:.2f}"
                )

    bare_rss, ours_rss = child_rss(args, "bare"), child_rss(args, "ours")
    print(
        f"peak RSS: bare forward of {args.rss_batch_size} = {bare_rss:.0f} MiB; "
        f"our Score-CAM = {ours_rss:.0f} MiB; ratio {ours_rss / bare_rss:.3f}"
    )
    if not args.no_peer:
        try:
            print(f"peak RSS tf-keras-vis Scorecam: {child_rss(args, 'peer'):.0f} MiB")
        except subprocess.CalledProcessError as error:
            print(f"tf-keras-vis RSS run failed: {error.stderr.strip()[-200:]}")


if __name__ == "__main__":
    main()
