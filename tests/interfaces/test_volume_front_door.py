"""explain() on volumes and video: arrays and .npy files in, (D, H, W) maps and montages out."""

import numpy as np
import pytest
from conftest import VOLUME_SHAPE, build_conv3d

import tfscorecam as tsc
from tfscorecam.interfaces.volumes import display_volume, montage, readable, slice_indices


def _volumes(n: int = 2) -> np.ndarray:
    """CT-like values: Hounsfield units around -1000 to 1000."""
    rng = np.random.default_rng(3)
    return rng.uniform(-1000, 1000, (n, *VOLUME_SHAPE)).astype(np.float32)


def test_explain_a_volume_gives_its_maps_and_a_montage():
    model, batch = build_conv3d(), _volumes()
    scale = lambda x: x / 1000.0  # noqa: E731 (the model's preprocessing)
    results = tsc.explain(model, batch, preprocess=scale, class_index=2, verbose=0)
    maps = tsc.ScoreCAM(model, verbose=0)(batch / 1000.0, 2)
    assert len(results) == 2
    for result, expected, volume in zip(results, maps, batch, strict=True):
        assert result.heatmap.shape == VOLUME_SHAPE[:3]
        np.testing.assert_allclose(result.heatmap, expected, atol=1e-6)
        assert result.image.shape == (*VOLUME_SHAPE[:3], 3) and result.image.dtype == np.uint8
        np.testing.assert_array_equal(result.image[..., 1], display_volume(volume)[..., 0])
        picture = result.overlay()  # 6 slices: 3 columns, 2 rows
        assert picture.shape == (2 * 12, 3 * 10, 3) and picture.dtype == np.uint8
        np.testing.assert_array_equal(picture[12:, 20:], result.overlay(slices=6)[12:, 20:])
        assert result.overlay(slices=2).shape == (12, 2 * 10, 3)
    import matplotlib

    matplotlib.use("Agg")
    assert len(results[0].plot().axes) == 3 and len(results.plot().axes) == 3


def test_explain_reads_npy_files_and_saves_the_montage(tmp_path):
    model, batch = build_conv3d(), _volumes()
    paths = []
    for n, volume in enumerate(batch):
        paths.append(tmp_path / f"scan{n}.npy")
        np.save(paths[-1], volume)
    from_files = tsc.explain(model, [str(p) for p in paths], class_index=0, verbose=0)
    from_arrays = tsc.explain(model, batch, class_index=0, verbose=0)
    for a, b in zip(from_files, from_arrays, strict=True):
        np.testing.assert_array_equal(a.heatmap, b.heatmap)
    one = tsc.explain(model, str(paths[0]), class_index=0, verbose=0)
    np.testing.assert_allclose(one.heatmap, from_arrays[0].heatmap, atol=1e-6)  # alone
    saved = one.save(tmp_path / "scan0.png")
    from PIL import Image

    picture = one.overlay()  # saved magnified by a whole factor to at least 512 px wide
    factor = -(-512 // picture.shape[1])
    assert factor > 1 and np.asarray(Image.open(saved)).shape[1] == picture.shape[1] * factor
    np.testing.assert_array_equal(np.asarray(Image.open(saved))[::factor, ::factor], picture)


def test_display_and_montage_values():
    hounsfield = np.linspace(-1000, 1000, 2 * 2 * 2).reshape(2, 2, 2, 1)
    shown = display_volume(hounsfield)
    assert shown.shape == (2, 2, 2, 3) and shown.min() == 0 and shown.max() == 255
    rgb = np.full((2, 2, 2, 3), 100.0)
    np.testing.assert_array_equal(display_volume(rgb), rgb.astype(np.uint8))  # 0-255 kept
    assert slice_indices(40, 4).tolist() == [0, 13, 26, 39]
    assert slice_indices(3).tolist() == [0, 1, 2]
    frames = np.arange(5)[:, None, None] * np.ones((5, 2, 3))
    tiled = montage(frames)  # 5 frames: 3 columns, 2 rows, the last tile empty
    assert tiled.shape == (4, 9)
    assert tiled[0, 0] == 0 and tiled[0, 3] == 1 and tiled[2, 3] == 4 and tiled[2, 6] == 0


def test_bad_volume_inputs_get_one_clear_line(tmp_path):
    model = build_conv3d()
    with pytest.raises(ValueError, match="read from .npy files"):
        tsc.explain(model, str(tmp_path / "scan.png"), verbose=0)
    with pytest.raises(FileNotFoundError, match="volume file not found: .*missing.npy"):
        tsc.explain(model, [str(tmp_path / "missing.npy")], verbose=0)
    with pytest.raises(ValueError, match=r"one volume \(D, H, W, C\)"):
        tsc.explain(model, np.zeros(VOLUME_SHAPE[1:]), verbose=0)  # one slice
    with pytest.raises(ValueError, match="a list item is one volume"):
        tsc.explain(model, [_volumes()], verbose=0)
    result = tsc.explain(model, _volumes(1)[0], verbose=0)
    with pytest.raises(ValueError, match="boxes and renormalise are for 2-D images"):
        result.overlay(boxes=[0, 0, 2, 2])
    with pytest.raises(ValueError, match="slices must be at least 1"):
        result.overlay(slices=0)


def test_the_command_line_explains_npy_volumes_as_explain_does(tmp_path, capfd):
    from PIL import Image

    from tfscorecam.interfaces import cli

    model, volume = build_conv3d(), _volumes(1)[0]
    model.save(tmp_path / "volumes.keras")
    np.save(tmp_path / "scan.npy", volume)
    argv = ["explain", "--model", str(tmp_path / "volumes.keras"), str(tmp_path / "scan.npy")]
    assert cli.main([*argv, "--out", str(tmp_path / "out"), "--class", "1", "--quiet"]) == 0
    written = tmp_path / "out" / "scan_scorecam_1_1.png"
    assert str(written) in capfd.readouterr().out
    expected = readable(tsc.explain(model, volume, class_index=1, verbose=0).overlay())
    np.testing.assert_array_equal(np.asarray(Image.open(written)), expected)
    np.save(tmp_path / "slice.npy", volume[0])
    assert cli.main([*argv[:3], str(tmp_path / "slice.npy"), "--out", str(tmp_path)]) == 1
    assert f"{tmp_path / 'slice.npy'}" in capfd.readouterr().err
