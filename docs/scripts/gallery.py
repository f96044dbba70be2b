"""Make the gallery: every method on the same real photos, side by side.

    python docs/scripts/gallery.py --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --photos ../shared/data/photos

Writes ``docs/gallery/<photo>.png`` (the photo, then each method's overlay for MobileNetV2's
top-1 class at ``out_relu``) for the photos named in ``PHOTOS`` (CC BY 2.0, see the COPYRIGHT
file beside them). The perturbation methods score the 128 channels of largest spatial
variation (``max_channels=128``), as the evaluation tables do, so the page takes minutes to
remake on a CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import tfscorecam as tsc  # noqa: E402
from tfscorecam.methods import METHODS  # noqa: E402

PHOTOS = ("owl.jpg", "parrot.jpg", "hot_dog.jpg", "kite_and_cold.jpg")
OUT = Path(__file__).resolve().parents[1] / "gallery"
PERTURBATION = ("scorecam", "augmented", "iscam", "sscam", "ablationcam")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--photos", required=True)
    args = parser.parse_args()
    model = tsc.zoo.keras_application("MobileNetV2", weights=args.weights)
    for photo in PHOTOS:
        explanations = [
            tsc.explain(
                model,
                Path(args.photos) / photo,
                method,
                verbose=0,
                **({"max_channels": 128} if method in PERTURBATION else {}),
            )
            for method in METHODS
        ]
        figure = tsc.plot_comparison(explanations)
        target = OUT / f"{Path(photo).stem}.png"
        figure.savefig(target, dpi=60)
        print(f"{photo}: {explanations[0].label} -> {target}")


if __name__ == "__main__":
    main()
