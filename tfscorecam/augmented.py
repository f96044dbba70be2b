"""Augmented Score-CAM (Ibrahim & Shafiq, Knowledge-Based Systems 252, 2022)."""

from __future__ import annotations

import keras
import numpy as np

from tfscorecam.augment import random_transforms, warp
from tfscorecam.base import Request
from tfscorecam.maps import weighted_sum
from tfscorecam.progress import Progress
from tfscorecam.scorecam import ScoreCAM
from tfscorecam.superres import AUTHORS_ENERGY_WEIGHT, AUTHORS_TV_WEIGHT, SuperResolver
from tfscorecam.validation import non_negative, positive_int

WEIGHTS = ("per_copy", "shared")
SHIFT_AT_224 = 30.0  # the authors' +-30 px at 224 px


class AugmentedScoreCAM(ScoreCAM):
    """Score-CAM on rotated and shifted copies of each image, fused by super-resolution.

    Copy 0 is the image itself; copy k is the image rotated about its centre by an angle
    uniform in +-``max_angle`` radians and shifted by up to ``max_shift`` pixels (bilinear,
    pixels from outside the image are 0 in the model's input space). Each copy gets a
    Score-CAM map at the target layer's resolution, g_k = ReLU(sum_c w_kc A_kc), divided by
    its maximum as in the authors' code; ``superres.SuperResolver`` fuses the g_k into one map
    at the input resolution, which is ReLU'd and min-max scaled to [0, 1].

    Args:
        model, layer, batch_size: as ``ScoreCAM``.
        num_augmentations: K, the number of copies (the identity included). The paper uses
            100; the default 16 keeps a faithful ("per_copy") run at 16 Score-CAMs per image,
            and the synthetic recovery test shows most of the gain over one copy is there by
            K = 16 (see README).
        max_angle: half-range of the rotation angles in radians (authors: 0.5).
        max_shift: half-range of the shifts in pixels; None = 30 px scaled from 224 px to the
            image's smaller side (authors: 30 px at 224).
        weights: ``"per_copy"`` (faithful: every copy's channels scored, K x C passes) or
            ``"shared"`` (channels scored once on the image, weights reused for every copy:
            C + K passes).
        seed: seeds the transforms; the same seed gives the same transforms and map.
        tv_weight, energy_weight: per-copy weights of the fusion's total variation and energy
            terms: the authors' 0.002 and 0.001, which gave the best deletion and insertion
            AUCs on real photos (``benchmarks/tune_fusion.py``); ``superres.TV_WEIGHT`` and
            ``ENERGY_WEIGHT`` (1e-4, 1e-5) recover sharper detail but show the feature grid.
        score, channel_softmax, baseline, max_channels, head, output, reshape: as ``ScoreCAM``.
        verbose: 1 shows a progress bar over the copies; 0 is silent.
    """

    progress_unit = "copy"

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        num_augmentations: int = 16,
        max_angle: float = 0.5,
        max_shift: float | None = None,
        weights: str = "per_copy",
        seed: int = 0,
        batch_size: int = 64,
        *,
        tv_weight: float = AUTHORS_TV_WEIGHT,
        energy_weight: float = AUTHORS_ENERGY_WEIGHT,
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
        self.tv_weight = non_negative(tv_weight, "tv_weight")
        self.energy_weight = non_negative(energy_weight, "energy_weight")

    def transforms(self, image_size: tuple[int, int]) -> np.ndarray:
        """The (K, 8) transforms used for images of this (H, W) size."""
        shift = self.max_shift
        if shift is None:
            shift = SHIFT_AT_224 * min(image_size) / 224
        return random_transforms(
            self.num_augmentations, image_size, self.max_angle, shift, self.seed
        )

    def _work(self, activations: np.ndarray, request: Request) -> int:
        return len(activations) * self.num_augmentations

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        transforms = self.transforms(images.shape[1:3])
        resolver = SuperResolver(
            transforms,
            activations.shape[1:3],
            images.shape[1:3],
            self.tv_weight,
            self.energy_weight,
        )
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
        low = np.divide(low, peak, out=np.zeros_like(low), where=peak > 0)
        return low.transpose(3, 0, 1, 2)
