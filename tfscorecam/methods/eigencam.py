"""EigenCAM (Muhammad & Yeasin, IJCNN 2020): the feature map's first principal component."""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from tfscorecam.core.explainer import Explainer, Request
from tfscorecam.core.maps import principal_projection, score_cam_maps
from tfscorecam.core.progress import Progress


class EigenCAM(Explainer):
    """EigenCAM: map = ReLU(projection of the target layer's features on their first
    principal component), upsampled bilinearly and min-max scaled.

    Gradient-free and class-agnostic: one forward pass, the same map for every class or
    target asked for (the usual choice for detectors, whose class scores are costly to
    differentiate). The centring and the ReLU follow pytorch-grad-cam's ``EigenCAM``; the
    projection's sign is fixed (see ``principal_projection``).

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``Explainer``.
    """

    def low_maps(self, activations: object) -> Any:
        """Maps (n, h, w, 1) at the layer's resolution."""
        return ops.relu(principal_projection(activations))[..., None]

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        maps = []
        for start in range(0, len(images), self.batch_size):
            low = self.low_maps(activations[start : start + self.batch_size])
            maps.append(ops.convert_to_numpy(score_cam_maps(low, images.shape[1:-1])))
            progress.add()
        return np.repeat(np.concatenate(maps), request.scores.shape[1], axis=1)

    def graph_maps(self, images, activations, classes):
        return score_cam_maps(self.low_maps(activations), ops.shape(images)[1:3])[:, 0]
