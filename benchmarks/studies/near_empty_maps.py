"""How much of a raw map is positive, on real photos and on the regression repro of issue 38:
the evidence for ``advice.MIN_POSITIVE_SHARE``, the share below which ``explain()`` warns that
a map is near-empty.

    python -m benchmarks.studies.near_empty_maps --photos 250

For each method, the top-1 class of MobileNetV2 on each dev photo: the share of the raw
(unscaled) map's pixels above zero; its percentiles over the photos, and how many photos fall
below the threshold. Then the repro: MobileNetV2's base + global average pooling + Dense(1),
under several seeds, explained with ``targets.regression(0)`` by Score-CAM at 32, 64 and 128
channels and by Grad-CAM.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import keras
import numpy as np

import tfscorecam as tsc
from benchmarks.common import (
    DEFAULT_IMAGES,
    DEFAULT_WEIGHTS,
    load_photo,
    mobilenet_v2,
    photo_paths,
)
from tfscorecam.interfaces.advice import MIN_POSITIVE_SHARE, positive_share

METHODS = {  # name: options (Score-CAM's family at the repro's 64 and at 128 channels)
    "scorecam": {"max_channels": 64},
    "scorecam-128": {"max_channels": 128},
    "gradcam": {},
    "gradcam++": {},
    "layercam": {},
    "hirescam": {},
    "xgradcam": {},
    "eigencam": {},
    "ablationcam": {"max_channels": 128},
}


def photo_shares(
    model: keras.Model, photos: np.ndarray, names: list[str]
) -> Iterator[tuple[str, np.ndarray]]:
    """Each method's name and positive shares per photo (top-1 class), one method at a time."""
    x = keras.applications.mobilenet_v2.preprocess_input(photos.astype("float32"))
    classes = {name: tsc.methods.method_class(name.split("-")[0]) for name in names}
    for name in names:
        options = METHODS[name]
        cam = classes[name](model, verbose=0, **options)
        raw = np.concatenate([cam(x[i : i + 16], normalize=False) for i in range(0, len(x), 16)])
        yield name, np.array([positive_share(r) for r in raw])


def repro_shares(model: keras.Model, photo: np.ndarray, seeds: int) -> list[tuple]:
    """The regression repro: for each seed a Dense(1) head on MobileNetV2's pooled features;
    its output on the photo and the positive share of Score-CAM's raw map at 32, 64 and 128
    channels and of Grad-CAM's (``targets.regression(0)``, not negated)."""
    base = keras.Model(model.inputs, model.get_layer("out_relu").output)
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.applications.mobilenet_v2.preprocess_input(photo[None].astype("float32"))
    target = tsc.targets.regression(0)
    rows = []
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        head = keras.Model(base.inputs, keras.layers.Dense(1)(pooled))
        shares = [
            positive_share(
                tsc.ScoreCAM(head, verbose=0, max_channels=n)(x, target=target, normalize=False)
            )
            for n in (32, 64, 128)
        ]
        grad = tsc.GradCAM(head, verbose=0)(x, target=target, normalize=False)
        rows.append((seed, float(head(x)[0, 0]), *shares, positive_share(grad)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--photos", type=int, default=250)
    parser.add_argument("--seeds", type=int, default=12, help="regression heads of the repro")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    args = parser.parse_args()
    model = mobilenet_v2(args.weights)
    photos = np.stack([load_photo(p) for p in photo_paths(args.images, args.photos)])
    print(f"positive share of the raw map, top-1 class, {len(photos)} photos, MobileNetV2")
    print(f"| method | min | 1% | 5% | median | photos below {MIN_POSITIVE_SHARE:.0%} |")
    print("|---|---|---|---|---|---|")
    for name, shares in photo_shares(model, photos, args.methods.split(",")):
        low, p1, p5, median = np.percentile(shares, [0, 1, 5, 50])
        below = int(np.sum(shares < MIN_POSITIVE_SHARE))
        print(f"| {name} | {low:.3f} | {p1:.3f} | {p5:.3f} | {median:.3f} | {below} |", flush=True)
    print(f"regression repro: Dense(1) on MobileNetV2's pooled features, first photo, "
          f"{args.seeds} seeds; positive share of the raw map")  # fmt: skip
    print("| seed | output | Score-CAM 32 | Score-CAM 64 | Score-CAM 128 | Grad-CAM |")
    print("|---|---|---|---|---|---|")
    for seed, value, *shares in repro_shares(model, photos[0], args.seeds):
        print(f"| {seed} | {value:.3f} | " + " | ".join(f"{s:.4f}" for s in shares) + " |")


if __name__ == "__main__":
    main()
