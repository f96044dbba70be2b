"""Every benchmark script runs its smallest setting (CI smoke runs, so that no script the docs
quote can rot).

Each runs as ``python -m benchmarks.<group>.<script>`` would, from the repository root (all of
them in one process, one after the other, so that TensorFlow is imported once: ``RUNNER``), on
a randomly initialised MobileNetV2 (``--weights random``) and a few generated photos in the
formats of ``../shared`` (``<wnid>_<label>.JPEG`` files, a class index, photos with a
``boxes.csv``), and writes its results under a temporary ``TFSCORECAM_BENCH_RESULTS``, never
into ``benchmarks/results``. The figures are meaningless; what is checked is that each script
runs to its end and writes what it reports.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WNIDS = ("n01440764", "n01443537", "n01484850")  # ImageNet classes 0, 1, 2


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Generated photos: a dev folder, a class index, a box folder and a results folder."""
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    dev = root / "dev"
    dev.mkdir()
    for i in range(4):
        photo = rng.integers(0, 256, (260, 300, 3), dtype=np.uint8)
        Image.fromarray(photo).save(dev / f"{WNIDS[i % 3]}_photo{i}.JPEG")
    index = root / "class_index.json"
    index.write_text(json.dumps({str(i): [w, f"class{i}"] for i, w in enumerate(WNIDS)}))
    boxes = root / "boxes"
    (boxes / "images").mkdir(parents=True)
    with open(boxes / "boxes.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class_index", "x0", "y0", "x1", "y1"])
        for i in range(3):
            name = f"val{i}.JPEG"
            Image.fromarray(rng.integers(0, 256, (227, 227, 3), dtype=np.uint8)).save(
                boxes / "images" / name
            )
            writer.writerow([name, i, 40 + 10 * i, 50, 150, 160 + 10 * i])
    results = root / "results"
    results.mkdir()
    return {"dev": dev, "index": index, "boxes": boxes, "results": results}


def arguments(data: dict[str, Path]) -> dict[str, list[str]]:
    """Each script's smallest setting, in an order where a study's cache comes first."""
    dev, boxes, index = str(data["dev"]), str(data["boxes"]), str(data["index"])
    model = ["--weights", "random"]
    return {
        "speed.bench_scorecam": [*model, "--images", dev, "--n", "1", "--max-channels", "8",
                                 "--batch-sizes", "8", "--rate-seconds", "0.2", "--rounds", "1",
                                 "--rss-batch-size", "4", "--no-peer"],
        "speed.bench_asc": [*model, "--images", dev, "--n", "1", "--repeat", "1",
                            "--max-channels", "2"],
        "speed.bench_ablation": [*model, "--images", dev, "--n", "1", "--rounds", "1",
                                 "--max-channels", "4"],
        "speed.bench_precision": [*model, "--images", dev, "--n", "1", "--rounds", "1",
                                  "--max-channels", "2"],
        "speed.bench_family": [*model, "--images", dev, "--n", "1", "--repeat", "1",
                               "--max-channels", "2"],
        "speed.bench_serving": [*model, "--images", dev, "--n", "1", "--repeat", "1",
                                "--max-channels", "2", "--methods", "IS-CAM"],
        "speed.bench_dataset": [*model, "--images", dev, "--n", "2", "--max-channels", "2",
                                "--batch-size", "2", "--actors", "1"],
        "speed.bench_explain_loop": ["--calls", "2", "--rounds", "1"],
        "speed.bench_backend": [*model, "--images", dev, "--n", "1", "--rounds", "1",
                                "--rate-seconds", "0.2", "--max-channels", "8",
                                "--batch-size", "8"],
        "speed.bench_similarity": ["--size", "tiny", "--prompts", "1,3", "--rounds", "1",
                                   "--max-channels", "4", "--batch-size", "4"],
        "speed.bench_volume": ["--kind", "ct", "--rounds", "1", "--batch-size", "8"],
        "quality.evaluate": [*model, "--images", dev, "--class-index", index, "--n", "2",
                             "--mosaics", "1", "--steps", "2", "--max-channels", "2",
                             "--methods", "gradcam,faster"],
        "quality.localisation": [*model, "--boxes", boxes, "--n", "2", "--steps", "2",
                                 "--max-channels", "2", "--methods", "gradcam,reciprocam",
                                 "--road-stride", "2"],
        "quality.sanity": [*model, "--images", dev, "--n", "2", "--max-channels", "4",
                           "--methods", "gradcam,scorecam,eigencam"],
        "quality.zoo_accuracy": ["--images", dev, "--class-index", index, "--n", "2"],
        "quality.check_applications": ["--models", "MobileNetV2"],
        "studies.detection_score": ["--images", dev, "--n", "1", "--max-channels", "2"],
        "studies.zoom_views": [*model, "--boxes", boxes, "--max-channels", "2"],
        "studies.zoom_study": [*model, "--boxes", boxes, "--max-channels", "2", "--rounds", "20",
                               "--causal-stride", "0", "--road-stride", "0"],
        "studies.fusion_study": [*model, "--boxes", boxes, "--max-channels", "2",
                                 "--rounds", "20"],
        "studies.default_study": [*model, "--boxes", boxes, "--max-channels", "2",
                                  "--rounds", "20", "--polycam-stride", "1",
                                  "--causal-stride", "1", "--road-stride", "2"],
        "studies.view_sets": [*model, "--boxes", boxes, "--max-channels", "2",
                              "--rounds", "20", "--sets", "1.5,2:3,4"],
        "studies.polycam_study": [*model, "--boxes", boxes, "--max-channels", "2",
                                  "--rounds", "20"],
        "studies.resolution_test": [*model, "--boxes", boxes, "--objects", "1",
                                    "--max-channels", "2"],
        "studies.asc_study": [*model, "--boxes", boxes, "--max-channels", "2"],
        "studies.asc_values": [*model, "--boxes", boxes, "--max-channels", "2",
                               "--lite0-channels", "2"],
        "studies.near_empty_maps": [*model, "--images", dev, "--photos", "2",
                                    "--methods", "gradcam,eigencam", "--seeds", "1"],
        "studies.observation_model": [*model, "--boxes", boxes, "--objects", "1",
                                      "--max-channels", "2", "--scales", "1,2"],
        "studies.calibrated_fusion": [*model, "--boxes", boxes, "--objects", "1",
                                      "--max-channels", "2", "--shifts", "0,0", "--sigmas", "1"],
    }  # fmt: skip


SCRIPTS = list(arguments({"dev": Path(), "boxes": Path(), "index": Path(), "results": Path()}))


def test_every_script_has_a_smoke_run():
    found = {
        f"{p.parent.name}.{p.stem}"
        for p in (ROOT / "benchmarks").glob("*/*.py")
        if p.stem != "__init__"
    }
    assert found == set(SCRIPTS)


# runs each (script, arguments) of its first argument (JSON) as ``python -m`` would, in this
# one process; prints "=== script" before each one's output and "!!! script" if it failed
RUNNER = """
import json, runpy, sys, traceback
for script, argv in json.loads(sys.argv[1]):
    print(f"=== {script}", flush=True)
    sys.argv = [script, *argv]
    try:
        runpy.run_module(f"benchmarks.{script}", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code not in (None, 0):
            print(f"!!! {script} exited with {stop.code}", flush=True)
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        print(f"!!! {script} failed", flush=True)
"""


def test_every_script_runs_its_smallest_setting(data):
    """Every script in ``arguments``' order (a study reading another's cache after it), in
    ``data``'s results folder: each must finish and print something."""
    env = {**os.environ, "TFSCORECAM_BENCH_RESULTS": str(data["results"]), "MPLBACKEND": "Agg"}
    plan = json.dumps(list(arguments(data).items()))
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, plan],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    outputs = dict(part.split("\n", 1) for part in done.stdout.split("=== ")[1:])
    assert list(outputs) == SCRIPTS, done.stderr[-3000:]
    failed = {name: text[-3000:] for name, text in outputs.items() if "!!! " in text}
    assert not failed, failed
    silent = [name for name, text in outputs.items() if not text.strip()]
    assert not silent, f"printed nothing: {silent}"
    assert done.returncode == 0, done.stderr[-3000:]
