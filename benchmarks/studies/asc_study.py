"""How Augmented Score-CAM's fusion was chosen, on ImageNet validation photos with boxes.

    python -m benchmarks.studies.asc_study --boxes ../shared/data/imagenet-val-boxes \
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5

MobileNetV2, its 7x7 ``out_relu`` layer, every map for the photo's true class. Cached in --cache
(the first run is long: Score-CAM over all channels costs about 8 s per photo on 2 CPU cores;
--max-channels shortens it): per photo the layer's activations and Score-CAM channel weights,
per transform setting the copies' activations. Every copy map uses the photo's own Score-CAM
weights (``weights="shared"``), so the fusions below are compared on the same copy maps.

1. Consistency: how far each copy's map is from the map of the original warped like the copy
   and seen through an observation operator (relative L2 error), per rotation angle; and the
   share of copies whose class probability falls below half the original's.
2. Fusions: energy pointing game (EPG), its paired difference from Score-CAM, box accuracy, and
   the per-image Average Drop and Increase in Confidence, for the observation operator, its
   width, the prior and its weight, the number of copies and the transform range.
3. Controls: Score-CAM maps made more contrasted with no new information (squared; minus 0.2)
   show what EPG and AD/IC reward.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import tfscorecam as tsc
from benchmarks.common import (
    DEFAULT_BOXES,
    DEFAULT_WEIGHTS,
    load_box_photos,
    mobilenet_v2,
    preprocess_mobilenet,
)
from benchmarks.report import RESULTS, cell
from tfscorecam import augment, metrics, superres
from tfscorecam.core.maps import minmax, score_cam_maps, upsample
from tfscorecam.methods.augmented import operators

LAYER = "out_relu"  # 7x7
FINE_LAYER = "block_13_expand_relu"  # MobileNetV2's last 14x14 layer (576 channels)
SETTINGS = {  # name -> (layer, copies, max angle in rad, max shift in px at 224)
    "default": (LAYER, 16, 0.1, 16.0),  # shift: half a cell
    "authors": (LAYER, 32, 0.5, 30.0),  # the fusion row uses the first 16
    "fine": (FINE_LAYER, 16, 0.1, 8.0),
}
DEFAULT_FUSION = {"observation": "gaussian", "sigma": 1.0, "prior": "tv"}
FUSIONS = {  # label -> (setting, copies used, SuperResolver options)
    "area, TV (the authors' fusion, weights per pixel)": (
        "default",
        16,
        dict(
            zip(("tv_weight", "energy_weight"), superres.authors_weights(4), strict=True),
            observation="area",
            prior="tv",
        ),
    ),
    "Gaussian sigma 1, squared-gradient prior": ("default", 16, {"prior": "smooth"}),
    "Gaussian sigma 0.5, TV": ("default", 16, {"sigma": 0.5}),
    "Gaussian sigma 1, TV (default)": ("default", 16, {}),
    "Gaussian sigma 1.5, TV": ("default", 16, {"sigma": 1.5}),
    "default, tv_weight / 10": ("default", 16, {"tv_weight": superres.TV_WEIGHT / 10}),
    "default, tv_weight x 3": ("default", 16, {"tv_weight": superres.TV_WEIGHT * 3}),
    "default, K = 1 (the photo alone)": ("default", 1, {}),
    "default, K = 4": ("default", 4, {}),
    "default, the authors' transforms (0.5 rad, 30 px)": ("authors", 16, {}),
}


def layer_cache(
    model, x, labels, max_channels, cache: Path, layer: str = LAYER
) -> tuple[np.ndarray, np.ndarray]:
    """Per photo: the layer's activations (n, h, w, C) and Score-CAM channel weights (n, C)."""
    name = "scorecam" if layer == LAYER else f"scorecam_{layer}"
    path = cache / f"{name}_c{max_channels}.npz"
    if path.is_file():
        data = np.load(path)
        return data["acts"], data["weights"]
    cam = tsc.ScoreCAM(model, layer, max_channels=max_channels, verbose=0)
    acts, weights = [], []
    start = time.perf_counter()
    for i in range(len(x)):
        a, outputs = cam.forward(x[i : i + 1])
        request = cam.scorings.resolve(int(labels[i]), None, outputs, False)
        weights.append(cam.unit_weights(x[i], a[0], request, 0)[:, 0])
        acts.append(a[0])
        if i % 20 == 0:
            print(
                f"Score-CAM weights ({layer}): {i}/{len(x)} {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    np.savez(path, acts=np.stack(acts), weights=np.stack(weights))
    return np.stack(acts), np.stack(weights)


def copies_cache(model, x, labels, setting: str, cache: Path) -> dict:
    """The setting's transforms (K, 8), copies' activations (n, K, h, w, C) float16 and class
    probabilities (n, K)."""
    path = cache / f"copies_{setting}.npz"
    if path.is_file():
        return dict(np.load(path))
    layer, count, angle, shift = SETTINGS[setting]
    transforms = augment.random_transforms(count, x.shape[1:3], angle, shift, 0)
    cam = tsc.ScoreCAM(model, layer, verbose=0)
    acts, probs = [], []
    for i in range(len(x)):
        a, outputs = cam.forward(augment.warp(x[i], transforms))
        acts.append(a.astype(np.float16))
        probs.append(outputs[:, labels[i]])
    data = {"transforms": transforms, "acts": np.stack(acts), "probs": np.stack(probs)}
    np.savez(path, **data)
    return data


def copy_maps(acts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ReLU(sum_c w_c A_kc) / max per copy: (n, K, 7, 7)."""
    low = np.maximum(np.einsum("nkhwc,nc->nkhw", acts.astype(np.float32), weights), 0.0)
    peak = low.max(axis=(2, 3), keepdims=True)
    return np.divide(low, peak, out=np.zeros_like(low), where=peak > 0)


def consistency(low0: np.ndarray, copies: dict, weights: np.ndarray) -> list[str]:
    """Relative error of each copy's map against the original's map warped and observed."""
    transforms, grid = copies["transforms"], (28, 28)
    maps = copy_maps(copies["acts"], weights)
    fine = upsample(low0[..., None], grid).numpy()[..., 0].reshape(len(low0), -1)
    angles = np.abs(np.arctan2(transforms[:, 3], transforms[:, 0]))
    lines = [
        "| observation | copies | mean abs. angle (rad) | relative error | correlation |",
        "|---|---|---|---|---|",
    ]
    observations = {
        "area": operators.area_matrix(grid, (7, 7)),
        "Gaussian sigma 1": operators.gaussian_matrix(grid, (7, 7), 1.0),
    }
    for name, down in observations.items():
        errors = np.zeros(maps.shape[:2])
        corrs = np.zeros(maps.shape[:2])
        for k, t in enumerate(transforms):
            warp = augment.warp_matrix(operators.rescale_transform(t, 8.0, 8.0), grid)
            seen = (down @ warp @ fine.T).T.reshape(maps[:, k].shape)
            seen /= np.maximum(seen.max(axis=(1, 2), keepdims=True), 1e-12)
            diff = (seen - maps[:, k]).reshape(len(maps), -1)
            errors[:, k] = np.linalg.norm(diff, axis=1) / np.maximum(
                np.linalg.norm(maps[:, k].reshape(len(maps), -1), axis=1), 1e-12
            )
            corrs[:, k] = [
                np.corrcoef(a.ravel(), b.ravel())[0, 1] if a.std() and b.std() else 0.0
                for a, b in zip(seen, maps[:, k], strict=True)
            ]
        for low, high in ((-1, 0), (0, 0.1), (0.1, 0.25), (0.25, 0.5)):
            pick = (angles > low) & (angles <= high)
            if pick.any():
                lines.append(
                    f"| {name} | {int(pick.sum())} | {angles[pick].mean():.2f} | "
                    f"{errors[:, pick].mean():.3f} | {corrs[:, pick].mean():.3f} |"
                )
    lost = copies["probs"][:, 1:] < 0.5 * copies["probs"][:, :1]
    lines += ["", f"Copies whose class probability is below half the photo's: {lost.mean():.1%}"]
    return lines


def fused_maps(data: dict, count: int, weights: np.ndarray, shape, options: dict):
    """The fusion of the first ``count`` copies of a setting, per photo (ReLU'd), and its
    seconds per photo."""
    low = copy_maps(data["acts"][:, :count], weights)
    resolver = superres.SuperResolver(
        data["transforms"][:count],
        low.shape[2:],
        shape,
        (28, 28),  # 8 px at 224: 4 sub-cells of a 7x7 cell, 2 of a 14x14 one
        **{**DEFAULT_FUSION, **options},
    )
    start = time.perf_counter()
    fused = np.stack([np.maximum(resolver(g), 0.0) for g in low])
    return fused, (time.perf_counter() - start) / len(low)


def scorecam_maps(acts: np.ndarray, weights: np.ndarray, shape) -> np.ndarray:
    """Score-CAM's maps from a layer's activations and channel weights, in [0, 1]."""
    low = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0.0)
    return minmax(score_cam_maps(low[..., None], shape)[:, 0]).numpy()


def measures(maps, model, x, labels, boxes) -> dict[str, np.ndarray]:
    """Per photo: EPG, box accuracy, Average Drop and Increase in Confidence (%)."""
    maps = minmax(maps).numpy()
    y, o = metrics.confidences(model, x, maps, labels)
    return {
        "epg": metrics.energy_pointing_game(maps, boxes),
        "box": metrics.box_accuracy(maps, boxes).astype(float),
        "ad": metrics.drops(y, o),
        "ic": metrics.increases(y, o),
    }


def study_inputs(args: argparse.Namespace) -> tuple:
    """The model, the box photos (uint8), their model inputs, classes and boxes, and the
    cache folder (created) from ``--weights``, ``--boxes`` and ``--cache``."""
    model = mobilenet_v2(args.weights)
    _, photos, labels, boxes = load_box_photos(args.boxes)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    return model, photos, preprocess_mobilenet(photos), labels, boxes, cache


def row(label, maps, model, x, labels, boxes, reference, seconds) -> str:
    m = measures(maps, model, x, labels, boxes)
    cells = [
        cell(m["epg"]),
        "-" if reference is None else cell(m["epg"] - reference, True),
        f"{m['box'].mean():.3f}",
        cell(m["ad"], digits=1),
        cell(m["ic"], digits=1),
        f"{seconds:.3f}",
    ]
    print(f"{label}: " + " | ".join(cells), flush=True)
    return f"| {label} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--max-channels", type=int, default=None)
    parser.add_argument("--cache", default=str(RESULTS / "asc_study_cache"))
    parser.add_argument("--out", default=str(RESULTS / "asc_study.md"))
    args = parser.parse_args()

    model, _, x, labels, boxes, cache = study_inputs(args)
    acts, weights = layer_cache(model, x, labels, args.max_channels, cache)
    copies = {name: copies_cache(model, x, labels, name, cache) for name in ("default", "authors")}
    low0 = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0.0)

    lines = [
        f"MobileNetV2 out_relu, {len(x)} photos ({args.boxes}), true class, Score-CAM weights "
        f"over {args.max_channels or 'all'} channels shared by the copies; mean [95% bootstrap "
        "interval].",
        "",
        "1. Copies against the warped original (the authors' transform range):",
        "",
        *consistency(low0, copies["authors"], weights),
        "",
        "2. Fusions and 3. controls (EPG difference paired with Score-CAM on the same photos; "
        "s / photo: the fusion alone):",
        "",
        "| maps | EPG | EPG - Score-CAM | box accuracy | AD % | IC % | s / photo |",
        "|---|---|---|---|---|---|---|",
    ]
    scorecam = scorecam_maps(acts, weights, x.shape[1:3])
    reference = metrics.energy_pointing_game(scorecam, boxes)
    lines.append(row("Score-CAM", scorecam, model, x, labels, boxes, None, 0.0))
    for label, (setting, count, options) in FUSIONS.items():
        fused, seconds = fused_maps(copies[setting], count, weights, x.shape[1:3], options)
        lines.append(row(label, fused, model, x, labels, boxes, reference, seconds))
    for label, maps in (
        ("control: Score-CAM squared", scorecam**2),
        ("control: Score-CAM minus 0.2", np.maximum(scorecam - 0.2, 0.0)),
    ):
        lines.append(row(label, maps, model, x, labels, boxes, reference, 0.0))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
