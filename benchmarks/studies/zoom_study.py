"""Augmented Score-CAM with zoomed, cell-registered views against Score-CAM and its controls,
on metrics that contrast cannot move (issue 18).

    python -m benchmarks.studies.zoom_views --model mobilenet_v2      # the cache: forward passes
    python -m benchmarks.studies.zoom_study --model mobilenet_v2      # the tables, from the cache

Every map uses the same Score-CAM channel weights (``--max-channels`` channels, scored once on
the photo, shared by every view) and every view's map comes from ``zoom_views.py``'s cache;
each row runs the library's own fusion (``AugmentedScoreCAM.scale_views`` and ``fuse``) on
them, and the first photos are checked against a full ``AugmentedScoreCAM`` call.

Primary columns: MaxBoxAccV2 (threshold-swept; squaring a map cannot move it) with paired 95%
bootstrap intervals (``--rounds`` resamples) against Score-CAM and against the default ASC,
and the argmax pointing game. Secondary, next to the Score-CAM^gamma control: the energy
pointing game. Then the pixel-order test (ASC's pixel order carrying Score-CAM's values),
deletion / insertion (every ``--causal-stride``-th photo), ROAD (every ``--road-stride``-th)
and Average Drop / Increase in Confidence, and a table of what else was tried. Writes
``benchmarks/results/zoom_study_<model>.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import tfscorecam as tsc
from benchmarks.common import load_box_photos
from benchmarks.report import RESULTS, PairedBoxAccuracy, mean_difference, paired_rows
from benchmarks.studies.zoom_views import (
    ROTATIONS,
    cache_path,
    rotation_views,
    study_model,
    study_parser,
    zoom_views,
)
from tfscorecam import augment, metrics
from tfscorecam.core import backend
from tfscorecam.core.maps import minmax
from tfscorecam.methods.augmented.augment import moved
from tfscorecam.methods.augmented.superres import SuperResolver

SIZE, CELLS = 224, (7, 7)
ASC = "ASC (default)"


class Photos(NamedTuple):
    """The box photos of a study's cache, in its rows' order."""

    index: np.ndarray  # each row's photo in the box set
    photos: np.ndarray  # as read (for figures)
    images: np.ndarray  # the model's inputs
    labels: np.ndarray  # true classes (int)
    boxes: list


def load_study(args) -> tuple[Study, Photos]:
    """The study of ``args.model``'s cache (``zoom_views.py``, ``args.max_channels``) and its
    photos from ``args.boxes``."""
    cache = dict(np.load(cache_path(args.model, args.max_channels)))
    index = cache.get("photo", np.arange(len(cache["low"])))
    _, photos, labels, boxes = load_box_photos(args.boxes)
    model, preprocess = study_model(args.model, args.weights)
    photos = photos[index]
    chosen = Photos(
        index, photos, preprocess(photos), labels[index].astype(int), [boxes[i] for i in index]
    )
    return Study(model, cache), chosen


class Study:
    """The cached views of every photo, and the maps of each row made from them."""

    def __init__(self, model, cache: dict) -> None:
        self.model = model
        self.low = cache["low"].astype(np.float64)  # (N, V, h, w)
        self.probability = cache["probability"]
        self.top1 = cache["top1"]
        self.transforms = np.concatenate([zoom_views(SIZE, CELLS), rotation_views(SIZE, CELLS)])
        self._cams: dict[str, tsc.AugmentedScoreCAM] = {}

    def cam(self, options: dict) -> tsc.AugmentedScoreCAM:
        """``AugmentedScoreCAM(**options)``, made (and its ``cell_shift`` probed) once."""
        key = repr(sorted(options.items()))
        if key not in self._cams:
            self._cams[key] = tsc.AugmentedScoreCAM(self.model, verbose=0, **options)
        return self._cams[key]

    def views(self, cam: tsc.AugmentedScoreCAM) -> np.ndarray:
        """The cache's indices of ``cam``'s views, in its order."""
        index = []
        for t in cam.transforms((SIZE, SIZE), CELLS):
            match = np.flatnonzero(np.abs(self.transforms - t).max(axis=1) < 1e-5)
            if match.size == 0:
                raise SystemExit(f"view {t} is not in the cache")
            index.append(int(match[0]))
        return np.array(index)

    def asc(self, options: dict, shuffle: bool = False, keep=None, scale=None) -> np.ndarray:
        """Maps of ``AugmentedScoreCAM(**options)`` from the cached views. ``shuffle`` gives
        each view but the image another view's transform; ``keep(i, views)`` chooses photo
        i's views (a fusion per photo); ``scale(i, views)`` multiplies their maps."""
        cam = self.cam(options)
        views = self.views(cam)
        transforms = self.transforms[views]
        if shuffle:
            count = len(views)
            transforms = transforms[np.r_[0, np.roll(np.arange(1, count), count // 2)]]
        settings = {**cam.fusion, "cell_shift": cam.shift_for((SIZE, SIZE), CELLS)}
        resolver = SuperResolver(transforms, CELLS, (SIZE, SIZE), (28, 28), **settings)
        out = []
        for i in range(len(self.low)):
            chosen, fusion = views, resolver
            if keep is not None:
                chosen = views[keep(i, views)]
                fusion = SuperResolver(
                    self.transforms[chosen], CELLS, (SIZE, SIZE), (28, 28), **settings
                )
            low = cam.scale_views(self.low[i, chosen]).numpy()
            if scale is not None:
                low = low * scale(i, chosen)[:, None, None]
            out.append(minmax(cam.fuse(fusion, low)).numpy())
        return np.stack(out)

    def scorecam(self) -> np.ndarray:
        """Score-CAM's maps: the photo's own view (its weighted sum is >= 0 here: ReLU
        features, probability weights), upsampled."""
        up = tf.image.resize(self.low[:, 0, ..., None], (SIZE, SIZE), "bilinear")
        return minmax(tf.nn.relu(up)[..., 0]).numpy()

    def pasted(self, options: dict) -> np.ndarray:
        """The views' plain mean (``paste_back``) of ``AugmentedScoreCAM(**options)``'s views,
        scaled as it scales them, moved by its ``cell_shift``."""
        cam = self.cam(options)
        views = self.views(cam)
        low = cam.scale_views(self.low[:, views]).numpy()
        return paste_back(low, self.transforms[views], cam.shift_for((SIZE, SIZE), CELLS))

    def mean_times_photo(self, options: dict) -> np.ndarray:
        """The control for what the least-squares fusion adds: ``pasted`` (the same views'
        plain mean) times the photo's map moved as the fusion's product moves it, min-max."""
        shift = self.cam(options).resolver((SIZE, SIZE), CELLS).pixel_shift
        coarse = backend.numpy(moved(self.scorecam()[:, None], shift))[:, 0]
        return minmax(self.pasted(options) * coarse).numpy()


def paste_back(low: np.ndarray, transforms: np.ndarray, cells: tuple[float, float]) -> np.ndarray:
    """The views' plain mean: each view's map (N, K, h, w) upsampled to the view, moved by
    ``cells`` of its own (where its cells look: the fusion's ``cell_shift``) and warped back
    into the photo, averaged where the views cover it -> (N, SIZE, SIZE)."""
    shift = (cells[0] * SIZE / low.shape[-1], cells[1] * SIZE / low.shape[-2])
    total = np.zeros((len(low), SIZE, SIZE))
    cover = np.zeros((SIZE, SIZE))
    for k, t in enumerate(transforms):
        zoom, a2, b2 = 1 / t[0], t[2], t[5]
        back = np.array(
            [zoom, 0, -zoom * a2 - shift[0], 0, zoom, -zoom * b2 - shift[1], 0, 0], np.float32
        )
        up = tf.image.resize(low[:, k, ..., None], (SIZE, SIZE), "bilinear").numpy()
        total += augment.warp(up, np.repeat(back[None], len(up), 0))[..., 0]
        cover += augment.warp(np.ones((SIZE, SIZE, 1), np.float32), back)[0, ..., 0]
    return np.divide(total, cover, out=np.zeros_like(total), where=cover > 1e-6)


def gamma_matched(scorecam: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per map, scorecam ** gamma with gamma (bisection) giving ``target``'s mean."""
    out = np.empty_like(scorecam)
    for i, (one, goal) in enumerate(zip(scorecam, target.mean(axis=(1, 2)), strict=True)):
        low, high = 0.05, 50.0
        for _ in range(60):
            gamma = np.sqrt(low * high)
            low, high = (gamma, high) if (one**gamma).mean() > goal else (low, gamma)
        out[i] = one ** np.sqrt(low * high)
    return out


def centre_gaussian(count: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    one = np.exp(-((yy - SIZE / 2) ** 2 + (xx - SIZE / 2) ** 2) / (2 * (SIZE / 4) ** 2))
    return np.repeat(one[None], count, axis=0)


def pixel_order(ordered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Maps with ``ordered``'s pixel order carrying ``values``' sorted values."""
    out = np.empty_like(values)
    for i, (o, v) in enumerate(zip(ordered, values, strict=True)):
        flat = np.empty(o.size)
        flat[np.argsort(o.ravel(), kind="stable")] = np.sort(v.ravel())
        out[i] = flat.reshape(o.shape)
    return out


def plateau_share(maps: np.ndarray) -> float:
    """Mean share of each map's upper half (values above 0.5) lying on flat plateaus: pixels
    whose gradient is under 1e-3 per pixel (TV's piecewise-flat steps; a smooth map has
    almost none)."""
    dy, dx = np.gradient(maps, axis=(1, 2))
    flat = np.hypot(dx, dy) < 1e-3
    upper = maps > 0.5
    return float(((flat & upper).sum(axis=(1, 2)) / np.maximum(upper.sum(axis=(1, 2)), 1)).mean())


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--causal-stride", type=int, default=4, help="0: no deletion/insertion")
    parser.add_argument("--road-stride", type=int, default=8, help="0: no ROAD")
    parser.add_argument("--tried", action="store_true", help="also the variants tried")
    args = parser.parse_args()

    study, (_, photos, x, labels, boxes) = load_study(args)
    model = study.model
    n = len(x)
    channels = {"max_channels": args.max_channels}
    start = time.perf_counter()

    check_default(model, x[:2], labels[:2], study, channels)
    rotations = {"views": "rotations", "num_augmentations": ROTATIONS, **channels}
    maps = {"Score-CAM": study.scorecam(), ASC: study.asc(channels)}
    fused = maps[ASC]
    maps.update(
        {
            "Score-CAM^gamma (gamma matched to ASC's mean)": gamma_matched(
                maps["Score-CAM"], fused
            ),
            "K = 1: the photo alone, same fusion and product": study.asc(
                {"num_augmentations": 1, **channels}
            ),
            "zoomed views, shuffled registrations": study.asc(channels, shuffle=True),
            "zoomed views' plain mean (no super-resolution)": study.pasted(channels),
            "zoomed views' plain mean x the photo's map": study.pasted(channels)
            * maps["Score-CAM"],
            "zoomed views fused, no product (multiply_coarse=False)": study.asc(
                {"multiply_coarse": False, **channels}
            ),
            "v0.2 default: 16 rotations fused, no product": study.asc(
                {"view_scale": "own", "multiply_coarse": False, **rotations}
            ),
            "16 rotations fused x the photo's map": study.asc(rotations),
            "centre Gaussian": centre_gaussian(n),
            "the true boxes": metrics.box_masks(boxes, (SIZE, SIZE)).astype(np.float64),
        }
    )
    tried = {}
    if args.tried:
        tried = {
            "isotropic TV prior": study.asc({"prior": "isotropic_tv", **channels}),
            "squared-gradient prior": study.asc({"prior": "smooth", **channels}),
            "views on the photo's scale (view_scale='image')": study.asc(
                {"view_scale": "image", **channels}
            ),
            "2x only (zoom_scales=(2.0,))": study.asc({"zoom_scales": (2.0,), **channels}),
            "3 x 3 crops at 2x (v0.2's zoom option)": study.asc(
                {"zoom_scales": (2.0,), "zoom_crops": 3, **channels}
            ),
            "views that lose the top-1 class dropped": study.asc(
                channels, keep=lambda i, views: (views == 0) | study.top1[i, views]
            ),
            "views weighted by their class probability": study.asc(
                channels,
                scale=lambda i, views: (
                    study.probability[i, views] / max(float(study.probability[i, 0]), 1e-12)
                ),
            ),
        }
    print(f"maps: {time.perf_counter() - start:.0f} s", flush=True)
    figure(photos, boxes, maps, RESULTS / f"zoom_study_{args.model}.png")
    write(args, model, x, labels, boxes, maps, tried, n)


def check_default(model, x, labels, study: Study, channels: dict) -> None:
    """The study's default ASC maps equal a full ``AugmentedScoreCAM`` call."""
    cam = tsc.AugmentedScoreCAM(model, verbose=0, **channels)
    direct = cam(x, class_index=[int(c) for c in labels])
    cached = study.asc(channels)[: len(x)]
    error = float(np.abs(direct - cached).max())
    if error > 1e-3:
        raise SystemExit(f"the cached views do not reproduce AugmentedScoreCAM: {error}")


def write(args, model, x, labels, boxes, maps: dict, tried: dict, n: int) -> None:
    """The tables (markdown)."""
    rng = np.random.default_rng(0)
    boxed = PairedBoxAccuracy({**maps, **tried}, boxes, args.rounds, rng)
    resamples = boxed.resamples
    pointing = {k: metrics.argmax_pointing_game(m, boxes) for k, m in maps.items()}
    energy = {k: metrics.energy_pointing_game(m, boxes) for k, m in maps.items()}
    base, default = "Score-CAM", ASC

    lines = [
        f"n = {n} photos, {args.model}, true class, {args.max_channels} channels shared by every "
        f"view, {args.rounds} paired bootstrap resamples (95% intervals).",
        "",
        "| map | MaxBoxAccV2 | minus Score-CAM's | ASC's minus it | pointing (argmax) | EPG "
        "| plateau share |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in maps:
        lines.append(
            f"| {name} | {boxed.value(name):.3f} | {boxed.minus(name, base)} | "
            f"{boxed.minus(default, name)} | {pointing[name].mean():.3f} | "
            f"{energy[name].mean():.3f} | {plateau_share(maps[name]):.2f} |"
        )
    order = metrics.energy_pointing_game(pixel_order(maps[ASC], maps[base]), boxes)
    lines += [
        "",
        "Pixel-order test (ASC's pixel order carrying Score-CAM's values), EPG minus "
        f"Score-CAM's: {mean_difference(order, energy[base], resamples)}.",
    ]
    if tried:
        lines += [
            "",
            "Also tried (each a change to the default ASC):",
            "",
            "| variant | MaxBoxAccV2 | minus the default's | pointing (argmax) | plateau share |",
            "|---|---|---|---|---|",
        ]
        for name, one in tried.items():
            hits = metrics.argmax_pointing_game(one, boxes).mean()
            lines.append(
                f"| {name} | {boxed.value(name):.3f} | {boxed.minus(name, default)} | "
                f"{hits:.3f} | {plateau_share(one):.2f} |"
            )
    classes = labels.astype(int)
    confidence_rows = (base, "Score-CAM^gamma (gamma matched to ASC's mean)", ASC, "the true boxes")
    lines += ["", "| map | Average Drop (lower better) | Increase in Confidence |", "|---|---|---|"]
    for name in confidence_rows:
        original, masked = metrics.confidences(model, x, maps[name].astype(np.float32), classes)
        drop, increase = metrics.drops(original, masked), metrics.increases(original, masked)
        lines.append(f"| {name} | {drop.mean():.1f} | {increase.mean():.1f} |")
    causal = (base, ASC, "K = 1: the photo alone, same fusion and product")
    lines += causal_tables(
        model,
        x,
        classes,
        {name: maps[name].__getitem__ for name in causal},
        (base, "Score-CAM's"),
        (args.causal_stride, args.road_stride),
        (rng, args.rounds),
        steps=20,
        roads=(base, ASC),
    )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"zoom_study_{args.model}.md").write_text(text)
    print(text)


def causal_tables(
    model,
    x: np.ndarray,
    classes: np.ndarray,
    maps: dict,
    reference: tuple[str, str],
    strides: tuple[int, int],
    resampling: tuple[np.random.Generator, int],
    steps: int,
    roads: tuple | None = None,
) -> list[str]:
    """Markdown tables: deletion / insertion AUC (``steps`` steps) on every ``strides[0]``-th
    photo and ROAD (noisy linear imputation, 10-90%) on every ``strides[1]``-th (0: none) of
    each map (``maps[name](rows)`` gives its maps of photos ``rows``; ROAD only for ``roads``
    if given), with paired 95% intervals against the map ``reference[0]`` (called
    ``reference[1]`` in the header), ``resampling[1]`` resamples drawn by ``resampling[0]``."""
    (base, against), (rng, rounds) = reference, resampling
    lines: list[str] = []
    if strides[0]:
        rows = np.arange(0, len(x), strides[0])
        curves = {}
        for name, of in maps.items():
            one = of(rows).astype(np.float32)
            curves[name] = (
                metrics.deletion_auc(model, x[rows], one, classes[rows], steps=steps).aucs,
                metrics.insertion_auc(model, x[rows], one, classes[rows], steps=steps).aucs,
            )
        lines += [
            "",
            f"Deletion / insertion AUC ({steps} steps, n = {len(rows)}: every {strides[0]}th "
            f"photo), minus {against}:",
            "",
            f"| map | deletion (lower better) | minus {against} | insertion | minus {against} |",
            "|---|---|---|---|---|",
            *paired_rows(curves, base, rng.integers(0, len(rows), (rounds, len(rows)))),
        ]
    if strides[1]:
        rows = np.arange(0, len(x), strides[1])
        road = {
            name: metrics.road(model, x[rows], of(rows).astype(np.float32), classes[rows])
            for name, of in maps.items()
            if roads is None or name in roads
        }
        lines += [
            "",
            f"ROAD (noisy linear imputation, 10-90%, n = {len(rows)}: every {strides[1]}th "
            f"photo), minus {against}:",
            "",
            f"| map | MoRF (lower better) | minus {against} | LeRF (higher better) | minus "
            f"{against} |",
            "|---|---|---|---|---|",
            *paired_rows(
                {k: (r.morf.mean(axis=1), r.lerf.mean(axis=1)) for k, r in road.items()},
                base,
                rng.integers(0, len(rows), (rounds, len(rows))),
            ),
        ]
    return lines


def figure(photos: np.ndarray, boxes: list, maps: dict, path: Path, count: int = 4) -> None:
    """Score-CAM and ASC on ``count`` evenly spaced photos, with their true boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.linspace(0, len(photos) - 1, count).astype(int)
    figure_, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.6))
    for column, i in enumerate(rows):
        for row, name in enumerate(("Score-CAM", ASC)):
            ax = axes[row, column]
            ax.imshow(photos[i])
            ax.imshow(maps[name][i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            for x0, y0, x1, y1 in boxes[i]:
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="w"))
            ax.set_title(name if column == 0 else "", fontsize=8, loc="left")
            ax.axis("off")
    figure_.tight_layout()
    figure_.savefig(path, dpi=70)


if __name__ == "__main__":
    main()
