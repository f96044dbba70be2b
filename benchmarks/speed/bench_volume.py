"""Score-CAM on a volume model against the bare forward passes its masked volumes need.

    python -m benchmarks.speed.bench_volume                    # CT-like (32, 96, 96, 1)
    python -m benchmarks.speed.bench_volume --kind video --rounds 3

The models are built here with random weights: ``ct``, three strided Conv3D blocks (16, 32, 64
channels) on a (32, 96, 96, 1) volume, explained at the last (4 x 12 x 12 x 64), 0.2 GFLOP a
volume; ``ct-deep``, the same stages with 32, 64, 128 channels and two convolutions each (4.3
GFLOP a volume, 128 channels to score, closer to a 3-D ResNet); ``video``,
a per-frame Conv2D stem and two Conv3D blocks (32, 64 channels) on (16, 112, 112, 3) clips,
explained at the last (4 x 14 x 14 x 64). Prints the seconds of one explanation, the bare
forward passes of as many volumes in batches of the explainer's size, and their ratio (the
target: at most 1.1), with Grad-CAM's time for scale.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

import tfscorecam as tsc
from benchmarks.common import best_seconds, device_line
from tfscorecam.core import backend


def ct_model(filters: tuple[int, ...] = (16, 32, 64), convs: int = 1) -> keras.Model:
    """Strided Conv3D stages of ``filters`` on a (32, 96, 96, 1) volume, ``convs`` per stage."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 96, 96, 1))
    x = inputs
    for n, width in enumerate(filters):
        for k in range(convs):
            x = keras.layers.Conv3D(
                width, 3, strides=1 if k else 2, padding="same", name=f"block{n + 1}_{k + 1}"
            )(x)
            x = keras.layers.ReLU(name=f"relu{n + 1}_{k + 1}")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="ct")


def video_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 112, 112, 3))
    stem = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")
    x = keras.layers.TimeDistributed(stem, name="stem")(inputs)
    for n, filters in enumerate((32, 64)):
        x = keras.layers.Conv3D(filters, 3, strides=2, padding="same", name=f"block{n + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{n + 1}")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x), name="video")


MODELS = {
    "ct": ct_model,
    "ct-deep": lambda: ct_model((32, 64, 128), convs=2),
    "video": video_model,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=list(MODELS), default="ct")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    model = MODELS[args.kind]()
    shape = tuple(model.inputs[0].shape[1:])
    volume = np.random.default_rng(1).random(shape).astype(np.float32)
    cam = tsc.ScoreCAM(model, batch_size=args.batch_size, verbose=0)
    acts, _ = cam.forward(volume[None])
    passes = len(backend.numpy(cam.scorer.selected(acts[0])))
    bare = backend.compile(lambda x: model(x, training=False))
    chunks = {n: backend.tensor(np.repeat(volume[None], n, 0)) for n in
              {args.batch_size, passes % args.batch_size} if n}  # fmt: skip

    def floor() -> None:
        for start in range(0, passes, args.batch_size):
            backend.numpy(bare(chunks[min(args.batch_size, passes - start)]))

    floor_s = best_seconds(floor, args.rounds)
    took = best_seconds(lambda: cam(volume), args.rounds)
    grad = tsc.GradCAM(model, verbose=0)
    grad_s = best_seconds(lambda: grad(volume), args.rounds)
    print(device_line())
    print(f"{args.kind} {shape}, layer {cam.layer_path} {tuple(acts.shape[1:])}, "
          f"{passes} scored channels, batch {args.batch_size}")  # fmt: skip
    print(f"Score-CAM {took:.2f} s/volume; bare forward of {passes} volumes {floor_s:.2f} s; "
          f"ratio {took / floor_s:.3f}; Grad-CAM {grad_s:.3f} s/volume")  # fmt: skip


if __name__ == "__main__":
    main()
