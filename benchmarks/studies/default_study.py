"""Issue 39, item 4: Augmented Score-CAM's default (views zoomed 3 and 4 times,
``cell_shift="auto"``) against v0.4's, its controls, Score-CAM and Poly-CAM, on the photos
with boxes.

    python -m benchmarks.studies.zoom_views --model mobilenet_v2      # the cache: forward passes
    python -m benchmarks.studies.default_study --model mobilenet_v2

Every ASC row comes from ``zoom_views.py``'s cache (the same Score-CAM channel weights shared
by every view, as ``zoom_study.py``): v0.4's default (views at 1.5x and 2x,
``cell_shift=(0, 0)``), the same views with the probe's ``cell_shift``, today's default, its
views' plain mean (``zoom_study.paste_back``, moved by the same shift) alone and times the
photo's map (the default's product: the control for what the least-squares fusion adds), the
default without the product, K = 1, shuffled registrations, and the default with each
``cell_shift`` of ``--shifts``. Score-CAM^gamma is matched to the default. Poly-CAM (PCAM+,
``--max-channels`` per level) runs on every ``--polycam-stride``-th photo (kept in
``zoom_cache/polycam_<model>_c<channels>.npz``, so a run resumes), and is compared with the
others on those photos. MaxBoxAccV2 with paired 95% bootstrap intervals
(``--rounds`` resamples, the threshold re-chosen in each); deletion / insertion (25 steps) on
every ``--causal-stride``-th photo and ROAD (noisy linear imputation, 10-90%) on every
``--road-stride``-th, both strides multiples of ``--polycam-stride``. Writes
``benchmarks/results/default_study_<model>.md``.
"""

from __future__ import annotations

import time

import numpy as np

import tfscorecam as tsc
from benchmarks.report import RESULTS, PairedBoxAccuracy
from benchmarks.studies.zoom_study import SIZE, causal_tables, gamma_matched, load_study
from benchmarks.studies.zoom_views import CACHE, study_parser
from tfscorecam import metrics

SCORECAM, POLYCAM, V04, SHIFTED, DEFAULT, MEAN, MEAN_PRODUCT = (
    "Score-CAM",
    "Poly-CAM (PCAM+)",
    "ASC v0.4 (views at 1.5x and 2x, cell_shift (0, 0))",
    "views at 1.5x and 2x, cell_shift 'auto'",
    "ASC default (views at 3x and 4x, cell_shift 'auto')",
    "the default's views, plain mean",
    "the default's views, plain mean x the photo's map",
)
OLD_VIEWS = {"zoom_scales": (1.5, 2.0)}  # v0.4's
CAUSAL = (SCORECAM, POLYCAM, V04, DEFAULT, MEAN, MEAN_PRODUCT)


def polycam_maps(model, x: np.ndarray, labels: np.ndarray, ids: np.ndarray, path) -> np.ndarray:
    """Poly-CAM's maps of ``x`` (and ``labels``), whose photos are ``ids``, from the cache at
    ``path``, computing (and saving, photo by photo) those it lacks."""
    done = dict(np.load(path)) if path.is_file() else {"photo": np.zeros(0, int)}
    maps = {int(p): m for p, m in zip(done["photo"], done.get("maps", []), strict=False)}
    cam = tsc.PolyCAM(model, max_channels=int(path.stem.rsplit("_c", 1)[1]), verbose=0)
    for row, key in enumerate(ids.tolist()):
        if key not in maps:
            start = time.perf_counter()
            maps[key] = cam(x[row : row + 1], class_index=int(labels[row]))[0]
            print(f"Poly-CAM photo {key}: {time.perf_counter() - start:.1f} s", flush=True)
            keys = sorted(maps)
            np.savez(path, photo=np.array(keys), maps=np.stack([maps[k] for k in keys]))
    return np.stack([maps[key] for key in ids.tolist()])


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--shifts", default="", help="cell_shift x,y of more rows, ':'-separated")
    parser.add_argument("--polycam-stride", type=int, default=4, help="0: no Poly-CAM")
    parser.add_argument("--causal-stride", type=int, default=4, help="0: no deletion/insertion")
    parser.add_argument("--road-stride", type=int, default=8, help="0: no ROAD")
    args = parser.parse_args()
    for stride in (args.causal_stride, args.road_stride):
        if args.polycam_stride and stride % args.polycam_stride:
            raise SystemExit("--causal-stride and --road-stride: multiples of --polycam-stride")

    study, (photo, _, x, labels, boxes) = load_study(args)
    model = study.model
    start = time.perf_counter()
    subset, polycam = np.arange(len(x)), None
    if args.polycam_stride:
        subset = np.arange(0, len(x), args.polycam_stride)
        path = CACHE / f"polycam_{args.model}_c{args.max_channels}.npz"
        polycam = polycam_maps(model, x[subset], labels[subset], photo[subset], path)
    channels = {"max_channels": args.max_channels}
    shift = study.cam(channels).shift_for((SIZE, SIZE), (7, 7))
    maps = {
        SCORECAM: study.scorecam(),
        V04: study.asc({"cell_shift": (0.0, 0.0), **OLD_VIEWS, **channels}),
        SHIFTED: study.asc({**OLD_VIEWS, **channels}),
        DEFAULT: study.asc(channels),
        MEAN: study.pasted(channels),
        "K = 1: the photo alone, same fusion and product": study.asc(
            {"num_augmentations": 1, **channels}
        ),
        "shuffled registrations": study.asc(channels, shuffle=True),
    }
    maps[MEAN_PRODUCT] = study.mean_times_photo(channels)
    maps["the default without the product (multiply_coarse=False)"] = study.asc(
        {"multiply_coarse": False, **channels}
    )
    maps["Score-CAM^gamma matched to the default"] = gamma_matched(maps[SCORECAM], maps[DEFAULT])
    for text in filter(None, args.shifts.split(":")):
        given = tuple(float(v) for v in text.split(","))
        maps[f"ASC, cell_shift {given}"] = study.asc({"cell_shift": given, **channels})
    if polycam is not None:
        maps[POLYCAM] = polycam
    print(f"maps: {time.perf_counter() - start:.0f} s", flush=True)
    write(args, model, x, labels, boxes, maps, subset, shift)


def box_table(names: list, maps: dict, boxes: list, rows: np.ndarray, rounds: int) -> list:
    """MaxBoxAccV2 of ``names`` on photos ``rows`` (Poly-CAM's maps are those rows already),
    with paired intervals against Score-CAM, v0.4 and the default."""
    chosen = {k: maps[k] if k == POLYCAM else maps[k][rows] for k in names}
    truth = [boxes[i] for i in rows]
    boxed = PairedBoxAccuracy(chosen, truth, rounds)
    lines = [
        "| map | MaxBoxAccV2 | minus Score-CAM's | minus v0.4's | minus the default's "
        "| pointing (argmax) | EPG |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, one in chosen.items():
        lines.append(
            f"| {name} | {boxed.value(name):.3f} | {boxed.minus(name, SCORECAM)} | "
            f"{boxed.minus(name, V04)} | {boxed.minus(name, DEFAULT)} | "
            f"{metrics.argmax_pointing_game(one, truth).mean():.3f} | "
            f"{metrics.energy_pointing_game(one, truth).mean():.3f} |"
        )
    return lines


def write(args, model, x, labels, boxes, maps: dict, subset: np.ndarray, shift) -> None:
    """The tables (markdown)."""
    n = len(x)
    everyone = [k for k in maps if k != POLYCAM]
    lines = [
        f"{args.model}, true class, {args.max_channels} channels shared by every view (Poly-CAM: "
        f"per level); the probe's cell_shift {shift}; {args.rounds} paired bootstrap resamples "
        "(95% intervals).",
        "",
        f"All {n} photos:",
        "",
        *box_table(everyone, maps, boxes, np.arange(n), args.rounds),
    ]
    if POLYCAM in maps:
        lines += [
            "",
            f"Every {args.polycam_stride}th photo (n = {len(subset)}), with Poly-CAM:",
            "",
            *box_table(list(CAUSAL), maps, boxes, subset, args.rounds),
        ]
    step = args.polycam_stride or 1

    def on(name: str):
        """Map ``name``'s maps of photos ``rows`` (Poly-CAM's: every ``step``-th photo's)."""
        return lambda rows: maps[name][rows // step] if name == POLYCAM else maps[name][rows]

    strides = (args.causal_stride, args.road_stride)
    causal = {name: on(name) for name in CAUSAL if name in maps}
    resampling = (np.random.default_rng(0), args.rounds)
    lines += causal_tables(
        model, x, labels, causal, (DEFAULT, "the default's"), strides, resampling, steps=25
    )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"default_study_{args.model}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
