"""explain_dataset (Ray Data) against an in-process loop: images/s and the engine's overhead.

    python -m benchmarks.speed.bench_dataset \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 40 --max-channels 128

MobileNetV2 saved as a .keras file, Score-CAM with --max-channels (for time) on --n photos.
The in-process loop does what an actor does, one photo at a time: read, RGB, resize,
preprocess, explain (the model loaded and the explainer built inside the timing, as the
actors do). explain_dataset runs with 1 and 2 actors on a local Ray cluster, each into a fresh
output folder. Reported: end-to-end images/s, and the steady rate after the first batch
(start-up: Ray, the actors' models and tracing). On a GPU machine, --actors 1 with
gpus_per_actor=1 gives images/s per GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_IMAGES, DEFAULT_WEIGHTS, mobilenet_v2, photo_paths
from tfscorecam import dataset


def in_process(model_path: str, paths: list[Path], max_channels: int) -> tuple[float, float]:
    """(total seconds, seconds after the first photo) of the loop an actor runs."""
    start = time.perf_counter()
    loaded = tsc.zoo.load(model_path, None, "mobilenet_v2")
    cam = tsc.ScoreCAM(loaded.model, max_channels=max_channels, verbose=0)
    first = None
    for path in paths:
        image = tsc.images.resize(tsc.images.display_image(path), (224, 224))
        x = loaded.preprocess(np.clip(np.round(image), 0, 255)[None].astype(np.float32))
        cam.explain_batch(x)
        first = first or time.perf_counter()
    end = time.perf_counter()
    return end - start, end - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--actors", default="1,2")
    args = parser.parse_args()

    paths = photo_paths(args.images, args.n)
    with tempfile.TemporaryDirectory() as folder:
        model_path = str(Path(folder) / "mobilenet_v2.keras")
        mobilenet_v2(args.weights).save(model_path)
        total, steady = in_process(model_path, paths, args.max_channels)
        base = len(paths) / total
        base_steady = (len(paths) - 1) / steady
        print(f"in-process loop: {base:.3f} images/s end to end, {base_steady:.3f} steady")
        for actors in (int(a) for a in args.actors.split(",")):
            summary = dataset.explain_dataset(
                model_path,
                [str(p) for p in paths],
                Path(folder) / f"out{actors}",
                preprocess="mobilenet_v2",
                actors=actors,
                batch_size=args.batch_size,
                max_channels=args.max_channels,
                verbose=0,
            )
            rate = summary["explained"] / summary["seconds"]
            steady_rate = summary["steady_images_per_second"]
            print(
                f"explain_dataset, {actors} actor(s): {rate:.3f} images/s end to end "
                f"({rate / base:.2f} of in-process), {steady_rate:.3f} steady "
                f"({steady_rate / base_steady:.2f}; overhead {1 - steady_rate / base_steady:+.1%}),"
                f" start-up {summary['first_batch_seconds']:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
