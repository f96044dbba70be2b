"""Issue 39, item 2: the fusion with its observation model calibrated, against the plain mean
of the same views, on the photos with boxes.

    python -m benchmarks.studies.zoom_views --model mobilenet_v2      # the cache: forward passes
    python -m benchmarks.studies.fusion_study --model mobilenet_v2 --cell-shift 0.31,0.25

Every map comes from ``zoom_views.py``'s cache (the same Score-CAM channel weights shared by
every view, as ``zoom_study.py``). The calibrated fusion centres each view cell's Gaussian
``--cell-shift`` cells from the cell's centre, with ``--sigma`` (``observation_model.py``
measured both), and is compared, with paired 95% bootstrap intervals of MaxBoxAccV2
(``--rounds`` resamples, the threshold re-chosen in each), against Score-CAM, v0.4's default
ASC and the plain mean of the same views moved by the same shift (``zoom_study.paste_back``);
then the controls of issue 39's study: K = 1, shuffled registrations and Score-CAM^gamma.
Writes ``benchmarks/results/fusion_study_<model>.md``.
"""

from __future__ import annotations

from benchmarks.report import RESULTS, PairedBoxAccuracy
from benchmarks.studies.zoom_study import gamma_matched, load_study, plateau_share
from benchmarks.studies.zoom_views import study_parser
from tfscorecam import metrics

SCORECAM, V04, MEAN = "Score-CAM", "ASC v0.4 (multiply_coarse, sigma 1, no shift)", "plain mean"


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--cell-shift", default="0.31,0.25", help="x,y in view cells")
    parser.add_argument("--sigma", type=float, default=1.2)
    args = parser.parse_args()
    shift = tuple(float(v) for v in args.cell_shift.split(","))

    study, photos = load_study(args)
    channels = {"max_channels": args.max_channels}
    calibrated = {"cell_shift": shift, "sigma": args.sigma, **channels}
    new = {"multiply_coarse": False, **calibrated}
    rows = {  # name: (map, the plain mean it is paired with)
        SCORECAM: (study.scorecam(), None),
        V04: (study.asc(channels), MEAN),
        MEAN: (study.pasted(channels), None),
        "plain mean, shifted": (study.pasted(calibrated), None),
    }
    rows["calibrated fusion (shift, sigma), no product"] = (study.asc(new), "plain mean, shifted")
    rows["calibrated, times the photo's map"] = (study.asc(calibrated), "plain mean, shifted")
    rows["calibrated, isotropic TV, no product"] = (
        study.asc({"prior": "isotropic_tv", **new}),
        "plain mean, shifted",
    )
    rows["shift only (sigma 1), no product"] = (
        study.asc({**new, "sigma": 1.0}),
        "plain mean, shifted",
    )
    rows["shift only (sigma 1), times the photo's map"] = (
        study.asc({**calibrated, "sigma": 1.0}),
        "plain mean, shifted",
    )
    rows["sigma only (no shift), no product"] = (
        study.asc({**new, "cell_shift": (0.0, 0.0)}),
        MEAN,
    )
    rows["v0.4 without the product"] = (study.asc({"multiply_coarse": False, **channels}), MEAN)
    rows["calibrated, K = 1"] = (study.asc({"num_augmentations": 1, **new}), None)
    rows["calibrated, shuffled registrations"] = (study.asc(new, shuffle=True), None)
    rows["Score-CAM^gamma matched to the calibrated fusion"] = (
        gamma_matched(rows[SCORECAM][0], rows["calibrated fusion (shift, sigma), no product"][0]),
        None,
    )
    write(args, photos.boxes, rows, shift)


def write(args, boxes: list, rows: dict, shift: tuple) -> None:
    """The table (markdown)."""
    n = len(boxes)
    boxed = PairedBoxAccuracy({k: m for k, (m, _) in rows.items()}, boxes, args.rounds)

    lines = [
        f"n = {n} photos, {args.model}, true class, {args.max_channels} channels shared by every "
        f"view; calibrated: cell_shift {shift} view cells, sigma {args.sigma}; "
        f"{args.rounds} paired bootstrap resamples (95% intervals).",
        "",
        "| map | MaxBoxAccV2 | minus Score-CAM's | minus v0.4's | minus its plain mean "
        "| pointing (argmax) | EPG | plateau share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (one, mean) in rows.items():
        pointing = metrics.argmax_pointing_game(one, boxes).mean()
        energy = metrics.energy_pointing_game(one, boxes).mean()
        lines.append(
            f"| {name} | {boxed.value(name):.3f} | {boxed.minus(name, SCORECAM)} | "
            f"{boxed.minus(name, V04)} | {boxed.minus(name, mean)} | {pointing:.3f} | "
            f"{energy:.3f} | {plateau_share(one):.2f} |"
        )
    path = RESULTS / f"fusion_study_{args.model}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
