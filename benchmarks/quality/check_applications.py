"""Every keras.applications model (random weights, 96x96) explains with layer=None.

    python -m benchmarks.quality.check_applications
    python -m benchmarks.quality.check_applications --table docs/snippets/layer-table.md

With ``--table`` each model is instead built at its default input size (224 x 224 where it
takes any size) and only ``layer=None``'s choice is read, no map computed, into the markdown
table that the docs' "Choosing a layer" page includes (a few minutes).

Prints, per model, the default layer and whether Grad-CAM and Score-CAM (max_channels=4) give
finite maps scaled to [0, 1] (or all zero: a random model's Grad-CAM may weigh every cell
below 0); exits 1 if any fails. Random weights, seeded per model. (tests/core/test_applications.py
runs one model per family in CI; this runs all of them, about 15 minutes on 2 cores.)
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfscorecam as tsc  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--table", default=None, help="write the layer table (markdown) here")
    args = parser.parse_args()
    names = [n for n in dir(keras.applications) if n[0].isupper()]
    if args.models:
        names = [n for n in names if n in args.models.split(",")]
    failed, rows = [], []
    for name in names:
        start = time.perf_counter()
        keras.utils.set_random_seed(0)
        build = getattr(keras.applications, name)
        if args.table:
            model = build(weights=None, classes=7)
            if None in model.inputs[0].shape[1:3]:
                model = build(weights=None, classes=7, input_shape=(224, 224, 3))
            grad = tsc.GradCAM(model, verbose=0)
            size = model.inputs[0].shape[1:3]
            layer_shape = (*grad.feature_size(), grad.num_channels)
            rows.append(f"| {name} | {size[0]}x{size[1]} | `{grad.layer_path}` | {layer_shape} |")
            print(f"{name:20s} {grad.layer_path}")
            keras.backend.clear_session()
            continue
        model = build(weights=None, input_shape=(96, 96, 3), classes=7)
        x = np.random.default_rng(0).normal(size=(1, 96, 96, 3)).astype(np.float32)
        grad = tsc.GradCAM(model, verbose=0)
        maps = [grad(x), tsc.ScoreCAM(model, max_channels=4, verbose=0)(x)]
        ok = all(np.all(np.isfinite(m)) and m.min() == 0 and m.max() in (0, 1) for m in maps)
        failed += [] if ok else [name]
        seconds = time.perf_counter() - start
        print(f"{name:20s} {grad.layer_path:45s} {'ok' if ok else 'FAILED'} {seconds:5.1f} s")
        del model, grad, maps
        keras.backend.clear_session()
        gc.collect()
    if not args.table:
        print(
            f"{len(names) - len(failed)} of {len(names)} models explained; "
            f"failed: {failed or 'none'}"
        )
    else:
        header = "| model | input | `layer=None` | feature map (h, w, channels) |"
        header += "\n|---|---|---|---|"
        with open(args.table, "w") as handle:
            handle.write("\n".join([header, *rows]) + "\n")
        print(f"table -> {args.table}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
