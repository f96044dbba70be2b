"""Exporting a Score-CAM explainer as a SavedModel for TensorFlow Serving.

The whole explanation runs inside the graph: the target layer's activations and the
predictions, a while loop over chunks of channels (the same chunk function as eager
``ScoreCAM``), the weighted sum, upsampling, ReLU and min-max scaling.

Signatures:

- ``serving_default(images)``: explains each image's top-1 class;
- ``explain_class(images, class_index)``: explains class ``class_index[i]`` of image i.

Both take a batch of preprocessed images (N, H, W, C) float32 and return ``maps`` (N, H, W)
float32 in [0, 1], ``classes`` (N,) int32 (the class explained) and ``scores`` (N,) float32
(the model's score of that class on the image: a probability, or the logit with
``score="logit"``).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tfscorecam.maps import minmax, score_cam_maps
from tfscorecam.scorecam import ScoreCAM


class _ScoreCAMModule(tf.Module):
    def __init__(self, cam: ScoreCAM) -> None:
        super().__init__(name="tfscorecam")
        if None in cam.input_shape[1:]:
            raise ValueError("export needs a model with a fixed input size (H, W, C)")
        if cam.class_scoring is None:
            raise ValueError("export needs a model whose explained output is class scores")
        self.cam = cam
        # keep the Keras models (and so their variables) reachable for saving
        self.tapped = cam._tapped
        self.score_model = cam.class_scoring.model
        spec = tf.TensorSpec((None, *cam.input_shape[1:]), tf.float32, name="images")
        self.serving_default = tf.function(
            lambda images: self._explain(images, None), input_signature=[spec]
        )
        self.explain_class = tf.function(
            self._explain,
            input_signature=[spec, tf.TensorSpec((None,), tf.int32, name="class_index")],
        )

    def _explain(self, images: tf.Tensor, class_index: tf.Tensor | None) -> dict:
        cam = self.cam
        acts, predictions = cam._forward_pass(images)
        probabilities = cam.probabilities.transform(predictions)
        if class_index is None:
            class_index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        tf.debugging.assert_less(
            class_index, cam.probabilities.num_classes, "class_index too large"
        )
        tf.debugging.assert_non_negative(class_index, "class_index must be >= 0")

        def one(args):
            image, act, cls = args
            weights = cam.scorer.graph_weights(image, act, cam.class_scoring, cls[None], 1)
            return tf.tensordot(act, weights, axes=1)  # (h, w, 1)

        low = tf.map_fn(
            one,
            (images, acts, class_index),
            fn_output_signature=tf.TensorSpec((*acts.shape[1:3], 1), tf.float32),
        )
        maps = minmax(score_cam_maps(low, tf.shape(images)[1:3]))[:, 0]
        scores = cam.class_scoring.fn(
            cam.class_scoring.model(images, training=False), class_index[:, None]
        )[:, 0]
        return {"maps": maps, "classes": class_index, "scores": scores}


def export(explainer: ScoreCAM, path: str | Path) -> Path:
    """Write ``explainer`` (a ``ScoreCAM``) as a SavedModel at ``path``; returns the path.

    Load it with ``tf.saved_model.load(path)`` and call ``.signatures["serving_default"]``,
    or serve it with TensorFlow Serving (see the README).
    """
    if not isinstance(explainer, ScoreCAM):
        raise TypeError(
            f"export takes a tfscorecam.ScoreCAM, got {type(explainer).__name__}; "
            "Augmented Score-CAM's fusion runs in SciPy and cannot be exported"
        )
    module = _ScoreCAMModule(explainer)
    path = Path(path)
    tf.saved_model.save(
        module,
        str(path),
        signatures={
            "serving_default": module.serving_default.get_concrete_function(),
            "explain_class": module.explain_class.get_concrete_function(),
        },
    )
    return path
