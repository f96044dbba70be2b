"""Augmented Score-CAM (Ibrahim & Shafiq, Knowledge-Based Systems 252, 2022), with a fusion
that models each feature cell's receptive field (see ``superres`` and the README)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfscorecam.augment import random_transforms, warp, warp_tensor, zoom_transforms
from tfscorecam.base import Request
from tfscorecam.maps import weighted_sum
from tfscorecam.progress import Progress
from tfscorecam.scorecam import ScoreCAM
from tfscorecam.superres import (
    ENERGY_WEIGHT,
    SIGMA,
    SUBCELLS,
    TV_WEIGHT,
    GraphFusion,
    SuperResolver,
    authors_weights,
    fusion_options,
)
from tfscorecam.validation import non_negative, positive_int

WEIGHTS = ("per_copy", "shared")
VIEWS = ("rotations", "zoom")
MAX_ANGLE = 0.1  # radians
AUTHORS_ANGLE = 0.5
AUTHORS_SHIFT_AT_224 = 30.0  # the authors' +-30 px at 224 px


class AugmentedScoreCAM(ScoreCAM):
    """Score-CAM on rotated and shifted copies of each image, fused at a finer resolution.

    Copy 0 is the image itself; copy k is the image rotated about its centre by an angle
    uniform in +-``max_angle`` radians and shifted by up to ``max_shift`` pixels (bilinear,
    pixels from outside the image are 0 in the model's input space). Each copy gets a
    Score-CAM map at the target layer's resolution, g_k = ReLU(sum_c w_kc A_kc), divided by
    its maximum as in the authors' code; ``superres.SuperResolver`` fuses the g_k into one map
    (on a grid of ``subcells`` x ``subcells`` per feature cell, then resized bilinearly to the
    input), which is ReLU'd and min-max scaled to [0, 1].

    The defaults differ from the authors' where measured better on 283 ImageNet validation
    photos with object boxes (``benchmarks/asc_study.py``; README): a Gaussian receptive-field
    observation instead of the 32-px block average, small transforms (0.1 rad, half a feature
    cell of shift) whose copies agree better, fusion weights per feature cell, K = 16 and
    channel weights shared by the copies (as good there, at a sixteenth of the cost). Their
    exact settings are ``AugmentedScoreCAM.authors_settings(model)``. The fused map is more
    concentrated than Score-CAM's: it localises object boxes better and keeps less of the
    image, so its Average Drop is worse (README, "Where the gain comes from").

    Args:
        model, layer, batch_size: as ``ScoreCAM``.
        num_augmentations: K, the number of copies (the identity included); the paper uses
            100. With the default fusion K = 1 to 16 localise alike (README), and with
            ``weights="shared"`` each copy costs one forward pass.
        max_angle: half-range of the rotation angles in radians (authors: 0.5).
        max_shift: half-range of the shifts in pixels; None = half a feature cell (the
            input size over the layer's, halved: 16 px for a 7x7 layer at 224 px). The
            authors use 30 px at 224.
        weights: ``"shared"`` (default: channels scored once on the image, weights reused for
            every copy: C + K passes, one Score-CAM's cost) or ``"per_copy"`` (the authors':
            every copy's channels scored, K x C passes). With the default fusion they
            localise alike on the dev photos (README), so the default is the cheap one.
        seed: seeds the transforms; the same seed gives the same transforms and map.
        views: ``"rotations"`` (default: the paper's random rotations and shifts) or
            ``"zoom"``: the image, then ``zoom_crops`` x ``zoom_crops`` crops of it magnified
            by each of ``zoom_scales``, offset by whole feature cells
            (``augment.zoom_transforms``), so that each crop's cells are 1/s the image's and
            their phases are exact; the fusion's Gaussian observation is then sigma / s
            original cells wide. With zoom, ``num_augmentations`` caps the views (1: the
            image alone), and all views share one scale (the image's peak) instead of each
            being divided by its own maximum, so a crop without the object stays dim.
        zoom_scales, zoom_crops: the magnifications and crops per axis of ``views="zoom"``.
        observation: ``"gaussian"`` (default) or ``"area"`` (the authors'); see ``superres``.
        sigma: the Gaussian's standard deviation in feature cells.
        prior: ``"tv"`` (total variation, the authors') or ``"smooth"`` (squared gradient).
        tv_weight, energy_weight: the fusion's weights per feature cell (``superres``).
        subcells: the working grid's pixels per feature cell; None solves at the input
            resolution (the authors').
        score, channel_softmax, baseline, max_channels, head, output, reshape: as ``ScoreCAM``.
        verbose: 1 shows a progress bar over the copies; 0 is silent.
    """

    progress_unit = "copy"

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        num_augmentations: int = 16,
        max_angle: float = MAX_ANGLE,
        max_shift: float | None = None,
        weights: str = "shared",
        seed: int = 0,
        batch_size: int = 64,
        *,
        views: str = "rotations",
        zoom_scales: tuple[float, ...] = (2.0,),
        zoom_crops: int = 3,
        observation: str = "gaussian",
        sigma: float = SIGMA,
        prior: str = "tv",
        tv_weight: float = TV_WEIGHT,
        energy_weight: float = ENERGY_WEIGHT,
        subcells: int | None = SUBCELLS,
        score: str = "probability",
        channel_softmax: bool = False,
        baseline: float | np.ndarray = 0.0,
        max_channels: int | None = None,
        head: str = "auto",
        output: str | int | None = None,
        reshape=None,
        verbose: int = 1,
    ) -> None:
        super().__init__(
            model,
            layer,
            batch_size,
            score=score,
            channel_softmax=channel_softmax,
            baseline=baseline,
            max_channels=max_channels,
            head=head,
            output=output,
            reshape=reshape,
            verbose=verbose,
        )
        self.num_augmentations = positive_int(num_augmentations, "num_augmentations")
        self.max_angle = non_negative(max_angle, "max_angle")
        self.max_shift = None if max_shift is None else non_negative(max_shift, "max_shift")
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.weights = weights
        self.seed = seed
        if views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {views!r}")
        self.views = views
        self.zoom_scales = tuple(float(z) for z in zoom_scales)
        self.zoom_crops = positive_int(zoom_crops, "zoom_crops")
        self.subcells = None if subcells is None else positive_int(subcells, "subcells")
        self.fusion = fusion_options(observation, sigma, prior, tv_weight, energy_weight)
        self._resolvers: dict = {}

    @classmethod
    def authors_settings(
        cls, model: keras.Model, layer: str | keras.layers.Layer | None = None, **options
    ) -> AugmentedScoreCAM:
        """The authors' method: K = 100 copies rotated by up to 0.5 rad and shifted by up to
        30 px at 224 (scaled to the input), every copy scored, area observation, TV at the
        input resolution with their weights (lambda_tv = 0.002 K, lambda_eng = 0.001 K per
        pixel). ``options`` override any of these."""
        settings = {
            "num_augmentations": 100,
            "max_angle": AUTHORS_ANGLE,
            "weights": "per_copy",
            "observation": "area",
            "prior": "tv",
            "subcells": None,
        }
        cam = cls(model, layer, **{**settings, **options})
        height, width = cam.input_shape[1:3]
        if "max_shift" not in options:
            cam.max_shift = AUTHORS_SHIFT_AT_224 * min(height, width) / 224
        tv, energy = authors_weights(width / cam.feature_size()[1])
        cam.fusion["tv_weight"] = options.get("tv_weight", tv)
        cam.fusion["energy_weight"] = options.get("energy_weight", energy)
        return cam

    def transforms(
        self, image_size: tuple[int, int], feature_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The (K, 8) transforms used for images of this (H, W) size and feature map (h, w)."""
        if self.views == "zoom":
            if feature_size is None:
                raise ValueError("zoomed views need the feature map's size")
            views = zoom_transforms(image_size, feature_size, self.zoom_scales, self.zoom_crops)
            return views[: self.num_augmentations]
        shift = self.max_shift
        if shift is None:
            if feature_size is None:
                raise ValueError("the default max_shift needs the feature map's size")
            shift = min(image_size[0] / feature_size[0], image_size[1] / feature_size[1]) / 2
        return random_transforms(
            self.num_augmentations, image_size, self.max_angle, shift, self.seed
        )

    def resolver(self, image_size: tuple[int, int], feature_size: tuple[int, int]):
        """The fusion for images of this size and feature maps of this size (built once)."""
        key = (tuple(image_size), tuple(feature_size))
        if key not in self._resolvers:
            grid = None
            if self.subcells is not None:
                grid = tuple(
                    min(f * self.subcells, i) for f, i in zip(feature_size, image_size, strict=True)
                )
            self._resolvers[key] = SuperResolver(
                self.transforms(image_size, feature_size),
                feature_size,
                image_size,
                grid,
                **self.fusion,
            )
        return self._resolvers[key]

    def _work(self, activations: np.ndarray, request: Request) -> int:
        size = self.input_shape[1:3]
        if None in size:  # the transforms depend on the images' size
            return len(activations) * self.num_augmentations
        return len(activations) * len(self.transforms(size, activations.shape[1:3]))

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        resolver = self.resolver(images.shape[1:3], activations.shape[1:3])
        transforms = resolver.transforms
        return np.stack(
            [
                [
                    np.maximum(resolver(low), 0.0)
                    for low in self.copy_maps(image, acts, request, i, transforms, progress)
                ]
                for i, (image, acts) in enumerate(zip(images, activations, strict=True))
            ]
        )

    def copy_maps(
        self,
        image: np.ndarray,
        activations: np.ndarray,
        request: Request,
        index: int,
        transforms: np.ndarray,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Per score, the K copies' low-resolution maps divided by their max: (K_cls, K, h, w).

        Image ``index`` of ``request``; ``progress`` counts the copies."""
        copies = warp(image, transforms)
        copy_acts, _ = self.forward(copies)
        if self.weights == "shared":
            weights = [self.channel_weights(image, activations, request, index)] * len(copies)
            if progress is not None:
                progress.add(len(copies))
        else:
            weights = []
            for copy, acts in zip(copies, copy_acts, strict=True):
                weights.append(self.channel_weights(copy, acts, request, index))
                if progress is not None:
                    progress.add()
        low = np.stack(
            [
                np.maximum(weighted_sum(acts, w), 0.0)
                for acts, w in zip(copy_acts, weights, strict=True)
            ]
        )  # (K, h, w, K_cls)
        peak = low.max(axis=(1, 2), keepdims=True)
        if self.views == "zoom":  # one scale for all views: the image's own peak
            peak = np.broadcast_to(peak[:1], peak.shape)
        low = np.divide(low, peak, out=np.zeros_like(low), where=peak > 0)
        return low.transpose(3, 0, 1, 2)

    def graph_maps(self, images, activations, classes):
        size, features = tuple(images.shape[1:3]), tuple(activations.shape[1:3])
        resolver = self.resolver(size, features)
        fusion = GraphFusion(resolver)
        transforms = tf.constant(resolver.transforms)
        count = len(resolver.transforms)

        def one(args):
            image, acts, class_index = args
            copies = warp_tensor(tf.repeat(image[None], count, axis=0), transforms)
            copy_acts, _ = self._forward_pass(copies)
            if self.weights == "shared":
                low = tf.einsum(
                    "khwc,c->khw", copy_acts, self.graph_weights(image, acts, class_index)
                )
            else:
                weights = tf.map_fn(
                    lambda pair: self.graph_weights(pair[0], pair[1], class_index),
                    (copies, copy_acts),
                    fn_output_signature=tf.TensorSpec((acts.shape[-1],), tf.float32),
                )
                low = tf.einsum("khwc,kc->khw", copy_acts, weights)
            low = tf.nn.relu(low)
            peak = tf.reduce_max(low, axis=(1, 2), keepdims=True)
            if self.views == "zoom":  # one scale for all views, as copy_maps
                peak = tf.broadcast_to(peak[:1], tf.shape(peak))
            low = tf.math.divide_no_nan(low, peak)
            return tf.nn.relu(fusion(low))

        return tf.map_fn(
            one,
            (images, activations, classes),
            fn_output_signature=tf.TensorSpec(size, tf.float32),
        )
