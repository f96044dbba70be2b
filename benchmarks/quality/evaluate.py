"""Faithfulness of the explainers on real photos with a real ImageNet model.

    python -m benchmarks.quality.evaluate \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 \
        --images ../shared/data/imagenet-dev --n 40 --steps 25 --max-channels 128

Every map explains the photo's true class (from its file name ``<wnid>_<label>.JPEG`` and the
class index json). Per method, mean and 95% bootstrap interval over the photos of: Average Drop
and Increase in Confidence (Grad-CAM++ definitions, whole map), deletion and insertion AUC (RISE
protocol, --steps steps), the grid pointing game (2x2 mosaics of four photos, share of the map's
energy in the explained tile; its n is the number of mosaics) and seconds per image; then paired
differences on the same photos (Augmented Score-CAM minus Score-CAM, ...). Methods are the keys
of ``common.explainers``; ``KEY:K`` keeps every K-th photo for an expensive method. Maps are
cached in --cache; ``--parquet KEY=FOLDER`` reads a method's photo maps from an
``explain_dataset`` output instead (its grid column is then left empty, as for strided rows). Writes
``evaluation.md`` and ``evaluation.png`` (bars with their intervals) to --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    DEFAULT_IMAGES,
    DEFAULT_WEIGHTS,
    cached_maps,
    explainers,
    load_photo,
    method_maps,
    mobilenet_v2,
    photo_paths,
    preprocess_mobilenet,
)
from benchmarks.report import RESULTS, bootstrap, cell, command, paired
from tfscorecam import metrics  # noqa: E402

COLUMNS = {  # key -> heading
    "AD": "AD % (lower)",
    "IC": "IC % (higher)",
    "deletion": "deletion AUC (lower)",
    "insertion": "insertion AUC (higher)",
    "grid": "grid PG (higher)",
}
PAIRS = (  # (method, reference): paired differences reported
    ("asc-shared", "scorecam"),
    ("asc-shared", "gradcam"),
    ("scorecam", "gradcam"),
    ("asc-shared-faster", "faster"),
    ("asc-per-copy", "faster"),
    ("iscam", "faster"),
    ("sscam", "faster"),
    ("layercam", "gradcam"),
    ("hirescam", "gradcam"),
    ("xgradcam", "gradcam"),
    ("eigencam", "gradcam"),
    ("ablationcam", "gradcam"),
)


def true_classes(paths: list[Path], class_index_file: str) -> np.ndarray:
    index = json.loads(Path(class_index_file).read_text())
    by_wnid = {wnid: int(i) for i, (wnid, _) in index.items()}
    return np.array([by_wnid[p.name.split("_")[0]] for p in paths])


def per_image(model, x, classes, maps, steps: int) -> dict:
    """Per-photo values of the faithfulness columns (AD and IC as the per-image terms whose
    means are Average Drop and Increase in Confidence)."""
    y, o = metrics.confidences(model, x, maps, classes)
    return {
        "AD": metrics.drops(y, o),
        "IC": metrics.increases(y, o),
        "deletion": metrics.deletion_auc(model, x, maps, classes, steps=steps).aucs,
        "insertion": metrics.insertion_auc(model, x, maps, classes, steps=steps).aucs,
    }


def difference(a: dict, b: dict, column: str) -> np.ndarray | None:
    """Differences a - b on the photos (or, for the grid game, the mosaics) both have."""
    if a["values"].get(column) is None or b["values"].get(column) is None:
        return None
    if column == "grid":
        return a["values"]["grid"] - b["values"]["grid"]
    return paired(a["rows"], a["values"][column], b["rows"], b["values"][column])


def chart(results: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, len(COLUMNS), figsize=(4 * len(COLUMNS), 5))
    names = [r["label"] for r in results.values()]
    for j, (axis, (column, heading)) in enumerate(zip(axes, COLUMNS.items(), strict=True)):
        stats = [
            bootstrap(r["values"][column]) if r["values"].get(column) is not None else (np.nan,) * 3
            for r in results.values()
        ]
        means = np.array([s[0] for s in stats])
        errors = np.abs(np.array([[s[1] for s in stats], [s[2] for s in stats]]) - means)
        axis.barh(names, means, xerr=errors, color="tab:blue", capsize=3)
        axis.set_title(heading)
        axis.invert_yaxis()
        if j:
            axis.set_yticklabels([])
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--images", default=DEFAULT_IMAGES)
    parser.add_argument("--class-index", default="../shared/data/imagenet_class_index.json")
    parser.add_argument("--n", type=int, default=40, help="photos")
    parser.add_argument("--mosaics", type=int, default=8, help="2x2 mosaics for the grid game")
    parser.add_argument("--steps", type=int, default=50, help="deletion / insertion steps")
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument(
        "--methods",
        default="gradcam,gradcam++,scorecam,asc-shared,faster,asc-shared-faster,layercam,"
        "hirescam,xgradcam,eigencam,ablationcam,iscam:2,sscam:4",
        help="keys of common.explainers, each optionally KEY:STRIDE",
    )
    parser.add_argument("--parquet", action="append", default=[], help="KEY=FOLDER")
    parser.add_argument("--cache", default=str(RESULTS / "evaluation_cache"))
    parser.add_argument("--recompute", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    paths = photo_paths(args.images, max(args.n, 4 * args.mosaics))
    photos = np.stack([load_photo(p) for p in paths])
    labels = true_classes(paths, args.class_index)
    x, classes = preprocess_mobilenet(photos[: args.n]), labels[: args.n]
    correct = int((np.argmax(model.predict(x, verbose=0), axis=1) == classes).sum())
    print(f"MobileNetV2 top-1 correct on {correct} of {len(x)} photos", flush=True)

    groups = np.arange(4 * args.mosaics).reshape(args.mosaics, 4)
    tiles = np.arange(args.mosaics) % 4
    mosaics = preprocess_mobilenet(np.stack([metrics.mosaic(photos[g], 2) for g in groups]))
    mosaic_classes = labels[groups[np.arange(args.mosaics), tiles]]

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    parquet = dict(item.split("=", 1) for item in args.parquet)
    registry = explainers(args.max_channels)
    results = {}
    for item in args.methods.split(","):
        row = method_maps(item, registry, model, x, classes, paths, parquet, cache, args)
        key, label, rows, maps, seconds = row.key, row.label, row.rows, row.maps, row.seconds
        grid = None
        if key not in parquet and row.stride == 1:  # strided (expensive) rows skip the mosaics
            grid_maps, _ = cached_maps(
                f"grid-{key}_m{args.mosaics}_c{args.max_channels}",
                row.factory,
                model,
                mosaics,
                mosaic_classes,
                cache,
                args.recompute,
            )
            grid = metrics.grid_pointing_game(grid_maps, 2, tiles)
        values = per_image(model, x[rows], classes[rows], maps, args.steps)
        values["grid"] = grid
        results[key] = {"label": label, "rows": rows, "values": values, "seconds": seconds}
        print(
            f"{label}: n={len(rows)} "
            + " ".join(f"{c} {cell(values[c])}" for c in COLUMNS)
            + f" {seconds:.2f} s/image",
            flush=True,
        )

    lines = [
        f"MobileNetV2 ({Path(args.weights).name}), {len(x)} photos from {args.images}, "
        f"top-1 correct on {correct}; every map explains the true class; "
        f"{args.mosaics} 2x2 mosaics for the grid pointing game; mean [95% bootstrap interval].",
        "",
        command(),
        "",
        "| method | n | " + " | ".join(COLUMNS.values()) + " | s / image |",
        "|---|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for r in results.values():
        lines.append(
            f"| {r['label']} | {len(r['rows'])} | "
            + " | ".join(cell(r["values"][c]) for c in COLUMNS)
            + f" | {r['seconds']:.2f} |"
        )
    lines += [
        "",
        "Paired differences (method minus reference, the same photos or mosaics):",
        "",
        "| method | reference | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for key, ref in PAIRS:
        if key in results and ref in results:
            a, b = results[key], results[ref]
            lines.append(
                f"| {a['label']} | {b['label']} | "
                + " | ".join(cell(difference(a, b, c)) for c in COLUMNS)
                + " |"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.md").write_text("\n".join(lines) + "\n")
    chart(results, out / "evaluation.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
