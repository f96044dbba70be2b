"""Zoomed, cell-registered views for Augmented Score-CAM: the warps, the registration, the
fusion's recovery of a map that follows its observation model, and the explainer option."""

import keras
import numpy as np
import pytest
from references import SIZE, as_numpy, images

import tfscorecam as tsc
from tfscorecam import augment, superres


def test_zoom_views_are_magnified_crops_at_whole_feature_cells():
    transforms = augment.zoom_transforms((64, 64), (8, 8), scales=(2.0,), crops=3)
    assert transforms.shape == (10, 8)
    np.testing.assert_array_equal(transforms[0], [1, 0, 0, 0, 1, 0, 0, 0])
    image = np.random.default_rng(0).random((64, 64, 1)).astype(np.float32)
    magnified = as_numpy(keras.ops.image.resize(image[None], (128, 128), "bilinear"))[0]
    views = augment.warp(image, transforms)
    offsets = []
    for view, t in zip(views[1:], transforms[1:], strict=True):
        ox, oy = 2 * (t[2] + 0.5) - 0.5, 2 * (t[5] + 0.5) - 0.5  # the crop's magnified corner
        assert ox % 8 == 0 and oy % 8 == 0  # whole cells of 64 / 8 px
        offsets.append((oy, ox))
        crop = magnified[int(oy) : int(oy) + 64, int(ox) : int(ox) + 64]
        inner = (slice(2, -2), slice(2, -2))  # TF clamps at the border, the warp fills with 0
        np.testing.assert_allclose(view[inner], crop[inner], atol=1e-5)
    assert sorted({o[0] for o in offsets}) == [0.0, 32.0, 64.0]
    with pytest.raises(ValueError, match="zoom scales must be > 1"):
        augment.zoom_transforms((64, 64), (8, 8), scales=(1.0,))


@pytest.mark.parametrize(
    "scales, crops",  # (scale, crop step in cells, crops per axis) at 64 px with 8 x 8 cells
    [
        (None, ((3.0, 2, 9), (4.0, 3, 9))),  # the default: 3x and 4x, ceil(s) - 1 cells apart
        ((1.5, 2.0), ((1.5, 1, 5), (2.0, 1, 9))),  # v0.4's: every whole-cell crop
    ],
)
def test_zoom_views_are_whole_cell_crops_on_every_phase(scales, crops):
    options = {} if scales is None else {"scales": scales}
    transforms = augment.zoom_transforms((64, 64), (8, 8), **options)
    assert transforms.shape == (1 + sum(count**2 for *_, count in crops), 8)
    start = 1
    for scale, step, count in crops:
        rows = transforms[start : start + count**2]
        start += count**2
        assert augment.crop_step(scale) == step
        np.testing.assert_allclose(rows[:, [0, 4]], 1 / scale, rtol=1e-6)
        corners = scale * (rows[:, [2, 5]] + 0.5) - 0.5  # each crop's magnified top-left corner
        expected = np.array([(y, x) for y in range(count) for x in range(count)]) * 8.0 * step
        np.testing.assert_allclose(corners[:, ::-1], expected, atol=1e-4)
        # the last crop ends inside the magnified image, and one more step would not
        assert (count - 1) * 8 * step + 64 <= 64 * scale < count * 8 * step + 64
        if scale == round(scale):  # the crops' cells fall on every phase k / s of a cell
            phases = {round(c / scale % 8 / 8 * scale) % int(scale) for c in corners[:, 0]}
            assert phases == set(range(int(scale)))


@pytest.mark.parametrize("scales", [(3.0, 4.0), (1.5, 2.0)])
def test_one_images_zoomed_crops_are_slices_of_one_warp_per_zoom(scales):
    transforms = augment.zoom_transforms((64, 48), (8, 6), scales=scales)
    assert augment.crop_offsets(transforms) is not None
    image = np.random.default_rng(0).random((64, 48, 3)).astype(np.float32)
    each = augment.warp(np.broadcast_to(image, (len(transforms), 64, 48, 3)), transforms)
    np.testing.assert_allclose(augment.warp(image, transforms), each, atol=1e-4)
    np.testing.assert_allclose(
        augment.warp(image, transforms, 0.5),
        augment.warp(np.broadcast_to(image, each.shape), transforms, 0.5),
        atol=1e-4,
    )
    shifted = transforms.copy()
    shifted[1, 2] += 0.25  # a sub-pixel crop, and rotations, take one warp per view
    assert augment.crop_offsets(shifted) is None
    assert augment.crop_offsets(augment.random_transforms(4, (64, 48))) is None


def test_zoomed_views_recover_a_map_finer_than_the_cells():
    size, cells = 64, (8, 8)
    y, x = np.mgrid[0:size, 0:size]
    truth = np.zeros((size, size))
    truth[(y - 20) ** 2 + (x - 22) ** 2 < 5**2] = 1.0  # two blobs under one cell apart
    truth[(y - 20) ** 2 + (x - 36) ** 2 < 5**2] = 1.0
    errors = {}
    for name, views in (
        ("alone", augment.zoom_transforms((size, size), cells, scales=())),
        ("zoom", augment.zoom_transforms((size, size), cells, scales=(2.0,), crops=3)),
    ):
        resolver = superres.SuperResolver(
            views, cells, (size, size), (size, size), sigma=1.0, tv_weight=1e-3,
            energy_weight=1e-5,
        )  # fmt: skip
        low = (resolver.forward @ truth.ravel()).reshape(len(views), *cells)
        fused = resolver(low)
        errors[name] = np.linalg.norm(fused - truth) / np.linalg.norm(truth)
        if name == "zoom":  # the gap between the blobs shows: a dip between two peaks
            row = fused[20]
            assert row[29] < 0.8 * min(row[22], row[36])
    assert errors["zoom"] < 0.7 * errors["alone"], errors


def test_augmented_score_cam_with_zoomed_views(softmax_model):
    x = images(2)
    default = tsc.AugmentedScoreCAM(softmax_model, verbose=0)
    # 16 px, 8x8 cells of 2 px: crops 2 cells apart at 3x (9 x 9), 3 apart at 4x (9 x 9)
    assert default.views == "zoom" and len(default.transforms((SIZE, SIZE), (8, 8))) == 163
    cam = tsc.AugmentedScoreCAM(
        softmax_model, views="zoom", zoom_scales=(2.0,), zoom_crops=2, verbose=0
    )
    transforms = cam.transforms((SIZE, SIZE), (8, 8))
    assert len(transforms) == 5  # the image and 2 x 2 crops at 2x
    maps = cam(x)
    assert maps.shape == (2, SIZE, SIZE) and maps.min() == 0 and maps.max() == 1
    np.testing.assert_allclose(maps[1], cam(x[1]), atol=1e-6)
    alone = tsc.AugmentedScoreCAM(softmax_model, views="zoom", num_augmentations=1, verbose=0)
    assert len(alone.transforms((SIZE, SIZE), (8, 8))) == 1
    # view_scale="own" (default): each view's map divided by its own peak
    acts, outputs = cam.forward(x[:1])
    request = cam.scorings.resolve(None, None, outputs, False)
    low = cam.copy_maps(x[0], acts[0], request, 0, transforms)[0]
    peaks = low.max(axis=(1, 2))
    np.testing.assert_allclose(peaks[peaks > 0], 1.0, rtol=1e-6)
    # view_scale="image": every view on one scale, the image's peak
    cam.view_scale = "image"
    low = cam.copy_maps(x[0], acts[0], request, 0, transforms)[0]
    assert low[0].max() == pytest.approx(1.0) and not np.allclose(low.max(axis=(1, 2)), 1.0)
    with pytest.raises(ValueError, match="views must be one of"):
        tsc.AugmentedScoreCAM(softmax_model, views="tiles")
