"""Augmented Score-CAM with zoomed, cell-registered views against Score-CAM and its controls,
on metrics that contrast cannot move (issue 18's first measurement).

    python benchmarks/zoom_study.py --boxes ../shared/data/imagenet-val-boxes \\
        --weights ../shared/models/mobilenet_v2_imagenet.weights.h5 --stride 3

Every map uses Score-CAM channel weights over the same ``--max-channels`` channels (shared by
every view). Rows: Score-CAM; Score-CAM^gamma (gamma per image so that its mean equals the
zoomed ASC map's: the same sparsity, no new information); today's ASC (rotations); ASC with
zoomed views; the same fusion of the image alone (K = 1); the zoomed views fused with shuffled
registrations (each crop's map given another crop's transform); the views' plain mean (each
view's map pasted back where it came from, no super-resolution), and it and the zoomed ASC map
multiplied by Score-CAM's; a centre Gaussian; the true boxes. Columns: MaxBoxAccV2 (primary:
threshold-swept, squaring cannot move it), the argmax pointing game (15 px, ties all), the
energy pointing game, with paired 95% bootstrap intervals (10,000 resamples) against
Score-CAM, and the pixel-order test (the zoomed map's order carrying Score-CAM's values: EPG
against Score-CAM). Writes benchmarks/results/zoom_study.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_WEIGHTS, load_box_photos, mobilenet_v2, preprocess_mobilenet

import tfscorecam as tsc
from tfscorecam import augment, metrics
from tfscorecam.superres import SuperResolver

RESULTS = Path(__file__).parent / "results"
ROUNDS = 10_000


def _gamma_matched(scorecam: np.ndarray, target_mean: float) -> np.ndarray:
    """scorecam ** gamma with gamma (bisection) giving the mean ``target_mean``."""
    low, high = 0.05, 50.0
    for _ in range(60):
        gamma = np.sqrt(low * high)
        if (scorecam**gamma).mean() > target_mean:
            low = gamma
        else:
            high = gamma
    return scorecam ** np.sqrt(low * high)


def _pasted_mean(low: np.ndarray, transforms: np.ndarray, size: int) -> np.ndarray:
    """Each view's map upsampled to the view and warped back into the image, averaged where
    views cover it."""
    import tensorflow as tf

    ups = tf.image.resize(low[..., None], (size, size), "bilinear").numpy()
    total = np.zeros((size, size))
    cover = np.zeros((size, size))
    for up, t in zip(ups, transforms, strict=True):
        scale, a2, b2 = 1 / t[0], t[2], t[5]
        back = np.array([scale, 0, -scale * a2, 0, scale, -scale * b2, 0, 0], np.float32)
        total += augment.warp(up, back)[0, ..., 0]
        cover += augment.warp(np.ones((size, size, 1), np.float32), back)[0, ..., 0]
    return np.divide(total, cover, out=np.zeros_like(total), where=cover > 1e-6)


def _scaled(m: np.ndarray) -> np.ndarray:
    m = np.maximum(m, 0)
    span = m.max() - m.min()
    return (m - m.min()) / span if span > 0 else np.zeros_like(m)


def study_maps(model, x, labels, boxes, max_channels: int) -> tuple[dict, dict]:
    """Every row's maps (N, H, W) and seconds per image of the methods."""
    options = {"max_channels": max_channels, "verbose": 0}
    scorecam = tsc.ScoreCAM(model, **options)
    rotations = tsc.AugmentedScoreCAM(model, **options)
    zoom = tsc.AugmentedScoreCAM(model, views="zoom", **options)
    alone = tsc.AugmentedScoreCAM(model, views="zoom", num_augmentations=1, **options)
    size = x.shape[1]
    rows: dict[str, list] = {k: [] for k in ROW_NAMES}
    seconds = {"Score-CAM": 0.0, "ASC, rotations (today's default)": 0.0, "ASC, zoomed views": 0.0}
    shuffled = None
    for i in range(len(x)):
        one, cls = x[i : i + 1], [int(labels[i])]
        start = time.perf_counter()
        sc = scorecam(one, class_index=cls)[0]
        seconds["Score-CAM"] += time.perf_counter() - start
        start = time.perf_counter()
        rows["ASC, rotations (today's default)"].append(rotations(one, class_index=cls)[0])
        seconds["ASC, rotations (today's default)"] += time.perf_counter() - start
        start = time.perf_counter()
        zoomed = zoom(one, class_index=cls)[0]
        seconds["ASC, zoomed views"] += time.perf_counter() - start
        rows["Score-CAM"].append(sc)
        rows["ASC, zoomed views"].append(zoomed)
        rows["ASC fusion, the image alone (K = 1)"].append(alone(one, class_index=cls)[0])
        # the views' own maps, for the shuffled registration and the plain mean
        acts, outputs = zoom.forward(one)
        request = zoom.resolve(cls, None, outputs, False)
        features = acts.shape[1:3]
        resolver = zoom.resolver((size, size), features)
        low = zoom.copy_maps(one[0], acts[0], request, 0, resolver.transforms)[0]
        if shuffled is None:
            count = len(resolver.transforms)
            perm = np.r_[0, np.roll(np.arange(1, count), count // 2)]  # every crop moved
            shuffled = SuperResolver(
                resolver.transforms[perm], features, (size, size), resolver.grid, **zoom.fusion
            )
        rows["zoomed views, shuffled registrations"].append(_scaled(shuffled(low)))
        pasted = _scaled(_pasted_mean(low, resolver.transforms, size))
        rows["zoomed views, plain mean (no fusion)"].append(pasted)
        rows["zoomed views' plain mean x Score-CAM"].append(_scaled(pasted * sc))
        rows["zoomed ASC x Score-CAM"].append(_scaled(zoomed * sc))
        rows["Score-CAM^gamma (gamma matched to zoomed ASC)"].append(
            _gamma_matched(sc, float(zoomed.mean()))
        )
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    centre = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 4) ** 2))
    rows["centre Gaussian"] = [centre] * len(x)
    rows["the true boxes"] = list(metrics.box_masks(boxes, (size, size)).astype(np.float64))
    per_image = {k: v / len(x) for k, v in seconds.items()}
    return {k: np.stack(v) for k, v in rows.items()}, per_image


ROW_NAMES = (
    "Score-CAM",
    "Score-CAM^gamma (gamma matched to zoomed ASC)",
    "ASC, rotations (today's default)",
    "ASC, zoomed views",
    "ASC fusion, the image alone (K = 1)",
    "zoomed views, shuffled registrations",
    "zoomed views, plain mean (no fusion)",
    "zoomed views' plain mean x Score-CAM",
    "zoomed ASC x Score-CAM",
    "centre Gaussian",
    "the true boxes",
)


def _interval(point: float, resampled: np.ndarray) -> str:
    """The difference on all photos and its 95% percentile-bootstrap interval."""
    low, high = np.percentile(resampled, [2.5, 97.5])
    return f"{point:+.3f} [{low:+.3f}, {high:+.3f}]"


def pixel_order_epg(ordered: np.ndarray, values: np.ndarray, boxes) -> np.ndarray:
    """EPG of maps with ``ordered``'s pixel order carrying ``values``' sorted values."""
    out = np.empty_like(values)
    for i, (o, v) in enumerate(zip(ordered, values, strict=True)):
        flat = np.empty(o.size)
        flat[np.argsort(o.ravel(), kind="stable")] = np.sort(v.ravel())
        out[i] = flat.reshape(o.shape)
    return metrics.energy_pointing_game(out, boxes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", required=True, help="the imagenet-val-boxes folder")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--stride", type=int, default=3, help="every k-th photo")
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--out", default=str(RESULTS / "zoom_study.md"))
    args = parser.parse_args()

    _, photos, labels, boxes = load_box_photos(args.boxes)
    keep = np.arange(0, len(photos), args.stride)
    photos, labels, boxes = photos[keep], labels[keep], [boxes[i] for i in keep]
    model = mobilenet_v2(args.weights)
    x = preprocess_mobilenet(photos.astype(np.float32))
    maps, seconds = study_maps(model, x, labels, boxes, args.max_channels)

    rng = np.random.default_rng(0)
    resamples = rng.integers(0, len(x), (ROUNDS, len(x)))
    accuracy = {k: metrics.max_box_accuracy(m, boxes) for k, m in maps.items()}
    pointing = {k: metrics.argmax_pointing_game(m, boxes).astype(float) for k, m in maps.items()}
    energy = {k: metrics.energy_pointing_game(m, boxes) for k, m in maps.items()}
    base = accuracy["Score-CAM"]
    base_scores = np.array([base.score(r) for r in resamples])
    lines = [
        f"n = {len(x)} photos (every {args.stride}th of {len(keep) * args.stride} or fewer), "
        f"MobileNetV2 out_relu, true class, {args.max_channels} channels, {ROUNDS} paired "
        "bootstrap resamples.",
        "",
        "| map | MaxBoxAccV2 | minus Score-CAM's | zoomed ASC's minus it | pointing (argmax) "
        "| EPG |",
        "|---|---|---|---|---|---|",
    ]
    zoomed = accuracy["ASC, zoomed views"]
    zoomed_scores = np.array([zoomed.score(r) for r in resamples])
    for name in ROW_NAMES:
        value = accuracy[name].value
        scores = np.array([accuracy[name].score(r) for r in resamples])
        against_zoom = (
            _interval(zoomed.value - value, zoomed_scores - scores)
            if name != "ASC, zoomed views"
            else ""
        )
        lines.append(
            f"| {name} | {value:.3f} | {_interval(value - base.value, scores - base_scores)} | "
            f"{against_zoom} | {pointing[name].mean():.3f} | {energy[name].mean():.3f} |"
        )
    order = pixel_order_epg(maps["ASC, zoomed views"], maps["Score-CAM"], boxes)
    order_rot = pixel_order_epg(maps["ASC, rotations (today's default)"], maps["Score-CAM"], boxes)
    base_epg = energy["Score-CAM"]

    def epg_gain(epg: np.ndarray) -> str:
        difference = epg - base_epg
        return _interval(float(difference.mean()), difference[resamples].mean(axis=1))

    lines += [
        "",
        "Pixel-order test (the map's order carrying Score-CAM's values), EPG minus Score-CAM's:",
        f"zoomed ASC {epg_gain(order)}; today's ASC {epg_gain(order_rot)}.",
        "",
        "Seconds per image (this machine): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()),
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
