"""The raw material of the zoom study, computed once per photo and kept in a cache: Score-CAM
channel weights on the photo (over ``--max-channels`` channels), and every zoomed view's
low-resolution map and class probability under those weights.

    python -m benchmarks.studies.zoom_views --model mobilenet_v2 \
        --boxes ../shared/data/imagenet-val-boxes

Views: the photo itself, then at each scale of ``SCALES`` the default ASC's crops of the
magnified photo, offset by whole feature cells (``augment.zoom_transforms(..., crops=None)``:
every crop at 1.5x and 2x, every 2nd at 3x, every 3rd at 4x), then the
``ROTATIONS`` copies of v0.2's default Augmented Score-CAM (rotations and shifts). A view's map is
ReLU(sum_c w_c A_c) of its own feature map with the photo's weights, not yet normalised: the
study (``zoom_study.py``) picks subsets of views and fusions from it, without forward passes.
Writes ``benchmarks/results/zoom_cache/<model>_c<channels>.npz`` (ignored by git), adding to
what is there, so an interrupted run resumes; ``photo`` holds each row's photo index.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import tfscorecam as tsc
from benchmarks.common import DEFAULT_BOXES, DEFAULT_WEIGHTS, load_box_photos, mobilenet_v2
from benchmarks.report import RESULTS
from tfscorecam import augment
from tfscorecam.core.maps import weighted_sum

CACHE = RESULTS / "zoom_cache"
SCALES = (1.5, 2.0, 3.0, 4.0)  # v0.4's (1.5, 2) and the default's (3, 4)
ROTATIONS = 16


def study_model(name: str, weights: str):
    """(model, preprocess) for ``mobilenet_v2`` (a local weights file) or ``efficientnet_lite0``."""
    if name == "mobilenet_v2":
        from benchmarks.common import preprocess_mobilenet

        return mobilenet_v2(weights), preprocess_mobilenet
    if name == "efficientnet_lite0":
        lite = tsc.zoo.efficientnet_lite0()
        return lite.model, lambda photos: lite.preprocess(photos.astype(np.float32))
    raise SystemExit(f"unknown model {name!r}: mobilenet_v2 or efficientnet_lite0")


def cache_path(model: str, channels: int) -> Path:
    return CACHE / f"{model}_c{channels}.npz"


def zoom_views(size: int, cells: tuple[int, int]) -> np.ndarray:
    """The zoomed views of the cache: the photo, then every whole-cell crop at each scale."""
    return augment.zoom_transforms((size, size), cells, SCALES, crops=None)


def rotation_views(size: int, cells: tuple[int, int]) -> np.ndarray:
    """v0.2's default copies: K = 16, 0.1 rad, shifts of half a feature cell, seed 0."""
    return augment.random_transforms(ROTATIONS, (size, size), 0.1, size / cells[1] / 2, 0)


def view_transforms(size: int, cells: tuple[int, int]) -> np.ndarray:
    """Every view of the cache: ``zoom_views`` then ``rotation_views``."""
    return np.concatenate([zoom_views(size, cells), rotation_views(size, cells)])


def photo_weights(cam: tsc.ScoreCAM, image: np.ndarray, label: int):
    """The photo's feature map (h, w, C) at ``cam``'s layer and its Score-CAM channel weights
    (C, 1) for class ``label``."""
    acts, outputs = cam.forward(image[None])
    request = cam.scorings.resolve([label], None, outputs, False)
    return acts[0], cam.unit_weights(image, acts[0], request, 0)


def photo_views(cam: tsc.ScoreCAM, image: np.ndarray, label: int) -> dict:
    """One photo's channel ``weights`` (C,) and their maps: ``low`` (K, h, w) of every view,
    ``probability`` and ``top1`` (K,) of each view for the class."""
    acts, weights = photo_weights(cam, image, label)
    transforms = view_transforms(image.shape[0], acts.shape[:2])
    view_acts, view_outputs = cam.forward(augment.warp(image, transforms))
    low = np.maximum(np.stack([weighted_sum(a, weights)[..., 0] for a in view_acts]), 0.0)
    probabilities = cam.probability_head.transform(view_outputs).numpy()
    return {
        "weights": weights[:, 0].astype(np.float32),
        "low": low.astype(np.float32),
        "probability": probabilities[:, label].astype(np.float32),
        "top1": np.argmax(probabilities, axis=1) == label,
    }


def study_parser(description: str) -> argparse.ArgumentParser:
    """The options the cache and the study share: the model, photos, weights and channels."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--boxes", default=DEFAULT_BOXES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--max-channels", type=int, default=128)
    return parser


def main() -> None:
    parser = study_parser(__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=1, help="every k-th photo")
    parser.add_argument("--limit", type=int, default=None, help="the first N of those only")
    args = parser.parse_args()

    _, photos, labels, _ = load_box_photos(args.boxes)
    index = np.arange(0, len(photos), args.stride)[: args.limit]
    photos, labels = photos[index], labels[index]
    model, preprocess = study_model(args.model, args.weights)
    x = preprocess(photos)
    cam = tsc.ScoreCAM(model, max_channels=args.max_channels, verbose=0)
    path = cache_path(args.model, args.max_channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = dict(np.load(path)) if path.is_file() else {}
    rows = {k: list(v) for k, v in done.items()}
    start = time.perf_counter()
    for i in range(len(rows.get("low", [])), len(x)):
        views = {"photo": index[i], **photo_views(cam, x[i], int(labels[i]))}
        for key, value in views.items():
            rows.setdefault(key, []).append(value)
        if (i + 1) % 10 == 0 or i + 1 == len(x):
            np.savez(path, **{k: np.stack(v) for k, v in rows.items()})
            rate = (time.perf_counter() - start) / (i + 1 - len(done.get("low", [])))
            print(f"{i + 1}/{len(x)} photos, {rate:.1f} s each", flush=True)


if __name__ == "__main__":
    main()
