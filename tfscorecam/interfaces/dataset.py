"""Explain a whole dataset with Ray Data: on a laptop or a GPU cluster, resumable, per-image errors.

``explain_dataset(model, inputs, out)`` reads the images in Ray tasks (decode, RGB, resize to the
model input), explains them in a pool of Ray actors (each builds its own model and explainer
once: models are never pickled from the driver), and the driver writes the results as Parquet
files under ``out``, one row per image:

``path, class_index, class_name, score, heatmap, map_peak, map_depth, map_height, map_width,
image_depth, image_height, image_width, method, seconds, error, warning``

``heatmap`` is the map at the model's input size, float16, flattened (reshape to
``(map_height, map_width)``, or ``(map_depth, map_height, map_width)`` for a model on volumes
or video, whose inputs are ``.npy`` files; ``heatmap(row)`` does it); the depths are null
for images; ``map_peak`` is the raw map's maximum before min-max scaling (``Explanation.peak``:
comparable across images; null in outputs of versions before 0.5); ``seconds`` is the
explainer's time for the image; ``error`` is
null for an explained image and says what went wrong otherwise (a corrupt or unreadable file,
an image too small for the target layer): the run goes on. ``warning`` holds what
``explain()`` would warn about the image (values outside the backbone's range, a low top-1
probability, an all-zero or near-empty map), joined by "; ", or null.

Resuming: a run over the same output skips every image that already has a row without error and
retries those with an error. Rows are written in whole files, each renamed into place when
complete (``part-*.parquet`` for explained images, ``errors-*.parquet`` for failures), so a run
stopped at any point (Ctrl-C or kill -9) loses at most the batches in flight; the next run ends
with every image present exactly once. Two runs must not write to one output at the same time.

Ray, pyarrow and pandas are the ``dataset`` extra: ``python -m pip install -e ".[dataset]"`` in
a clone, or ``python -m pip install "ray[data]>=2.40,<3" "pyarrow>=15" pandas``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
COLUMNS = (
    "path",
    "class_index",
    "class_name",
    "score",
    "heatmap",
    "map_peak",
    "map_depth",
    "map_height",
    "map_width",
    "image_depth",
    "image_height",
    "image_width",
    "method",
    "seconds",
    "error",
    "warning",
)


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"explain_dataset needs {module.split('.')[0]}: python -m pip install "
            "'ray[data]>=2.40,<3' 'pyarrow>=15' pandas"
        ) from None


def image_paths(inputs: str | os.PathLike | Sequence) -> list[str]:
    """The image files named by ``inputs``: a folder (its image files, sorted; not recursive;
    a folder without any: its ``.npy`` files, volumes), a glob pattern, one file, or a list of
    paths. Duplicates are dropped."""
    if isinstance(inputs, (str, os.PathLike)):
        text = str(inputs)
        if Path(text).is_dir():
            files = sorted(Path(text).iterdir())
            found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES] or [
                p for p in files if p.suffix.lower() == ".npy"
            ]
        elif any(c in text for c in "*?["):
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
        elif Path(text).is_file():
            found = [Path(text)]
        else:
            raise FileNotFoundError(f"no folder, file or glob matches {text}")
    else:
        found = [Path(p) for p in inputs]
    paths = list(dict.fromkeys(str(p.resolve()) for p in found))
    if not paths:
        raise ValueError(f"no images found in {inputs}")
    return paths


# --- the output folder ----------------------------------------------------------------------


def _schema():
    pa = _require("pyarrow")
    return pa.schema(
        [
            ("path", pa.string()),
            ("class_index", pa.int32()),
            ("class_name", pa.string()),
            ("score", pa.float32()),
            ("heatmap", pa.list_(pa.float16())),
            ("map_peak", pa.float32()),
            ("map_depth", pa.int32()),
            ("map_height", pa.int32()),
            ("map_width", pa.int32()),
            ("image_depth", pa.int32()),
            ("image_height", pa.int32()),
            ("image_width", pa.int32()),
            ("method", pa.string()),
            ("seconds", pa.float32()),
            ("error", pa.string()),
            ("warning", pa.string()),
        ]
    )


def _write_rows(out: Path, rows: list[dict], prefix: str) -> None:
    """Write rows as one Parquet file, renamed into place once complete."""
    pa = _require("pyarrow")
    pq = _require("pyarrow.parquet")
    table = pa.Table.from_pylist(rows, schema=_schema())
    name = f"{prefix}-{uuid.uuid4().hex}.parquet"
    partial = out / f".{name}.partial"
    pq.write_table(table, partial)
    os.replace(partial, out / name)


def _files(out: Path, prefix: str) -> list[Path]:
    return sorted(out.glob(f"{prefix}-*.parquet"))


def _read(files: list[Path], columns: list[str] | None = None):
    pa = _require("pyarrow")
    pq = _require("pyarrow.parquet")
    if not files:
        return (
            _schema().empty_table() if columns is None else _schema().empty_table().select(columns)
        )
    wanted = columns or _schema().names
    tables = []
    for file in files:  # files of a version before a column (warning, map_peak) get nulls
        present = set(pq.read_schema(file).names)
        table = pq.read_table(file, columns=[c for c in wanted if c in present])
        for missing in [c for c in wanted if c not in present]:
            nulls = pa.nulls(len(table), _schema().field(missing).type)
            table = table.append_column(missing, nulls)
        tables.append(table.select(wanted))
    return pa.concat_tables(tables)


def _tidy(out: Path) -> set[str]:
    """Make the output consistent and return the paths already explained.

    Drops partial files of a stopped run, and error rows whose image has since been explained
    or that a later error row replaces (one error row per image, the newest file's)."""
    for partial in out.glob(".*.partial"):
        partial.unlink()
    done = set(_read(_files(out, "part"), ["path"]).column("path").to_pylist())
    error_files = _files(out, "errors")
    if not error_files:
        return done
    newest: dict[str, dict] = {}
    for file in sorted(error_files, key=lambda f: f.stat().st_mtime_ns):
        for row in _read([file]).to_pylist():
            if row["path"] not in done:
                newest[row["path"]] = row
    kept = list(newest.values())
    if kept:
        _write_rows(out, kept, "errors")
    for file in error_files:
        file.unlink()
    return done


def read_results(out: str | os.PathLike):
    """The results under ``out`` as a pandas DataFrame, one row per image (``COLUMNS``)."""
    _require("pandas")
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no results folder {out}")
    pa = _require("pyarrow")
    pd = _require("pandas")
    table = _read(_files(out, "part") + _files(out, "errors"))
    # integer columns stay integers (pandas' nullable Int32) when error rows hold nulls
    return table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)


def heatmap(row) -> np.ndarray:
    """The (map_height, map_width) float32 map of a result row (a DataFrame row or a dict);
    a volume's (map_depth, map_height, map_width)."""
    depth = row.get("map_depth")  # None or pandas' NA for an image
    shape: tuple = (row["map_height"], row["map_width"])
    shape = (int(depth), *shape) if isinstance(depth, (int, np.integer)) else shape
    return np.asarray(row["heatmap"], np.float32).reshape(shape)


# --- the workers ----------------------------------------------------------------------------


def _load_model(model: str, weights: str | None, preprocess: str | None, class_names):
    """(keras model, preprocess function, class names) for a saved model path, a zoo name or a
    keras.applications name (with ``weights``)."""
    from tfscorecam.zoo.class_names import load_class_names
    from tfscorecam.zoo.models import load

    loaded = load(model, weights, preprocess or "none")
    return loaded.model, loaded.preprocess, load_class_names(class_names) or loaded.class_names


def _decode(batch: dict, shape: tuple[int, ...]) -> dict:
    """Ray task: read, convert to RGB and resize each image to the model's input ``shape``
    (H, W, C); for a model on volumes, ``shape`` (D, H, W, C), read each ``.npy`` volume
    as it is. A failure becomes its error."""
    from tfscorecam.interfaces.images import display_image, resize
    from tfscorecam.interfaces.volumes import read_volume

    count, volumes = len(batch["path"]), len(shape) == 4
    images = np.zeros((count, *shape[:-1], shape[-1] if volumes else 3), np.float32)
    sizes = np.zeros((count, 3), np.int32)  # depth (0 for images), height, width
    errors = []
    for i, path in enumerate(batch["path"]):
        try:
            if volumes:
                images[i] = read_volume(str(path), (None, *shape), str(path))
                sizes[i] = shape[:3]
            else:
                image = display_image(str(path))
                sizes[i, 1:] = image.shape[:2]
                images[i] = resize(image, (shape[0], shape[1]))  # as explain(): no rounding
            errors.append("")
        except Exception as error:  # any unreadable file: its row says why
            errors.append(f"{type(error).__name__}: {error}")
    return {
        "path": np.asarray(batch["path"]),
        "image": images,
        "image_depth": sizes[:, 0],
        "image_height": sizes[:, 1],
        "image_width": sizes[:, 2],
        "error": np.asarray(errors, dtype=object),
    }


@dataclass(frozen=True)
class _Job:
    """What a run explains with: everything that changes a map (``settings``) and the model."""

    model: str
    weights: str | None
    preprocess: str | None
    class_names: object
    method: str
    class_index: int | str | None
    options: dict

    def load(self):
        """(keras model, preprocess function, class names), in a Ray worker."""
        return _load_model(self.model, self.weights, self.preprocess, self.class_names)

    def explainer(self, keras_model, names):
        """A new explainer and the class index it explains (None: top-1)."""
        from tfscorecam.methods import make_explainer
        from tfscorecam.zoo.class_names import named_classes

        explainer = make_explainer(keras_model, self.method, **{"verbose": 0, **self.options})
        return explainer, named_classes(self.class_index, names)

    def settings(self) -> dict:
        """Everything that changes a map, with the model file's identity (size, mtime)."""

        def identity(path: str | os.PathLike | None) -> object:
            if path is None or not Path(path).is_file():
                return path
            stat = Path(path).stat()
            return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

        # through JSON and back: the same lists and strings as the record read from disk
        return json.loads(
            json.dumps(
                {
                    "model": identity(self.model),
                    "weights": identity(self.weights),
                    "preprocess": self.preprocess,
                    "class_names": identity(self.class_names)
                    if isinstance(self.class_names, (str, os.PathLike))
                    else self.class_names,
                    "method": self.method,
                    "class_index": self.class_index,
                    "options": self.options,
                },
                sort_keys=True,
                default=repr,
            )
        )


class _BatchExplainer:
    """Ray actor: builds its model and explainer once, then explains batches of decoded images."""

    def __init__(self, job: _Job, threads: int) -> None:
        from tfscorecam.core import backend

        if backend.name() == "tensorflow":  # TensorFlow's GPU memory and CPU threads
            import tensorflow as tf

            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)
            if threads:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
        self.model, self.preprocess, self.class_names = job.load()
        self.explainer, self.class_index = job.explainer(self.model, self.class_names)

    def __call__(self, batch: dict) -> dict:
        from tfscorecam.interfaces.explanation import input_warnings
        from tfscorecam.interfaces.pipeline import check_sizes, preprocessed

        count = len(batch["path"])
        out = {
            "path": batch["path"],
            "class_index": np.full(count, -1, np.int32),
            "class_name": np.full(count, "", dtype=object),
            "score": np.zeros(count, np.float32),
            "heatmap": np.zeros((count, *batch["image"].shape[1:-1]), np.float16),
            "map_peak": np.zeros(count, np.float32),
            "image_depth": batch["image_depth"],
            "image_height": batch["image_height"],
            "image_width": batch["image_width"],
            "seconds": np.zeros(count, np.float32),
            "error": np.asarray(batch["error"], dtype=object),
            "warning": np.full(count, "", dtype=object),
        }
        for i in np.flatnonzero(out["error"] == ""):
            start = time.perf_counter()
            path = str(batch["path"][i])
            try:
                if self.explainer.spatial_rank == 2:
                    shape = (int(batch["image_height"][i]), int(batch["image_width"][i]))
                    check_sizes(self.explainer, [shape], [path])
                x = preprocessed(batch["image"][i : i + 1], self.preprocess)
                explained = self.explainer.explain_batch(x, self.class_index)
                found = input_warnings(
                    self.model, self.explainer, x, explained, [path], top1=self.class_index is None
                )
            except Exception as error:  # this image fails, the run goes on
                out["error"][i] = f"{type(error).__name__}: {error}"
                continue
            out["seconds"][i] = time.perf_counter() - start
            out["heatmap"][i] = explained.maps[0, 0]
            out["map_peak"][i] = np.max(explained.raw[0, 0])
            index = int(explained.classes[0, 0])
            out["class_index"][i] = index
            names = self.class_names
            out["class_name"][i] = names[index] if names and 0 <= index < len(names) else ""
            out["score"][i] = explained.scores[0, 0]
            out["warning"][i] = "; ".join(found[0])
        return out


# --- the driver -----------------------------------------------------------------------------


def _rows(batch: dict, method: str) -> tuple[list[dict], list[dict]]:
    """Explained rows and error rows of a result batch."""
    explained: list[dict] = []
    failed: list[dict] = []
    for i, path in enumerate(batch["path"]):
        error = str(batch["error"][i]) or None
        heat = batch["heatmap"][i]
        row = {
            "path": str(path),
            "class_index": None if error else int(batch["class_index"][i]),
            "class_name": None if error else (str(batch["class_name"][i]) or None),
            "score": None if error else float(batch["score"][i]),
            "heatmap": None if error else heat.reshape(-1),
            "map_peak": None if error else float(batch["map_peak"][i]),
            "map_depth": int(heat.shape[0]) if heat.ndim == 3 else None,
            "map_height": int(heat.shape[-2]),
            "map_width": int(heat.shape[-1]),
            "image_depth": int(batch["image_depth"][i]) or None,
            "image_height": int(batch["image_height"][i]) or None,
            "image_width": int(batch["image_width"][i]) or None,
            "method": method,
            "seconds": None if error else float(batch["seconds"][i]),
            "error": error,
            "warning": None if error else (str(batch["warning"][i]) or None),
        }
        (failed if error else explained).append(row)
    return explained, failed


class _DriverProgress:
    """One line: images done, images/s and the time left. The driver never imports
    TensorFlow (only the actors do), so this is not ``core.progress.Progress``, a Keras bar."""

    def __init__(self, total: int, verbose: int) -> None:
        self.total, self.verbose, self.done = total, verbose, 0
        self.start = time.perf_counter()
        self.width = 0
        self._show(f"0/{total} images: starting Ray and loading the model...")

    def _show(self, text: str) -> None:
        if not self.verbose:
            return
        self.width = max(self.width, len(text))
        sys.stdout.write(f"\r{text:<{self.width}}")
        sys.stdout.flush()

    def add(self, count: int) -> None:
        self.done += count
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        self._show(f"{self.done}/{self.total} images, {rate:.2f} images/s, ETA {left:.0f} s")

    def close(self) -> None:
        """End the progress line (what is printed next starts on a line of its own)."""
        if self.verbose:
            sys.stdout.write("\n")
            sys.stdout.flush()


def explain_dataset(
    model: str | os.PathLike,
    inputs: str | os.PathLike | Sequence,
    out: str | os.PathLike,
    method: str = "scorecam",
    *,
    weights: str | os.PathLike | None = None,
    preprocess: str | None = None,
    class_index: int | str | None = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    address: str | None = None,
    batch_size: int = 8,
    verbose: int = 1,
    **options: Any,
) -> dict:
    """Explain every image of ``inputs`` with ``model`` and write Parquet rows under ``out``.

    Args:
        model: a saved Keras model (``.keras`` / ``.h5`` path), a zoo name
            (``"efficientnet_lite0"``, which brings its own preprocessing and class names) or
            a ``keras.applications`` name such as ``"MobileNetV2"`` (with ``weights``).
        inputs: a folder, a glob pattern, or a list of image paths; for a model on volumes
            or video, of ``.npy`` files (a folder's ``.npy`` files are listed when it holds no
            images), each one (D, H, W, C) volume at the model's size, not resized.
        out: the output folder (created; results of earlier runs there are kept and skipped).
        method: any ``explain()`` method; further keyword ``options`` go to it.
        weights: a weights file for a ``keras.applications`` model.
        preprocess: for a model file, the name of its preprocessing, as the CLI's
            ``--preprocess`` ("none", "tf", "torch", "caffe", "lite").
        class_index: None explains each image's top-1 class; an int (or a class name)
            explains that class.
        class_names: names for the class indices: a list, or a JSON or text file; default the
            model's own (zoo and 1000-class models: the ImageNet names).
        actors: how many model replicas; default one per GPU, else 1.
        gpus_per_actor: GPUs per replica; default 1 when the cluster has GPUs, else 0.
        address: None starts a local Ray cluster (unless ``RAY_ADDRESS`` names one, or Ray is
            already initialised in this process); ``"auto"`` or ``"ray://host:10001"`` joins
            one (its workers must have tfscorecam installed and see the model file and images
            at the same paths).
        batch_size: images per batch handed to an actor (and per Parquet file).
        verbose: 1 prints one progress line (images/s, ETA); 0 is silent.

    Returns:
        A summary: ``total`` images, ``skipped`` (explained by an earlier run), ``explained``,
        ``errors`` and ``warnings`` (explained rows with a warning) in this run, ``seconds``,
        ``images_per_second``, ``first_batch_seconds`` (start-up: the cluster, the actors'
        models, the first batch) and ``steady_images_per_second`` (the rate from the first
        batch to the last).

    The first run into ``out`` records its settings (model file, weights, preprocessing,
    class names, method, class, options) in ``out/settings.json``; a later run with other
    settings stops with an error instead of taking rows made under them as done.

    The model, layer and options are checked in one small Ray task before the actors start,
    so a wrong layer name is one error, not a failure of every actor.

    Actors reserve the cluster's CPUs but one (left to the reading tasks and the writing
    driver) when they run on CPUs; each actor's TensorFlow uses the node's cores divided by the
    actors on it, so one actor on a laptop uses every core. A local cluster started here runs
    its workers at normal priority (Ray's default, niceness 15, let its own daemons slow the
    explainer by 30% on 2 cores).
    """
    ray = _require("ray")
    _require("pyarrow")
    from tfscorecam.methods import METHODS
    from tfscorecam.zoo.preprocessing import PREPROCESS

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if preprocess is not None and preprocess not in PREPROCESS:
        raise ValueError(
            f"unknown preprocess {preprocess!r}; choose one of {', '.join(PREPROCESS)}"
        )
    job = _Job(
        _model_name(model),
        None if weights is None else _existing(weights, "weights file"),
        preprocess,
        class_names,
        method,
        class_index,
        options,
    )
    paths = image_paths(inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder for the results")
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, job.settings())
    done = _tidy(out)
    todo = [p for p in paths if p not in done]
    summary: dict[str, float] = {
        "total": len(paths),
        "skipped": len(paths) - len(todo),
        "explained": 0,
        "errors": 0,
        "warnings": 0,
    }
    start = time.perf_counter()
    summary["first_batch_seconds"] = 0.0
    if todo:
        progress = _DriverProgress(len(todo), verbose)
        started = not ray.is_initialized()
        address = address or os.environ.get("RAY_ADDRESS")
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if started and address is None:
            # Ray runs workers at niceness 15 by default: on a laptop its own daemons would then
            # preempt the explainer (30% slower on 2 cores); a cluster we join keeps its setting
            ray.init(include_dashboard=False, _system_config={"worker_niceness": 0}, **quiet)
        elif started:
            ray.init(address=address, **quiet)
        try:
            with _ray_data_quiet():
                _run(
                    ray,
                    job,
                    todo,
                    out,
                    summary=summary,
                    progress=progress,
                    actors=actors,
                    gpus_per_actor=gpus_per_actor,
                    batch_size=batch_size,
                )
        finally:
            progress.close()
            if started:
                ray.shutdown()
        _tidy(out)
    summary["seconds"] = time.perf_counter() - start
    summary["images_per_second"] = summary["explained"] / max(summary["seconds"], 1e-9)
    summary.setdefault("steady_images_per_second", summary["images_per_second"])
    return summary


def _existing(path: str | os.PathLike, what: str) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return str(Path(path).resolve())


def _model_name(model: str | os.PathLike) -> str:
    """A zoo or keras.applications name as it is, a model file as its absolute path."""
    text = str(model)
    if Path(text).suffix in (".keras", ".h5") or os.sep in text:
        return _existing(text, "model file")
    return text


def _check_settings(out: Path, settings: dict) -> None:
    """Record ``settings`` in a new output folder; refuse a folder made with other ones."""
    record = out / "settings.json"
    if record.is_file():
        earlier = json.loads(record.read_text())
        if earlier != settings:
            changed = [k for k in settings if settings[k] != earlier.get(k)]
            then = ", ".join(f"{k}={earlier.get(k)!r}" for k in changed)
            now = ", ".join(f"{k}={settings[k]!r}" for k in changed)
            raise ValueError(
                f"{out} holds results made with other settings ({then}; this run: {now}), "
                "whose rows would be taken as done. Use another output folder for these "
                "settings, or delete it to start again"
            )
        return
    if _files(out, "part") or _files(out, "errors"):
        raise ValueError(
            f"{out} holds results without recorded settings (an earlier tfscorecam version), so "
            "they cannot be matched to this run: use another output folder"
        )
    record.write_text(json.dumps(settings, indent=1, sort_keys=True))


@contextlib.contextmanager
def _ray_data_quiet():
    """No info or warning lines while the run executes (Ray Data's "progress bars disabled",
    "execution finished", ...): Ray Data re-configures its loggers at every execution, so the
    levels are lowered process-wide for the run's duration; errors still show."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)


def _checked_input_shape(job: _Job) -> tuple[int, ...]:
    """Load the model and build the explainer once in a small Ray task (so the driver never
    loads TensorFlow): a bad model, layer or option is one error here, before any actor
    starts. Returns the explained input's shape after the batch axis: (H, W, C), or
    (D, H, W, C) for a model on volumes."""
    import ray

    @ray.remote(num_cpus=0)
    def check() -> tuple[int, ...] | str:
        try:
            keras_model, _, names = job.load()
            explainer, _ = job.explainer(keras_model, names)
            if explainer.fixed:
                raise ValueError(
                    f"explain_dataset explains models of one input; this one also takes "
                    f"{', '.join(explainer.fixed)}: explain it with explain(..., inputs=)"
                )
            shape = explainer.input_shape[1:]
            if None in shape[:-1]:
                raise ValueError("explain_dataset needs a model with a fixed input size")
        except Exception as error:  # reported in the driver as one line
            return f"{error}"
        return tuple(int(d) for d in shape)

    result = ray.get(check.remote())
    if isinstance(result, str):
        raise ValueError(result)
    return result


KILL_AFTER_FIRST_PART = "TFSCORECAM_KILL_AFTER_FIRST_PART"  # the tests' crash, made exact


def _stop_if_asked(first: bool) -> None:
    """With ``KILL_AFTER_FIRST_PART`` set in the environment, the driver kills itself (SIGKILL,
    as ``kill -9``) once the run's first part file is in place: the resume test's crash at a
    known point, not after a race against a timer."""
    if first and os.environ.get(KILL_AFTER_FIRST_PART):
        os.kill(os.getpid(), signal.SIGKILL)


def _cause_line(error: Exception) -> str:
    """The line of a Ray error's text that names what failed in the actor ("MemoryError: ..."),
    not Ray's own wrapping and retry advice; else its last line."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    causes = [
        line
        for line in lines
        if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*?: ", line)
        and not line.startswith("ray.")
    ]
    return (causes or lines or [str(error)])[0 if causes else -1]


def _run(
    ray,
    job: _Job,
    todo: list[str],
    out: Path,
    *,
    summary: dict,
    progress: _DriverProgress,
    actors: int | None,
    gpus_per_actor: float | None,
    batch_size: int,
) -> None:
    """Explain ``todo`` on Ray Data, writing result parts into ``out`` and counting them in
    ``summary`` (explained, errors, start-up and steady rates)."""
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    if gpus_per_actor is None:
        gpus_per_actor = 1 if gpus else 0
    if actors is None:
        actors = max(1, int(gpus // gpus_per_actor)) if gpus_per_actor else 1
    cpus_per_actor = 1 if gpus_per_actor else max(cpus - 1, 1) / actors
    nodes = max(1, len([n for n in ray.nodes() if n.get("Alive")]))
    threads = max(1, cpus // max(1, -(-actors // nodes)))
    shape = _checked_input_shape(job)
    data = ray.data.DataContext.get_current()
    data.enable_progress_bars = False
    data.print_on_execution_start = False
    dataset = ray.data.from_items([{"path": p} for p in todo])
    # reading is light: a quarter CPU per task (and a request unlike the actors', so that Ray
    # Data does not fuse reading into the actors: it runs in tasks beside them)
    dataset = dataset.map_batches(
        _decode, fn_kwargs={"shape": shape}, batch_size=batch_size, num_cpus=0.25
    )
    with warnings.catch_warnings():  # max_restarts has no named parameter yet (Ray 2.60)
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        dataset = dataset.map_batches(
            _BatchExplainer,
            fn_constructor_args=(job, threads),
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
            num_gpus=gpus_per_actor,
            # restartable actors make Ray log an error line on every run (its issue 53727); a
            # lost actor stops the run instead, and the rerun resumes
            max_restarts=0,
        )
    start = time.perf_counter()
    first_count = 0
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            if not first_count:
                summary["first_batch_seconds"] = time.perf_counter() - start
                first_count = len(batch["path"])
            explained, failed = _rows(batch, job.method)
            if explained:
                _write_rows(out, explained, "part")
                _stop_if_asked(summary["explained"] == 0)
            if failed:
                _write_rows(out, failed, "errors")
            summary["explained"] += len(explained)
            summary["errors"] += len(failed)
            summary["warnings"] += sum(row["warning"] is not None for row in explained)
            progress.add(len(explained) + len(failed))
    except ray.exceptions.RayError as error:
        raise RuntimeError(f"the explainer actors failed: {_cause_line(error)}") from None
    steady = time.perf_counter() - start - summary["first_batch_seconds"]
    if steady > 0:
        summary["steady_images_per_second"] = (progress.done - first_count) / steady


def write_overlays(
    out: str | os.PathLike,
    folder: str | os.PathLike | None = None,
    alpha: float = 0.4,
    colormap: str = "jet",
) -> int:
    """Overlay PNGs of the explained rows under ``out`` (into ``folder``, default
    ``out/overlays``), from the stored heatmaps: nothing is recomputed (a volume's: a montage
    of its slices, ``volumes.montage``). Returns the count."""
    from tfscorecam.interfaces.explanation import Explanation
    from tfscorecam.interfaces.filenames import distinct_stems, overlay_name
    from tfscorecam.interfaces.images import display_image, resize
    from tfscorecam.interfaces.volumes import display_volume, load_volume

    table = read_results(out)
    settings = Path(out) / "settings.json"
    output = (
        json.loads(settings.read_text())["options"].get("output") if settings.is_file() else None
    )
    folder = Path(folder) if folder is not None else Path(out) / "overlays"
    folder.mkdir(parents=True, exist_ok=True)
    explained = table[table["error"].isna()]
    for stem, (_, row) in zip(
        distinct_stems(list(explained["path"])), explained.iterrows(), strict=True
    ):
        heat = heatmap(row)
        if heat.ndim == 3:  # a volume's: at its own size, shown as a montage
            volume = load_volume(row["path"])
            image = display_volume(volume[..., None] if volume.ndim == 3 else volume)
        else:
            image = display_image(row["path"])
            heat = resize(heat[..., None], image.shape[:2])[..., 0]
        name = row["class_name"] if isinstance(row["class_name"], str) else None
        explanation = Explanation(
            heatmap=np.clip(heat, 0, 1),
            class_index=int(row["class_index"]),
            class_name=name,
            score=float(row["score"]),
            image=np.clip(np.round(image), 0, 255).astype(np.uint8),
            method=row["method"],
        )
        file = overlay_name(stem, row["method"], output, int(row["class_index"]), name)
        explanation.save(folder / file, alpha, colormap)
    return len(explained)
