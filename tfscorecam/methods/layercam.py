"""LayerCAM (Jiang et al., IEEE TIP 2021): positive gradients element-wise, one or more layers."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core.progress import Progress
from tfscorecam.core.request import Request
from tfscorecam.core.validation import non_negative
from tfscorecam.methods.gradients import GradientCAM


class LayerCAM(GradientCAM):
    """LayerCAM: map = ReLU(sum_k ReLU(dS/dA_k) * A_k), element-wise, at the layer's resolution.

    S is the class's logit (as Grad-CAM; a ``target`` is differentiated as it is); the map is
    upsampled bilinearly to the input. With ``layers=[...]`` the maps of several layers are
    fused as the paper does (its Eq. 9): each layer's map (at the input size) is divided by its
    maximum, the maps of every layer but the coarsest are scaled by tanh(gamma * map) to lift
    the weak responses of shallow layers, and the fused map is their element-wise maximum.
    torch-cam scales every layer, the coarsest too.

    Args:
        layers: several target layers to fuse (then ``layer`` must be None).
        gamma: the tanh scale of the fusion (the paper's 2).

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``GradCAM``.
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        layers: list | None = None,
        gamma: float = 2.0,
        **options: Any,
    ) -> None:
        self.gamma = non_negative(gamma, "gamma")
        if layers is not None:
            if layer is not None:
                raise ValueError("pass layer or layers, not both")
            if not isinstance(layers, (list, tuple)) or not layers:
                raise ValueError("layers must be a non-empty list of layers")
        super().__init__(model, layers[-1] if layers else layer, **options)
        self.parts = [LayerCAM(model, one, gamma=gamma, **options) for one in (layers or [])]
        if self.parts:
            self.layer_path = ", ".join(part.layer_path for part in self.parts)

    def weighted_activations(self, acts: Any, grads: Any) -> Any:
        """(n, K, h, w, C): ReLU(grads) * acts, element-wise."""
        return acts[:, None] * ops.relu(grads)

    def _work(self, activations: np.ndarray, request: Request) -> int:
        if not self.parts:
            return super()._work(activations, request)
        return sum(part._work(activations, request) for part in self.parts)

    def fuse(self, maps: list, sizes: list[int]):
        """The paper's fusion of per-layer maps (N, K, H, W) (volumes: (N, K, D, H, W)) of
        layers with ``sizes`` cells."""
        coarsest = int(np.argmin(sizes))
        fused = None
        for i, one in enumerate(maps):
            peak = ops.max(one, axis=tuple(range(-self.spatial_rank, 0)), keepdims=True)
            one = ops.divide_no_nan(one, peak)
            one = one if i == coarsest else ops.tanh(self.gamma * one)
            fused = one if fused is None else ops.maximum(fused, one)
        return fused

    def _sizes(self) -> list[int]:
        return [part.feature_area for part in self.parts]

    @property
    def feature_area(self) -> int:
        """The number of cells of this layer's feature map."""
        shape = self._tapped.outputs[0].shape
        return int(np.prod([d or 1 for d in shape[1:-1]]))

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        if not self.parts:
            return super()._maps(images, activations, request, progress)
        maps = [part._maps(images, activations, request, progress) for part in self.parts]
        return ops.convert_to_numpy(self.fuse(maps, self._sizes()))

    def graph_maps(self, images, activations, classes):
        if not self.parts:
            return super().graph_maps(images, activations, classes)
        maps = [part.graph_maps(images, None, classes) for part in self.parts]
        return self.fuse(maps, self._sizes())
