"""Poly-CAM (Englebert et al., ICPR 2022, arXiv 2204.13359): Score-CAM maps at each of the
model's resolutions, the coarsest refined by each finer one, faithful to the official code
(andralex/polycam, ``polycam/polycam.py`` and ``core.py``).

At each level l (the target layer, then the last layer of each finer map size, see
``layer_choice.finer_levels``) the channels A_c are normalised as the official code does
(``percentile_normalise``: minus the 0.1th percentile, over the 99.9th, clipped to [0, 1]),
upsampled bilinearly to the input as masks m_c and weighed:

- PCAM+ (``variant="plus"``): w_c = the class score of the image times m_c (Score-CAM's);
- PCAM- (``"minus"``): w_c = ReLU(s - the score of the image times 1 - m_c), s the image's own;
- PCAM+/- (``"plusminus"``): w_c = ReLU(score(x m_c) + s - score(x (1 - m_c))).

S_l = ReLU(sum_c w_c A_c) at the level's own resolution. From the deepest level down,
M = ReLU(LNorm(S_l) * Up(M)), where LNorm divides S_l by its own mean over the coarser
level's cells (bilinear down, then up: ``local_normalise``); the final M is normalised as the
masks and resized bilinearly to the input (no antialiasing, as ``F.interpolate``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.layer_choice import finer_levels, resolve_layer
from tfscorecam.core.maps import interpolation_matrix, upsample
from tfscorecam.core.model_graph import tap
from tfscorecam.core.progress import Progress
from tfscorecam.core.request import Request, Scoring
from tfscorecam.core.validation import boolean
from tfscorecam.methods.channels import max_channels_option, select_channels
from tfscorecam.methods.masking import Masking
from tfscorecam.methods.scoring import ChannelScorer, PerturbationCAM

VARIANTS = ("plus", "minus", "plusminus")
OUTLIERS = 0.001  # the official normalisation's share of outliers clipped at each end
TINY = 1e-12  # the official code's floor of a divisor


def percentile_normalise(maps: Any) -> Any:
    """The official code's ``normalize`` of (h, w, c) maps, per map c: (A - p_0.1) / p_99.9
    clipped to [0, 1], p_q the q-th percentile of its cells (linear, as ``np.percentile``);
    a divisor under 1e-12 is 1e-12."""
    cells = ops.reshape(maps, (-1, ops.shape(maps)[-1]))
    low = ops.quantile(cells, OUTLIERS, axis=0)
    high = ops.quantile(cells, 1.0 - OUTLIERS, axis=0)
    return ops.clip((maps - low) / ops.maximum(high, TINY), 0.0, 1.0)


def resized(maps: Any, size: Any) -> Any:
    """(h, w, K) maps resized bilinearly to ``size`` (H, W), half-pixel centres and no
    antialiasing (``F.interpolate(mode="bilinear")``), for a smaller size too."""
    return upsample(maps, size)


def local_normalise(finer: Any, coarse_size: Any) -> Any:
    """Poly-CAM's LNorm: (h, w, K) maps divided by their own local mean, the maps resized to
    ``coarse_size`` and back (at least 1e-12)."""
    local = resized(resized(finer, coarse_size), ops.shape(finer)[:2])
    return finer / ops.maximum(local, TINY)


def refine(lows: list, size: Any, lnorm: bool = True) -> Any:
    """The Poly-CAM map (K, H, W) of one image from its levels' maps S_l (h_l, w_l, K),
    deepest first: each finer level multiplies the refined map upsampled to it (after
    ``local_normalise`` with ``lnorm``); the result normalised as the masks and resized to
    ``size``."""
    lows = [ops.cast(low, "float32") for low in lows]  # float32 as the official code
    current = ops.relu(lows[0])
    for finer in lows[1:]:
        if lnorm:
            finer = local_normalise(finer, ops.shape(current)[:2])
        current = ops.relu(finer * resized(current, ops.shape(finer)[:2]))
    return ops.moveaxis(resized(percentile_normalise(current), size), -1, 0)


def _polycam_inputs(image: Any, acts: Any, variant: str) -> Any:
    """The image (H, W, C_in) times each channel's normalised, upsampled mask m (``plus``),
    times 1 - m (``minus``) or both, channel-major (``plusminus``): (c or 2c, H, W, C_in)."""
    size, cells = ops.shape(image), ops.shape(acts)
    rows = interpolation_matrix(size[0], cells[0])
    cols = interpolation_matrix(size[1], cells[1])
    normalised = percentile_normalise(acts)
    masks = ops.einsum("cyj,xj->cyx", ops.einsum("yi,ijc->cyj", rows, normalised), cols)
    if variant == "minus":
        masks = 1.0 - masks
    elif variant == "plusminus":
        masks = ops.reshape(ops.stack([masks, 1.0 - masks], axis=1), (-1, *ops.shape(masks)[1:]))
    return image[None] * masks[..., None]


polycam_inputs = backend.compile(_polycam_inputs, jit=True, static=(2,))


class PolyMasking(Masking):
    """Poly-CAM's masked inputs of a variant (``VARIANTS``): one per channel, or two
    (m and 1 - m) for ``plusminus``."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.samples = 2 if variant == "plusminus" else 1

    def __call__(self, image, acts, channels, baseline):
        return polycam_inputs(image, acts, self.variant)


class PolyScorer(ChannelScorer):
    """A level's channel weights for a variant: every channel is scored (the official code
    skips none), or the ``max_channels`` of largest spatial standard deviation."""

    def __init__(
        self, input_shape: tuple, batch_size: int, max_channels: int | None, variant: str
    ) -> None:
        super().__init__(input_shape, batch_size, 0.0, max_channels, False, PolyMasking(variant))
        self.variant = variant

    def selected(self, activations: object) -> Any:
        return select_channels(activations, self.max_channels, skip=None)

    def chunk(self, scoring: Scoring):
        variant, model, score = self.variant, scoring.model, scoring.fn

        def chunk(image, acts, channels, params):
            masked = self.masking(image, ops.take(acts, channels, axis=-1), channels, None)
            scores = score(model(ops.concatenate([image[None], masked]), training=False), params)
            own, masked_scores = scores[:1], scores[1:]
            if variant == "plus":
                return masked_scores
            if variant == "minus":
                return ops.relu(own - masked_scores)
            pairs = ops.reshape(masked_scores, (-1, 2, ops.shape(scores)[1]))
            return ops.relu(pairs[:, 0] + own - pairs[:, 1])

        return chunk


class _Level:
    """A finer level: its layer's path, the model from the input to its map, its scorer."""

    def __init__(self, explainer: PolyCAM, path: str, chain: list) -> None:
        self.path = path
        tapped = tap(explainer.view, chain)
        self.model = keras.Model(tapped.inputs, tapped.outputs[0])
        channels = int(self.model.outputs[0].shape[-1])
        cap = explainer.max_channels
        self.units = channels if cap is None else min(cap, channels)
        self.scorer = PolyScorer(
            explainer.input_shape,
            explainer.batch_size,
            None if cap is None else self.units,
            explainer.variant,
        )
        self.forward_step = backend.compile(
            lambda images: ops.cast(self.model(images, training=False), "float32"),
            [((None, *explainer.input_shape[1:]), "float32")],
        )

    def forward(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """The level's maps (N, h, w, C) float32 of ``images``."""
        return np.concatenate(
            [
                backend.numpy(self.forward_step(backend.tensor(images[i : i + batch_size])))
                for i in range(0, len(images), batch_size)
            ]
        )


class PolyCAM(PerturbationCAM):
    """Poly-CAM: high-resolution maps from the model's own finer layers, by the official
    code (see the module). The target ``layer`` is the deepest level; the finer levels are
    the last layer of each finer map size before it (``levels=None``), or the layers named in
    ``levels``, in forward order. The cost is one masked forward pass per channel of every
    level (two for ``plusminus``): MobileNetV2's five levels have 2,288 channels;
    ``max_channels`` caps each level's.

    Args:
        variant: ``"plus"`` (PCAM+, the paper's main variant), ``"minus"`` (PCAM-) or
            ``"plusminus"`` (PCAM+/-).
        levels: the finer levels' layers (names, paths or layers), in forward order; None
            finds them (``layer_choice.finer_levels``); ``[]`` keeps the target alone.
        max_channels: score at most this many channels per level (those of largest spatial
            standard deviation, as Faster Score-CAM); None (the official code) scores all.
        lnorm: divide each finer level's map by its local mean before the product (the
            official default); False is the paper's ablation.
        score: ``"probability"`` (the official code: the softmax, or a one-unit sigmoid) or
            ``"logit"``. A ``target`` gets the raw output.

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``verbose``: as ``Explainer``.
    The raw maps (``normalize=False``) are the official output, already in [0, 1].
    Where this differs from the official code: the levels are found among Keras layers
    (``layer_choice.finer_levels``: padding, cropping and the preprocessing in front of the
    first convolution are never levels), where the official code hooks every torch module;
    and the final map is also min-max scaled, as every map here (a no-op but for the bilinear
    resize's rounding).
    """

    weighs_activations = False  # a product of levels, not one weighted sum

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        variant: str = "plus",
        levels: list | None = None,
        max_channels: int | None = None,
        lnorm: bool = True,
        **options: Any,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        super().__init__(model, layer, **options)
        if self.spatial_rank != 2:
            raise ValueError(
                "Poly-CAM multiplies 2-D maps of several layers; explain volumes or video "
                "with Score-CAM"
            )
        self.variant, self.lnorm = variant, boolean(lnorm, "lnorm")
        self.max_channels = max_channels_option(max_channels, None)
        cap = self.max_channels
        target_units = self.num_channels if cap is None else min(cap, self.num_channels or cap)
        self.scorer = PolyScorer(
            self.input_shape, self.batch_size, None if cap is None else target_units, variant
        )
        paths = finer_levels(self.view, self.chain) if levels is None else list(levels)
        self.levels = [self._level(path) for path in paths]

    def _level(self, layer: str | keras.layers.Layer) -> _Level:
        path, chain, _ = resolve_layer(self.view, layer)
        shape, target = tuple(chain[-1].output.shape), tuple(self.chain[-1].output.shape)
        if len(shape) != 4 or None in shape[1:3] or shape[1] * shape[2] <= target[1] * target[2]:
            raise ValueError(
                f"level {path!r} gives {shape}, not a feature map finer than the target "
                f"layer's {target}; levels are layers of finer (batch, h, w, C) maps, in "
                "forward order (levels=None finds them)"
            )
        return _Level(self, path, chain)

    def _work(self, activations: np.ndarray, request: Request) -> int:
        per_image = sum(-(-level.units // level.scorer.chunk_size) for level in self.levels)
        return super()._work(activations, request) + len(activations) * per_image

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        finer = [level.forward(images, self.batch_size) for level in self.levels]
        out = []
        for i, image in enumerate(images):
            scoring, params = request.scored(i)
            deepest_first = [(self.scorer, activations[i])] + [
                (level.scorer, maps[i])
                for level, maps in reversed(list(zip(self.levels, finer, strict=True)))
            ]
            lows = []
            for scorer, acts in deepest_first:
                weights = scorer.weights(image, acts, scoring, params, request.num_scores, progress)
                lows.append(scorer.low_map(acts, weights))
            out.append(backend.numpy(refine(lows, image.shape[:2], self.lnorm)))
        return np.stack(out)

    def graph_maps(self, images, activations, classes):
        tf = backend.tensorflow("a SavedModel")
        finer = [ops.cast(level.model(images, training=False), "float32") for level in self.levels]
        size = self.input_shape[1:3]
        scoring = self.scorings.of_classes()

        def one(args):
            image, acts, class_index, *levels = args
            params = class_index[None]
            weights = self.scorer.graph_weights(image, acts, scoring, params, 1)
            lows = [self.scorer.low_map(acts, weights)]
            for level, maps in reversed(list(zip(self.levels, levels, strict=True))):
                weights = level.scorer.graph_weights(image, maps, scoring, params, 1)
                lows.append(level.scorer.low_map(maps, weights))
            return tf.cast(refine(lows, size, self.lnorm)[0], tf.float32)

        return tf.map_fn(
            one,
            (images, activations, classes, *finer),
            fn_output_signature=tf.TensorSpec(size, tf.float32),
        )
