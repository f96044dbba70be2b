"""The expensive step of the perturbation methods: a score per channel, in chunks.

Everything per chunk of units (for Score-CAM: masking, the forward pass, the score; for the
tail methods: perturbing the feature map, the model's tail, the score) runs in one
compiled step (``backend.compile``), so at most ``batch_size`` perturbed inputs exist at any
time. The chunks of one image run one at a time in ``backend.chunk_loop``: on TensorFlow a
``tf.while_loop`` compiled once for eager calls and traced into the graph of a SavedModel
export, elsewhere a Python loop over the compiled step. A shown progress bar does not change
that path: the loop advances it about ``REPORTS`` times per image (on TensorFlow through a
``tf.py_function``, which a SavedModel cannot carry, so the export's loop has none).
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
from tfscorecam.core.head import SCORES
from tfscorecam.core.maps import score_cam_maps, weighted_map
from tfscorecam.core.progress import Progress
from tfscorecam.core.request import Request, Scoring
from tfscorecam.methods.channels import select_channels, weights_from_scores
from tfscorecam.methods.masking import Masking


def check_baseline(baseline: object, input_shape: tuple) -> Any:
    """``baseline`` as a float32 constant broadcastable to one image, or a clear error."""
    value = np.asarray(baseline, dtype=np.float32)
    image_shape = tuple(d if d is not None else 1 for d in input_shape[1:])
    try:
        np.broadcast_shapes(value.shape, image_shape)
    except ValueError:
        raise ValueError(
            f"baseline of shape {value.shape} does not broadcast to one image {input_shape[1:]}"
        ) from None
    if not np.all(np.isfinite(value)):
        raise ValueError("baseline contains NaN or infinite values")
    return backend.tensor(value)


# progress reports per image, about: a report from inside the compiled loop costs about half
# a millisecond, as much as a chunk of a small head (Ablation-CAM after out_relu: 14 chunks)
REPORTS = 5


class ChunkedScorer:
    """Scores of one image's channels, ``chunk_size`` channels per compiled step.

    A subclass says which channels are scored (``selected``), what one chunk's scores are
    (``chunk``: traced into the compiled step) and how scores become weights
    (``to_weights``). ``graph_weights`` runs the chunks in ``backend.chunk_loop``;
    ``weights`` runs that loop compiled where the backend can (TensorFlow), counting the
    chunks on a shown progress bar.
    """

    def __init__(self, input_shape: tuple, chunk_size: int) -> None:
        self.input_shape = input_shape
        self.chunk_size = chunk_size
        self._steps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._progress: Progress | None = None  # the bar the running eager loop advances
        self._reported = 0  # chunks of the running call's image already on the bar
        self._count: Callable | None = None

    def selected(self, activations: object) -> Any:
        """The channels scored for one image's feature map (h, w, C)."""
        raise NotImplementedError

    def chunk(self, scoring: Scoring) -> Callable:
        """(image, acts (h, w, C), channels (c,), params) -> the chunk's scores (c, K).

        The compiled steps are cached in weak dictionaries keyed by ``scoring``, so the
        function returned must close over ``scoring``'s parts, never ``scoring`` itself, or a
        target's scoring would never be freed."""
        raise NotImplementedError

    def to_weights(self, scores: object, selected: Any, num_units: object) -> Any:
        """Weights (units, K) from the selected units' scores (n, K); 0 elsewhere."""
        return weights_from_scores(scores, selected, num_units)

    def num_units(self, activations: object) -> Any:
        """How many units one image's feature map (h, w, C) has: its channels."""
        return ops.shape(activations)[-1]

    def low_map(self, activations: object, weights: object) -> Any:
        """The low-resolution maps (h, w, K) of one image's feature map and its units'
        weights (units, K): the channels' weighted sum, in ``backend.widest_float``."""
        wide = backend.widest_float()
        acts, weights = ops.cast(activations, wide), ops.cast(weights, wide)
        return ops.tensordot(acts, weights, axes=1)

    def num_chunks(self, activations: np.ndarray) -> int:
        """How many chunks ``weights`` runs for one image's feature map (for a progress bar's
        total: one compiled call, not the selection's eager ops)."""
        if self._count is None:
            self._count = backend.compile(
                lambda acts: ops.size(self.selected(acts)),
                [(self.feature_spec, "float32")],
                shapes_from_data=True,
            )
        count = int(backend.numpy(self._count(backend.tensor(activations))))
        return -(-count // self.chunk_size)

    def _signature(self, *extra: tuple[tuple, str]) -> list[tuple[tuple, str]]:
        """Input specs of a compiled step or loop: one image, its feature map, then ``extra``."""
        return [(self.input_shape[1:], "float32"), (self.feature_spec, "float32"), *extra]

    @property
    def feature_spec(self) -> tuple:
        """The shape spec of one image's feature map: (None, None, None) for (h, w, C), one
        more None for a volume's (d, h, w, C)."""
        return (None,) * (len(self.input_shape) - 1)

    def step(self, scoring: Scoring) -> Callable:
        """The compiled ``chunk`` of ``scoring``: (image, acts, channels, params) -> scores."""
        if scoring not in self._steps:
            self._steps[scoring] = backend.compile(
                self.chunk(scoring), self._signature(((None,), "int32"), ((None,), "int32"))
            )
        return self._steps[scoring]

    def loop(self, scoring: Scoring, counted: bool) -> Callable:
        """The compiled ``graph_weights`` of ``scoring``: (image, acts, params, k) -> weights;
        ``counted`` advances the running call's progress bar from inside the loop."""
        loops = self._loops.setdefault(scoring, {})
        if counted not in loops:
            step = self.step(scoring)
            tick = self._tick if counted else None
            loops[counted] = backend.compile(
                lambda image, acts, params, k: self._chunks(step, image, acts, params, k, tick),
                self._signature(((None,), "int32"), ((), "int32")),
                shapes_from_data=True,
            )
        return loops[counted]

    def _tick(self, done: int) -> None:
        """``done`` chunks of the running call's image are done: advance its bar to there."""
        if self._progress is not None:
            self._progress.add(done - self._reported)
        self._reported = done

    def weights(
        self,
        image: np.ndarray,
        activations: np.ndarray,
        scoring: Scoring,
        params: np.ndarray,
        k: int,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Unit weights (units, k) for one image (H, W, C_in) and its feature map (h, w, C);
        unscored units weigh 0. A shown ``progress`` bar counts the chunks."""
        counted = progress is not None and progress.shown
        self._progress, self._reported = progress, 0
        try:
            weights = self.loop(scoring, counted)(
                backend.tensor(image),
                backend.tensor(activations),
                backend.tensor(params, "int32"),
                backend.tensor(k, "int32"),
            )
            return backend.numpy(weights)
        finally:
            self._progress = None

    def graph_weights(
        self,
        image: Any,
        acts: Any,
        scoring: Scoring,
        params: Any,
        k: Any,
    ) -> Any:
        """``weights`` inside a graph: the loop over the chunks, with ``k`` scores per
        channel."""
        return self._chunks(self.step(scoring), image, acts, params, k)

    def _chunks(
        self,
        step: Callable,
        image: Any,
        acts: Any,
        params: Any,
        k: Any,
        tick: Callable[[int], None] | None = None,
    ) -> Any:
        """``step`` over the selected units' chunks (``backend.chunk_loop``), then the
        weights. ``tick(chunks done)`` runs about ``REPORTS`` times per image."""
        selected = self.selected(acts)
        scores = backend.chunk_loop(
            lambda units: step(image, acts, units, params),
            selected,
            self.chunk_size,
            k,
            REPORTS,
            tick,
        )
        return self.to_weights(scores, selected, self.num_units(acts))


class ChannelScorer(ChunkedScorer):
    """Score-CAM's scores: of one image masked by each selected channel of its feature map.

    Args:
        input_shape: the model's input shape (None, H, W, C).
        batch_size: the most masked images per forward pass.
        baseline: what masked-out pixels become, in the model's input space.
        max_channels: score only this many channels (see ``channels.select_channels``).
        channel_softmax: softmax the scores over the scored channels before weighing.
        masking: how each channel's masked inputs are built; a channel's score is the mean
            over its ``masking.samples`` inputs. A chunk holds ``batch_size // samples``
            channels (at least one).
    """

    def __init__(
        self,
        input_shape: tuple,
        batch_size: int,
        baseline: object = 0.0,
        max_channels: int | None = None,
        channel_softmax: bool = False,
        masking: Masking | None = None,
    ) -> None:
        self.masking = masking or Masking()
        super().__init__(input_shape, max(1, batch_size // self.masking.samples))
        self.batch_size = batch_size
        self.baseline = check_baseline(baseline, input_shape)
        self.max_channels = max_channels
        self.channel_softmax = bool(channel_softmax)

    def selected(self, activations: object) -> Any:
        return select_channels(activations, self.max_channels)

    def chunk(self, scoring: Scoring) -> Callable:
        samples, model, score = self.masking.samples, scoring.model, scoring.fn

        def chunk(image, acts, channels, params):
            chosen = ops.take(acts, channels, axis=-1)
            masked = self.masking(image, chosen, channels, self.baseline)
            scores = score(model(masked, training=False), params)
            return ops.mean(ops.reshape(scores, (-1, samples, ops.shape(scores)[1])), 1)

        return chunk

    def to_weights(self, scores: object, selected: Any, num_channels: object) -> Any:
        """The scores as weights (softmaxed over the scored channels with ``channel_softmax``)."""
        return weights_from_scores(scores, selected, num_channels, self.channel_softmax)


class PerturbationCAM(Explainer):
    """The explainers whose unit weights come from a ``ChunkedScorer`` (``self.scorer``, set
    by the subclass): map = ReLU(Up(low map)), the low map being the channels' weighted sum
    (or, for position units, the scores themselves), eagerly and in a graph.

    Args:
        score: the class score a unit changes: ``"probability"`` or ``"logit"``.
    """

    progress_unit = "chunk"
    scorer: ChunkedScorer
    weighs_activations = True  # channel units; a method of position units says False

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        score: str = "probability",
        **options: Any,
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.score = score
        super().__init__(model, layer, **options)

    def unit_weights(
        self,
        image: np.ndarray,
        activations: np.ndarray,
        request: Request,
        index: int,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Unit weights of image ``index`` of ``request``, scored on ``image``: (C, K) for
        channels, (positions, K) for positions."""
        scoring, params = request.scored(index)
        return self.scorer.weights(
            image, activations, scoring, params, request.num_scores, progress
        )

    def _work(self, activations: np.ndarray, request: Request) -> int:
        return sum(self.scorer.num_chunks(a) for a in activations)

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        low = np.stack(
            [
                backend.numpy(
                    self.low_map(acts, self.unit_weights(image, acts, request, i, progress))
                )
                for i, (image, acts) in enumerate(zip(images, activations, strict=True))
            ]
        )  # (N, h, w, K)
        return self.upsampled(low, images.shape[1:-1])

    def low_map(self, activations: object, weights: object) -> Any:
        """One image's low-resolution maps (h, w, K) from its feature map and unit weights
        (units, K): the scorer's (the channels' weighted sum, or the positions' scores); with
        ``eigen_smooth``, the weighted channels' first principal component
        (``maps.weighted_map``)."""
        if not self.eigen_smooth:
            return self.scorer.low_map(activations, weights)
        wide = backend.widest_float()
        acts, weights = ops.cast(activations, wide), ops.cast(weights, wide)
        weighted = acts[..., None, :] * ops.transpose(weights)  # (h, w, K, C)
        return ops.moveaxis(weighted_map(ops.moveaxis(weighted, -2, 0), True), 0, -1)

    def graph_weights(self, image: Any, activations: Any, class_index: Any) -> Any:
        """Unit weights (units,) of one image for one class, inside a graph."""
        scoring, params = self.scorings.of_classes(), class_index[None]
        return self.scorer.graph_weights(image, activations, scoring, params, 1)[:, 0]

    def graph_maps(self, images, activations, classes):
        tf = backend.tensorflow("a SavedModel")

        def one(args):
            image, acts, class_index = args
            weights = self.graph_weights(image, acts, class_index)[:, None]
            return tf.cast(self.low_map(acts, weights)[..., 0], tf.float32)

        low = tf.map_fn(
            one,
            (images, activations, classes),
            fn_output_signature=tf.TensorSpec(activations.shape[1:3], tf.float32),
        )
        return self.upsampled(low[..., None], tf.shape(images)[1:3])[:, 0]

    def upsampled(self, low: object, size: Any) -> Any:
        """Maps (N, K, H, W) from weighted sums (N, h, w, K) (volumes: (N, K, D, H, W) from
        (N, d, h, w, K)): ReLU(Up(sum)), as Score-CAM's
        official code sums the upsampled channels before its ReLU (the sum commutes with the
        linear bilinear upsampling)."""
        return score_cam_maps(low, size)
