"""Reading images (interfaces/images.py): 16-bit files, [0, 1] floats and tiny images, in
every path."""

import keras
import numpy as np
import pytest
from conftest import build_classifier
from PIL import Image
from references import SIZE, images, random_photo

import tfscorecam as tsc
from tfscorecam.interfaces import cli
from tfscorecam.interfaces.images import display_image


def _sixteen_bit_png(path, grey8: np.ndarray) -> str:
    """A 16-bit greyscale PNG (PIL mode I;16) whose values are ``grey8`` * 257."""
    Image.fromarray(grey8.astype(np.uint16) * 257).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I;16")
    return str(path)


def test_a_16_bit_png_is_scaled_to_display_range_not_clipped_white(tmp_path):
    grey = random_photo(24, 20)[..., 0]
    path = _sixteen_bit_png(tmp_path / "grey16.png", grey)
    expected = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    np.testing.assert_array_equal(display_image(path), expected)
    with Image.open(path) as image:
        np.testing.assert_array_equal(display_image(image), expected)
    np.testing.assert_array_equal(display_image(grey.astype(np.uint16) * 257), expected)
    np.testing.assert_array_equal(tsc.images.display_image(path), expected)
    # a 32-bit integer image (mode I) beyond 16 bits is refused, not clipped
    Image.fromarray(np.full((8, 8), 70000, np.int32), mode="I").save(tmp_path / "big.tif")
    with pytest.raises(ValueError, match="outside 16 bits"):
        display_image(tmp_path / "big.tif")


def test_float_images_in_0_1_are_scaled_as_matplotlib_reads_them(tmp_path):
    photo = random_photo(24, 20)
    np.testing.assert_allclose(display_image(photo / 255.0), photo, atol=1e-4)
    Image.fromarray((photo[..., 0] / 255.0).astype(np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_allclose(display_image(tmp_path / "f.tif")[..., 0], photo[..., 0], atol=1e-3)
    np.testing.assert_array_equal(display_image(np.ones((4, 4), bool)), np.full((4, 4, 3), 255.0))
    # floats beyond 1 are taken as 0-255, as before; integers are never scaled
    np.testing.assert_array_equal(display_image(photo.astype(np.float32)), photo)
    np.testing.assert_array_equal(display_image(np.ones((4, 4, 3), np.uint8)), np.ones((4, 4, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\] \(float\) or uint16"):
        display_image(np.full((4, 4, 3), -0.5))


def test_explain_gives_the_same_map_for_8_bit_16_bit_and_0_1_float_images(tmp_path):
    model = build_classifier("softmax", flat_channel=False)
    grey = random_photo(24, 20)[..., 0]
    eight = np.repeat(grey[..., None], 3, axis=-1)
    reference = tsc.explain(model, eight, verbose=0)
    for image in (_sixteen_bit_png(tmp_path / "g.png", grey), eight / 255.0):
        result = tsc.explain(model, image, verbose=0)
        assert result.class_index == reference.class_index
        np.testing.assert_allclose(result.heatmap, reference.heatmap, atol=1e-5)


def test_images_smaller_than_the_feature_map_are_refused_in_every_path(tmp_path, capsys):
    model = build_classifier("softmax", flat_channel=False)  # 16 px input, 8x8 "target" map
    with pytest.raises(ValueError, match=r"is 1x1 pixels, smaller than the 8x8 feature map"):
        tsc.explain(model, np.zeros((1, 1, 3), np.uint8), verbose=0)
    with pytest.raises(ValueError, match=r"image 1 is 5x40 pixels"):
        tsc.explain(model, [random_photo(24, 20), random_photo(5, 40)], verbose=0)
    assert tsc.explain(model, random_photo(8, 8), verbose=0).heatmap.shape == (8, 8)
    model_path = tmp_path / "tiny.keras"
    model.save(model_path)
    path = tmp_path / "one.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)
    code = cli.main(["explain", str(path), "--model", str(model_path), "--quiet",
                     "--out", str(tmp_path / "out")])  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1 and len(errors) == 1 and "smaller than the 8x8 feature map" in errors[0]
    assert f"{path} is 1x1 pixels" in errors[0]  # the file, not "image 0"


def test_a_variable_size_model_refuses_an_image_with_a_one_cell_map():
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=4, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="1x1 feature map"):
        tsc.explain(model, random_photo(4, 4), "gradcam", verbose=0)
    assert tsc.explain(model, random_photo(9, 9), "gradcam", verbose=0).heatmap.shape == (9, 9)


def test_greyscale_images_without_a_channel_axis():
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    cam = tsc.ScoreCAM(keras.Model(inp, out), verbose=0)
    batch = images(2)[..., 0]
    np.testing.assert_array_equal(cam(batch[0]), cam(batch[0][..., None]))
    np.testing.assert_array_equal(cam(batch), cam(batch[..., None]))
    assert cam(batch).shape == (2, SIZE, SIZE)
