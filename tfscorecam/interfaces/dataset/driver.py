"""The driver of ``explain_dataset``: the images to explain, the Ray cluster, the Ray Data
pipeline from reading tasks to explainer actors, and the result parts it writes as they come."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfscorecam.interfaces.dataset.store import check_settings, require, tidy, write_rows
from tfscorecam.interfaces.dataset.workers import (
    BatchExplainer,
    Job,
    checked_input_shape,
    decode,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


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
    ray = require("ray")
    require("pyarrow")
    job = _checked_job(model, method, weights, preprocess, class_index, class_names, options)
    paths = image_paths(inputs)
    out = _output_folder(out, job)
    done = tidy(out)
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
        tidy(out)
    summary["seconds"] = time.perf_counter() - start
    summary["images_per_second"] = summary["explained"] / max(summary["seconds"], 1e-9)
    summary.setdefault("steady_images_per_second", summary["images_per_second"])
    return summary


def _checked_job(
    model: str | os.PathLike,
    method: str,
    weights: str | os.PathLike | None,
    preprocess: str | None,
    class_index: int | str | None,
    class_names: object,
    options: dict,
) -> Job:
    """The run's ``Job``, its method, preprocessing and files checked in the driver (the
    model itself is checked in a Ray task, ``checked_input_shape``)."""
    from tfscorecam.methods import check_method
    from tfscorecam.zoo.preprocessing import named_preprocess

    check_method(method)
    if preprocess is not None:
        named_preprocess(preprocess)
    return Job(
        _model_name(model),
        None if weights is None else _existing(weights, "weights file"),
        preprocess,
        class_names,
        method,
        class_index,
        options,
    )


def _output_folder(out: str | os.PathLike, job: Job) -> Path:
    """``out`` made a folder (not a file) holding ``job``'s settings (``check_settings``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder for the results")
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, job.settings())
    return out


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
    job: Job,
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
    shape = checked_input_shape(job)
    data = ray.data.DataContext.get_current()
    data.enable_progress_bars = False
    data.print_on_execution_start = False
    dataset = ray.data.from_items([{"path": p} for p in todo])
    # reading is light: a quarter CPU per task (and a request unlike the actors', so that Ray
    # Data does not fuse reading into the actors: it runs in tasks beside them)
    dataset = dataset.map_batches(
        decode, fn_kwargs={"shape": shape}, batch_size=batch_size, num_cpus=0.25
    )
    with warnings.catch_warnings():  # max_restarts has no named parameter yet (Ray 2.60)
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        dataset = dataset.map_batches(
            BatchExplainer,
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
                write_rows(out, explained, "part")
                _stop_if_asked(summary["explained"] == 0)
            if failed:
                write_rows(out, failed, "errors")
            summary["explained"] += len(explained)
            summary["errors"] += len(failed)
            summary["warnings"] += sum(row["warning"] is not None for row in explained)
            progress.add(len(explained) + len(failed))
    except ray.exceptions.RayError as error:
        raise RuntimeError(f"the explainer actors failed: {_cause_line(error)}") from None
    steady = time.perf_counter() - start - summary["first_batch_seconds"]
    if steady > 0:
        summary["steady_images_per_second"] = (progress.done - first_count) / steady
