"""Localisation on real object boxes: the explainers on ImageNet validation photos.

    python -m benchmarks.quality.localisation --boxes ../shared/data/imagenet-val-boxes \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 --max-channels 128 \
        --steps 25 --curve-stride 3

Every map explains the photo's true class (MobileNetV2, 224x224, the 227x227 photos resized
and their boxes scaled). Per method: MaxBoxAccV2 (thresholds swept, one for the set: a rank
measure that sharpening cannot move; its interval re-chooses the threshold in each of 2,000
resamples), the energy-based pointing game (share of the map's energy inside the union of the
class's boxes), box accuracy (the box of the largest region above 0.15 of the maximum has IoU
>= 0.5 with a true box), deletion and insertion AUC (50 steps), ROAD's mean MoRF and LeRF
probabilities (noisy linear imputation, 10-90% removed, every --road-stride-th photo),
seconds per image, n, and 95% bootstrap intervals; then paired differences (the same photos).
Maps are kept in --cache, so adding a method does not
recompute the others; ``--parquet KEY=FOLDER`` reads a method's maps from an
``explain_dataset`` output instead (large runs on a cluster). ``KEY:K`` in --methods keeps
every K-th photo for an expensive method; --curve-stride K computes deletion and insertion on
every K-th photo only (each costs 2 x steps forward passes per photo and method). Writes
localisation.md, localisation.json and localisation.png (four photos at fixed, evenly spaced
positions: boxes, Score-CAM, ASC).
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

from benchmarks.common import (  # noqa: E402
    DEFAULT_BOXES,
    DEFAULT_WEIGHTS,
    explainers,
    load_box_photos,
    method_maps,
    mobilenet_v2,
    preprocess_mobilenet,
)
from benchmarks.report import RESULTS, PairedBoxAccuracy, bootstrap, cell, paired
from tfscorecam import metrics  # noqa: E402

COLUMNS = ("EPG", "box acc", "deletion", "insertion", "ROAD MoRF", "ROAD LeRF")
RESAMPLES = 2000
PAIRS = (  # (method, reference): paired differences reported
    ("asc-shared", "scorecam"),
    ("asc-shared", "gradcam"),
    ("asc-shared-faster", "faster"),
    ("asc-shared-faster", "gradcam"),
    ("faster-softmax", "faster"),
    ("asc-per-copy", "faster"),
    ("asc-per-copy", "asc-shared-faster"),
    ("asc-authors", "faster"),
    ("iscam", "faster"),
    ("sscam", "faster"),
    ("layercam", "gradcam"),
    ("hirescam", "gradcam"),
    ("xgradcam", "gradcam"),
    ("eigencam", "gradcam"),
    ("ablationcam", "gradcam"),
    ("reciprocam", "faster"),
    ("reciprocam", "ablationcam"),
    ("reciprocam", "gradcam"),
    ("reciprocam-gaussian", "reciprocam"),
    ("polycam", "scorecam"),
    ("polycam", "faster"),
    ("polycam", "asc-shared-faster"),
)


def scores(
    model, x, classes, maps, boxes, steps: int, curves: np.ndarray, roads: np.ndarray
) -> dict:
    """Per-photo values of each column; deletion and insertion only where ``curves`` is true,
    ROAD only where ``roads`` is (NaN elsewhere)."""
    values = {
        "EPG": metrics.energy_pointing_game(maps, boxes),
        "box acc": metrics.box_accuracy(maps, boxes).astype(np.float64),
    }
    for name, curve in (("deletion", metrics.deletion_auc), ("insertion", metrics.insertion_auc)):
        values[name] = np.full(len(x), np.nan)
        if curves.any():
            values[name][curves] = curve(
                model, x[curves], maps[curves], classes[curves], steps=steps
            ).aucs
    values["ROAD MoRF"], values["ROAD LeRF"] = np.full(len(x), np.nan), np.full(len(x), np.nan)
    if roads.any():
        road = metrics.road(model, x[roads], maps[roads].astype(np.float32), classes[roads])
        values["ROAD MoRF"][roads] = road.morf.mean(axis=1)
        values["ROAD LeRF"][roads] = road.lerf.mean(axis=1)
    return values


def max_box_cell(accuracy, resamples: np.ndarray) -> str:
    """MaxBoxAccV2 on all photos and its 95% interval over ``resamples`` (rows of photo
    indices), the threshold re-chosen in each."""
    low, high = np.percentile([accuracy.score(r) for r in resamples], [2.5, 97.5])
    return f"{accuracy.value:.3f} [{low:.3f}, {high:.3f}]"


def paired_max_box(a: dict, b: dict) -> str:
    """MaxBoxAccV2 of ``a`` minus ``b`` on the photos both were computed on, with its 95%
    interval over paired resamples (the threshold re-chosen in each, per method)."""
    _, in_a, in_b = np.intersect1d(a["rows"], b["rows"], return_indices=True)
    maps = {"a": a["maps"][in_a], "b": b["maps"][in_b]}
    return PairedBoxAccuracy(maps, [a["boxes"][i] for i in in_a], RESAMPLES).minus("a", "b")


def figure(photos, boxes, results, path: Path) -> None:
    """Four photos at fixed, evenly spaced positions: boxes, Score-CAM and ASC maps."""
    pairs = [
        p
        for p in (("scorecam", "asc-shared"), ("faster", "asc-shared-faster"))
        if p[0] in results and p[1] in results
    ]
    if not pairs:
        return
    shown = list(pairs[0])
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
        default="gradcam,gradcam++,faster,asc-shared-faster,layercam,hirescam,xgradcam,eigencam,ablationcam,"
        "faster-softmax:3,asc-authors:9,iscam:9,asc-per-copy:9,sscam:18",
        help="keys, each optionally KEY:STRIDE",
    )
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="deletion/insertion steps")
    parser.add_argument(
        "--curve-stride",
        type=int,
        default=1,
        help="deletion/insertion only on every K-th photo (they cost 2 x steps passes each)",
    )
    parser.add_argument(
        "--road-stride", type=int, default=8, help="ROAD on every K-th photo (0: none)"
    )
    parser.add_argument("--n", type=int, default=0, help="first n photos (0: all)")
    parser.add_argument("--parquet", action="append", default=[], help="KEY=FOLDER")
    parser.add_argument("--cache", default=str(RESULTS / "localisation_cache"))
    parser.add_argument("--recompute", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
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
    registry = explainers(args.max_channels)
    results = {}
    for item in args.methods.split(","):
        start = time.perf_counter()
        row = method_maps(item, registry, model, x, labels, paths, parquet, cache, args)
        key, label, rows, maps, seconds = row.key, row.label, row.rows, row.maps, row.seconds
        curves = rows % args.curve_stride == 0
        roads = rows % args.road_stride == 0 if args.road_stride else np.zeros(len(rows), bool)
        row_boxes = [boxes[i] for i in rows]
        values = scores(model, x[rows], labels[rows], maps, row_boxes, args.steps, curves, roads)
        accuracy = metrics.max_box_accuracy(maps, row_boxes)
        resamples = np.random.default_rng(0).integers(0, len(rows), (RESAMPLES, len(rows)))
        results[key] = {
            "label": label,
            "rows": rows,
            "maps": maps,
            "boxes": row_boxes,
            "values": values,
            "max_box": max_box_cell(accuracy, resamples),
            "seconds": seconds,
        }
        print(
            f"{label}: n={len(rows)} MaxBoxAccV2 {results[key]['max_box']} "
            + " ".join(f"{c} {cell(values[c])}" for c in COLUMNS)
            + f" ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    lines = [
        f"MobileNetV2, {len(x)} ImageNet validation photos with boxes ({args.boxes}); every map "
        "explains the true class; mean [95% bootstrap interval].",
        "",
        "| method | n (curves, ROAD) | MaxBoxAccV2 | energy pointing game | box accuracy | "
        "deletion AUC (lower) | insertion AUC (higher) | ROAD MoRF (lower) | ROAD LeRF (higher) "
        "| s / image |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        counted = [int(np.sum(~np.isnan(r["values"][c]))) for c in ("deletion", "ROAD MoRF")]
        lines.append(
            f"| {r['label']} | {len(r['rows'])} ({counted[0]}, {counted[1]}) | {r['max_box']} | "
            + " | ".join(cell(r["values"][c]) for c in COLUMNS)
            + f" | {r['seconds']:.2f} |"
        )
    lines += [
        "",
        "Paired differences (method minus reference, the same photos):",
        "",
        "| method | reference | n | MaxBoxAccV2 | EPG | box accuracy | deletion | insertion "
        "| ROAD MoRF | ROAD LeRF |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, ref in PAIRS:
        if key not in results or ref not in results:
            continue
        a, b = results[key], results[ref]
        n = len(np.intersect1d(a["rows"], b["rows"]))
        lines.append(
            f"| {a['label']} | {b['label']} | {n} | {paired_max_box(a, b)} | "
            + " | ".join(
                cell(paired(a["rows"], a["values"][c], b["rows"], b["values"][c])) for c in COLUMNS
            )
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
                    **{c: bootstrap(r["values"][c][~np.isnan(r["values"][c])]) for c in COLUMNS},
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
