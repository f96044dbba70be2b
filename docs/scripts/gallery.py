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
import matplotlib.figure

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
        target = OUT / f"{Path(photo).stem}.png"
        grid(explanations).savefig(target, dpi=90)
        print(f"{photo}: {explanations[0].label} -> {target}")


def grid(explanations: list) -> matplotlib.figure.Figure:
    """The photo and each method's overlay, rows of four, titled with the class: labels stay
    readable when the page shows the picture at its width (about 750 px)."""
    import matplotlib.pyplot as plt

    panels = [("photo", explanations[0].image)]
    panels += [(METHODS[e.method].title, e.overlay()) for e in explanations]
    rows = -(-len(panels) // 4)
    figure, axes = plt.subplots(rows, 4, figsize=(9, 2.45 * rows + 0.05))
    for axis in axes.flat:
        axis.axis("off")
    for axis, (title, picture) in zip(axes.flat, panels, strict=False):
        axis.imshow(picture)
        axis.set_title(title, fontsize=15)
    figure.suptitle(f"MobileNetV2, {explanations[0].label}", fontsize=16)
    figure.tight_layout()
    return figure


if __name__ == "__main__":
    main()
