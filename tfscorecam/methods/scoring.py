"""Score-CAM's expensive step: the score of the input masked by each channel, in chunks.

Everything per chunk of channels (masking, the forward pass, the score) runs in one
``tf.function``, so at most ``batch_size`` masked images exist at any time. The chunks run in
a Python loop eagerly (with a progress bar) or in a ``tf.while_loop`` inside a graph (for
SavedModel export); both call the same compiled step.
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from tfscorecam.core.compiled import compiled
from tfscorecam.core.explainer import Scoring
from tfscorecam.core.progress import Progress
from tfscorecam.methods.channels import channel_weights, select_channels
from tfscorecam.methods.masking import Masking


def check_baseline(baseline: object, input_shape: tuple) -> tf.Tensor:
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
    return tf.constant(value)


class ChannelScorer:
    """Scores of one image masked by each selected channel of its feature map.

    Args:
        input_shape: the model's input shape (None, H, W, C).
        batch_size: the most masked images per forward pass (the chunk size).
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
        self.input_shape = input_shape
        self.masking = masking or Masking()
        self.batch_size = batch_size
        self.chunk = max(1, batch_size // self.masking.samples)
        self.baseline = check_baseline(baseline, input_shape)
        self.max_channels = max_channels
        self.channel_softmax = bool(channel_softmax)
        self._steps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def selected(self, activations: object) -> tf.Tensor:
        """The channels scored for one image's feature map (h, w, C)."""
        return select_channels(activations, self.max_channels)

    def num_chunks(self, activations: np.ndarray) -> int:
        """How many forward chunks ``weights`` runs for one image's feature map."""
        return -(-int(tf.size(self.selected(activations))) // self.chunk)

    def step(self, scoring: Scoring) -> tf.types.experimental.PolymorphicFunction:
        """The compiled chunk step of ``scoring``: (image, acts (h, w, c), channels (c,),
        params) -> (c, K), each channel's scores averaged over its samples."""
        if scoring not in self._steps:
            samples = self.masking.samples

            def chunk(image, acts, channels, params):
                masked = self.masking(image, acts, channels, self.baseline)
                scores = scoring.fn(scoring.model(masked, training=False), params)
                return tf.reduce_mean(tf.reshape(scores, (-1, samples, tf.shape(scores)[1])), 1)

            self._steps[scoring] = compiled(
                chunk,
                input_signature=[
                    tf.TensorSpec(self.input_shape[1:], tf.float32),
                    tf.TensorSpec((None, None, None), tf.float32),
                    tf.TensorSpec((None,), tf.int32),
                    tf.TensorSpec((None,), tf.int32),
                ],
            )
        return self._steps[scoring]

    def weights(
        self,
        image: np.ndarray,
        activations: np.ndarray,
        scoring: Scoring,
        params: np.ndarray,
        k: int,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Channel weights (C, k) for one image (H, W, C_in) and its feature map (h, w, C).

        The weight of a scored channel is its ``k`` scores on the masked image (softmaxed over
        the scored channels with ``channel_softmax``); unscored channels weigh 0.
        ``progress`` counts the chunks.
        """
        selected = self.selected(activations).numpy()
        step = self.step(scoring)
        image_t = tf.constant(image)
        params_t = tf.constant(params, tf.int32)
        chunks = []
        for start in range(0, len(selected), self.chunk):
            chunk = selected[start : start + self.chunk]
            acts = tf.constant(activations[..., chunk])
            chunks.append(step(image_t, acts, tf.constant(chunk, tf.int32), params_t).numpy())
            if progress is not None:
                progress.add()
        scores = np.concatenate(chunks) if chunks else np.zeros((0, k), np.float32)
        return channel_weights(
            scores, selected, activations.shape[-1], self.channel_softmax
        ).numpy()

    def graph_weights(
        self, image: tf.Tensor, acts: tf.Tensor, scoring: Scoring, params: tf.Tensor, k: int
    ) -> tf.Tensor:
        """``weights`` inside a graph (SavedModel export): a while loop over the chunks, with
        ``k`` scores per masked image."""
        selected = self.selected(acts)
        count = tf.size(selected)
        step = self.step(scoring)

        def body(start, scores):
            chunk = selected[start : start + self.chunk]
            chunk_scores = step(image, tf.gather(acts, chunk, axis=-1), chunk, params)
            return start + self.chunk, tf.concat([scores, chunk_scores], axis=0)

        _, scores = tf.while_loop(
            lambda start, _: start < count,
            body,
            (tf.constant(0), tf.zeros((0, k))),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, k])),
        )
        return channel_weights(scores, selected, tf.shape(acts)[-1], self.channel_softmax)
