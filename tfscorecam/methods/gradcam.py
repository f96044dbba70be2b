"""Grad-CAM (Selvaraju et al., ICCV 2017): channel weights are the spatial mean of the gradient."""

from __future__ import annotations

from typing import Any

from keras import ops

from tfscorecam.methods.gradients import GradientCAM


class GradCAM(GradientCAM):
    """Grad-CAM: w_k = mean_ij dS/dA_k,ij; map = ReLU(sum_k w_k A_k).

    S is the class's logit (a ``target`` is differentiated as it is; see
    ``methods.gradients``).

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``Explainer`` (``batch_size``: images per gradient pass).

    Call it as ``cam(images, class_index=None, target=None)``; see ``Explainer.__call__``.
    """

    def channel_weights(self, acts: Any, grads: Any) -> Any:
        """Weights (n, K, C) from feature maps (n, h, w, C) and gradients (n, K, h, w, C)."""
        return ops.mean(grads, axis=(2, 3))
