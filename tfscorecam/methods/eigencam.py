"""EigenCAM (Muhammad & Yeasin, IJCNN 2020): the feature map's first principal component."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfscorecam.core.explainer import Explainer, Request
from tfscorecam.core.maps import score_cam_maps
from tfscorecam.core.progress import Progress


def principal_projection(activations: object) -> tf.Tensor:
    """Each feature map (n, h, w, C) projected on its first principal direction -> (n, h, w).

    The cells are the samples and the channels the variables: the cells' mean is removed, and
    the projection is on the first right singular vector, signed so that its channel weights
    sum to more than 0 (an SVD's sign is arbitrary: the peers' maps come out inverted at
    random; with non-negative features this sign makes the strongest cells bright).
    """
    acts = tf.cast(tf.convert_to_tensor(activations), tf.float64)
    shape = tf.shape(acts)
    cells = tf.reshape(acts, (shape[0], shape[1] * shape[2], shape[3]))
    centred = cells - tf.reduce_mean(cells, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred)  # v: (n, C, C), right singular vectors as columns
    first = v[..., 0]  # (n, C)
    first = tf.where(tf.reduce_sum(first, axis=-1, keepdims=True) < 0, -first, first)
    projection = tf.einsum("npc,nc->np", centred, first)
    return tf.reshape(projection, shape[:3])


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

    def low_maps(self, activations: object) -> tf.Tensor:
        """Maps (n, h, w, 1) at the layer's resolution."""
        return tf.nn.relu(principal_projection(activations))[..., None]

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        maps = []
        for start in range(0, len(images), self.batch_size):
            low = self.low_maps(activations[start : start + self.batch_size])
            maps.append(score_cam_maps(low, images.shape[1:3]).numpy())
            progress.add()
        return np.repeat(np.concatenate(maps), request.scores.shape[1], axis=1)

    def graph_maps(self, images, activations, classes):
        return score_cam_maps(self.low_maps(activations), tf.shape(images)[1:3])[:, 0]
