"""Object detectors seen through their detection output, which ``targets.detection`` scores.

A *detection output* is (batch, boxes, 4 + classes): every candidate box the detector predicts,
as ``(x0, y0, x1, y1)`` in input pixels, then its class scores. It is what a detector holds
just before non-max suppression.

``detection_view`` builds that output, in the graph, for the detectors of keras_hub:

- ``RetinaNetObjectDetector``: anchor-level box regressions decoded against its anchors, and
  its class logits through a sigmoid (what its non-max suppression reads);
- ``DFineObjectDetector``: its queries' normalised centre boxes scaled to pixels, and its
  class logits through a sigmoid.

An explainer given one of them explains that view unless ``output=`` names a raw output. Any
other detector works when its model returns a detection output itself (see the docs page
"Targets and outputs").
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


class _DetectionOutput(keras.layers.Layer):
    """Boxes in a detector's own encoding and class scores -> (batch, boxes, 4 + classes)."""

    def __init__(self, detector: keras.Model, kind: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.anchors: Any = detector.anchor_generator if kind == "retinanet" else None
        self.sigmoid = bool(getattr(detector.prediction_decoder, "from_logits", True))

    def call(self, images: Any, boxes: Any, logits: Any) -> Any:
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        boxes = ops.cast(boxes, "float32")
        if self.kind == "retinanet":
            anchors = ops.concatenate(list(self.anchors(images).values()), axis=0)
            boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
                anchors=anchors,
                boxes_delta=boxes,
                encoded_format="center_xywh",
                anchor_format=self.anchors.bounding_box_format,
                box_format="xyxy",
                image_shape=(height, width, 3),
            )
        else:  # D-FINE: normalised (cx, cy, w, h)
            size = ops.cast(ops.stack([width, height, width, height]), "float32")
            centre, extent = ops.split(boxes * size, 2, axis=-1)
            boxes = ops.concatenate([centre - extent / 2, centre + extent / 2], axis=-1)
        scores = ops.cast(logits, "float32")
        if self.sigmoid:
            scores = ops.sigmoid(scores)
        return ops.concatenate([ops.cast(boxes, "float32"), scores], axis=-1)


DETECTORS = {  # keras_hub class name -> (view kind, box output, class output)
    "RetinaNetObjectDetector": ("retinanet", "bbox_regression", "cls_logits"),
    "DFineObjectDetector": ("dfine", "pred_boxes", "logits"),
}


def detector_kind(model: keras.Model) -> str | None:
    """The keras_hub detector class ``model`` is an instance of, or None."""
    names = {cls.__name__ for cls in type(model).__mro__}
    return next((name for name in DETECTORS if name in names), None)


def detection_view(model: keras.Model) -> keras.Model:
    """A model over ``model``'s layers returning its detection output (see the module)."""
    name = detector_kind(model)
    if name is None:
        raise ValueError(
            f"{type(model).__name__} is not a detector tfscorecam knows "
            f"({', '.join(DETECTORS)}); give a model whose output is (batch, boxes, 4 + classes)"
        )
    kind, box_output, class_output = DETECTORS[name]
    outputs = model.output  # keras_hub detectors return a dict keyed by output
    decoded = _DetectionOutput(model, kind, name="detection_output")(
        model.inputs[0], outputs[box_output], outputs[class_output]
    )
    return keras.Model(model.inputs[0], decoded, name=f"{model.name}_detections")
