"""Issue 18's fallback: resolution from inside the model (Poly-CAM) against the zoomed views.

    python -m benchmarks.studies.zoom_views --model mobilenet_v2       # Score-CAM and ASC's views
    python -m benchmarks.studies.polycam_study --boxes ../shared/data/imagenet-val-boxes

Poly-CAM (Englebert et al., ICPR 2022; PCAM+): a Score-CAM map at each of the model's
resolutions, S_l = ReLU(sum_c w_c A_c) with Score-CAM weights over that layer's channels
(the class probability of the photo masked by each channel); from the deepest level down,
M_l = LNorm(S_l) * up(M_{l+1}), where LNorm divides S_l by its own local mean on the coarser
grid (bilinear down then up, as the official code). The 7 x 7 level is Score-CAM's map from
``zoom_views.py``'s cache (the same ``--max-channels`` weights); the finer levels use every
channel of MobileNetV2's block outputs (``LEVELS``: 96 + 32 + 24 + 16 = 168 forward passes).
Their low-resolution maps are cached in ``results/zoom_cache/polycam_<channels>.npz``.

This is issue 18's sketch, kept as it was measured: Score-CAM's min-max masks and its 7 x 7
map; ``tsc.PolyCAM`` is the method as the official code computes it (percentile masks, every
channel of every level), and ``resolution_test`` and ``quality.localisation`` measure that.

Rows: Score-CAM, its gamma control matched to Poly-CAM's mean, the default ASC, Poly-CAM down
to each level, and ASC x Poly-CAM's finest refinement; MaxBoxAccV2 with paired 95% intervals
(``--rounds`` resamples) and the argmax pointing game. Writes
``benchmarks/results/polycam_study.md``.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

import tfscorecam as tsc
from benchmarks.report import RESULTS, PairedBoxAccuracy
from benchmarks.studies.zoom_study import ASC, gamma_matched, load_study
from benchmarks.studies.zoom_views import (
    CACHE,
    photo_weights,
    study_parser,
)
from tfscorecam import metrics
from tfscorecam.core.maps import minmax, weighted_sum

SIZE = 224
LEVELS = ("block_12_add", "block_5_add", "block_2_add", "expanded_conv_project_BN")


def level_maps(cams: list[tsc.ScoreCAM], image: np.ndarray, label: int) -> list[np.ndarray]:
    """S_l (h_l, w_l) of each finer level: ReLU of its Score-CAM weighted sum."""
    out = []
    for cam in cams:
        acts, weights = photo_weights(cam, image, label)
        out.append(np.maximum(weighted_sum(acts, weights)[..., 0], 0.0).astype(np.float32))
    return out


def resize(one: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D map resized bilinearly without antialiasing, as the official code's
    ``F.interpolate`` (``interfaces.images.resize`` antialiases, which changes LNorm's local
    means)."""
    return tf.image.resize(one[..., None], shape, "bilinear").numpy()[..., 0]


def polycam(levels: list[np.ndarray]) -> list[np.ndarray]:
    """Poly-CAM's refinement from the coarsest map down: M at each level, upsampled to SIZE."""
    current = levels[0].astype(np.float64)
    out = [resize(current, (SIZE, SIZE))]
    for finer in levels[1:]:
        local = resize(resize(finer, current.shape), finer.shape)
        current = np.maximum(finer / np.maximum(local, 1e-12) * resize(current, finer.shape), 0)
        out.append(resize(current, (SIZE, SIZE)))
    return out


def cached_levels(model, x, labels, photo: np.ndarray, channels: int) -> list[np.ndarray]:
    """The finer levels' maps of every photo, from (and added to) the cache."""
    path = CACHE / f"polycam_c{channels}.npz"
    rows = dict(np.load(path)) if path.is_file() else {}
    if len(rows.get("photo", [])) < len(x):
        cams = [tsc.ScoreCAM(model, layer, verbose=0) for layer in LEVELS]
        done = len(rows.get("photo", []))
        lists = {k: list(v) for k, v in rows.items()}
        start = time.perf_counter()
        for i in range(done, len(x)):
            lists.setdefault("photo", []).append(photo[i])
            for name, one in zip(LEVELS, level_maps(cams, x[i], int(labels[i])), strict=True):
                lists.setdefault(name, []).append(one)
            if (i + 1) % 10 == 0 or i + 1 == len(x):
                rows = {k: np.stack(v) for k, v in lists.items()}
                np.savez(path, **rows)
                rate = (time.perf_counter() - start) / (i + 1 - done)
                print(f"{i + 1}/{len(x)} photos, {rate:.1f} s each", flush=True)
    if not np.array_equal(rows["photo"][: len(x)], photo):
        raise SystemExit(f"{path} holds other photos than the zoom cache: delete it")
    return [rows[name][: len(x)] for name in LEVELS]


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    args = parser.parse_args()
    if args.model != "mobilenet_v2":
        raise SystemExit("the levels are MobileNetV2's layers")

    study, (photo, _, x, labels, boxes) = load_study(args)
    model = study.model
    finer = cached_levels(model, x, labels, photo, args.max_channels)

    steps = [[] for _ in range(len(LEVELS) + 1)]
    for i in range(len(x)):
        levels = [study.low[i, 0]] + [level[i] for level in finer]
        for step, one in zip(steps, polycam(levels), strict=True):
            step.append(minmax(one).numpy())
    poly = [np.stack(step) for step in steps]
    asc = study.asc({"max_channels": args.max_channels})
    sizes = [f"{level.shape[1]}x{level.shape[2]}" for level in finer]
    scorecam = study.scorecam()
    maps = {
        "Score-CAM": scorecam,
        "Score-CAM^gamma (matched to Poly-CAM's mean)": gamma_matched(scorecam, poly[-1]),
        ASC: asc,
        **{f"Poly-CAM down to {size}": m for size, m in zip(sizes, poly[1:], strict=True)},
        "ASC x Poly-CAM's refinement (poly / Score-CAM)": minmax(
            asc * poly[-1] / np.maximum(poly[0], 1e-6)
        ).numpy(),
    }
    write(args, maps, boxes, len(x))


def write(args, maps: dict, boxes: list, n: int) -> None:
    """The table (markdown)."""
    boxed = PairedBoxAccuracy(maps, boxes, args.rounds)
    lines = [
        f"MobileNetV2, {n} box photos, Score-CAM weights over {args.max_channels} channels at "
        f"7x7 and all channels at the finer levels; {args.rounds} paired resamples.",
        "",
        "| map | MaxBoxAccV2 | minus Score-CAM | minus ASC | pointing game |",
        "|---|---|---|---|---|",
    ]
    for name, one in maps.items():
        against = [boxed.minus(name, other) or "-" for other in ("Score-CAM", ASC)]
        pointing = float(np.mean(metrics.argmax_pointing_game(one, boxes)))
        lines.append(
            f"| {name} | {boxed.value(name):.3f} | {against[0]} | {against[1]} | {pointing:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / "polycam_study.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
