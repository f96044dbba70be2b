"""What an explanation explains: a class score, or any score computed from the model's output.

A *target* is any callable that maps the explained output of the model (batch, ...) to one
score per image (batch,) or K scores per image (batch, K); it receives the raw output (no
softmax or sigmoid is added) and must be written in ``keras.ops`` (or the backend's own ops),
since Score-CAM methods run it inside their compiled scoring step and gradient methods
differentiate it. Every row of its
result must depend on that row of the output alone: Score-CAM scores many masked copies of one
image in one batch. Pass one target for all images, or a list with one per image.

Built in: ``classes`` (the default), ``segmentation``, ``mask`` (one of a promptable
segmenter's predicted masks, SAM's), ``regression``, ``detection`` (one
object among a detector's boxes; ``core.detectors`` gives keras_hub detectors that output) and
``similarity`` (an embedding's similarity with given vectors: text prompts through CLIP or
SigLIP, another image, a prototype; ``core.embeddings`` gives their image embedding).

Reuse a target object across calls: a new object is traced anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.maps import box_masks

ACTIVATIONS = (None, "softmax", "sigmoid")
MATCHES = ("score", "iou")  # how a detection target picks its box
METRICS = ("cosine", "dot")  # how a similarity target compares embeddings


@dataclass(frozen=True, eq=False)
class Classes:
    """Class scores, resolved by the explainer as its ``class_index`` argument (the default
    target): probabilities (or logits with ``score="logit"``) of the model's class output.
    ``top_k``: instead of ``index``, each image's K most probable classes."""

    index: object = None
    top_k: int | None = None


def classes(index: object = None) -> Classes:
    """The explainer's class scores for ``index``: None (top-1), an int, N ints or (N, K)."""
    return Classes(index)


def top_k(k: int) -> Classes:
    """Each image's ``k`` most probable classes, most probable first, from the same forward
    pass that the explanation starts with (maps (N, k, H, W); ``explain()`` gives k results
    per image)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"top_k takes a positive int, got {k!r}")
    return Classes(None, int(k))


def activate(output: Any, activation: str | None) -> Any:
    """``output`` as float32, through ``activation`` (None, "softmax" or "sigmoid")."""
    output = ops.cast(output, "float32")
    if activation == "softmax":
        return ops.softmax(output, axis=-1)
    if activation == "sigmoid":
        return ops.sigmoid(output)
    return output


def check_region(region: object) -> np.ndarray | None:
    """``region`` as an array: None (every pixel), a mask (H, W) or a box (x0, y0, x1, y1)."""
    if region is None:
        return None
    array = np.asarray(region)
    if array.shape != (4,) and array.ndim != 2:
        raise ValueError(
            f"region must be a mask (H, W) or a box (x0, y0, x1, y1), got shape {array.shape}"
        )
    return array


def region_mean(values: Any, region: np.ndarray | None) -> Any:
    """The mean of ``values`` (batch, H, W) over ``region`` (see ``check_region``; a box in
    output pixels takes the pixels whose centre lies inside): (batch,)."""
    mask = region_mask(region, values.shape[1], values.shape[2])
    weights = ops.convert_to_tensor(mask.astype(np.float32))
    return ops.sum(values * weights, axis=(1, 2)) / float(mask.sum())


@backend.not_converted
def region_mask(region: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """``region`` as a float32 (height, width) mask of an output of that size, checked."""
    if region is None:
        mask = np.ones((height, width), np.float32)
    elif region.shape == (4,):
        mask = box_masks(region[None].astype(np.float64), (height, width))[0]
    elif region.shape != (height, width):
        raise ValueError(
            f"the region mask has shape {region.shape}; the output's is {(height, width)}"
        )
    else:
        mask = region.astype(np.float32)
    if mask.sum() == 0:
        raise ValueError("the region holds no pixel of the output")
    return mask.astype(np.float32)


class Segmentation:
    """Mean probability of a class over a region of a segmentation output (batch, H, W, classes).

    ``region``: None (every pixel), a boolean mask (H, W) of the output's size, or a box
    ``(x0, y0, x1, y1)`` in output pixels (pixels whose centre lies inside). ``activation``:
    None when the output already holds probabilities (a softmax or sigmoid last layer);
    ``"softmax"`` or ``"sigmoid"`` for logits.
    """

    def __init__(
        self, class_index: int, region: object = None, activation: str | None = None
    ) -> None:
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise TypeError(f"class_index must be an int, got {class_index!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.class_index = int(class_index)
        self.activation = activation
        self.region = check_region(region)

    def __call__(self, output: Any) -> Any:
        if len(output.shape) != 4:
            raise ValueError(
                f"segmentation needs a (batch, H, W, classes) output, got shape {output.shape}"
            )
        height, width, num_classes = output.shape[1:]
        if not 0 <= self.class_index < num_classes:
            raise ValueError(
                f"class_index {self.class_index} is out of range: the output has "
                f"{num_classes} classes"
            )
        probability = activate(output, self.activation)[..., self.class_index]
        return region_mean(probability, self.region)


def segmentation(
    class_index: int, region: object = None, activation: str | None = None
) -> Segmentation:
    """Mean probability of ``class_index`` over ``region`` (see ``Segmentation``)."""
    return Segmentation(class_index, region, activation)


class PromptedMask:
    """Mean probability of one of the masks a promptable segmenter predicts, (batch, masks,
    H, W) logits such as SAM's ``"masks"`` output, over a region: ``index`` picks the mask;
    ``region`` as ``segmentation``'s (None: the whole output; for "why this mask", the mask
    itself: ``region=logits[0, index] > 0``); ``activation``: ``"sigmoid"`` for SAM's logits,
    None for probabilities."""

    def __init__(self, index: int = 0, region: object = None, activation: str | None = "sigmoid"):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {index!r}")
        if activation not in (None, "sigmoid"):
            raise ValueError(f"activation must be None or 'sigmoid', got {activation!r}")
        self.index = int(index)
        self.activation = activation
        self.region = check_region(region)

    def __call__(self, output: Any) -> Any:
        if len(output.shape) != 4:
            raise ValueError(f"mask needs a (batch, masks, H, W) output, got shape {output.shape}")
        if not 0 <= self.index < output.shape[1]:
            raise ValueError(
                f"mask index {self.index} is out of range: the output has {output.shape[1]} masks"
            )
        return region_mean(activate(output, self.activation)[:, self.index], self.region)


def mask(index: int = 0, region: object = None, activation: str | None = "sigmoid") -> PromptedMask:
    """Mean probability of predicted mask ``index`` over ``region`` (see ``PromptedMask``)."""
    return PromptedMask(index, region, activation)


class Regression:
    """One value of a regression output: ``output[:, index]`` of (batch, D), or (batch,); of a
    dense regression output (batch, H, W, D), such as a depth map, the mean of channel
    ``index`` over ``region`` (None: the whole map; a mask (H, W) or a box (x0, y0, x1, y1) in
    output pixels, as ``segmentation``'s).

    With ``negate`` the score is minus that value: the evidence that lowers it. The
    Score-CAM and gradient families keep only positive evidence (a ReLU), so a value that is
    negative on the image (every masked copy's score below zero) gives an all-zero map;
    explaining its negative shows what drives it down. An offset is a target of its own:
    ``lambda y: y[:, 0] - baseline``.
    """

    def __init__(self, index: int = 0, negate: bool = False, region: object = None) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {index!r}")
        if not isinstance(negate, (bool, np.bool_)):
            raise TypeError(f"negate must be True or False, got {negate!r}")
        self.index = int(index)
        self.negate = bool(negate)
        self.region = check_region(region)

    def __repr__(self) -> str:
        region = "" if self.region is None else ", region=..."
        return f"regression({self.index}{', negate=True' if self.negate else ''}{region})"

    def __call__(self, output: Any) -> Any:
        output = ops.cast(output, "float32")
        rank = len(output.shape)
        if rank == 4:
            if not 0 <= self.index < output.shape[3]:
                raise ValueError(
                    f"regression(index={self.index}) of a dense output needs more than "
                    f"{self.index} channels, got shape {output.shape}"
                )
            value = region_mean(output[..., self.index], self.region)
            return -value if self.negate else value
        if self.region is not None:
            raise ValueError(
                f"a regression region needs a dense output (batch, H, W, D), got shape "
                f"{output.shape}"
            )
        if rank != 1 and (rank != 2 or not 0 <= self.index < output.shape[1]):
            raise ValueError(
                f"regression(index={self.index}) needs a (batch,), (batch, D) or dense "
                f"(batch, H, W, D) output with D > {self.index}, got shape {output.shape}"
            )
        value = output if rank == 1 else output[:, self.index]
        return -value if self.negate else value


def regression(index: int = 0, negate: bool = False, region: object = None) -> Regression:
    """The model's regression output number ``index`` (its negative with ``negate``); of a
    dense output (a depth map), its mean over ``region`` (see ``Regression``)."""
    return Regression(index, negate, region)


def _ious(boxes: Any, box: np.ndarray) -> Any:
    """Intersection over union of ``boxes`` (..., 4) with one box (4,), all (x0, y0, x1, y1)."""
    x0 = ops.maximum(boxes[..., 0], float(box[0]))
    y0 = ops.maximum(boxes[..., 1], float(box[1]))
    x1 = ops.minimum(boxes[..., 2], float(box[2]))
    y1 = ops.minimum(boxes[..., 3], float(box[3]))
    inter = ops.maximum(x1 - x0, 0.0) * ops.maximum(y1 - y0, 0.0)
    areas = ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * ops.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0
    )
    union = areas + float((box[2] - box[0]) * (box[3] - box[1])) - inter
    return inter / ops.maximum(union, 1e-12)


class Detection:
    """The score of one object: ``class_index``'s score of the predicted box that matches
    ``box`` (``(x0, y0, x1, y1)`` in input pixels) among those with IoU >= ``iou``.

    ``match="score"`` (default) takes the highest class score among the matching boxes: the
    box non-max suppression would keep, so the explained score is the detector's confidence
    in that object. ``match="iou"`` takes the box of highest IoU (pytorch-grad-cam's
    ``FasterRCNNBoxScoreTarget``). ``add_iou=True`` adds that box's IoU to its score, as
    pytorch-grad-cam does, so the explanation also rewards where the box lands; off by
    default (see the docs page "Targets and outputs" for what each changes). With no matching
    box the score is 0; on the unmasked image that is an error, since there is nothing to
    explain. ``activation``: None when the class scores are probabilities already (the
    keras_hub views), ``"sigmoid"`` or ``"softmax"`` for logits.
    """

    def __init__(
        self,
        box: object,
        class_index: int,
        iou: float = 0.5,
        match: str = "score",
        add_iou: bool = False,
        activation: str | None = None,
    ) -> None:
        box = np.asarray(box, np.float64)
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise ValueError(f"box must be 4 finite numbers (x0, y0, x1, y1), got {box!r}")
        if not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"box must have x1 > x0 and y1 > y0, got {tuple(box)}")
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise TypeError(f"class_index must be an int, got {class_index!r}")
        if class_index < 0:
            raise ValueError(f"class_index must be >= 0, got {class_index}")
        if not 0 <= iou <= 1:
            raise ValueError(f"iou must be in [0, 1], got {iou}")
        if match not in MATCHES:
            raise ValueError(f"match must be one of {MATCHES}, got {match!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.box = box
        self.class_index = int(class_index)
        self.iou = float(iou)
        self.match = match
        self.add_iou = bool(add_iou)
        self.activation = activation

    def __repr__(self) -> str:
        return (
            f"detection(box={tuple(self.box.tolist())}, class_index={self.class_index}, "
            f"iou={self.iou}, match={self.match!r}, add_iou={self.add_iou})"
        )

    def __call__(self, output: Any) -> Any:
        if len(output.shape) != 3 or output.shape[-1] <= 4 + self.class_index:
            raise ValueError(
                f"a detection target needs a (batch, boxes, 4 + classes) output with more than "
                f"{self.class_index} classes, got shape {output.shape}; a keras_hub detector "
                "gives one when no output= is passed"
            )
        output = ops.cast(output, "float32")
        scores = activate(output[..., 4:], self.activation)[..., self.class_index]
        overlap = _ious(output[..., :4], self.box)
        eligible = overlap >= self.iou
        key = scores if self.match == "score" else overlap
        best = ops.argmax(ops.where(eligible, key, -np.inf), axis=1)[:, None]
        score = ops.take_along_axis(scores, best, axis=1)[:, 0]
        if self.add_iou:
            score += ops.take_along_axis(overlap, best, axis=1)[:, 0]
        found = ops.any(eligible, axis=1)
        if backend.concrete(found) and not bool(ops.all(found)):
            best_iou = float(ops.max(overlap))
            raise ValueError(
                f"no predicted box overlaps {tuple(self.box.tolist())} with IoU >= {self.iou} "
                f"(the best has {best_iou:.3f}); check that the box is (x0, y0, x1, y1) in "
                "input pixels, or lower iou"
            )
        return ops.where(found, score, 0.0)


def detection(
    box: object,
    class_index: int,
    iou: float = 0.5,
    match: str = "score",
    add_iou: bool = False,
    activation: str | None = None,
) -> Detection:
    """The detector's score for the object in ``box`` of class ``class_index`` (see
    ``Detection``)."""
    return Detection(box, class_index, iou, match, add_iou, activation)


class Similarity:
    """The similarity of the explained embedding (batch, D) with ``vectors``: one vector (D,)
    gives one score per image (batch,); P vectors (P, D) give P scores (batch, P), so the
    Score-CAM family explains every prompt of a zero-shot classifier from the same masked
    passes (maps (N, P, H, W)).

    ``metric``: ``"cosine"`` (default; CLIP's and SigLIP's similarity before their learnt
    scale and bias, which only rescale it) or ``"dot"`` (the raw inner product, for
    embeddings trained with it). The score is the similarity itself, with no softmax over
    the vectors: each map shows what makes the image like that vector, not what tells the
    vectors apart (for that, explain the difference of two vectors, or a ``classes`` target
    of a zero-shot head).
    """

    def __init__(self, vectors: object, metric: str = "cosine") -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        array = backend.numpy(vectors)
        if array.ndim not in (1, 2) or array.size == 0:
            raise ValueError(
                f"similarity takes one vector (D,) or P vectors (P, D), got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise ValueError("similarity vectors must be finite numbers")
        self.single = array.ndim == 1
        self.vectors = np.atleast_2d(array).astype(np.float32)
        self.metric = metric
        if metric == "cosine":
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise ValueError("a zero vector has no cosine similarity; give non-zero vectors")
            self.vectors = self.vectors / norms

    def __repr__(self) -> str:
        count = "1 vector" if self.single else f"{len(self.vectors)} vectors"
        return f"similarity({count} of length {self.vectors.shape[1]}, metric={self.metric!r})"

    def __call__(self, output: Any) -> Any:
        length = self.vectors.shape[1]
        if len(output.shape) != 2 or output.shape[1] != length:
            raise ValueError(
                f"similarity with vectors of length {length} needs an embedding output "
                f"(batch, {length}), got shape {tuple(output.shape)}; give vectors from the "
                "same embedding space (the same model's text or image tower)"
            )
        output = ops.cast(output, "float32")
        if self.metric == "cosine":
            norm = ops.sqrt(ops.sum(output * output, axis=1, keepdims=True))
            output = output / ops.maximum(norm, 1e-12)
        scores = ops.matmul(output, ops.convert_to_tensor(self.vectors.T))
        return scores[:, 0] if self.single else scores


def similarity(vectors: object, metric: str = "cosine") -> Similarity:
    """The embedding's ``metric`` similarity with one vector (D,) or each of P vectors (P, D)
    (see ``Similarity``); ``embeddings.text_embeddings`` gives a dual encoder's prompts."""
    return Similarity(vectors, metric)
