"""XGrad-CAM (Fu et al., BMVC 2020): gradients averaged with the activations as weights."""

from __future__ import annotations

from typing import Any

from keras import ops

from tfscorecam.methods.gradients import GradientCAM


class XGradCAM(GradientCAM):
    """XGrad-CAM: w_k = sum_ij (A_k,ij / sum_ab A_k,ab) dS/dA_k,ij; map = ReLU(sum_k w_k A_k).

    The weights are the ones that satisfy the paper's two axioms (sensitivity and
    conservation) for a score linear in the layer's features. S is the class's logit (as
    Grad-CAM; a ``target`` is differentiated as it is). A channel whose activations sum to 0
    weighs 0 (the official code adds 1e-6 to the sum, pytorch-grad-cam 1e-7: the same
    weights wherever the sum is not close to 0).

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``GradCAM``.
    """

    def channel_weights(self, acts: Any, grads: Any) -> Any:
        """Weights (n, K, C) from feature maps (n, h, w, C) and gradients (n, K, h, w, C)."""
        total = ops.sum(acts, axis=(1, 2))  # (n, C)
        weighted = ops.sum(grads * acts[:, None], axis=(2, 3))  # (n, K, C)
        return ops.divide_no_nan(weighted, total[:, None, :])
