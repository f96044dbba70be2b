"""Recipro-CAM against a NumPy reference of the official algorithm (sybyun/ReciproCAM), on a
model whose tail after the target layer is a conv, a pool and a Dense (computed by hand)."""

import numpy as np
import pytest
from conftest import build_classifier
from references import SIZE, as_numpy, images, minmax, resize_bilinear, softmax

import tfscorecam as tsc

KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16


def _reference(model, image: np.ndarray, class_index: int, gaussian: bool) -> np.ndarray:
    """The official loop: per position (i, j) a feature map of zeros holding only A[i, j]
    (spread onto the 3 x 3 neighbours by KERNEL with ``gaussian``), the tail, the softmax
    probability of the class; min-max at the layer's size, upsampled, scaled to [0, 1]."""
    import keras

    split = keras.Model(model.inputs[0], model.get_layer("target").output)
    a = as_numpy(split(image[None]))[0].astype(np.float64)  # (h, w, C)
    kernel, bias = (w.astype(np.float64) for w in model.get_layer("after").get_weights())
    dense, dense_bias = (w.astype(np.float64) for w in model.get_layer("head").get_weights())
    h, w, _ = a.shape

    def tail(features: np.ndarray) -> np.ndarray:  # Conv(3x3, same, ReLU) -> GAP -> Dense
        padded = np.pad(features, ((1, 1), (1, 1), (0, 0)))
        conv = np.zeros((h, w, kernel.shape[-1]))
        for di in range(3):
            for dj in range(3):
                conv += padded[di : di + h, dj : dj + w] @ kernel[di, dj]
        pooled = np.maximum(conv + bias, 0).mean(axis=(0, 1))
        return softmax(pooled @ dense + dense_bias)

    low = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            kept = np.zeros_like(a)
            if gaussian:
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        if 0 <= i + di < h and 0 <= j + dj < w:
                            kept[i + di, j + dj] = a[i, j] * KERNEL[di + 1, dj + 1]
            else:
                kept[i, j] = a[i, j]
            low[i, j] = tail(kept)[class_index]
    low = (low - low.min()) / (low.max() - low.min())
    cam = resize_bilinear(low, SIZE, SIZE)
    return minmax(cam)


@pytest.mark.parametrize("gaussian", [False, True])
def test_matches_the_official_algorithm(gaussian):
    model = build_classifier("softmax", deep_head=True)
    x = images(3)
    cam = tsc.ReciproCAM(model, "target", gaussian=gaussian, batch_size=5, verbose=0)
    maps = cam(x, class_index=[1, 4, 0])
    for image, cls, one in zip(x, [1, 4, 0], maps, strict=True):
        np.testing.assert_allclose(one, _reference(model, image, cls, gaussian), atol=1e-4)
    both = cam(x[0], class_index=[1, 4])  # every class from the same passes
    np.testing.assert_allclose(both[0], maps[0], atol=1e-5)
    with pytest.raises(TypeError, match="ReciproCAM has no option 'max_channels'"):
        tsc.ReciproCAM(model, "target", max_channels=2)
