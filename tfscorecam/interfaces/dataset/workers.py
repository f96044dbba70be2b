"""What runs in Ray's workers: reading the images (a task), explaining them (an actor that
builds its model and explainer once), and the one small task that checks the model, layer and
options before any actor starts."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def decode(batch: dict, shape: tuple[int, ...]) -> dict:
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
class Job:
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
        from tfscorecam.zoo.models import load

        loaded = load(self.model, self.weights, self.preprocess or "none", self.class_names)
        return loaded.model, loaded.preprocess, loaded.class_names

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


class BatchExplainer:
    """Ray actor: builds its model and explainer once, then explains batches of decoded images."""

    def __init__(self, job: Job, threads: int) -> None:
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
        from tfscorecam.interfaces.advice import input_warnings
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


def checked_input_shape(job: Job) -> tuple[int, ...]:
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
