"""Exporting any explainer as a SavedModel for TensorFlow Serving.

The whole explanation runs inside the graph (``Explainer.graph_explain``): the target layer's
activations and the predictions, then the method's maps in TensorFlow ops (Score-CAM and its
family: a while loop over chunks of channels, the same compiled step as eagerly; Augmented
Score-CAM: the warps, every copy's map and the fusion solve, ``graph_fusion.GraphFusion``; the
gradient methods: their gradient step), then min-max scaling. Loading and serving it needs
TensorFlow only, not tfscorecam. Exporting needs Keras' TensorFlow backend (on JAX or PyTorch,
importing this module says so).

Signatures:

- ``serving_default(images)``: explains each image's top-1 class;
- ``explain_class(images, class_index)``: explains class ``class_index[i]`` of image i;
- ``explain_image_bytes(image_bytes)`` (exports made with ``preprocess``): a batch of encoded
  JPEG / PNG / GIF / BMP strings (TF Serving's REST ``{"b64": ...}``), decoded to RGB (JPEG
  with the accurate DCT, the pixels PIL gives ``tsc.explain``), resized to the model input
  (bilinear, antialiased, no crop, as ``tsc.explain``),
  preprocessed in the graph and explained for the top-1 class; it also returns each image's
  ``image_height`` and ``image_width``.

``images`` are preprocessed float32 (N, H, W, C). Every signature returns ``maps`` (N, H, W)
float32 in [0, 1] at the model's input size, ``classes`` (N,) int32 (the class explained) and
``scores`` (N,) float32 (the model's probability of that class on the image) and ``peaks``
(N,) float32 (each raw map's maximum before min-max scaling, ``Explanation.peak``: comparable
across images and classes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras

from tfscorecam.core import backend
from tfscorecam.core.explainer import Explainer
from tfscorecam.interfaces.pipeline import decode_in_graph
from tfscorecam.zoo.preprocessing import PREPROCESS

backend.tensorflow("exporting a SavedModel (tfscorecam.serving)")  # elsewhere, a clear error
import tensorflow as tf  # noqa: E402


def _preprocessing(preprocess: object, input_shape: tuple) -> Callable | None:
    """``preprocess`` (a name, a Keras layer or a traceable function) checked by tracing it."""
    if preprocess is None:
        return None
    if isinstance(preprocess, str):
        if preprocess not in PREPROCESS:
            raise ValueError(
                f"unknown preprocess {preprocess!r}; choose one of {', '.join(PREPROCESS)}, or "
                "pass a TensorFlow function or a Keras layer"
            )
        preprocess = PREPROCESS[preprocess]
    if not callable(preprocess):
        raise TypeError(
            f"preprocess must be a name, a Keras layer or a function, got {preprocess!r}"
        )
    spec = tf.TensorSpec((None, *input_shape[1:3], 3), tf.float32)
    try:
        traced = tf.function(lambda x: tf.cast(preprocess(x), tf.float32)).get_concrete_function(
            spec
        )
    except Exception as error:  # anything TensorFlow cannot trace
        raise ValueError(
            f"preprocess cannot be traced by TensorFlow ({type(error).__name__}: {error}); "
            "write it with TensorFlow or Keras operations"
        ) from None
    shape = tuple(traced.structured_outputs.shape[1:])
    if shape != tuple(input_shape[1:]):
        raise ValueError(
            f"preprocess gives images of shape {shape}; the model takes {input_shape[1:]}"
        )
    return preprocess


class _ServedExplainer(tf.Module):
    """The exported module: the explainer's graph path behind the SavedModel's signatures."""

    def __init__(self, cam: Explainer, preprocess: Callable | None) -> None:
        super().__init__(name="tfscorecam")
        self.cam = cam
        self.model = cam.view  # every variable the signatures use is one of its layers'
        # TensorFlow Serving and saved_model_cli (TF1-style loaders) restore only variables the
        # module tracks as tf.Variables; Keras 3 wraps them, so track the tf.Variables too
        # (keras-team/keras#19274).
        self.tf_variables = [v.value for v in self.model.variables]
        self.preprocess = preprocess
        height, width = cam.input_shape[1:3]
        spec = tf.TensorSpec((None, *cam.input_shape[1:]), tf.float32, name="images")
        self.serving_default = tf.function(
            lambda images: cam.graph_explain(images), input_signature=[spec]
        )
        self.explain_class = tf.function(
            cam.graph_explain,
            input_signature=[spec, tf.TensorSpec((None,), tf.int32, name="class_index")],
        )
        if preprocess is not None:
            self.explain_image_bytes = tf.function(
                lambda image_bytes: self._explain_bytes(image_bytes, preprocess),
                input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")],
            )

    def _explain_bytes(self, image_bytes: tf.Tensor, preprocess: Callable) -> dict:
        size = self.cam.input_shape[1:3]

        def decode(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return decode_in_graph(data, size)

        images, sizes = tf.map_fn(
            decode,
            image_bytes,
            fn_output_signature=(
                tf.TensorSpec((*size, 3), tf.float32),
                tf.TensorSpec((2,), tf.int32),
            ),
        )
        x = tf.cast(preprocess(images), tf.float32)  # as pipeline.preprocessed, in a graph
        result = self.cam.graph_explain(x)
        return {**result, "image_height": sizes[:, 0], "image_width": sizes[:, 1]}


def export(
    explainer: Explainer,
    path: str | Path,
    preprocess: str | Callable | keras.layers.Layer | None = None,
) -> Path:
    """Write ``explainer`` (any tfscorecam explainer) as a SavedModel at ``path``.

    ``preprocess`` adds the ``explain_image_bytes`` signature: a name the command line knows
    (``tfscorecam.zoo.preprocessing.PREPROCESS``: "mobilenet_v2", "tf", "torch", "caffe", ...), a
    Keras layer, or a function of TensorFlow operations from display-range RGB (0-255, float32)
    to the model's input. Load the result with ``tf.saved_model.load(path)`` and call
    ``.signatures["serving_default"]``, or serve it with TensorFlow Serving (see the docs page
    "Serving"). TensorFlow's alone: on JAX or PyTorch, save the model as ``.keras`` and export
    it in a process with ``KERAS_BACKEND=tensorflow`` (importing this module elsewhere says so).
    """
    if not isinstance(explainer, Explainer):
        raise TypeError(f"export takes a tfscorecam explainer, got {type(explainer).__name__}")
    if explainer.fixed:
        raise ValueError(
            f"export serves one image input; this model also takes {', '.join(explainer.fixed)}"
            ", which a SavedModel's signatures do not carry yet: export a model of the image "
            "alone"
        )
    if explainer.spatial_rank != 2:
        raise ValueError(
            f"export serves images; this model takes volumes or video "
            f"{explainer.input_shape[1:]}: explain them in Python (the explainer, or "
            "tfscorecam.explain)"
        )
    if None in explainer.input_shape[1:]:
        raise ValueError(
            f"export needs a model with a fixed input size (H, W, C); this one takes "
            f"{explainer.input_shape[1:]}: build it with keras.Input(shape=(H, W, C))"
        )
    module = _ServedExplainer(explainer, _preprocessing(preprocess, explainer.input_shape))
    signatures = {
        "serving_default": module.serving_default.get_concrete_function(),
        "explain_class": module.explain_class.get_concrete_function(),
    }
    if module.preprocess is not None:
        signatures["explain_image_bytes"] = module.explain_image_bytes.get_concrete_function()
    path = Path(path)
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path
