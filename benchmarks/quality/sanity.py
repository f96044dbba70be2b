"""Cascading randomisation (Adebayo et al., NeurIPS 2018) of every method on real photos.

    python -m benchmarks.quality.sanity \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 20

MobileNetV2, the first --n dev photos, each explained for the trained model's top-1 class;
then MobileNetV2's layers are re-initialised from the output down (``metrics.randomisation_check``)
and, after each layer of ``STOPS``, every method's maps are compared with its trained maps:
mean Spearman rank correlation and SSIM over the photos, with 95% bootstrap intervals for the
rank correlation. A method whose maps keep a rank correlation above 0.5 once the top layers
are random shows the image or the architecture more than the model. The perturbation methods
score --max-channels channels (IS-CAM a quarter of them, SS-CAM an eighth) for time. Writes
``sanity.md`` and ``sanity.png`` (the cascade of one photo for Score-CAM and Grad-CAM) to
``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import DEFAULT_IMAGES, DEFAULT_WEIGHTS, dev_inputs, mobilenet_v2  # noqa: E402
from benchmarks.report import RESULTS, cell, command  # noqa: E402
from tfscorecam import metrics  # noqa: E402
from tfscorecam.methods import METHODS, make_explainer  # noqa: E402

STOPS = ("predictions", "Conv_1", "block_16_project", "block_13_expand", "block_6_expand", "Conv1")
PERTURBATION = {"scorecam", "augmented", "ablationcam"}
SAMPLED = {"iscam", "sscam"}


def factory(name: str, channels: int):
    """model -> the method's explainer (perturbation methods on ``channels`` channels)."""
    options: dict = {"verbose": 0}
    if name in PERTURBATION:
        options["max_channels"] = channels
    elif name in SAMPLED:  # 10 and 35 passes per channel
        options["max_channels"] = max(1, channels // (4 if name == "iscam" else 8))
    return lambda model: make_explainer(model, name, **options)


def figure(photo: np.ndarray, cascades: dict, path: Path) -> None:
    """One photo's maps along the cascade, a row per method, then the mean rank correlation."""
    rows = len(cascades)
    columns = 1 + len(STOPS) + 1
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows))
    for row, (label, (trained, steps, check)) in enumerate(cascades.items()):
        axes[row, 0].imshow(photo)
        axes[row, 0].imshow(trained, cmap="jet", alpha=0.5)
        axes[row, 0].set_title(f"{label}: trained", fontsize=8)
        for column, (stop, maps) in enumerate(zip(STOPS, steps, strict=True), start=1):
            axes[row, column].imshow(photo)
            axes[row, column].imshow(maps, cmap="jet", alpha=0.5)
            axes[row, column].set_title(f"down to {stop}", fontsize=8)
        for ax in axes[row, :-1]:
            ax.axis("off")
        means = [m for _, m, _ in check.means()]
        axes[row, -1].plot(range(len(STOPS)), means, "o-")
        axes[row, -1].set_ylim(-0.2, 1.05)
        axes[row, -1].set_xticks(range(len(STOPS)), STOPS, rotation=70, fontsize=6)
        axes[row, -1].set_title("rank correlation", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=70)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--max-channels", type=int, default=32)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    x = dev_inputs(args.images, args.n)
    classes = np.argmax(model.predict(x, verbose=0), axis=1)
    lines = [
        f"MobileNetV2, {len(x)} dev photos, top-1 class; layers re-initialised from the output "
        f"down; perturbation methods on {args.max_channels} channels (IS-CAM: a quarter, "
        "SS-CAM: an eighth); mean Spearman rank correlation [95% bootstrap interval] and mean "
        "SSIM of each map with its trained map, after randomising every layer down to the "
        "column's.",
        "",
        command(),
        "",
        "| method | " + " | ".join(STOPS) + " |",
        "|---|" + "---|" * len(STOPS),
    ]
    cascades = {}
    for name in args.methods.split(","):
        make = factory(name, args.max_channels)
        drawn = name in ("scorecam", "gradcam")
        check = metrics.randomisation_check(make, model, x, classes, STOPS, keep=int(drawn))
        pairs = zip(check.spearman, check.ssim, strict=True)
        cells = [f"{cell(r)}, SSIM {s.mean():.2f}" for r, s in pairs]
        title = METHODS[name].title
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
        if drawn:
            cascades[title] = (check.original[0], list(check.maps[:, 0]), check)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sanity.md").write_text("\n".join(lines) + "\n")
    if cascades:
        photo = np.clip((x[0] + 1) * 127.5, 0, 255).astype(np.uint8)
        figure(photo, cascades, out / "sanity.png")


if __name__ == "__main__":
    main()
