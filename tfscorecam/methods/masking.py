"""Score-CAM's masked inputs, and the variants of IS-CAM and SS-CAM.

Each channel is upsampled bilinearly to the input size (two small matmuls; a volume's
channel trilinearly, three), min-max
normalised to a mask m in [0, 1] and blended with the image:
``image * m + baseline * (1 - m)``. One XLA-compiled step builds every masked image of a chunk
of channels (and all the samples of each channel for IS-CAM and SS-CAM), writing only the masked
images.

A ``Masking`` says how many masked inputs each channel gets (``samples``) and builds them; the
scorer averages a channel's scores over its samples.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.maps import interpolation_matrix


def channel_masks(image: Any, acts: Any) -> tuple[Any, Any]:
    """The normalised masks (c, H, W) of the channels of ``acts`` (h, w, c) and their spans
    (c, 1, 1): the max - min of each upsampled, un-normalised channel. For a volume
    (D, H, W, C_in) and its feature map (d, h, w, c): masks (c, D, H, W), spans (c, 1, 1, 1)."""
    size, cells = ops.shape(image), ops.shape(acts)
    rows = interpolation_matrix(size[-3], cells[-3])
    cols = interpolation_matrix(size[-2], cells[-2])
    if len(acts.shape) == 4:  # a volume's: along its depth first, then as an image's
        depth = interpolation_matrix(size[0], cells[0])
        deep = ops.einsum("zd,dhwc->czhw", depth, acts)
        up = ops.einsum("czyw,xw->czyx", ops.einsum("yh,czhw->czyw", rows, deep), cols)
    else:
        up = ops.einsum("cyj,xj->cyx", ops.einsum("yi,ijc->cyj", rows, acts), cols)
    axes = tuple(range(1, len(up.shape)))
    low = ops.min(up, axis=axes, keepdims=True)
    span = ops.max(up, axis=axes, keepdims=True) - low
    return (up - low) * ops.divide_no_nan(1.0, span), span


def _blend(image: Any, masks: Any, baseline: Any) -> Any:
    masks = masks[..., None]
    return image * masks + baseline * (1.0 - masks)


def _masked_inputs(image: Any, acts: Any, baseline: Any) -> Any:
    """The image (H, W, C_in) masked by each channel of ``acts`` (h, w, c): (c, H, W, C_in)."""
    masks, _ = channel_masks(image, acts)
    return _blend(image[None], masks, baseline)


def _scaled_masked_inputs(image: Any, acts: Any, baseline: Any, scales: Any) -> Any:
    """Each channel's mask times each of ``scales`` (N,): (c * N, H, W, C_in), channel-major."""
    masks, _ = channel_masks(image, acts)
    spread = (1,) * (len(masks.shape) - 1)
    scaled = masks[:, None] * ops.reshape(scales, (1, -1, *spread))  # (c, N, H, W)
    return _blend(image[None], ops.reshape(scaled, (-1, *ops.shape(masks)[1:])), baseline)


def _noisy_masked_inputs(
    image: Any,
    acts: Any,
    baseline: Any,
    normal: Any,
    noise: Any,
    on_input: bool,
    squared: bool,
) -> Any:
    """SS-CAM's noisy inputs, (c * N, H, W, C_in) channel-major, from standard normal samples
    ``normal``: (c, N, H, W) for noise on the mask, (c, N, H, W, C_in) on the masked input.

    The noise's standard deviation is s = (noise / span)^2 (``squared``, the official code) or
    noise / span, where span is the max - min of what is noised: the upsampled channel (its
    noise then reaches the normalised mask divided by span) or the masked input.
    """
    masks, span = channel_masks(image, acts)
    if on_input:
        masked = _blend(image[None], masks, baseline)  # (c, H, W, C)
        axes = tuple(range(1, len(masked.shape)))
        span = ops.max(masked, axis=axes, keepdims=True) - ops.min(
            masked, axis=axes, keepdims=True
        )
        scale = ops.divide_no_nan(noise, span)
        scale = scale * scale if squared else scale
        noisy = masked[:, None] + normal * scale[:, None]
        return ops.reshape(noisy, (-1, *ops.shape(masked)[1:]))
    scale = ops.divide_no_nan(noise, span)
    scale = (scale * scale if squared else scale) * ops.divide_no_nan(1.0, span)
    noisy = masks[:, None] + normal * scale[:, None]  # (c, N, H, W)
    return _blend(image[None], ops.reshape(noisy, (-1, *ops.shape(masks)[1:])), baseline)


# one XLA-compiled function each (on TensorFlow too), traced into the scoring step
masked_inputs = backend.compile(_masked_inputs, jit=True)
scaled_masked_inputs = backend.compile(_scaled_masked_inputs, jit=True)
noisy_masked_inputs = backend.compile(_noisy_masked_inputs, jit=True, static=(5, 6))


class Masking:
    """One masked input per channel (Score-CAM)."""

    samples = 1

    def __call__(self, image: Any, acts: Any, channels: Any, baseline: Any) -> Any:
        """Masked inputs (c * samples, H, W, C_in) of ``channels`` (their feature maps
        ``acts`` (h, w, c)), channel-major."""
        return masked_inputs(image, acts, baseline)


class ScaledMasking(Masking):
    """Each channel's mask at several scales (IS-CAM)."""

    def __init__(self, scales: list[float]) -> None:
        self.scales = backend.tensor(scales)
        self.samples = len(scales)

    def __call__(self, image, acts, channels, baseline):
        return scaled_masked_inputs(image, acts, baseline, self.scales)


class NoisyMasking(Masking):
    """``samples`` noisy copies of each channel's mask or masked input (SS-CAM), with noise
    drawn from (seed, channel index): the same whatever the chunks."""

    def __init__(
        self, samples: int, noise: float, on_input: bool, squared: bool, seed: int
    ) -> None:
        self.samples = samples
        self.noise = backend.tensor(noise)
        self.on_input = on_input
        self.squared = squared
        self.seed = seed

    def normal(self, channels: Any, shape: tuple) -> Any:
        """Standard normal samples (c, samples, *shape) for ``channels``
        (``backend.unit_normals``: the same on one backend whatever the chunks)."""
        return backend.unit_normals(self.seed, channels, (self.samples, *shape))

    def __call__(self, image, acts, channels, baseline):
        shape = ops.shape(image) if self.on_input else ops.shape(image)[:-1]
        normal = self.normal(channels, tuple(shape))
        return noisy_masked_inputs(
            image, acts, baseline, normal, self.noise, self.on_input, self.squared
        )
