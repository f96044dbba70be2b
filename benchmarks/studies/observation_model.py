"""Issue 39, item 1: what a zoomed view's map of a small object is, against the observation
model D that the fusion assumes (each view cell sees a Gaussian of sigma = 1 view cell of the
latent map, centred on the cell).

    python -m benchmarks.studies.observation_model --boxes ../shared/data/imagenet-val-boxes
    python -m benchmarks.studies.observation_model --model efficientnet_lite0

Objects as ``resolution_test``: cut out of the single-box photos by their box, longer side
``--object-size`` px, the ``--objects`` MobileNetV2 scores highest, pasted on the grey canvas
with their corner at 96 + o px on both axes (o = 0, 4, ..., 28: every phase of the 32-px
cells). Each canvas is seen magnified by each of ``--scales`` about the pixel (96, 96), as a
zoomed view is (``augment.warp``). The object's response in a view is the ReLU of MobileNetV2's
``out_relu`` (or ``--model``'s last feature map) weighted by the canvas's own Score-CAM weights
(``--max-channels``, shared by the views as the default ASC shares them), minus the same
weighted sum of the empty grey canvas's view: what the object adds to the 7x7 map (the grey's
own response would pull every centre towards the middle). Per view, in view cells: the map's
centre of mass against the object's centre (the shift, and how it moves with the phase), and
its spread (the standard deviation of the map's mass along each axis). The same measures of
what D predicts: the object's footprint (its pixels, 1 inside) blurred by a Gaussian of sigma
view cells and sampled at the cell centres. The sigma that fits the measured spread best, per
scale, says how far D's sigma = 1 is from what the layer does. The map's shift beyond D's own
(its edge effects), averaged over the default views' zooms (1, 1.5 and 2) and negated, is where
the layer's cells look: the fusion's ``cell_shift`` for this model. Writes
``benchmarks/results/observation_model.md`` and ``observation_model.png`` (``_<model>``
added for another model than MobileNetV2).
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_BOXES, DEFAULT_WEIGHTS, load_box_photos
from benchmarks.report import RESULTS, bootstrap
from benchmarks.studies.resolution_test import OFFSETS, ORIGIN, canvas, objects
from benchmarks.studies.zoom_views import photo_weights, study_model
from tfscorecam.core.maps import weighted_sum

CELL = 32  # px per out_relu cell at 224
SIGMAS = np.round(np.arange(0.4, 3.01, 0.05), 2)  # D's sigma (view cells) tried in the fit


def zoom(scale: float) -> np.ndarray:
    """The projective transform of a view magnified ``scale`` times about pixel (96, 96)."""
    shift = ORIGIN - ORIGIN / scale
    return np.array([[1 / scale, 0, shift, 0, 1 / scale, shift, 0, 0]], np.float32)


def receptive_centre(model, layer: str, image: np.ndarray) -> np.ndarray:
    """(x, y) in pixels of the centre of mass of |d cell / d input| for the middle cell of
    ``layer``'s map (its channels summed) at ``image``, minus that cell's centre as the
    fusion places it (half-pixel centres: (i + 0.5) x the cell size)."""
    import tensorflow as tf

    tapped = keras.Model(model.inputs, model.get_layer(layer).output)
    x = tf.convert_to_tensor(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        maps = tapped(x)
        middle = (maps.shape[1] // 2, maps.shape[2] // 2)
        value = tf.reduce_sum(maps[0, middle[0], middle[1]])
    weight = np.abs(tape.gradient(value, x).numpy()[0]).sum(axis=-1)
    rows, cols = np.mgrid[0 : weight.shape[0], 0 : weight.shape[1]] + 0.5
    centre = np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()
    cell = image.shape[0] / maps.shape[1]
    return centre - (np.array(middle[::-1]) + 0.5) * cell


def moments(low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass (x, y) and standard deviation (x, y) of a map's mass, in cells (cell
    i's centre at i)."""
    mass = low / low.sum()
    rows, cols = np.mgrid[0 : low.shape[0], 0 : low.shape[1]]
    centre = np.array([(mass * cols).sum(), (mass * rows).sum()])
    spread = np.sqrt(
        [(mass * (cols - centre[0]) ** 2).sum(), (mass * (rows - centre[1]) ** 2).sum()]
    )
    return centre, spread


def predicted(footprint: np.ndarray, sigma: float, cells: int) -> np.ndarray:
    """D applied to a view's footprint (224, 224): each cell's Gaussian of ``sigma`` cells
    around its centre, summed over the footprint's pixels."""
    pixels = (np.arange(footprint.shape[0]) + 0.5) / CELL - 0.5  # pixel centres, in cells
    weights = np.exp(-0.5 * ((pixels[None, :] - np.arange(cells)[:, None]) / sigma) ** 2)
    return weights @ footprint @ weights.T


def view_footprint(piece: np.ndarray, offset: int, scale: float) -> np.ndarray:
    """The object's pixels (1 inside) in the view magnified ``scale`` times."""
    mask = np.zeros((224, 224, 1), np.float32)
    top = ORIGIN + offset
    mask[top : top + piece.shape[0], top : top + piece.shape[1]] = 1
    return tsc.augment.warp(mask, zoom(scale))[0, ..., 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2", help="or efficientnet_lite0")
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--object-size", type=int, default=40)
    parser.add_argument("--max-channels", type=int, default=128)
    parser.add_argument("--scales", default="1,1.5,2,3")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]

    _, photos, labels, boxes = load_box_photos(args.boxes)
    model, preprocess = study_model(args.model, args.weights)
    found = objects(photos, labels, boxes, args.object_size)
    probe = preprocess(np.stack([canvas([(p, ORIGIN, ORIGIN)]) for p, _ in found]))
    seen = model.predict(probe, verbose=0)[np.arange(len(found)), [c for _, c in found]]
    chosen = [found[i] for i in np.argsort(seen)[::-1][: args.objects]]
    cam = tsc.ScoreCAM(model, max_channels=args.max_channels, verbose=0)

    transforms = np.concatenate([zoom(s) for s in scales])
    empty, _ = cam.forward(tsc.augment.warp(preprocess(canvas([])), transforms))
    shape = (len(scales), len(chosen), len(OFFSETS), 2)
    shift, spread, true_phase = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    truths = np.zeros(shape)
    model_shift, model_spread = np.zeros(shape), np.zeros(shape)
    fit_error = np.zeros((len(scales), len(chosen), len(OFFSETS), len(SIGMAS)))
    for i, (piece, label) in enumerate(chosen):
        for j, offset in enumerate(OFFSETS):
            image = preprocess(canvas([(piece, ORIGIN + offset, ORIGIN + offset)]))
            _, weights = photo_weights(cam, image, label)
            acts, _ = cam.forward(tsc.augment.warp(image, transforms))
            for k, scale in enumerate(scales):
                added = weighted_sum(acts[k], weights) - weighted_sum(empty[k], weights)
                low = np.maximum(added[..., 0], 0)
                footprint = view_footprint(piece, int(offset), scale)
                truth, _ = moments(footprint)  # the object's centre, in pixels here
                truth = (truth + 0.5) / CELL - 0.5  # ... in cells
                centre, spread[k, i, j] = moments(low)
                shift[k, i, j], truths[k, i, j] = centre - truth, truth
                true_phase[k, i, j] = truth - np.round(truth)  # -0.5..0.5 of a cell
                d_centre, model_spread[k, i, j] = moments(predicted(footprint, 1.0, 7))
                model_shift[k, i, j] = d_centre - truth
                measured = low / low.sum()
                for m, sigma in enumerate(SIGMAS):
                    guess = predicted(footprint, sigma, 7)
                    fit_error[k, i, j, m] = np.abs(guess / guess.sum() - measured).sum()
        print(f"{i + 1}/{len(chosen)} objects", flush=True)
    grey = preprocess(canvas([]))
    rng = np.random.default_rng(0)
    noise = preprocess(rng.uniform(0, 255, (224, 224, 3)).astype(np.float32))
    centres = [receptive_centre(model, cam.layer_path, one) for one in (grey, noise)]
    measured = {
        "shift": shift,
        "spread": spread,
        "phase": true_phase,
        "truth": truths,
        "centres": centres,
    }
    write(args, cam.layer_path, scales, len(chosen), measured, model_shift, model_spread, fit_error)


def follow(truth: np.ndarray, shift: np.ndarray) -> float:
    """How far the map's centre moves per cell the object moves: the least-squares slope of
    the map's centre on the object's, each object's mean removed (both axes pooled)."""
    centred_truth = truth - truth.mean(axis=1, keepdims=True)
    centre = truth + shift
    centred_map = centre - centre.mean(axis=1, keepdims=True)
    return float((centred_truth * centred_map).sum() / (centred_truth**2).sum())


def write(args, layer, scales, count, measured, model_shift, model_spread, fit_error) -> None:
    """The tables (markdown) and the figure."""
    shift, spread, phase = measured["shift"], measured["spread"], measured["phase"]
    grey, noise = measured["centres"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        f"{args.model} `{layer}` (7x7 cells of 32 px), {count} objects of {args.object_size} px "
        f"pasted at {len(OFFSETS)} cell phases, Score-CAM weights over {args.max_channels} "
        "channels of the canvas shared by its views; means over objects, phases and both axes, "
        "[95% bootstrap interval over objects]. Distances in view cells; a shift is the map's "
        "centre of mass minus the object's (x right, y down).",
        "",
        "| zoom | object's own spread | map's spread | D's spread (sigma 1) | best sigma of D "
        "| map's shift | map's shift's swing over phases | D's shift | map's centre per cell "
        "the object moves |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    best_sigmas = []
    for k, scale in enumerate(scales):
        own = args.object_size * scale / np.sqrt(12) / CELL
        per_object = fit_error[k].mean(axis=1)  # (objects, sigmas)
        best = SIGMAS[np.argmin(per_object, axis=1)]
        best_sigmas.append(best)
        swing = (shift[k].max(axis=1) - shift[k].min(axis=1)).mean(axis=-1)  # per object
        cells = [
            f"{own:.2f}",
            "{:.2f} [{:.2f}, {:.2f}]".format(*bootstrap(spread[k].mean(axis=(1, 2)))),
            f"{model_spread[k].mean():.2f}",
            "{:.2f} [{:.2f}, {:.2f}]".format(*bootstrap(best)),
            "x {:+.2f}, y {:+.2f}".format(*shift[k].mean(axis=(0, 1))),
            "{:.2f} [{:.2f}, {:.2f}]".format(*bootstrap(swing)),
            "x {:+.2f}, y {:+.2f}".format(*model_shift[k].mean(axis=(0, 1))),
            "{:.2f}".format(follow(measured["truth"][k], shift[k])),
        ]
        lines.append(f"| {scale:g}x | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The shift against the object's phase in its cell (object centre minus the nearest "
        "cell centre, in cells; the map's centre minus the object's, mean over objects and "
        "axes):",
        "",
        "| zoom | " + " | ".join(f"o = {o}" for o in OFFSETS) + " |",
        "|---|" + "---|" * len(OFFSETS),
    ]
    for k, scale in enumerate(scales):
        phases, shifts = phase[k].mean(axis=(0, 2)), shift[k].mean(axis=(0, 2))
        row = [f"{p:+.2f}: {s:+.2f}" for p, s in zip(phases, shifts, strict=True)]
        lines.append(f"| {scale:g}x | " + " | ".join(row) + " |")
    lines += [
        "",
        "Where a cell looks: the centre of mass of the input gradient of the middle cell of "
        f"`{layer}` (channels summed), minus the centre the fusion gives that cell, in "
        f"pixels at 224 (x, y): on the grey canvas ({grey[0]:+.1f}, {grey[1]:+.1f}); on "
        f"uniform noise ({noise[0]:+.1f}, {noise[1]:+.1f}).",
    ]
    default = [k for k, scale in enumerate(scales) if scale in (1.0, *tsc.augment.ZOOM_SCALES)]
    if default:
        beyond = (shift[default] - model_shift[default]).mean(axis=(0, 1, 2))
        lines += [
            "",
            "Where the cells look, for the fusion: minus the map's shift beyond D's, mean over "
            f"the zooms {[scales[k] for k in default]}: cell_shift = "
            f"({-beyond[0]:.2f}, {-beyond[1]:.2f}) view cells.",
        ]
    text = "\n".join(lines) + "\n"
    suffix = "" if args.model == "mobilenet_v2" else f"_{args.model}"
    (RESULTS / f"observation_model{suffix}.md").write_text(text)
    print(text)

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, scale in enumerate(scales):
        x = phase[k].reshape(-1)
        y = shift[k].reshape(-1)
        axes[0].scatter(x, y, s=6, label=f"{scale:g}x")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set_xlabel("object's phase in its cell (cells)")
    axes[0].set_ylabel("map's centre minus object's (cells)")
    axes[0].legend()
    axes[1].errorbar(
        scales,
        [b.mean() for b in best_sigmas],
        yerr=[b.std() for b in best_sigmas],
        marker="o",
        label="best-fitting sigma of D",
    )
    axes[1].axhline(1.0, color="k", ls="--", lw=0.8, label="the fusion's sigma (1 cell)")
    axes[1].set_xlabel("zoom scale")
    axes[1].set_ylabel("sigma (view cells)")
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(RESULTS / f"observation_model{suffix}.png", dpi=90)


if __name__ == "__main__":
    main()
