"""IS-CAM: Integrated Score-CAM (Naidu et al. 2020, arXiv:2010.03023)."""

from __future__ import annotations

from typing import Any

import keras

from tfscorecam.core.validation import positive_int
from tfscorecam.methods.masking import ScaledMasking
from tfscorecam.methods.scorecam import ScoreCAM

PATHS = ("linear", "cumulative")


class ISCAM(ScoreCAM):
    """Integrated Score-CAM: a channel's weight is its mean class score along a path of masks.

    w_k = (1 / N) sum_{i=1..N} score(image * (i / N) M_k), M_k the channel's normalised mask
    (the masked-out part goes to ``baseline``, 0 by default); the map is ReLU of the weighted
    sum of the upsampled channels, as Score-CAM. The N scaled masks of a chunk of channels are
    built and scored in one compiled step: IS-CAM costs N Score-CAMs.

    This is the paper's definition. The authors' resource code (ISS-CAM_resources,
    ``algo.py``) does not run as published (it adds to a map it never creates; as intended it
    would score a single mask scaled by sum_i i / N = 5.5); torch-cam scales by the cumulative
    sum sum_{j<=i} j / N (``path="cumulative"``) and softmaxes the mean logit minus the
    unmasked logit over the channels (close to ``score="logit", channel_softmax=True``: the
    subtracted logit is the same for every channel, so the softmax drops it).

    Args:
        num_samples: N, the steps of the path (the paper's 10).
        path: ``"linear"`` (the paper: i / N) or ``"cumulative"`` (torch-cam).
        **options: as ``ScoreCAM`` (``score``, ``channel_softmax``, ``baseline``,
            ``max_channels``, ``head``, ``output``, ``reshape``, ``verbose``).

    ``model``, ``layer``, ``batch_size``: as ``ScoreCAM``; a chunk holds ``batch_size //
    N`` channels.
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        num_samples: int = 10,
        path: str = "linear",
        **options: Any,
    ) -> None:
        self.num_samples = positive_int(num_samples, "num_samples")
        if path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {path!r}")
        self.path = path
        super().__init__(model, layer, **options)

    def masking(self) -> ScaledMasking:
        """The N scaled masks of each channel."""
        n = self.num_samples
        steps = [(i + 1) / n for i in range(n)]
        if self.path == "cumulative":
            steps = [sum(steps[: i + 1]) for i in range(n)]
        return ScaledMasking(steps)
