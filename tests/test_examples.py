"""Every command and example of the README and the documentation pages runs as written, with
its files made here.

One test runs them all: the Python blocks first, in one namespace, the README first and then
the pages in the site's navigation order, each page's ``PROMISES`` checked after its last
block; then the shell lines, a fresh process each, page by page in order (a line may read
what an earlier line or a block wrote, and each line's ``WRITES`` are checked); all in a
folder holding the files they name (photos, a MobileNetV2 weights file, saved models).
Where a page uses a big model the namespace holds a small one under the same name (a random
MobileNetV2 for the ImageNet weights, a tiny RetinaNet for a trained detector). The few lines
that cannot run here are listed in ``NOT_RUN`` with the reason. None may explain with inputs
outside the range its model's preprocessing gives (the ``InputWarning`` of a missing
``--preprocess``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import build_deeplab, build_depth_anything, build_retinanet, build_sam
from PIL import Image

from tfscorecam import zoo

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _pages() -> list[Path]:
    """The README, then every page of mkdocs.yml's navigation, in its order."""
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    return [README, *(ROOT / "docs" / page for page in nav)]


NOT_RUN = {
    "python -m pip install": "CI installs the package with this very command",
    "python -m pytest": "CI runs the tests with this very command",
    "docker run": "no Docker engine on these machines",
    "curl": "needs the TensorFlow Serving container of the docker line",
    "--address auto": "joins a running Ray cluster",
    "mkdocs serve": "serves until stopped; tests/test_docs.py builds the site strictly",
    "KERAS_BACKEND=jax tfscorecam demo": "CI's stage without TensorFlow runs this very line",
    "KERAS_BACKEND=torch tfscorecam demo": "needs PyTorch's environment; test_backends compares "
    "every method's maps on PyTorch",
}
# What each page's Python blocks promise, checked in their namespace (and folder) once the
# page's last block has run: shapes, ranges, files written, the class a real model gives.
PROMISES = {
    "README.md": [
        "result.class_name == 'Egyptian_cat' and result.score > 0.75",  # real weights (JPEG here)
        "result.heatmap.shape == np.asarray(Image.open('photo.jpg')).shape[:2]",
        "result.heatmap.dtype == np.float32 and result.heatmap.min() >= 0",
        "result.heatmap.max() > 0.99 and result.peak > 0",  # resized to the photo from 1
        "Image.open('overlay.png').size == Image.open('photo.jpg').size",
        "maps.shape == (2, 224, 224) and maps.dtype == np.float32",
        "maps.min() >= 0 and maps.max() <= 1",
    ],
    "getting-started.md": [
        "[e.class_index for e in several] == [281, 285]",
        "result.heatmap.shape == np.asarray(Image.open('photo.jpg')).shape[:2]",
    ],
    "methods.md": [
        "maps.shape == (2, 2, 224, 224) and raw.shape == (2, 224, 224)",
        "smooth.shape == clean.shape == (2, 224, 224) and smooth.max() <= 1",
        "picture.shape == np.asarray(Image.open('photo.jpg')).shape and picture.dtype == np.uint8",
        "result.raw.shape == result.heatmap.shape and result.peak >= 0",
    ],
    "targets.md": [
        "Image.open('detection.png').size == (224, 224)",
        "mask_map.shape == (64, 64) and 0 <= mask_map.min() and mask_map.max() <= 1",
    ],
    "volumes.md": [
        "maps.shape == (2, 16, 64, 64) and result.heatmap.shape == (16, 64, 64)",
        "Image.open('scan_overlay.png').size[0] >= 512",  # a 4 x 4 montage, magnified
        "Path('ct.keras').is_file() and np.load('scan.npy').shape == (16, 64, 64, 1)",
    ],
    "augmented.md": [
        "maps.shape == (2, 224, 224) and len(views) == 129",
        "copies.shape == (32, 224, 224, 3) and hr.shape == (224, 224)",
    ],
    "serving.md": ["Path('models/asc/1/saved_model.pb').is_file()"],
    "datasets.md": [
        "heat.shape == (table.iloc[0]['map_height'], table.iloc[0]['map_width'])",
        "table['error'].isna().all() and table['map_peak'].notna().all()",
    ],
}
# The files each shell command promises (globs in the examples' folder), checked after it runs
WRITES = {
    "tfscorecam demo": ["tfscorecam_out/demo_scorecam.png"],
    "tfscorecam explain cat.jpg dog.jpg": [
        "tfscorecam_out/cat_scorecam_*.png",
        "tfscorecam_out/dog_scorecam_*.png",
    ],
    "--top-k 3 --method gradcam++ --out results/": ["results/cat_gradcam++_*.png"] * 3,
    "--class tabby": ["tfscorecam_out/cat_scorecam_281_tabby.png"],
    "--output species --method layercam": ["tfscorecam_out/cat_layercam_output-species_*.png"],
    "scan.npy --out overlays": ["overlays/scan_scorecam_*.png"],
    "--out out/ --overlays": ["out/part-*.parquet", "out/overlays/p0_*.png"],
}


def _blocks(language: str) -> list[tuple[Path, str]]:
    """(page, block) for every fenced block of ``language``, pages in ``_pages`` order."""
    return [
        (page, block)
        for page in _pages()
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)
    ]


def _commands() -> dict[str, list[str]]:
    """Each page's shell commands in order: one per line, continued lines joined, comments
    dropped; a command already listed for an earlier page is not run again."""
    pages: dict[str, list[str]] = {}
    seen: set[str] = set()
    for page, block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for command in re.sub(r"\s+#.*$", "", line).split("&&"):
                command = command.strip()
                if command and command not in seen and not any(s in command for s in NOT_RUN):
                    seen.add(command)
                    pages.setdefault(page.name, []).append(command)
    return pages


def _photo(path: Path, flip: bool = False) -> None:
    image = Image.open(zoo.DEMO_IMAGE).convert("RGB")
    (image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image).save(path)


def _small_cnn(name: str, size: int = 64) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv5")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x), name=name)


def _example_files(root: Path) -> None:
    """Write into ``root`` every file the README and the pages name."""
    for name in ("cat.jpg", "photo.jpg"):
        _photo(root / name)
    _photo(root / "dog.jpg", flip=True)
    (root / "photos").mkdir()
    for i in range(3):
        _photo(root / "photos" / f"p{i}.jpg", flip=bool(i % 2))
    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None)
    (root / "path" / "to").mkdir(parents=True)
    for weights in ("mobilenet_v2.weights.h5", "path/to/mobilenet_v2.weights.h5"):
        mobilenet.save_weights(root / weights)
    _small_cnn("my_model").save(root / "my_model.keras")
    _small_cnn("model").save(root / "model.keras")
    backbone = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    features = keras.layers.GlobalAveragePooling2D()(backbone.get_layer("out_relu").output)
    species = keras.layers.Dense(3, activation="softmax", name="species")(features)
    age = keras.layers.Dense(1, name="age")(features)
    keras.Model(backbone.inputs, {"species": species, "age": age}).save(root / "two_heads.keras")


def _namespace(root: Path) -> dict:
    """What the README's Python blocks take as given: images, a segmenter, boxes..."""
    keras.utils.set_random_seed(1)
    images = np.stack(
        [
            np.asarray(Image.open(root / n).resize((224, 224)), np.uint8)
            for n in ("cat.jpg", "dog.jpg")
        ]
    )
    inputs = keras.Input((224, 224, 3))
    hidden = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(inputs)
    logits = keras.layers.Conv2D(13, 1)(keras.layers.UpSampling2D(4)(hidden))
    segmenter = keras.Model(inputs, keras.layers.Softmax()(logits))
    trunk = keras.layers.GlobalAveragePooling2D()(hidden)
    multi_task_model = keras.Model(
        inputs,
        {"age": keras.layers.Dense(2, name="age")(trunk), "kind": keras.layers.Dense(3)(trunk)},
    )
    mask = np.zeros((224, 224), bool)
    mask[50:150, 60:180] = True
    return {
        "images": images,
        "image": images[0].astype(np.float32) / 127.5 - 1,
        "segmenter": segmenter,
        "mask": mask,
        "multi_task_model": multi_task_model,
        "boxes": np.array([[40, 30, 200, 210], [10, 20, 150, 160]]),
        "low_res": np.random.default_rng(0).random((32, 7, 7)),
        "my_tf_function": lambda v: v / 127.5 - 1,
        "mosaic_maps": np.random.default_rng(1).random((2, 224, 224)),
        "tiles": [0, 3],
        "detector": build_retinanet(224, classes=3),
        **_clip_namespace(images),
        "deeplab": build_deeplab(),
        "seg_image": _scaled(images[0], 64),
        "depth_model": build_depth_anything(),
        "depth_image": _scaled(images[0], 126),
        "sam": build_sam(),
        "sam_image": _scaled(images[0], 64),
        **_multi_input_namespace(),
        **_volume_namespace(),
    }


def _volume_namespace() -> dict:
    """A small Conv3D classifier on (16, 64, 64, 1) volumes and two scans in Hounsfield units."""
    keras.utils.set_random_seed(4)
    volumes = keras.Input((16, 64, 64, 1))
    x = keras.layers.Conv3D(8, 3, strides=2, padding="same", activation="relu")(volumes)
    x = keras.layers.Conv3D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    ct_model = keras.Model(volumes, keras.layers.Dense(2, activation="softmax")(x))
    scans = np.random.default_rng(4).uniform(-1000, 1000, (2, 16, 64, 64, 1))
    return {"ct_model": ct_model, "scans": scans.astype(np.float32)}


def _multi_input_namespace() -> dict:
    """Two small multi-input models (image + meta, RGB + depth) and their other inputs."""
    keras.utils.set_random_seed(3)
    image = keras.Input((224, 224, 3), name="image")
    meta = keras.Input((4,), name="meta")
    x = keras.layers.Conv2D(8, 3, strides=4, activation="relu")(image)
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), meta])
    image_and_meta = keras.Model(
        {"image": image, "meta": meta}, keras.layers.Dense(3, activation="softmax")(x)
    )
    rgb = keras.Input((224, 224, 3), name="rgb")
    depth = keras.Input((224, 224, 1), name="depth")
    x = keras.layers.Conv2D(8, 3, strides=4, activation="relu")(
        keras.layers.Concatenate()([rgb, depth])
    )
    x = keras.layers.GlobalAveragePooling2D()(x)
    rgb_and_depth = keras.Model([rgb, depth], keras.layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(3)
    return {
        "image_and_meta": image_and_meta,
        "rgb_and_depth": rgb_and_depth,
        "meta": rng.normal(size=(2, 4)).astype(np.float32),
        "depth": rng.uniform(size=(2, 224, 224, 1)).astype(np.float32),
    }


def _scaled(photo: np.ndarray, size: int) -> np.ndarray:
    """``photo`` resized to size x size and scaled to [-1, 1]."""
    return np.asarray(Image.fromarray(photo).resize((size, size)), np.float32) / 127.5 - 1


def _clip_namespace(images: np.ndarray) -> dict:
    """A small CLIP from its config (random weights), two images and three tokenised prompts."""
    import keras_hub

    keras.utils.set_random_seed(2)
    common = dict(hidden_dim=32, num_layers=2, num_heads=2, intermediate_dim=64)
    vision = keras_hub.models.CLIPVisionEncoder(patch_size=32, image_shape=(224, 224, 3), **common)
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=100, embedding_dim=32, max_sequence_length=8, **common
    )
    return {
        "clip": keras_hub.models.CLIPBackbone(vision, text, projection_dim=16),
        "clip_image": images[0].astype(np.float32) / 127.5 - 1,
        "clip_image_2": images[1].astype(np.float32) / 127.5 - 1,
        "token_ids": np.random.default_rng(2).integers(1, 100, (3, 8)),
    }


def _no_range_warning(caught) -> None:
    wrong = [str(w.message) for w in caught if "with values in" in str(w.message)]
    assert not wrong, wrong


def _run_python_blocks(folder: Path) -> None:
    """Run every Python block in order, in ``folder``, checking each page's ``PROMISES``."""
    import matplotlib

    matplotlib.use("Agg")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(folder)
        namespace = _namespace(folder)
        namespace["labels"] = None  # set below from the model, once the API block defined it
        blocks = _blocks("python")
        for n, (page, block) in enumerate(blocks):
            if "labels" in block and "model" in namespace:
                probabilities = namespace["model"].predict(namespace["x"], verbose=0)
                namespace["labels"] = probabilities.argmax(axis=1)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                exec(compile(block, str(page), "exec"), namespace)  # noqa: S102
            _no_range_warning(caught)
            if n + 1 == len(blocks) or blocks[n + 1][0] != page:  # the page's last block
                broken = [p for p in PROMISES.get(page.name, []) if not _holds(p, namespace)]
                assert not broken, (page.name, broken)


def _holds(promise: str, namespace: dict) -> bool:
    """Whether ``promise`` (an expression) is true in the examples' namespace."""
    return bool(eval(promise, {**namespace, "np": np, "Image": Image, "Path": Path}))  # noqa: S307


def _run(command: str, folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    words = shlex.split(command)
    if words[0] == "python":
        words[0] = sys.executable
    elif words[0] in ("tfscorecam", "saved_model_cli"):
        words[0] = str(Path(sys.executable).parent / words[0])
    done = subprocess.run(words, cwd=folder, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    assert "with values in" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for part, globs in WRITES.items():
        if part in command:
            for pattern in set(globs):
                found = sorted(folder.glob(pattern))
                assert len(found) >= globs.count(pattern), (command, pattern, found)
                assert all(f.stat().st_size > 1000 for f in found), (command, found)


def test_examples_run_as_written(tmp_path_factory):
    """Every Python block in order, each page's promises checked after its last block, then
    each page's shell commands in order, in one folder (they use what the blocks wrote: the
    SavedModels the serving page exports).

    One test item, so that one xdist worker runs it (400 s on 2 cores) while the others run the
    rest: xdist's ``xdist_group`` mark does not keep a module on one worker with this pytest
    (its node-id suffix is lost), so a fixture shared by several items ran once per worker, or
    left a worker waiting for it."""
    assert set(PROMISES) <= {page.name for page, _ in _blocks("python")}
    folder = tmp_path_factory.mktemp("examples")
    _example_files(folder)
    _run_python_blocks(folder)
    for commands in _commands().values():
        for command in commands:
            _run(command, folder)
