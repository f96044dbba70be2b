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

from tfscorecam.interfaces.dataset.driver import KILL_AFTER_FIRST_PART, explain_dataset, image_paths
from tfscorecam.interfaces.dataset.overlays import write_overlays
from tfscorecam.interfaces.dataset.store import COLUMNS, heatmap, read_results

__all__ = [
    "COLUMNS",
    "KILL_AFTER_FIRST_PART",
    "explain_dataset",
    "heatmap",
    "image_paths",
    "read_results",
    "write_overlays",
]
