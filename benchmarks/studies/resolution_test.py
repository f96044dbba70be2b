"""A resolution test with a known answer: small objects pasted at known sub-cell offsets.

    python -m benchmarks.studies.resolution_test --boxes ../shared/data/imagenet-val-boxes

Objects are cut out of the localisation photos by their (single) box, scaled so that their
longer side is ``--object-size`` px (24-40) and pasted on a neutral grey 224 px canvas
(MobileNetV2's input 0). The ``--objects`` objects kept are those MobileNetV2 scores highest
for their class when pasted once (a map of an object the model cannot see locates nothing).

1. Offsets: each object is pasted with its top-left corner at 96 + o px on both axes, o = 0,
   4, ..., 28 (every sub-cell phase of MobileNetV2's 32-px cells). The error of the map's peak
   (argmax) and of its centroid (the centre of mass of the pixels above half the peak) against
   the object's centre, per offset: a map limited to the 7x7 grid shows a 32-px periodic error;
   and the share of these canvases whose peak falls on the pasted object.
2. Separation: two copies of one object side by side, centres ``d`` px apart; the pair is
   separated when the map dips between them, below ``SEPARATED`` times the lower of its values
   at the two centres (along the row through them); reported over all pairs, then apart for
   pairs whose objects leave a gap and pairs whose objects touch (an object as wide as the
   distance: no map of the objects' extent dips between those).

Maps (issue 39, item 4's rows), every ASC row and Score-CAM from the same channel weights
(computed once per image over ``--max-channels`` channels, as ``zoom_views.py``): Score-CAM,
Score-CAM^gamma (gamma matched to the default's mean: the sharpening control), v0.4's ASC
(views at 1.5x and 2x, ``cell_shift=(0, 0)``), the default ASC, the default without the
product, its views' plain mean (``zoom_study.paste_back``) times the photo's map, K = 1 (the
photo alone through the same fusion and product), and ``tsc.PolyCAM`` (PCAM+, its five
levels down to MobileNetV2's 112 x 112, ``--max-channels`` each; ``--no-polycam`` leaves it
out). Writes ``benchmarks/results/resolution_test<--suffix>.md`` and ``.png``.
"""

from __future__ import annotations

import argparse

import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_BOXES, DEFAULT_WEIGHTS, load_box_photos, mobilenet_v2
from benchmarks.report import RESULTS
from benchmarks.studies.zoom_study import gamma_matched, paste_back
from tfscorecam.core import backend
from tfscorecam.core.maps import minmax, score_cam_maps
from tfscorecam.interfaces.images import resize
from tfscorecam.methods.augmented.augment import moved

OFFSETS = np.arange(0, 32, 4)
DISTANCES = (40, 48, 64, 80)
ORIGIN = 96
SEPARATED = 0.8


def objects(photos, labels, boxes, size: int) -> list[tuple[np.ndarray, int]]:
    """(object (h, w, 3) float in [0, 255] with its longer side ``size``, class) per photo
    with one box."""
    out = []
    for photo, label, image_boxes in zip(photos, labels, boxes, strict=True):
        if len(image_boxes) != 1:
            continue
        x0, y0, x1, y1 = np.round(image_boxes[0]).astype(int)
        crop = photo[y0:y1, x0:x1].astype(np.float32)
        if min(crop.shape[:2]) < 8:
            continue
        scale = size / max(crop.shape[:2])
        shape = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
        out.append((resize(crop, shape), int(label)))
    return out


def footprint(pieces: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
    """1 on the pasted pieces, 0 elsewhere (224 x 224): a map of the objects' extent, exact
    at any resolution."""
    mask = np.zeros((224, 224))
    for piece, top, left in pieces:
        mask[top : top + piece.shape[0], left : left + piece.shape[1]] = 1.0
    return mask


def canvas(pieces: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
    """A grey 224 px photo (uint8 range) with each (object, top, left) pasted on it."""
    image = np.full((224, 224, 3), 127.5, np.float32)
    for piece, top, left in pieces:
        image[top : top + piece.shape[0], left : left + piece.shape[1]] = piece
    return image


def pair_layout(piece: np.ndarray, distance: int) -> tuple[list, list]:
    """Two copies of ``piece`` side by side about the canvas's middle, their centres
    ``distance`` px apart: the (piece, top, left) of each for ``canvas``, and their centres."""
    top = 112 - piece.shape[0] // 2
    first = 112 - distance // 2 - piece.shape[1] // 2
    lefts = (first, first + distance)
    return [(piece, top, x) for x in lefts], [centre_of(piece, top, x) for x in lefts]


def centre_of(piece: np.ndarray, top: float, left: float) -> np.ndarray:
    """(x, y) of the centre of a piece pasted at (top, left), in pixels."""
    return np.array([left + piece.shape[1] / 2, top + piece.shape[0] / 2])


def peak(one: np.ndarray) -> np.ndarray:
    """(x, y) of the map's maximum (the mean of tied pixels), at pixel centres."""
    rows, cols = np.nonzero(one == one.max())
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


def inside(point: np.ndarray, piece: np.ndarray, top: int, left: int) -> bool:
    """Whether (x, y) falls on the piece pasted at (top, left)."""
    x, y = point
    return bool(left <= x < left + piece.shape[1] and top <= y < top + piece.shape[0])


def centroid(one: np.ndarray) -> np.ndarray:
    """(x, y) of the centre of mass of the pixels above half the maximum."""
    weights = np.where(one >= one.max() / 2, one, 0.0)
    rows, cols = np.mgrid[0 : one.shape[0], 0 : one.shape[1]] + 0.5
    return np.array([(weights * cols).sum(), (weights * rows).sum()]) / weights.sum()


def separated(one: np.ndarray, left: np.ndarray, right: np.ndarray) -> bool:
    """Whether the map dips between two centres (x, y) along the row through them."""
    row = one[int(left[1])]
    a, b = int(left[0]), int(right[0])
    return bool(row[a : b + 1].min() < SEPARATED * min(row[a], row[b]))


NAMES = (
    "Score-CAM",
    "Score-CAM^gamma matched to the default",
    "ASC v0.4",
    "ASC default",
    "the default without the product",
    "the default's views, plain mean x the photo's map",
    "K = 1: the photo alone, same fusion and product",
    "Poly-CAM",
)
SHOWN = ("Score-CAM", "ASC default", "Poly-CAM")  # the rows the figure draws


class Maps:
    """Every row of ``NAMES`` for one image: the ASC rows and Score-CAM from one set of channel
    weights (the views' maps computed once, the default's views including v0.4's), Poly-CAM
    (PCAM+, each level at ``max_channels``) unless ``polycam`` is False."""

    def __init__(self, model, max_channels: int, polycam: bool = True) -> None:
        self.asc = tsc.AugmentedScoreCAM(model, max_channels=max_channels, verbose=0)
        self.v04 = tsc.AugmentedScoreCAM(
            model, zoom_scales=(1.5, 2.0), cell_shift=(0.0, 0.0), max_channels=max_channels
        )  # v0.4's views and fusion
        self.alone = tsc.AugmentedScoreCAM(
            model, num_augmentations=1, max_channels=max_channels, verbose=0
        )
        self.poly = tsc.PolyCAM(model, max_channels=max_channels, verbose=0) if polycam else None

    def names(self) -> tuple[str, ...]:
        return NAMES if self.poly is not None else NAMES[:-1]

    def __call__(self, image: np.ndarray, label: int) -> tuple[np.ndarray, ...]:
        asc, size = self.asc, image.shape[:2]
        acts, outputs = asc.forward(image[None])
        request = asc.scorings.resolve([label], None, outputs, False)
        resolver = asc.resolver(size, acts.shape[1:3])
        old = self.v04.resolver(size, acts.shape[1:3])
        views = np.concatenate([resolver.transforms, old.transforms])
        low = asc.copy_maps(image, acts[0], request, 0, views)[0]
        mine, theirs = low[: len(resolver.transforms)], low[len(resolver.transforms) :]
        scorecam = minmax(score_cam_maps(mine[0][None, ..., None], size)[0, 0]).numpy()
        coarse = backend.numpy(moved(scorecam[None, None], resolver.pixel_shift))[0, 0]
        default = minmax(asc.fuse(resolver, mine)).numpy()
        rows = [
            scorecam,
            gamma_matched(scorecam[None], default[None])[0],
            self.v04.fuse(old, theirs),
            default,
            np.maximum(resolver(mine), 0.0),
            paste_back(mine[None], resolver.transforms, resolver.cell_shift)[0] * coarse,
            self.alone.fuse(self.alone.resolver(size, acts.shape[1:3]), mine[:1]),
        ]
        if self.poly is not None:
            rows.append(self.poly(image, label))
        return tuple(minmax(m).numpy() for m in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--objects", type=int, default=12)
    parser.add_argument("--object-size", type=int, default=40)
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--suffix", default="", help="added to the output files' names")
    parser.add_argument("--no-polycam", action="store_true", help="leave Poly-CAM's row out")
    args = parser.parse_args()

    from benchmarks.common import preprocess_mobilenet

    _, photos, labels, boxes = load_box_photos(args.boxes)
    model = mobilenet_v2(args.weights)
    found = objects(photos, labels, boxes, args.object_size)
    probe = preprocess_mobilenet(
        np.stack([canvas([(piece, ORIGIN, ORIGIN)]) for piece, _ in found])
    )
    probabilities = model.predict(probe, verbose=0)
    seen = [probabilities[i, label] for i, (_, label) in enumerate(found)]
    keep = np.argsort(seen)[::-1][: args.objects]
    chosen = [found[i] for i in keep]
    maps = Maps(model, args.max_channels, polycam=not args.no_polycam)
    names = maps.names()
    shown = [names.index(name) for name in SHOWN if name in names]

    errors = {name: np.zeros((2, len(chosen), len(OFFSETS))) for name in names}
    on_object = {name: np.zeros((len(chosen), len(OFFSETS)), bool) for name in names}
    split = {name: np.zeros((len(chosen), len(DISTANCES))) for name in names}
    gap = np.zeros((len(chosen), len(DISTANCES)), bool)  # the pair's objects do not touch
    examples = []
    for i, (piece, label) in enumerate(chosen):
        for j, offset in enumerate(OFFSETS):
            top = left = ORIGIN + int(offset)
            image = preprocess_mobilenet(canvas([(piece, top, left)]))
            truth = centre_of(piece, top, left)
            for name, one in zip(names, maps(image, label), strict=True):
                highest = peak(one)
                errors[name][0, i, j] = np.linalg.norm(highest - truth)
                on_object[name][i, j] = inside(highest, piece, top, left)
                errors[name][1, i, j] = np.linalg.norm(centroid(one) - truth)
        for j, distance in enumerate(DISTANCES):
            placed, centres = pair_layout(piece, distance)
            gap[i, j] = separated(footprint(placed), *centres)
            image = preprocess_mobilenet(canvas(placed))
            pair = maps(image, label)
            for name, one in zip(names, pair, strict=True):
                split[name][i, j] = separated(one, *centres)
            if i < 3 and distance == DISTANCES[1]:
                examples.append((canvas(placed), *(pair[k] for k in shown)))
        print(f"{i + 1}/{len(chosen)} objects", flush=True)
    write(errors, on_object, (split, gap), examples, len(chosen), args)


def write(errors: dict, on_object: dict, pairs: tuple, examples: list, count: int, args) -> None:
    """The tables (markdown) and the plot. ``pairs``: each map's pairs separated (objects x
    distances), and which pairs' objects leave a gap between them."""
    split, gap = pairs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        f"{count} objects ({args.object_size} px, the {count} MobileNetV2 scores highest of "
        f"the single-box localisation photos), {args.max_channels} channels, MobileNetV2.",
        "",
        "| offset (px) | " + " | ".join(str(o) for o in OFFSETS) + " | mean |",
        "|---|" + "---|" * (len(OFFSETS) + 1),
    ]
    for name, table in errors.items():
        for k, what in enumerate(("peak", "centroid")):
            per_offset = table[k].mean(axis=0)
            lines.append(
                f"| {name} {what} error (px) | "
                + " | ".join(f"{e:.1f}" for e in per_offset)
                + f" | {table[k].mean():.1f} |"
            )
    scorecam = errors["Score-CAM"][0].mean()
    lines += [
        "",
        "Mean errors (peak error as a share of Score-CAM's), the share of single-object "
        f"canvases ({count} objects x {len(OFFSETS)} offsets) whose peak is on the object, and "
        f"pairs separated (a dip below {SEPARATED} of the lower centre), share of {count} "
        "objects:",
        "",
        "| map | peak error (px) | centroid error (px) | peak on the object | "
        + " | ".join(f"pairs {d} px" for d in DISTANCES)
        + " |",
        "|---|---|---|---|" + "---|" * len(DISTANCES),
    ]
    for name, table in split.items():
        peak_error, centroid_error = errors[name][0].mean(), errors[name][1].mean()
        lines.append(
            f"| {name} | {peak_error:.1f} ({peak_error / scorecam:.2f}x) | {centroid_error:.1f} | "
            f"{on_object[name].mean():.2f} | "
            + " | ".join(f"{v:.2f}" for v in table.mean(axis=0))
            + " |"
        )
    lines += [
        "",
        "Pairs separated among those whose objects leave a gap between them (the rest touch: "
        "the objects' own footprint, as a map, does not dip between them); pairs with a gap "
        "per distance: "
        + ", ".join(f"{d} px {n}" for d, n in zip(DISTANCES, gap.sum(axis=0), strict=True))
        + ":",
        "",
        "| map | " + " | ".join(f"{d} px, gap | {d} px, touching" for d in DISTANCES) + " |",
        "|---|" + "---|---|" * len(DISTANCES),
    ]
    for name, table in split.items():
        cells = []
        for j in range(len(DISTANCES)):
            for among in (gap[:, j], ~gap[:, j]):
                cells.append(f"{table[among, j].mean():.2f}" if among.any() else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (RESULTS / f"resolution_test{args.suffix}.md").write_text(text)
    print(text)

    figure, axes = plt.subplots(1, 1 + len(examples), figsize=(4 + 1.8 * len(examples), 4.2))
    plot = axes[0] if len(examples) else axes
    drawn = [name for name in SHOWN if name in errors]
    for name, style in zip(drawn, ("o-", "s-", "^-"), strict=False):
        plot.plot(OFFSETS, errors[name][0].mean(axis=0), style, label=f"{name} peak")
        plot.plot(OFFSETS, errors[name][1].mean(axis=0), style, alpha=0.5, label=f"{name} centroid")
    plot.set_xlabel("object offset within a 32-px cell (px)")
    plot.set_ylabel(f"mean error over {count} objects (px)")
    plot.legend(fontsize=7)
    for ax, (image, *shown) in zip(axes[1:], examples, strict=False):
        ax.imshow(np.concatenate([image] * len(shown), axis=0).astype(np.uint8))
        ax.imshow(np.concatenate(shown, axis=0), cmap="jet", alpha=0.5)
        ax.set_title(", ".join(drawn) + " (top down)", fontsize=7)
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(RESULTS / f"resolution_test{args.suffix}.png", dpi=80)


if __name__ == "__main__":
    main()
