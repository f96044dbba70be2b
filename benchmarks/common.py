"""What the benchmarks run on: the model, the photos and their boxes, the explainers, and
their maps cached between runs (real model, real photos; `--weights random` for smoke runs)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import tfscorecam as tsc  # noqa: E402

DEFAULT_WEIGHTS = "../shared/models/mobilenet_v2_imagenet.weights.h5"
DEFAULT_IMAGES = "../shared/data/imagenet-dev"
DEFAULT_BOXES = "../shared/data/imagenet-val-boxes"
RANDOM_WEIGHTS = "random"  # --weights random: see mobilenet_v2
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


def best_seconds(run, rounds: int) -> float:
    """The fastest of ``rounds`` timed runs of ``run()``, after one warm-up."""
    run()
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return float(best)


def device_line() -> str:
    """Which backend and device the benchmark runs on, in words."""
    name = keras.config.backend()
    if name == "jax":
        import jax

        device = jax.devices()[0].device_kind
    elif name == "torch":
        import torch

        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    else:
        import tensorflow as tf

        device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return f"Keras {keras.__version__} on {name}, device: {device}"


def mobilenet_v2(weights: str) -> keras.Model:
    """keras.applications.MobileNetV2 with a local weights file, or with ``RANDOM_WEIGHTS``
    the same layers at width 0.35, randomly initialised (the CI smoke runs: fast, not real)."""
    if weights == RANDOM_WEIGHTS:
        keras.utils.set_random_seed(0)
        return keras.applications.MobileNetV2(alpha=0.35, weights=None)
    if not Path(weights).is_file():
        raise SystemExit(f"weights file not found: {weights}")
    return keras.applications.MobileNetV2(weights=weights)


def preprocess_mobilenet(photos: np.ndarray) -> np.ndarray:
    return keras.applications.mobilenet_v2.preprocess_input(photos.astype(np.float32))


def dev_inputs(folder: str | Path, n: int) -> np.ndarray:
    """The first n photos of a folder, centre-cropped to 224 and preprocessed for MobileNetV2;
    with ``folder="random"``, n random images in its input range (smoke runs)."""
    if str(folder) == RANDOM_WEIGHTS:
        return np.random.default_rng(0).uniform(-1, 1, (n, 224, 224, 3)).astype(np.float32)
    return preprocess_mobilenet(np.stack([load_photo(p) for p in photo_paths(folder, n)]))


def load_box_photos(folder: str | Path, size: int = 224):
    """The localisation set: paths, photos (N, size, size, 3) uint8 (bilinear, antialiased),
    true classes (N,) and each photo's boxes (B_i, 4) scaled to ``size``."""
    import csv

    from tfscorecam.interfaces.images import resize

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


def parquet_maps(folder: str, paths: list[Path]) -> np.ndarray:
    """Maps of ``paths`` from an ``explain_dataset`` output folder, in the order of paths."""
    from tfscorecam import dataset

    table = dataset.read_results(folder)
    by_name = {Path(row["path"]).name: row for _, row in table.iterrows()}
    missing = [p.name for p in paths if p.name not in by_name]
    if missing:
        raise SystemExit(f"{folder} has no rows for {len(missing)} photos, e.g. {missing[:3]}")
    return np.stack([dataset.heatmap(by_name[p.name]) for p in paths])


def cached_maps(key, factory, model, x, classes, cache: Path, recompute: bool) -> tuple:
    """(maps (n, H, W) float32, seconds per image), cached in ``cache``."""
    maps_file, info_file = cache / f"{key}.npy", cache / f"{key}.json"
    if maps_file.is_file() and info_file.is_file() and not recompute:
        info = json.loads(info_file.read_text())
        if info["n"] == len(x):
            return np.load(maps_file).astype(np.float32), info["seconds"]
    explainer = factory(model)
    explainer(x[:1], classes[:1])  # trace outside the timing
    start = time.perf_counter()
    maps = np.concatenate(
        [explainer(x[i : i + 8], classes[i : i + 8]) for i in range(0, len(x), 8)]
    )
    seconds = (time.perf_counter() - start) / len(x)
    np.save(maps_file, maps.astype(np.float16))
    info_file.write_text(json.dumps({"n": len(x), "seconds": seconds}))
    return maps, seconds


@dataclass(frozen=True)
class MethodMaps:
    """One table row's maps: its explainer, the photos it ran on (every ``stride``-th) and
    the seconds per image (NaN for maps read from Parquet)."""

    key: str
    label: str
    factory: Callable
    stride: int
    rows: np.ndarray
    maps: np.ndarray
    seconds: float


def method_maps(
    item: str, registry: dict, model, x, classes, paths, parquet: dict, cache: Path, args
) -> MethodMaps:
    """The maps of ``KEY`` or ``KEY:STRIDE`` (a key of ``registry``): from the Parquet folder
    ``parquet[KEY]`` if given, else computed once and kept in ``cache``."""
    key, _, stride = item.strip().partition(":")
    stride = int(stride or 1)
    label, factory = registry[key]
    rows = np.arange(0, len(x), stride)
    if key in parquet:
        maps, seconds = parquet_maps(parquet[key], [paths[i] for i in rows]), float("nan")
    else:
        maps, seconds = cached_maps(
            f"{key}_n{len(x)}_s{stride}_c{args.max_channels}",
            factory,
            model,
            x[rows],
            classes[rows],
            cache,
            args.recompute,
        )
    return MethodMaps(key, label, factory, stride, rows, maps, seconds)


def explainers(n: int) -> dict:
    """The benchmarks' explainers: key -> (label, factory(model)); ``n``: max_channels of the
    rows that need it (they cost N or K Score-CAMs)."""
    asc = tsc.AugmentedScoreCAM
    return {
        "gradcam": ("Grad-CAM", lambda m: tsc.GradCAM(m, verbose=0)),
        "gradcam++": ("Grad-CAM++", lambda m: tsc.GradCAMPlusPlus(m, verbose=0)),
        "scorecam": ("Score-CAM", lambda m: tsc.ScoreCAM(m, verbose=0)),
        "scorecam-softmax": (
            "Score-CAM, channel softmax",
            lambda m: tsc.ScoreCAM(m, channel_softmax=True, verbose=0),
        ),
        "scorecam-logit": ("Score-CAM, logit", lambda m: tsc.ScoreCAM(m, score="logit", verbose=0)),
        "faster": (
            f"Faster Score-CAM (max_channels={n})",
            lambda m: tsc.ScoreCAM(m, max_channels=n, verbose=0),
        ),
        "faster-softmax": (
            f"Faster Score-CAM, channel softmax (the paper's Algorithm 1, max_channels={n})",
            lambda m: tsc.ScoreCAM(m, max_channels=n, channel_softmax=True, verbose=0),
        ),
        "asc-shared": (
            "Augmented Score-CAM (default: 81 zoomed views, shared weights)",
            lambda m: asc(m, verbose=0),
        ),
        "asc-per-copy": (
            f"Augmented Score-CAM, per_copy (16 rotations, max_channels={n})",
            lambda m: asc(m, views="rotations", weights="per_copy", max_channels=n, verbose=0),
        ),
        "asc-shared-faster": (
            f"Augmented Score-CAM (default, max_channels={n})",
            lambda m: asc(m, max_channels=n, verbose=0),
        ),
        "asc-authors": (
            f"Augmented Score-CAM, authors' settings (shared, K=16, max_channels={n})",
            lambda m: asc.authors_settings(
                m, num_augmentations=16, weights="shared", max_channels=n, verbose=0
            ),
        ),
        "iscam": (
            f"IS-CAM (N=10, max_channels={n})",
            lambda m: tsc.ISCAM(m, max_channels=n, verbose=0),
        ),
        "sscam": (
            f"SS-CAM (N=35, max_channels={n})",
            lambda m: tsc.SSCAM(m, max_channels=n, verbose=0),
        ),
        "layercam": ("LayerCAM", lambda m: tsc.LayerCAM(m, verbose=0)),
        "hirescam": ("HiResCAM", lambda m: tsc.HiResCAM(m, verbose=0)),
        "xgradcam": ("XGrad-CAM", lambda m: tsc.XGradCAM(m, verbose=0)),
        "eigencam": ("EigenCAM", lambda m: tsc.EigenCAM(m, verbose=0)),
        "ablationcam": ("Ablation-CAM", lambda m: tsc.AblationCAM(m, verbose=0)),
        "reciprocam": ("Recipro-CAM", lambda m: tsc.ReciproCAM(m, verbose=0)),
        "reciprocam-gaussian": (
            "Recipro-CAM, 3x3 Gaussian spread",
            lambda m: tsc.ReciproCAM(m, gaussian=True, verbose=0),
        ),
        "polycam": (
            f"Poly-CAM, PCAM+ (5 levels, max_channels={n} each)",
            lambda m: tsc.PolyCAM(m, max_channels=n, verbose=0),
        ),
    }
