"""Grad-CAM++ (Chattopadhay et al., WACV 2018): pixel-weighted positive gradients."""

from __future__ import annotations

from typing import Any

from keras import ops

from tfscorecam.methods.gradients import GradientCAM


class GradCAMPlusPlus(GradientCAM):
    """Grad-CAM++ with the closed-form alpha for an exponential of the score.

    With g = d logit / dA (the network piecewise linear in A), the closed form of
    Chattopadhay et al. (2018) for S = exp(logit) is
    alpha = g^2 / (2 g^2 + sum_ab A_ab g^3) (0 where the denominator is 0), and the channel
    weight is sum_ab alpha ReLU(g); the common factor exp(logit) > 0 of every weight is dropped,
    as it cancels in the min-max scaling.

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``GradCAM``.
    """

    def channel_weights(self, acts: Any, grads: Any) -> Any:
        """Weights (n, K, C) from feature maps (n, h, w, C) and gradients (n, K, h, w, C)."""
        g2, g3 = grads**2, grads**3
        spatial_sum = ops.sum(acts, axis=(1, 2))[:, None, None, None, :]  # (n,1,1,1,C)
        alpha = ops.divide_no_nan(g2, 2 * g2 + spatial_sum * g3)
        return ops.sum(alpha * ops.relu(grads), axis=(2, 3))
