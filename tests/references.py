"""The slow, obviously-correct NumPy references the tests compare against, and their inputs.

Score-CAM one channel at a time (from a layer, ``reference_scorecam``/``reference_weights``, or
from given features, any rank and K scores, ``score_cam_of_features``), the Grad-CAM family's
weights (``gradient_cam``), Augmented Score-CAM's fusion solved densely (``exact_fusion``), the
resizes they use, min-max scaling, and random images and photos. ``conftest.py`` keeps the
fixtures and the model builders.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

SIZE = 16  # the side of ``images`` and of ``conftest.build_classifier``'s input
BACKEND = keras.config.backend()


def as_numpy(x) -> np.ndarray:
    """A tensor of any backend as a NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(x))


def layer_gradient(model: keras.Model, layer: str, image: np.ndarray, score) -> tuple:
    """The activations (h, w, C) of ``layer`` for one image and the gradient of
    ``score(output)`` (a scalar) with respect to them, both float64, by the backend's own
    automatic differentiation of the model's part after ``layer``."""
    target = model.get_layer(layer).output
    acts = keras.Model(model.inputs[0], target)(image[None])
    tail = keras.Model(target, model.output)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(acts)
            value = score(tail(acts))
        grad = tape.gradient(value, acts)
    elif BACKEND == "jax":
        import jax

        grad = jax.grad(lambda a: score(tail(a)))(acts)
    else:
        import torch

        with torch.enable_grad():
            acts = acts.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(score(tail(acts)), acts)
    return as_numpy(acts)[0].astype(np.float64), as_numpy(grad)[0].astype(np.float64)


def images(n: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, SIZE, SIZE, 3)).astype(np.float32)


def axis_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation weights with half-pixel centres and clamped edges."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        i0 = int(np.floor(src))
        i1 = min(i0 + 1, n_in - 1)
        m[i, i0] += 1 - (src - i0)
        m[i, i1] += src - i0
    return m


def resize_bilinear(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a 2-D map with half-pixel centres and clamped edges."""
    return axis_weights(a.shape[0], height) @ a @ axis_weights(a.shape[1], width).T


def resize_linear(a: np.ndarray, size: tuple) -> np.ndarray:
    """A 2-D map resized bilinearly, or a 3-D one trilinearly, to ``size``: the 1-D weights
    applied along each axis in turn."""
    for axis, n_out in enumerate(size):
        a = np.moveaxis(np.tensordot(axis_weights(a.shape[axis], n_out), a, (1, axis)), 0, axis)
    return a


def reference_weights(
    model: keras.Model,
    image: np.ndarray,
    class_index: int,
    to_score=lambda out: out,
    layer: str = "target",
    baseline: float = 0.0,
    channels=None,
    score_model: keras.Model | None = None,
    score_of=None,
    grid=None,
) -> tuple[np.ndarray, np.ndarray, list]:
    """Activations (h, w, C), scores of the scored channels and their indices, one at a time.

    ``score_of(output) -> (1,)`` replaces the class score ``to_score(output)[0, class_index]``;
    ``grid(layer output) -> (h, w, C)`` turns a token layer's output into its feature map.
    """
    acts = keras.Model(model.inputs[0], model.get_layer(layer).output)(image[None])[0]
    acts = np.asarray(acts, np.float64)
    if grid is not None:
        acts = grid(acts)
    height, width = image.shape[:2]
    scores, scored = [], []
    for k in range(acts.shape[-1]) if channels is None else channels:
        up = resize_bilinear(acts[..., k], height, width)
        if up.max() == up.min():
            continue
        mask = ((up - up.min()) / (up.max() - up.min()))[..., None]
        masked = image * mask + baseline * (1 - mask)
        out = np.asarray((score_model or model)(masked[None].astype(np.float32)), np.float64)
        scores.append(score_of(out)[0] if score_of else to_score(out)[0, class_index])
        scored.append(k)
    return acts, np.array(scores), scored


def reference_scorecam(
    model: keras.Model,
    image: np.ndarray,
    class_index: int,
    to_score=lambda out: out,
    channel_softmax: bool = False,
    eigen_smooth: bool = False,
    scaled: bool = True,
    **options,
) -> np.ndarray:
    """Score-CAM one channel at a time, as in the paper and the official code; with
    ``eigen_smooth`` the weighted channels' first principal component replaces their sum;
    ``scaled=False`` skips the final min-max."""
    acts, scores, scored = reference_weights(model, image, class_index, to_score, **options)
    if channel_softmax:
        scores = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    height, width = image.shape[:2]
    if eigen_smooth:
        low = first_component(acts[..., scored] * scores)
        cam = np.maximum(resize_bilinear(low, height, width), 0)
    else:
        ups = [resize_bilinear(acts[..., k], height, width) for k in scored]
        cam = np.maximum(sum(s * u for s, u in zip(scores, ups, strict=True)), 0)
    return minmax(cam) if scaled else cam


def score_cam_of_features(features: np.ndarray, image: np.ndarray, score) -> np.ndarray:
    """Score-CAM one channel at a time from given features (h, w, C) of ``image``: each
    channel upsampled, min-max scaled and multiplied into the image, weighed by
    ``score(masked (1, H, W, C)) -> (K,)`` scores (or one); the ReLU of the weighted sums,
    min-max scaled: (K, H, W). A volume's features (d, h, w, C) of ``image`` (D, H, W, C)
    give (K, D, H, W), upsampled trilinearly."""
    size = image.shape[:-1]
    weights, ups = [], []
    for k in range(features.shape[-1]):
        up = resize_linear(features[..., k], size)
        if up.max() == up.min():
            continue
        mask = ((up - up.min()) / (up.max() - up.min()))[..., None]
        weights.append(np.atleast_1d(score((image * mask)[None].astype(np.float32))))
        ups.append(up)
    cams = np.maximum(np.tensordot(np.array(weights), np.array(ups), (0, 0)), 0)
    return minmax_each(cams)


def first_component(weighted: np.ndarray) -> np.ndarray:
    """(h, w, C) -> (h, w): the cells' projection on the first principal direction of the
    channels (cells centred; SVD), signed so that the direction's entries sum to more than 0:
    EigenCAM's and ``eigen_smooth``'s low map, written out."""
    cells = weighted.reshape(-1, weighted.shape[-1]).astype(np.float64)
    centred = cells - cells.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    direction = -direction if direction.sum() < 0 else direction
    return (centred @ direction).reshape(weighted.shape[:-1])


def exact_fusion(
    low, warps, grid, sigma, prior, tv, energy, rounds=8, shift=(0.0, 0.0)
) -> np.ndarray:
    """Augmented Score-CAM's fusion objective (``superres``) solved exactly in NumPy, with
    matrices built here: K maps ``low`` (K, h, w) of views whose warps from the (grid, grid)
    latent map are ``warps`` ((grid^2, grid^2) each), a Gaussian observation of ``sigma``
    cells from its formula, centred ``shift`` (dx, dy) cells from each cell's centre, the TV
    (or smooth) prior reweighted ``rounds`` times."""
    k, h, _ = low.shape
    n = grid * grid
    centres = (np.arange(grid) + 0.5) * h / grid

    def axis(offset: float) -> np.ndarray:
        weights = np.exp(-0.5 * ((np.arange(h)[:, None] + 0.5 + offset - centres) / sigma) ** 2)
        return weights / weights.sum(axis=1, keepdims=True)

    observe = np.kron(axis(shift[1]), axis(shift[0]))
    a = np.vstack([observe @ warp for warp in warps])
    dx = np.diff(np.eye(grid), axis=0, append=np.zeros((1, grid)))
    dx[-1] = 0
    gradient = np.vstack([np.kron(np.eye(grid), dx), np.kron(dx, np.eye(grid))])
    y = low.reshape(-1)
    per_pixel_tv, per_pixel_energy = tv * k * h / grid, energy * k * (h / grid) ** 2
    x = np.zeros(n)
    edges = np.ones(len(gradient))
    eps = 1e-3 * np.abs(y).max()
    for round_ in range(rounds if prior != "smooth" else 1):
        if round_ and prior == "isotropic_tv":  # one weight per pixel, from |grad h|
            dx_, dy_ = np.split(gradient @ x, 2)
            edges = np.tile(1 / (2 * np.maximum(np.hypot(dx_, dy_), eps)), 2)
        elif round_:
            edges = 1 / (2 * np.maximum(np.abs(gradient @ x), eps))
        system = a.T @ a + per_pixel_tv * gradient.T @ (edges[:, None] * gradient)
        x = np.linalg.solve(system + per_pixel_energy * np.eye(n), a.T @ y)
    return x.reshape(grid, grid)


def gradient_cam(acts: np.ndarray, grad: np.ndarray, method: str = "gradcam") -> np.ndarray:
    """The Grad-CAM family's weighted channels (h, w, C) from a layer's activations and the
    score's gradient (h, w, C), written out from each paper: Grad-CAM's mean gradient,
    Grad-CAM++'s alphas (the exponential score's closed form), XGrad-CAM's activation-weighted
    gradient; HiResCAM's element-wise product and LayerCAM's with the positive gradient. Any
    rank: a volume's (d, h, w, C) pools over its three axes."""
    if method == "hirescam":  # element-wise, no spatial weights
        return grad * acts
    if method == "layercam":
        return np.maximum(grad, 0) * acts
    weights = []
    for k in range(acts.shape[-1]):
        a, g = acts[..., k], grad[..., k]
        if method == "gradcam++":
            den = 2 * g**2 + a.sum() * g**3
            alpha = np.where(den != 0, g**2 / np.where(den != 0, den, 1), 0)
            weights.append((alpha * np.maximum(g, 0)).sum())
        elif method == "xgradcam":
            weights.append((g * a).sum() / a.sum())
        else:
            weights.append(g.mean())
    return acts * np.array(weights)


def minmax(a: np.ndarray) -> np.ndarray:
    """``a`` scaled to [0, 1] over all its axes."""
    return (a - a.min()) / (a.max() - a.min())


def minmax_each(maps: np.ndarray) -> np.ndarray:
    """Each map of (K, ...) scaled to [0, 1] over all its axes."""
    axes = tuple(range(1, maps.ndim))
    low = maps.min(axis=axes, keepdims=True)
    return (maps - low) / (maps.max(axis=axes, keepdims=True) - low)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def random_photo(height: int = 40, width: int = 50, seed: int = 0) -> np.ndarray:
    """A uint8 RGB photo of random pixels."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


def save_random_photo(path, seed: int = 0, fmt: str | None = None) -> str:
    """``random_photo`` written to ``path`` (the format from its suffix, or ``fmt``), its
    folder made if missing."""
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(random_photo(seed=seed)).save(path, format=fmt)
    return str(path)
