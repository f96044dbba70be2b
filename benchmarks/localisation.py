"""Localisation on real object boxes: the explainers on ImageNet validation photos.

    python benchmarks/localisation.py --boxes ../shared/data/imagenet-val-boxes \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 --max-channels 128

Every map explains the photo's true class (MobileNetV2, 224x224, the 227x227 photos resized
and their boxes scaled). Per method: the energy-based pointing game (share of the map's energy
inside the union of the class's boxes), box accuracy (the box of the largest region above 0.15
of the maximum has IoU >= 0.5 with a true box), deletion and insertion AUC (50 steps), seconds
per image, n, and 95% bootstrap intervals; then paired differences (the same photos) between
Augmented Score-CAM and Score-CAM. Maps are kept in --cache, so adding a method does not
recompute the others; ``--parquet KEY=FOLDER`` reads a method's maps from an
``explain_dataset`` output instead (large runs on a cluster). --stride K keeps every K-th photo
for expensive methods (``KEY:K`` in --methods). Writes localisation.md, localisation.json and
localisation.png (four photos at fixed, evenly spaced positions: boxes, Score-CAM, ASC).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_BOXES,
    DEFAULT_WEIGHTS,
    bootstrap,
    load_box_photos,
    mobilenet_v2,
    preprocess_mobilenet,
)

import tfscorecam as tsc  # noqa: E402
from tfscorecam import metrics  # noqa: E402

COLUMNS = ("EPG", "box acc", "deletion", "insertion")
PAIRS = (  # (method, reference): paired differences reported
    ("asc-shared", "scorecam"),
    ("asc-shared", "gradcam"),
    ("asc-shared-faster", "faster"),
    ("asc-per-copy", "faster"),
    ("asc-per-copy", "asc-shared-faster"),
    ("asc-authors", "faster"),
    ("iscam", "faster"),
    ("sscam", "faster"),
    ("layercam", "gradcam"),
)


def methods(n: int) -> dict:
    """key -> (label, factory(model))."""
    asc = tsc.AugmentedScoreCAM
    return {
        "gradcam": ("Grad-CAM", lambda m: tsc.GradCAM(m, verbose=0)),
        "gradcam++": ("Grad-CAM++", lambda m: tsc.GradCAMPlusPlus(m, verbose=0)),
        "scorecam": ("Score-CAM", lambda m: tsc.ScoreCAM(m, verbose=0)),
        "faster": (
            f"Faster Score-CAM (max_channels={n})",
            lambda m: tsc.ScoreCAM(m, max_channels=n, verbose=0),
        ),
        "asc-shared": (
            "Augmented Score-CAM, shared (default fusion, K=16)",
            lambda m: asc(m, weights="shared", verbose=0),
        ),
        "asc-per-copy": (
            f"Augmented Score-CAM, per_copy (default fusion, K=16, max_channels={n})",
            lambda m: asc(m, weights="per_copy", max_channels=n, verbose=0),
        ),
        "asc-shared-faster": (
            f"Augmented Score-CAM, shared (default fusion, K=16, max_channels={n})",
            lambda m: asc(m, weights="shared", max_channels=n, verbose=0),
        ),
        "asc-authors": (
            f"Augmented Score-CAM, authors' settings (shared, K=16, max_channels={n})",
            lambda m: asc.authors_settings(
                m, num_augmentations=16, weights="shared", max_channels=n, verbose=0
            ),
        ),
        "iscam": (
            f"IS-CAM (N=10, max_channels={n})",
            lambda m: tsc.ISCAM(m, max_channels=n, verbose=0),
        ),
        "sscam": (
            f"SS-CAM (N=35, max_channels={n})",
            lambda m: tsc.SSCAM(m, max_channels=n, verbose=0),
        ),
        "layercam": ("LayerCAM", lambda m: tsc.LayerCAM(m, verbose=0)),
    }


def parquet_maps(folder: str, paths: list[Path]) -> np.ndarray:
    """Maps of ``paths`` from an ``explain_dataset`` output folder, in the order of paths."""
    from tfscorecam import dataset

    table = dataset.read_results(folder)
    by_name = {Path(row["path"]).name: row for _, row in table.iterrows()}
    missing = [p.name for p in paths if p.name not in by_name]
    if missing:
        raise SystemExit(f"{folder} has no rows for {len(missing)} photos, e.g. {missing[:3]}")
    return np.stack([dataset.heatmap(by_name[p.name]) for p in paths])


def compute(key, factory, model, x, classes, cache: Path, recompute: bool) -> tuple:
    """(maps (n, H, W) float32, seconds per image), cached in ``cache``."""
    maps_file, info_file = cache / f"{key}.npy", cache / f"{key}.json"
    if maps_file.is_file() and info_file.is_file() and not recompute:
        info = json.loads(info_file.read_text())
        if info["n"] == len(x):
            return np.load(maps_file).astype(np.float32), info["seconds"]
    explainer = factory(model)
    explainer(x[:1], classes[:1])  # trace outside the timing
    start = time.perf_counter()
    maps = np.concatenate(
        [explainer(x[i : i + 8], classes[i : i + 8]) for i in range(0, len(x), 8)]
    )
    seconds = (time.perf_counter() - start) / len(x)
    np.save(maps_file, maps.astype(np.float16))
    info_file.write_text(json.dumps({"n": len(x), "seconds": seconds}))
    return maps, seconds


def scores(model, x, classes, maps, boxes, steps: int) -> dict:
    """Per-photo values of each column."""
    return {
        "EPG": metrics.energy_pointing_game(maps, boxes),
        "box acc": metrics.box_accuracy(maps, boxes).astype(np.float64),
        "deletion": metrics.deletion_auc(model, x, maps, classes, steps=steps).aucs,
        "insertion": metrics.insertion_auc(model, x, maps, classes, steps=steps).aucs,
    }


def cell(values: np.ndarray) -> str:
    mean, low, high = bootstrap(values)
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def figure(photos, boxes, results, path: Path) -> None:
    """Four photos at fixed, evenly spaced positions: boxes, Score-CAM and ASC maps."""
    shown = [k for k in ("scorecam", "asc-shared") if k in results]
    if not shown:
        return
    common = results[shown[0]]["rows"]
    for key in shown[1:]:
        common = np.intersect1d(common, results[key]["rows"])
    picks = common[np.linspace(0, len(common) - 1, 4).astype(int)]
    fig, axes = plt.subplots(len(picks), 1 + len(shown), figsize=(3 * (1 + len(shown)), 12))
    for row, i in zip(axes, picks, strict=True):
        panels = [("photo", None)] + [
            (results[k]["label"], results[k]["maps"][np.searchsorted(results[k]["rows"], i)])
            for k in shown
        ]
        for axis, (title, heat) in zip(row, panels, strict=True):
            axis.imshow(photos[i])
            if heat is not None:
                axis.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
                epg = metrics.energy_pointing_game(heat, [boxes[i]])[0]
                title = f"{title.split(' (')[0]}\nEPG {epg:.2f}"
            for x0, y0, x1, y1 in boxes[i]:
                axis.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="w"))
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=70)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument(
        "--methods",
        default="gradcam,gradcam++,scorecam,faster,asc-shared,asc-per-copy,asc-authors",
        help="keys, each optionally KEY:STRIDE",
    )
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--n", type=int, default=0, help="first n photos (0: all)")
    parser.add_argument("--parquet", action="append", default=[], help="KEY=FOLDER")
    parser.add_argument("--cache", default="benchmarks/results/localisation_cache")
    parser.add_argument("--recompute", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    model = mobilenet_v2(args.weights)
    paths, photos, labels, boxes = load_box_photos(args.boxes)
    if args.n:
        paths, photos, labels, boxes = (
            paths[: args.n],
            photos[: args.n],
            labels[: args.n],
            boxes[: args.n],
        )
    x = preprocess_mobilenet(photos)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    parquet = dict(item.split("=", 1) for item in args.parquet)
    registry = methods(args.max_channels)
    results = {}
    for item in args.methods.split(","):
        key, _, stride = item.strip().partition(":")
        stride = int(stride or 1)
        label, factory = registry[key]
        rows = np.arange(0, len(x), stride)
        start = time.perf_counter()
        if key in parquet:
            maps, seconds = parquet_maps(parquet[key], [paths[i] for i in rows]), float("nan")
        else:
            suffix = f"_n{len(x)}_s{stride}_c{args.max_channels}"
            maps, seconds = compute(
                key + suffix, factory, model, x[rows], labels[rows], cache, args.recompute
            )
        values = scores(model, x[rows], labels[rows], maps, [boxes[i] for i in rows], args.steps)
        results[key] = {
            "label": label,
            "rows": rows,
            "maps": maps,
            "values": values,
            "seconds": seconds,
        }
        print(
            f"{label}: n={len(rows)} "
            + " ".join(f"{c} {cell(values[c])}" for c in COLUMNS)
            + f" ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    lines = [
        f"MobileNetV2, {len(x)} ImageNet validation photos with boxes ({args.boxes}); every map "
        "explains the true class; mean [95% bootstrap interval].",
        "",
        "| method | n | energy pointing game | box accuracy | deletion AUC (lower) | "
        "insertion AUC (higher) | s / image |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        lines.append(
            f"| {r['label']} | {len(r['rows'])} | "
            + " | ".join(cell(r["values"][c]) for c in COLUMNS)
            + f" | {r['seconds']:.2f} |"
        )
    lines += [
        "",
        "Paired differences (method minus reference, the same photos):",
        "",
        "| method | reference | n | EPG | box accuracy | deletion | insertion |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, ref in PAIRS:
        if key not in results or ref not in results:
            continue
        common = np.intersect1d(results[key]["rows"], results[ref]["rows"])
        a = {
            c: v[np.searchsorted(results[key]["rows"], common)]
            for c, v in results[key]["values"].items()
        }
        b = {
            c: v[np.searchsorted(results[ref]["rows"], common)]
            for c, v in results[ref]["values"].items()
        }
        lines.append(
            f"| {results[key]['label']} | {results[ref]['label']} | {len(common)} | "
            + " | ".join(cell(a[c] - b[c]) for c in COLUMNS)
            + " |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "localisation.md").write_text("\n".join(lines) + "\n")
    (out / "localisation.json").write_text(
        json.dumps(
            {
                k: {
                    "label": r["label"],
                    "n": len(r["rows"]),
                    "seconds": r["seconds"],
                    **{c: bootstrap(r["values"][c]) for c in COLUMNS},
                }
                for k, r in results.items()
            },
            indent=1,
        )
    )
    figure(photos, boxes, results, out / "localisation.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
