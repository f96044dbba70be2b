"""The gradient family's engine: one backward pass per batch, a map from the feature map and
the score's gradient with respect to it.

Every gradient method differentiates the class's pre-activation score, the logit: for a
softmax (or sigmoid) head it is recovered from the last ``Dense`` or ``Softmax``/``Activation``
layer (inside a nested backbone too), exactly as ``ScoreCAM(score="logit")`` does, so the
gradient is never damped by the softmax. A probability head whose logit cannot be recovered
(it ends in another layer) is differentiated as the log-probability (``head.gradient_head``).
A ``target`` is differentiated as it is, on the raw output. Maps are formed at the target
layer's resolution, ReLU'd, upsampled bilinearly to the input size and min-max scaled to
[0, 1] (the order of the Grad-CAM authors' code).

A method is a leaf with one override: ``channel_weights`` (Grad-CAM, Grad-CAM++, XGrad-CAM:
the map is ReLU of the channels' weighted sum) or ``weighted_activations`` (HiResCAM,
LayerCAM: the activations are weighted element-wise); ``eigen_smooth`` replaces the sum by
the first principal component. Both see (n, h, w, C) feature maps: a volume's (n, d, h, w, C)
reaches them as (n, d, h * w, C), so that every sum over positions (Grad-CAM's mean of
the gradients, ...) runs over all three axes, and its maps are upsampled trilinearly.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.explainer import Explainer
from tfscorecam.core.maps import channels_first, upsample, weighted_map
from tfscorecam.core.model_graph import tap
from tfscorecam.core.progress import Progress
from tfscorecam.core.request import Request, Scoring


class GradientCAM(Explainer):
    """The engine of the gradient family (see the module).

    ``model``, ``layer``, ``batch_size``, ``head``, ``output``, ``reshape``, ``verbose``:
    as ``Explainer`` (``batch_size``: images per gradient pass).

    Call it as ``cam(images, class_index=None, target=None)``; see ``Explainer.__call__``.
    """

    score = "gradient"
    weighs_activations = True

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model, layer, **options)
        if len(self._tapped.outputs) != 2:  # the layer's output is a list (a neck's levels)
            raise ValueError(
                f"{type(self).__name__} differentiates one feature map; layer "
                f"{self.layer_path!r} outputs {len(self._tapped.outputs) - 1} tensors. Use a "
                "Score-CAM family method there, or a layer with a single output"
            )
        self._steps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def channel_weights(self, acts: Any, grads: Any) -> Any:
        """Weights (n, K, C) from feature maps (n, h, w, C) and gradients (n, K, h, w, C)."""
        raise NotImplementedError

    def weighted_activations(self, acts: Any, grads: Any) -> Any:
        """(n, K, h, w, C): each channel of the feature maps (n, h, w, C) times its weight for
        each of the K scores (``channel_weights``); an element-wise leaf overrides it."""
        weights = ops.cast(self.channel_weights(acts, grads), acts.dtype)  # float64 kept
        return acts[:, None] * weights[:, :, None, None, :]

    def low_maps(self, acts: Any, grads: Any) -> Any:
        """Maps (n, h, w, K) at the layer's resolution: ReLU of the weighted activations'
        sum over channels (``maps.weighted_map``: their first principal component with
        ``eigen_smooth``)."""
        weighted = self.weighted_activations(acts, grads)
        shape = ops.shape(weighted)
        flat = ops.reshape(weighted, (-1, *shape[2:]))  # (n * K, h, w, C)
        low = ops.reshape(weighted_map(flat, self.eigen_smooth), shape[:-1])
        return ops.relu(ops.moveaxis(low, 1, -1))

    def gradients(self, images: Any, params: Any, scoring: Scoring, k: int) -> tuple[Any, Any]:
        """Feature maps (n, h, w, C) of ``images`` and the gradients of the ``k`` scores of
        ``scoring`` with respect to them (n, k, h, w, C)."""
        tapped = tap(self.view, self.chain, True) if scoring.stripped else self._tapped
        acts, grads = backend.feature_gradients(
            tapped,
            lambda: self.tail(scoring),
            lambda output: scoring.fn(output, params),
            images,
            k,
        )
        grads = ops.stack([self.to_grid(grads[:, j]) for j in range(k)], axis=1)
        return self.to_grid(acts), grads

    def batch_maps(self, images: Any, params: Any, scoring: Scoring, k: int) -> Any:
        """Maps (n, K, H, W) (volumes: (n, K, D, H, W)), not scaled, of images whose scores
        come from ``scoring``."""
        acts, grads = self.gradients(images, params, scoring, k)
        wide = backend.widest_float()
        cells = ops.shape(acts)[1:-1]
        if len(cells) == 3:  # a volume's: (n, d, h * w, C) for the leaves (see the module)
            channels = ops.shape(acts)[-1]
            acts = ops.reshape(acts, (-1, cells[0], cells[1] * cells[2], channels))
            grads = ops.reshape(grads, (-1, k, cells[0], cells[1] * cells[2], channels))
        low = self.low_maps(ops.cast(acts, wide), ops.cast(grads, wide))
        low = ops.reshape(low, (-1, *cells, ops.shape(low)[-1]))
        return channels_first(upsample(low, ops.shape(images)[1:-1]))

    def maps_step(self, scoring: Scoring, k: int) -> Callable:
        """``batch_maps`` of ``scoring`` compiled whole, (images, params) -> maps, so that an
        eager call runs one compiled step, as the exported graph does."""
        steps = self._steps.setdefault(scoring, {})
        if k not in steps:
            steps[k] = backend.compile(
                lambda images, params: self.batch_maps(images, params, scoring, k)
            )
        return steps[k]

    def _batches(self, request: Request) -> list[np.ndarray]:
        """Image index batches that share one scoring (all of them, for classes)."""
        n = len(request.scores)
        same = [0] + [i for i in range(1, n) if not request.shares_scoring(i, i - 1)]
        groups = np.split(np.arange(n), same[1:])
        return [
            g[s : s + self.batch_size] for g in groups for s in range(0, len(g), self.batch_size)
        ]

    def _work(self, activations: np.ndarray, request: Request) -> int:
        return len(self._batches(request))

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        k = request.num_scores
        maps = np.zeros((len(images), k, *images.shape[1:-1]), np.float32)
        for rows in self._batches(request):
            scoring, _ = request.scored(int(rows[0]))
            params = backend.tensor(np.stack([request.scored(int(i))[1] for i in rows]), "int32")
            step = self.maps_step(scoring, k)
            maps[rows] = backend.numpy(step(backend.tensor(images[rows]), params))
            progress.add()
        return maps

    def graph_maps(self, images, activations, classes):
        scoring = self.scorings.of_classes()
        return self.batch_maps(images, classes[:, None], scoring, 1)[:, 0]
