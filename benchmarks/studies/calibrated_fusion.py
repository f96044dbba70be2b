"""Issue 39, item 2: does an observation model calibrated from the measured response make the
least-squares fusion beat the plain mean of its views?

    python -m benchmarks.studies.calibrated_fusion --objects 12 --shifts 0,0:0.31,0.25

``observation_model.py`` found each view's map displaced from the object by about a third of
a view cell beyond what D predicts (the map's centre up and left of the object), and a best
sigma of about 1.2 view cells. A displacement b (x, y, in view cells: where a view cell
looks, minus where D places it) is the same in every view's own cells, so in the photo's it
is b / zoom: the views disagree by a part of a cell that D cannot explain. Calibrating D is
centring its cells' Gaussians at b (the fusion's ``cell_shift``), and moving the photo's own
map (the product's coarse map) by it.

On the pasted objects of ``resolution_test`` (same objects, offsets and pairs), from one set
of Score-CAM channel weights per image (``--max-channels``), rows for each shift of
``--shifts`` and sigma of ``--sigmas``: the default fusion, and the views' plain mean (each
view's map upsampled and pasted back, as ``zoom_study``'s row, with the same shift), each
alone and times the photo's own map (the default's product). Writes
``benchmarks/results/calibrated_fusion<--suffix>.md``.
"""

from __future__ import annotations

import argparse

import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_BOXES, DEFAULT_WEIGHTS, load_box_photos, mobilenet_v2
from benchmarks.report import RESULTS
from benchmarks.studies.resolution_test import (
    DISTANCES,
    OFFSETS,
    ORIGIN,
    canvas,
    centre_of,
    centroid,
    objects,
    pair_layout,
    peak,
    separated,
)
from benchmarks.studies.zoom_study import paste_back
from tfscorecam.core import backend
from tfscorecam.core.maps import minmax, score_cam_maps
from tfscorecam.methods.augmented.augment import moved
from tfscorecam.methods.augmented.superres import SuperResolver

SIZE, CELLS, GRID = 224, (7, 7), (28, 28)


class Variants:
    """Maps of one image for every (shift, sigma) fusion and every shift's plain mean."""

    def __init__(self, model, max_channels: int, shifts: list, sigmas: list, scales) -> None:
        self.asc = tsc.AugmentedScoreCAM(
            model, max_channels=max_channels, zoom_scales=scales, verbose=0
        )
        self.transforms = self.asc.transforms((SIZE, SIZE), CELLS)
        self.shifts = shifts
        self.resolvers = {}
        for shift in shifts:
            for sigma in sigmas:
                options = dict(self.asc.fusion, sigma=sigma, cell_shift=shift)
                self.resolvers[shift, sigma] = SuperResolver(
                    self.transforms, CELLS, (SIZE, SIZE), GRID, **options
                )

    def names(self) -> list[str]:
        rows = ["Score-CAM"]
        for product in ("", " x the photo's map"):
            rows += [f"fused, shift {s}, sigma {g}{product}" for s, g in self.resolvers]
            rows += [f"plain mean, shift {s}{product}" for s in self.shifts]
        return rows

    def __call__(self, image: np.ndarray, label: int) -> list[np.ndarray]:
        asc = self.asc
        acts, outputs = asc.forward(image[None])
        request = asc.scorings.resolve([label], None, outputs, False)
        low = asc.copy_maps(image, acts[0], request, 0, self.transforms)[0]
        coarse = score_cam_maps(low[0][None, ..., None], (SIZE, SIZE))[0, 0].numpy()
        fused = [np.maximum(r(low), 0) for r in self.resolvers.values()]
        means = [paste_back(low[None], self.transforms, shift)[0] for shift in self.shifts]
        coarses = {}
        for (shift, _), resolver in self.resolvers.items():
            coarses[shift] = backend.numpy(moved(coarse[None, None], resolver.pixel_shift))[0, 0]
        products = [m * coarses[s] for m, (s, _) in zip(fused, self.resolvers, strict=True)]
        products += [m * coarses[s] for m, s in zip(means, self.shifts, strict=True)]
        return [minmax(m).numpy() for m in (coarse, *fused, *means, *products)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--objects", type=int, default=12)
    parser.add_argument("--skip", type=int, default=0, help="objects ranked before these")
    parser.add_argument("--object-size", type=int, default=40)
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument(
        "--shifts", default="0,0:0.31,0.25", help="cell_shift x,y in cells, ':'-separated"
    )
    parser.add_argument("--sigmas", default="1,1.2")
    parser.add_argument("--zoom-scales", default="1.5,2", help="the views' magnifications")
    parser.add_argument(
        "--origin", type=int, default=ORIGIN, help="the objects' corner: this + o px"
    )
    parser.add_argument("--suffix", default="")
    args = parser.parse_args()
    shifts = [tuple(float(v) for v in s.split(",")) for s in args.shifts.split(":")]
    sigmas = [float(s) for s in args.sigmas.split(",")]

    from benchmarks.common import preprocess_mobilenet

    _, photos, labels, boxes = load_box_photos(args.boxes)
    model = mobilenet_v2(args.weights)
    found = objects(photos, labels, boxes, args.object_size)
    probe = preprocess_mobilenet(np.stack([canvas([(p, ORIGIN, ORIGIN)]) for p, _ in found]))
    seen = model.predict(probe, verbose=0)[np.arange(len(found)), [c for _, c in found]]
    order = np.argsort(seen)[::-1][args.skip : args.skip + args.objects]
    chosen = [found[i] for i in order]
    scales = tuple(float(z) for z in args.zoom_scales.split(","))
    variants = Variants(model, args.max_channels, shifts, sigmas, scales)
    names = variants.names()
    errors = np.zeros((len(names), 2, len(chosen), len(OFFSETS)))
    split = np.zeros((len(names), len(chosen), len(DISTANCES)))
    for i, (piece, label) in enumerate(chosen):
        for j, offset in enumerate(OFFSETS):
            top = args.origin + int(offset)
            image = preprocess_mobilenet(canvas([(piece, top, top)]))
            truth = centre_of(piece, top, top)
            for n, one in enumerate(variants(image, label)):
                errors[n, 0, i, j] = np.linalg.norm(peak(one) - truth)
                errors[n, 1, i, j] = np.linalg.norm(centroid(one) - truth)
        for j, distance in enumerate(DISTANCES):
            placed, centres = pair_layout(piece, distance)
            image = preprocess_mobilenet(canvas(placed))
            for n, one in enumerate(variants(image, label)):
                split[n, i, j] = separated(one, *centres)
        print(f"{i + 1}/{len(chosen)} objects", flush=True)
    lines = [
        f"{len(chosen)} objects of {args.object_size} px (ranked {args.skip + 1} to "
        f"{args.skip + len(chosen)} by MobileNetV2's score), corner at {args.origin} + o px, "
        f"{args.max_channels} channels, views zoomed {scales}; "
        "errors in px (mean over objects and the 8 offsets), pairs separated (share).",
        "",
        "| map | peak error | centroid error | "
        + " | ".join(f"pairs {d} px" for d in DISTANCES)
        + " |",
        "|---|---|---|" + "---|" * len(DISTANCES),
    ]
    for n, name in enumerate(names):
        lines.append(
            f"| {name} | {errors[n, 0].mean():.1f} | {errors[n, 1].mean():.1f} | "
            + " | ".join(f"{v:.2f}" for v in split[n].mean(axis=0))
            + " |"
        )
    path = RESULTS / f"calibrated_fusion{args.suffix}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
