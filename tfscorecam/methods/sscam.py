"""SS-CAM: Smoothed Score-CAM (Wang et al. 2020, arXiv:2006.14255; official code
r0cketr1kky/SS-CAM)."""

from __future__ import annotations

from typing import Any

import keras

from tfscorecam.core.validation import non_negative, positive_int
from tfscorecam.methods.masking import NoisyMasking
from tfscorecam.methods.scorecam import ScoreCAM

NOISE_ON = ("mask", "input")


class SSCAM(ScoreCAM):
    """Smoothed Score-CAM: a channel's weight is its mean class score over noisy masks.

    For each channel, ``num_samples`` masked inputs are scored with Gaussian noise on the mask
    (``noise_on="mask"``, the official SSCAM1) or on the masked input (``"input"``, SSCAM2);
    the map is ReLU of the weighted sum of the upsampled channels, as Score-CAM. The noise's
    scale follows the official code: sigma = noise / (max - min) of what is noised (the
    upsampled channel, or the masked input), and the official code passes sigma**2 where
    PyTorch's ``normal_`` takes a standard deviation, so its noise has standard deviation
    sigma**2 (``squared=True``, the default); ``squared=False`` uses sigma, as the paper's
    N(0, sigma^2) reads. All N noisy inputs of a chunk of channels are built and scored in one
    compiled step: SS-CAM costs N Score-CAMs.

    Differences from the official code, by design: the noisy channel is min-max normalised
    into the mask as in Score-CAM (SSCAM1 multiplies the image by the un-normalised noisy
    channel), so ``noise=0`` is exactly Score-CAM; its sigma multiplier, named in a comment
    only, is our ``noise`` (2). torch-cam adds noise of a fixed standard deviation (2.0) to the
    normalised mask and softmaxes logit differences over the channels.

    Args:
        num_samples: N, the noisy samples per channel (official: 35).
        noise: the sigma multiplier (official: 2); 0 gives Score-CAM.
        noise_on: ``"mask"`` or ``"input"``.
        squared: the official standard deviation sigma**2 (True) or sigma (False).
        seed: seeds the noise (drawn per channel: the same whatever ``batch_size``).
        **options: as ``ScoreCAM``.

    ``model``, ``layer``, ``batch_size``: as ``ScoreCAM``; a chunk holds ``batch_size //
    N`` channels.
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        num_samples: int = 35,
        noise: float = 2.0,
        noise_on: str = "mask",
        squared: bool = True,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.num_samples = positive_int(num_samples, "num_samples")
        self.noise = non_negative(noise, "noise")
        if noise_on not in NOISE_ON:
            raise ValueError(f"noise_on must be one of {NOISE_ON}, got {noise_on!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.noise_on, self.squared, self.seed = noise_on, bool(squared), seed
        super().__init__(model, layer, **options)

    def masking(self) -> NoisyMasking:
        """The N noisy masked inputs of each channel."""
        return NoisyMasking(
            self.num_samples, self.noise, self.noise_on == "input", self.squared, self.seed
        )
