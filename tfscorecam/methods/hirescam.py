"""HiResCAM (Draelos & Carin, 2020): the gradient times the activation, element-wise."""

from __future__ import annotations

from typing import Any

from tfscorecam.methods.gradients import GradientCAM


class HiResCAM(GradientCAM):
    """HiResCAM: map = ReLU(sum_k dS/dA_k * A_k), element-wise at the layer's resolution.

    Grad-CAM averages each channel's gradient over space before weighing; HiResCAM keeps it
    per cell, so for a model whose score is linear in the layer's features after a global
    average pool the map shows exactly each cell's contribution to the score. S is the class's
    logit (as Grad-CAM; a ``target`` is differentiated as it is). Negative cells are cut
    by the final ReLU, as pytorch-grad-cam does and as every method here does, so that a map
    shows evidence for the class; unlike LayerCAM, negative gradients are kept inside the sum.

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``GradCAM``.
    """

    def weighted_activations(self, acts: Any, grads: Any) -> Any:
        """(n, K, h, w, C): grads * acts, element-wise."""
        return acts[:, None] * grads
