"""AugmentedScoreCAM: each copy's map against the NumPy reference, and its invariances."""

import numpy as np
import pytest
from conftest import build_classifier
from references import SIZE, exact_fusion, images, reference_weights, resize_bilinear
from scipy import ndimage

import tfscorecam as tsc
from tfscorecam import augment, superres


def _reference_low_map(model, image, class_index) -> np.ndarray:
    acts, scores, scored = reference_weights(model, image, class_index)
    low = np.maximum(np.tensordot(acts[..., scored], scores, axes=1), 0)
    return low / low.max()


def _request(asc, image, class_index):
    """What ``asc`` explains for ``class_index`` of one image."""
    _, outputs = asc.forward(image[None])
    return asc.scorings.resolve(class_index, None, outputs, single=False)


def test_each_copy_is_scored_on_the_warped_image(softmax_model):
    x = images(1)[0]
    asc = tsc.AugmentedScoreCAM(
        softmax_model,
        "target",
        num_augmentations=3,
        max_shift=3,
        weights="per_copy",
        views="rotations",
    )
    transforms = asc.transforms((SIZE, SIZE), (8, 8))
    acts = asc.forward(x[None])[0][0]
    maps = asc.copy_maps(x, acts, _request(asc, x, 2), 0, transforms)
    copies = augment.warp(x, transforms)
    assert maps.shape == (1, 3, 8, 8)
    for copy, low in zip(copies, maps[0], strict=True):
        np.testing.assert_allclose(low, _reference_low_map(softmax_model, copy, 2), atol=1e-4)


def test_shared_weights_reuse_the_original_images_scores(softmax_model):
    x = images(1)[0]
    asc = tsc.AugmentedScoreCAM(
        softmax_model, "target", num_augmentations=3, weights="shared", views="rotations"
    )
    transforms = asc.transforms((SIZE, SIZE), (8, 8))
    acts0, scores, scored = reference_weights(softmax_model, x, 1)
    maps = asc.copy_maps(x, acts0.astype(np.float32), _request(asc, x, 1), 0, transforms)
    for copy, low in zip(augment.warp(x, transforms), maps[0], strict=True):
        acts = reference_weights(softmax_model, copy, 1, channels=[])[0]
        expected = np.maximum(np.tensordot(acts[..., scored], scores, axes=1), 0)
        np.testing.assert_allclose(low, expected / expected.max(), atol=1e-4)


def test_one_copy_without_total_variation_is_the_upsampled_score_cam(softmax_model):
    x = images(1)[0]
    asc = tsc.AugmentedScoreCAM(
        softmax_model,
        "target",
        num_augmentations=1,
        observation="area",
        tv_weight=0,
        energy_weight=1e-9,
        multiply_coarse=False,
    )
    low = _reference_low_map(softmax_model, x, 3)
    fused = np.kron(low, np.ones((2, 2)))  # the minimum-norm fit of the area average
    np.testing.assert_allclose(asc(x, class_index=3), _scaled(fused), atol=1e-3)
    # multiply_coarse: the fused map times the image's own map, upsampled bilinearly
    asc.multiply_coarse = True
    coarse = resize_bilinear(low, SIZE, SIZE)
    np.testing.assert_allclose(asc(x, class_index=3), _scaled(fused * coarse), atol=1e-3)


def _scaled(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min())


def test_seeded_batched_and_multi_class(softmax_model):
    x = images(2)
    rotations = {"num_augmentations": 4, "views": "rotations"}
    asc = tsc.AugmentedScoreCAM(softmax_model, seed=5, batch_size=3, **rotations)
    maps = asc(x)
    assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
    assert maps.min() == 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    np.testing.assert_array_equal(maps, asc(x))
    np.testing.assert_allclose(maps[1], asc(x[1]), atol=1e-5)
    other_seed = tsc.AugmentedScoreCAM(softmax_model, seed=6, **rotations)(x)
    assert np.abs(other_seed - maps).max() > 1e-3
    both = asc(x, class_index=[[0, 4]] * 2)
    np.testing.assert_allclose(both[:, 1], asc(x, class_index=4), atol=1e-5)
    limited = tsc.AugmentedScoreCAM(softmax_model, max_channels=2, **rotations)(x)
    assert np.all(np.isfinite(limited)) and np.abs(limited - maps).max() > 1e-3


def test_max_shift_defaults_to_half_a_feature_cell():
    model = build_classifier("softmax")
    asc = tsc.AugmentedScoreCAM(model, num_augmentations=200, max_angle=0, views="rotations")
    shifts = -asc.transforms((112, 112), (7, 7))[:, [2, 5]]  # 16-px cells
    assert 7 < np.abs(shifts).max() <= 8


def test_authors_settings():
    model = build_classifier("softmax")  # 16 px input, 8x8 target layer: 2-px cells
    asc = tsc.AugmentedScoreCAM.authors_settings(model, "target", verbose=0)
    assert asc.num_augmentations == 100 and asc.weights == "per_copy"
    assert asc.max_angle == 0.5 and asc.max_shift == pytest.approx(30 * 16 / 224)
    assert asc.subcells is None and asc.fusion["observation"] == "area"
    assert asc.fusion["tv_weight"] == pytest.approx(0.002 * 2)  # per pixel, 2 pixels a cell
    assert asc.fusion["energy_weight"] == pytest.approx(0.001 * 4)
    fewer = tsc.AugmentedScoreCAM.authors_settings(model, "target", num_augmentations=3)
    assert fewer.num_augmentations == 3 and fewer(images(1)[0]).shape == (SIZE, SIZE)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_augmentations": 0}, ValueError, "num_augmentations must be at least 1"),
        ({"max_angle": -0.1}, ValueError, "max_angle must be >= 0"),
        ({"max_shift": -1}, ValueError, "max_shift must be >= 0"),
        ({"weights": "mean"}, ValueError, "weights must be one of"),
        ({"tv_weight": -1}, ValueError, "tv_weight must be >= 0"),
        ({"prior": "l2"}, ValueError, "prior must be one of"),
        ({"subcells": 0}, ValueError, "subcells must be at least 1"),
        ({"view_scale": "max"}, ValueError, "view_scale must be one of"),
        ({"zoom_scales": (2.0, 0.5)}, ValueError, "zoom_scales must all be > 1"),
        ({"zoom_crops": 0}, ValueError, "zoom_crops must be at least 1"),
        ({"max_channels": 0}, ValueError, "max_channels must be at least 1"),
        ({"cell_shift": "probe"}, ValueError, "cell_shift must be 'auto' or two finite"),
    ],
)
def test_bad_options(softmax_model, kwargs, error, message):
    with pytest.raises(error, match=message):
        tsc.AugmentedScoreCAM(softmax_model, **kwargs)


_UNDER_A_MEMORY_LIMIT = """
import resource
import keras, numpy as np
import tfscorecam as tsc
from tfscorecam.core.memory import GIB

inputs = keras.Input((124, 124, 3))
x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inputs, outputs)  # a 62x62 map: 4,994 zoomed views, 220 GB to fuse them
x = np.random.default_rng(0).uniform(-1, 1, (1, 124, 124, 3)).astype("float32")
model(x)
vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(1.5 * GIB), resource.RLIM_INFINITY))
for options in ({}, {"num_augmentations": 4000, "memory_budget": 1000 * GIB}):
    try:
        tsc.AugmentedScoreCAM(model, verbose=0, **options)(x)
    except MemoryError as error:
        print("refused:", error)
cam = tsc.AugmentedScoreCAM(model, verbose=0, memory_budget=GIB // 4)
maps = cam(x)
peak = f"{float(maps.max()):.5f}"  # min-max scaled: 1 up to float32 rounding
print("views:", len(cam.transforms((124, 124), (62, 62))), maps.shape, peak)
"""


def test_views_and_fusion_fit_a_memory_budget_under_a_memory_limit():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _UNDER_A_MEMORY_LIMIT], capture_output=True, text=True, timeout=300
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 3, done.stderr[-2000:]
    assert lines[0].startswith("refused: Augmented Score-CAM with ") and "available now" in lines[0]
    assert "4000 views" in lines[1] and "available now" in lines[1]
    assert "fewer views (num_augmentations=" in lines[1]
    assert lines[2] == "views: 3 (1, 124, 124) 1.00000"


def test_default_views_are_thinned_to_the_budget_and_explicit_ones_refused():
    model = build_classifier("softmax")  # 8x8 map at 16 px: 1 + 81 + 81 zoomed views
    every = tsc.AugmentedScoreCAM(model, verbose=0)  # crops 2 and 3 cells apart at 3x and 4x
    assert len(every.transforms((16, 16), (8, 8))) == 163
    per_view = every.view_bytes(1, (16, 16), (8, 8))
    thin = tsc.AugmentedScoreCAM(model, verbose=0, memory_budget=per_view * 12)
    views = thin.transforms((16, 16), (8, 8))
    assert len(views) == 9 and len(views) * per_view <= thin.memory_budget  # 2 x 2 per scale
    np.testing.assert_array_equal(views, augment.zoom_transforms((16, 16), (8, 8), crops=2))
    assert thin(images(1)).shape == (1, 16, 16)
    asked = tsc.AugmentedScoreCAM(model, verbose=0, memory_budget=per_view * 12, zoom_crops=3)
    with pytest.raises(
        MemoryError, match="19 views of a 8x8 feature map .* over its memory budget"
    ):
        asked(images(1))


def _magnifier(scale: float, offset: tuple[float, float], size: int) -> np.ndarray:
    """(size^2, size^2): a crop of the image magnified ``scale`` times, its top-left corner
    ``offset`` (y, x) magnified pixels in, as a matrix on flat images. A view pixel's centre
    (i + 0.5) is the magnified point (i + 0.5 + offset), the image's (i + 0.5 + offset) /
    scale, read bilinearly between pixel centres, 0 outside the image. Written here, apart
    from ``augment.zoom_transforms`` and Keras' warp."""
    matrix = np.zeros((size * size, size * size))
    for i in range(size):
        for j in range(size):
            y = (i + 0.5 + offset[0]) / scale - 0.5
            x = (j + 0.5 + offset[1]) / scale - 0.5
            for row in (np.floor(y), np.floor(y) + 1):
                for col in (np.floor(x), np.floor(x) + 1):
                    weight = (1 - abs(y - row)) * (1 - abs(x - col))
                    if 0 <= row < size and 0 <= col < size and weight > 0:
                        matrix[i * size + j, int(row) * size + int(col)] += weight
    return matrix


@pytest.mark.parametrize(
    "options",
    [{}, {"cell_shift": (0.3, -0.2), "sigma": 1.2}],
    ids=["default", "calibrated"],
)
def test_the_default_pipeline_equals_a_numpy_reference_end_to_end(softmax_model, options):
    """Zoomed views (2x, the 2 x 2 crops at the corners of the whole-cell offsets), channels
    scored once on the image, each view's map over its peak, the Gaussian fusion (its cells
    centred ``cell_shift`` cells off: given, or by default the probe's) with the TV prior
    solved exactly on the 16 x 16 grid, times the image's own upsampled map, moved to where its
    cells look."""
    x, cls = images(1)[0], 2
    asc = tsc.AugmentedScoreCAM(
        softmax_model, "target", zoom_scales=(2.0,), zoom_crops=2, **options
    )
    acts, scores, scored = reference_weights(softmax_model, x, cls)
    shift = options.get("cell_shift", asc.shift_for((SIZE, SIZE), acts.shape[:2]))  # the probe's
    cell = SIZE / acts.shape[0]  # 2 px; a 2x crop can move 8 cells, 16 magnified px
    views = [np.eye(SIZE * SIZE)] + [
        _magnifier(2.0, (oy, ox), SIZE) for oy in (0, 8 * cell) for ox in (0, 8 * cell)
    ]
    low = []
    for view in views:
        copy = (view @ x.reshape(SIZE * SIZE, -1)).reshape(x.shape)
        view_acts = reference_weights(softmax_model, copy, cls, channels=[])[0]
        one = np.maximum(np.tensordot(view_acts[..., scored], scores, axes=1), 0)
        low.append(one / one.max() if one.max() > 0 else one)  # an all-zero view stays zero
    low = np.stack(low)
    sigma = options.get("sigma", superres.SIGMA)
    fused = exact_fusion(low, views, SIZE, sigma, "tv", superres.TV_WEIGHT,
                         superres.ENERGY_WEIGHT, shift=shift)  # fmt: skip
    coarse = ndimage.shift(  # content moved by the shift in pixels, bilinear, edges held
        resize_bilinear(low[0], SIZE, SIZE),
        (shift[1] * cell, shift[0] * cell),
        order=1,
        mode="nearest",
    )
    expected = _scaled(np.maximum(fused, 0) * coarse)
    np.testing.assert_allclose(asc(x, class_index=cls), expected, atol=5e-3)


def test_the_photos_map_in_the_product_moves_to_where_its_cells_look():
    from tfscorecam.core import backend
    from tfscorecam.methods.augmented.augment import moved

    spot = np.zeros((1, 1, 16, 16), np.float32)
    spot[0, 0, 5, 6] = 1.0  # row 5, column 6
    whole = backend.numpy(moved(spot, (2.0, 1.0)))[0, 0]  # cells that look 2 px right, 1 down
    assert np.argwhere(whole > 0.5).tolist() == [[6, 8]]
    half = backend.numpy(moved(spot, (0.5, 0.0)))[0, 0]  # bilinear between two pixels
    np.testing.assert_allclose(half[5, 6:8], [0.5, 0.5], atol=1e-6)
    assert moved(spot, (0.0, 0.0)) is spot
