"""Issue 39: which zoomed views the default should fuse, on the photos with boxes.

    python -m benchmarks.studies.zoom_views --model mobilenet_v2      # the cache: forward passes
    python -m benchmarks.studies.view_sets --model mobilenet_v2 --sets 1.5,2:2,3:3,4:2,3,4:3

For each set of zoom scales of ``--sets`` (each among ``zoom_views.SCALES``, the cache's), the
maps of ``AugmentedScoreCAM(zoom_scales=...)`` (its default crops, ``cell_shift="auto"``) from
``zoom_views.py``'s cache, and the same views' plain mean times the photo's map (the control
for what the least-squares fusion adds: the same views, the same product). MaxBoxAccV2 with
paired 95% bootstrap intervals (``--rounds`` resamples) against Score-CAM, against the first
set and against the set's own mean. Writes ``benchmarks/results/view_sets_<model>.md``.
"""

from __future__ import annotations

from benchmarks.report import RESULTS, PairedBoxAccuracy
from benchmarks.studies.zoom_study import load_study
from benchmarks.studies.zoom_views import study_parser


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--sets", default="1.5,2:3,4", help="zoom scales, sets ':'-separated")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    sets = [tuple(float(v) for v in text.split(",")) for text in args.sets.split(":")]

    study, photos = load_study(args)
    boxes = photos.boxes
    channels = {"max_channels": args.max_channels}
    maps = {"Score-CAM": study.scorecam()}
    own_mean = {}  # each set's fused map: its views' plain mean x the photo's map
    for scales in sets:
        options = {"zoom_scales": scales, **channels}
        name = f"zoom_scales {scales} ({len(study.views(study.cam(options)))} views)"
        own_mean[name] = f"{name}, plain mean x the photo's map"
        maps[name] = study.asc(options)
        maps[own_mean[name]] = study.mean_times_photo(options)
    fused = list(own_mean)
    n = len(boxes)
    boxed = PairedBoxAccuracy(maps, boxes, args.rounds)

    lines = [
        f"{args.model}, {n} photos, true class, {args.max_channels} channels shared by every "
        f"view, cell_shift 'auto'; {args.rounds} paired bootstrap resamples (95% intervals).",
        "",
        f"| map | MaxBoxAccV2 | minus Score-CAM's | minus {fused[0]}'s | minus its own mean's |",
        "|---|---|---|---|---|",
    ]
    for name in maps:
        first = fused[0] if name != "Score-CAM" else None
        lines.append(
            f"| {name} | {boxed.value(name):.3f} | {boxed.minus(name, 'Score-CAM')} | "
            f"{boxed.minus(name, first)} | {boxed.minus(name, own_mean.get(name))} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"view_sets_{args.model}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
