"""Sanity checks of explanations: cascading model-parameter randomisation (Adebayo et al.,
"Sanity Checks for Saliency Maps", NeurIPS 2018)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from scipy import ndimage, stats

from tfscorecam.core.layer_choice import walk_layers


@dataclass(frozen=True)
class Randomisation:
    """The maps of a model randomised layer by layer from the top, against the original's.

    Row i holds the maps after ``layers[: i + 1]`` were re-initialised. ``spearman`` (L, N):
    each map's rank correlation with the original map (NaN where either map is flat);
    ``ssim`` (L, N): their structural similarity (maps in [0, 1], 11-px Gaussian window).
    ``original`` (k, ...) and ``maps`` (L, k, ...): the first k images' maps, trained and at
    each step, where the check was asked to keep them (``keep``; k is 0 otherwise).
    An explanation that depends on what the model learnt falls towards 0 as the cascade goes
    down; one that survives it shows the input or the architecture, not the model.
    """

    layers: list[str]
    spearman: np.ndarray
    ssim: np.ndarray
    original: np.ndarray
    maps: np.ndarray

    def means(self) -> list[tuple[str, float, float]]:
        """(layer, mean rank correlation, mean SSIM) for each step of the cascade."""
        return [
            (name, float(np.nanmean(r)) if np.any(~np.isnan(r)) else float("nan"), float(s.mean()))
            for name, r, s in zip(self.layers, self.spearman, self.ssim, strict=True)
        ]


def _reinitialise(layer: keras.layers.Layer) -> None:
    """Give ``layer`` fresh weights from its own initialisers (those of its config), built on
    the shapes of its inputs (several for a layer such as attention's query and value). The
    clone ``cascade`` randomises was built from the same configs and shapes, so this builds."""
    fresh = type(layer).from_config(layer.get_config())
    inputs = layer.input
    if not isinstance(inputs, (list, tuple)):
        fresh.build(inputs.shape)
    elif len(inspect.signature(fresh.build).parameters) > 1:  # build(query_shape, value_shape)
        fresh.build(*[t.shape for t in inputs])
    else:  # build(input_shape) with a list of shapes, as Keras' own call gives it
        fresh.build([t.shape for t in inputs])
    layer.set_weights(fresh.get_weights())


SSIM_SIZE, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03  # as tf.image.ssim's defaults


def structural_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of maps in [0, 1], (..., H, W) -> (...): ``tf.image.ssim`` with its defaults
    (an 11-tap Gaussian of sigma 1.5 over the valid region, K1 0.01, K2 0.03, range 1), in
    NumPy so that it runs on every backend."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    size = min(SSIM_SIZE, *a.shape[-2:])
    taps = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    kernel /= kernel.sum()
    crop = (slice(None),) * (a.ndim - 2) + (
        slice(size // 2, a.shape[-2] - (size - 1) // 2),
        slice(size // 2, a.shape[-1] - (size - 1) // 2),
    )

    def blur(x: np.ndarray) -> np.ndarray:
        x = ndimage.correlate1d(x, kernel, axis=-2, mode="constant")
        return ndimage.correlate1d(x, kernel, axis=-1, mode="constant")[crop]

    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mean_a, mean_b = blur(a), blur(b)
    cross = 2 * mean_a * mean_b
    luminance = (cross + c1) / (mean_a**2 + mean_b**2 + c1)
    contrast = (2 * blur(a * b) - cross + c2) / (blur(a * a + b * b) - mean_a**2 - mean_b**2 + c2)
    return (luminance * contrast).mean(axis=(-2, -1)).astype(np.float32)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each pair of maps (N, H, W); NaN where one is flat."""
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = stats.spearmanr(x.ravel(), y.ravel()).statistic
    return out


def cascade(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int = 0
) -> Iterator[tuple[str, keras.Model]]:
    """The model randomised from the output down: a clone of it (the model is not changed)
    whose layers with weights are re-initialised one by one, top first (each from its own
    initialisers, nested models descended into). Yields ``(layer path, clone)`` after each
    layer of ``layers`` (None: every layer with weights); the clone is one object, changed in
    place between steps. ``seed``: Keras' random seed for the fresh weights
    (``keras.utils.set_random_seed``)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    order = [
        (path, chain[-1])
        for path, chain in walk_layers(clone)
        if chain[-1].weights and not isinstance(chain[-1], keras.Model)
    ][::-1]
    if layers is not None:
        unknown = sorted(set(layers) - {path for path, _ in order})
        if unknown:
            raise ValueError(
                f"no layer with weights named {unknown}; the cascade is "
                f"{[path for path, _ in order]}"
            )
    keras.utils.set_random_seed(seed)
    for path, layer in order:
        _reinitialise(layer)
        if layers is None or path in layers:
            yield path, clone


def randomisation_check(
    explainer_factory: Callable[[keras.Model], Callable],
    model: keras.Model,
    images: object,
    class_index: object = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    keep: int = 0,
) -> Randomisation:
    """Cascading randomisation: the maps of the model randomised layer by layer from the
    output down (``cascade``) against the trained model's maps.

    Args:
        explainer_factory: model -> explainer, e.g. ``lambda m: tsc.GradCAM(m, verbose=0)``
            (called once per step: the explainer is built on the randomised model).
        model: the trained model; it is not changed (a clone is randomised).
        images: the explained batch (N, H, W, C), preprocessed for the model.
        class_index: the classes explained; None: the trained model's top-1, kept for every
            randomised model (so each step explains the same class).
        layers: the layer paths after whose randomisation maps are compared (e.g. a few
            blocks); None: after every layer with weights.
        seed: Keras' random seed for the fresh weights.
        keep: how many of the first images keep their maps (trained and at each step) in the
            result, e.g. to draw the cascade; 0 keeps none (memory: L x keep maps).

    Returns:
        ``Randomisation`` with a row per compared step, top layer first.
    """
    images = np.asarray(images, np.float32)
    if class_index is None:
        class_index = np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1)
    original = np.asarray(explainer_factory(model)(images, class_index))
    names, spearman, ssim, kept = [], [], [], []
    for path, randomised in cascade(model, layers, seed):
        maps = np.asarray(explainer_factory(randomised)(images, class_index))
        names.append(path)
        spearman.append(rank_correlation(original, maps))
        ssim.append(structural_similarity(original, maps))
        kept.append(maps[:keep])
    return Randomisation(names, np.array(spearman), np.array(ssim), original[:keep], np.array(kept))
