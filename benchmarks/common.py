"""Shared helpers for the benchmark and evaluation scripts (real model, real photos)."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

DEFAULT_WEIGHTS = "../shared/models/mobilenet_v2_imagenet.weights.h5"
DEFAULT_IMAGES = "../shared/data/imagenet-dev"
DEFAULT_BOXES = "../shared/data/imagenet-val-boxes"
BOX_FRAME = 227  # the boxes' pixel frame: the photos are 227x227


def load_photo(path: str | Path, size: int = 224) -> np.ndarray:
    """RGB photo, shorter side resized to size*256/224, centre crop size x size, uint8."""
    image = Image.open(path).convert("RGB")
    scale = size * 256 / 224 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def photo_paths(folder: str | Path, n: int) -> list[Path]:
    """The first n photos of a folder, sorted by name."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".jpeg", ".jpg"})
    if not paths:
        raise SystemExit(f"no photos in {folder}")
    return paths[:n]


def mobilenet_v2(weights: str) -> keras.Model:
    """keras.applications.MobileNetV2 with a local weights file."""
    if not Path(weights).is_file():
        raise SystemExit(f"weights file not found: {weights}")
    return keras.applications.MobileNetV2(weights=weights)


def preprocess_mobilenet(photos: np.ndarray) -> np.ndarray:
    return keras.applications.mobilenet_v2.preprocess_input(photos.astype(np.float32))


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Read from /proc/self/status (VmHWM) on Linux: ``ru_maxrss`` survives ``exec`` after a
    vfork-style spawn and would report the parent's peak in a subprocess.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(fn, repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls of fn(), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def load_box_photos(folder: str | Path, size: int = 224):
    """The localisation set: paths, photos (N, size, size, 3) uint8 (bilinear, antialiased),
    true classes (N,) and each photo's boxes (B_i, 4) scaled to ``size``."""
    import csv

    from tfscorecam.images import resize

    folder = Path(folder)
    if not (folder / "boxes.csv").is_file():
        raise SystemExit(f"no boxes.csv in {folder}")
    rows: dict[str, list] = {}
    with open(folder / "boxes.csv") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["file"], []).append(row)
    files = sorted(rows)
    scale = size / BOX_FRAME
    paths = [folder / "images" / f for f in files]
    photos = np.stack(
        [
            np.clip(
                np.round(
                    resize(np.asarray(Image.open(p).convert("RGB"), np.float32), (size, size))
                ),
                0,
                255,
            ).astype(np.uint8)
            for p in paths
        ]
    )
    labels = np.array([int(rows[f][0]["class_index"]) for f in files])
    boxes = [
        np.array([[float(r[k]) * scale for k in ("x0", "y0", "x1", "y1")] for r in rows[f]])
        for f in files
    ]
    return paths, photos, labels, boxes


def bootstrap(values: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and its 95% percentile-bootstrap interval."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (rounds, len(values)))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
