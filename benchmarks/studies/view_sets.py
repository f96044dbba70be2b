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

import numpy as np

from benchmarks.common import load_box_photos
from benchmarks.report import RESULTS, interval
from benchmarks.studies.zoom_study import SIZE, Study
from benchmarks.studies.zoom_views import cache_path, study_model, study_parser
from tfscorecam import metrics
from tfscorecam.core import backend
from tfscorecam.core.maps import minmax
from tfscorecam.methods.augmented.asc import AugmentedScoreCAM, moved


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--sets", default="1.5,2:3,4", help="zoom scales, sets ':'-separated")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    sets = [tuple(float(v) for v in text.split(",")) for text in args.sets.split(":")]

    cache = dict(np.load(cache_path(args.model, args.max_channels)))
    photo = cache.get("photo", np.arange(len(cache["low"])))
    _, _, _, boxes = load_box_photos(args.boxes)
    boxes = [boxes[i] for i in photo]
    model, _ = study_model(args.model, args.weights)
    study = Study(model, cache)
    channels = {"max_channels": args.max_channels}
    maps = {"Score-CAM": study.scorecam()}
    fused, means = [], []
    for scales in sets:
        options = {"zoom_scales": scales, **channels}
        cam = AugmentedScoreCAM(model, verbose=0, **options)
        shift = cam.resolver((SIZE, SIZE), (7, 7)).pixel_shift
        coarse = backend.numpy(moved(maps["Score-CAM"][:, None], shift))[:, 0]
        name = f"zoom_scales {scales} ({len(study.views(cam))} views)"
        maps[name] = study.asc(options)
        maps[f"{name}, plain mean x the photo's map"] = minmax(
            study.pasted(options) * coarse
        ).numpy()
        fused.append(name)
        means.append(f"{name}, plain mean x the photo's map")
    n = len(boxes)
    resamples = np.random.default_rng(0).integers(0, n, (args.rounds, n))
    accuracy = {k: metrics.max_box_accuracy(m, boxes) for k, m in maps.items()}
    scores = {k: np.array([a.score(r) for r in resamples]) for k, a in accuracy.items()}

    def minus(name: str, other: str) -> str:
        point = accuracy[name].value - accuracy[other].value
        return interval(point, scores[name] - scores[other])

    lines = [
        f"{args.model}, {n} photos, true class, {args.max_channels} channels shared by every "
        f"view, cell_shift 'auto'; {args.rounds} paired bootstrap resamples (95% intervals).",
        "",
        f"| map | MaxBoxAccV2 | minus Score-CAM's | minus {fused[0]}'s | minus its own mean's |",
        "|---|---|---|---|---|",
    ]
    for name in maps:
        own = means[fused.index(name)] if name in fused else None
        lines.append(
            f"| {name} | {accuracy[name].value:.3f} | "
            f"{minus(name, 'Score-CAM') if name != 'Score-CAM' else ''} | "
            f"{minus(name, fused[0]) if name != fused[0] and name != 'Score-CAM' else ''} | "
            f"{minus(name, own) if own else ''} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"view_sets_{args.model}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
