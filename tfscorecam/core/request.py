"""What one call explains: each image's classes or target, and how each image is scored.

An explainer's ``Scorings`` resolve a call's ``class_index`` or ``target`` against the
unmasked images into a ``Request``; a method asks the request, for image i, one question:
``request.scored(i)`` gives the ``Scoring`` (the model inputs go through and how its output
becomes scores) and that image's parameters (its class indices, or nothing for a target).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import keras
import numpy as np
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.head import ScoringHead
from tfscorecam.core.targets import Classes
from tfscorecam.core.validation import class_matrix

TARGET_CACHE_SIZE = 16  # compiled scoring steps kept per explainer, one per target object


@dataclass(frozen=True, eq=False)
class Scoring:
    """A model that inputs go through, and how its output becomes scores.

    ``fn(output, params)`` returns (batch, K) float32 scores; ``params`` are class indices,
    (K,) for every row or (batch, K) per row, and are ignored by targets.
    """

    model: keras.Model
    fn: Callable[[Any, Any], Any]
    stripped: bool = False  # ``model`` is the explained model without its final layer


def target_values(target: object, outputs: np.ndarray) -> np.ndarray:
    """``target`` run on raw outputs: float32 (batch,) or (batch, K), or a clear error."""
    if not callable(target):
        raise TypeError(f"a target must be a callable of the model's output, got {target!r}")
    try:
        scores = target(backend.tensor(outputs))
    except (ValueError, TypeError) as error:
        raise ValueError(f"the target failed on the model's output: {error}") from None
    shape = tuple(getattr(scores, "shape", ()))
    if len(shape) not in (1, 2) or shape[0] != len(outputs):
        raise ValueError(
            f"a target must return one score per image (batch,) or K scores per image "
            f"(batch, K); for a batch of {len(outputs)} it returned shape {shape}"
        )
    values = backend.numpy(scores).astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError("the target returned NaN or infinite scores")
    return values


class Scorings:
    """How one explainer scores images: its ``class_scoring`` (None for an output without
    classes, e.g. an embedding: ``what`` names it), the class probabilities that pick and
    report classes, and the ``Scoring`` of
    each target it was given (the last ``TARGET_CACHE_SIZE``, so that their compiled steps
    are reused)."""

    def __init__(
        self,
        view: keras.Model,
        classes: ScoringHead | None,
        probabilities: ScoringHead | None,
        what: str = "",
    ) -> None:
        self.view = view
        self.what = what  # what the output is when it is not class scores ("an embedding")
        self.probability_head = probabilities
        self.class_scoring = (
            None if classes is None else Scoring(classes.model, classes.scores, classes.stripped)
        )
        self.targets: OrderedDict = OrderedDict()

    def of_classes(self) -> Scoring:
        """How a class output is scored, or a clear error for an output without classes."""
        if self.class_scoring is None:
            self._refuse_classes()
        return self.class_scoring

    def _refuse_classes(self) -> NoReturn:
        shape = tuple(self.view.outputs[0].shape)
        what = f"is {self.what} of shape {shape}" if self.what else f"has shape {shape}"
        raise ValueError(
            f"the explained output {what}, not class scores (batch, num_classes) to take "
            "class_index from. Pass target= (tfscorecam.targets.segmentation(...), "
            "regression(...), detection(...), similarity(...) or a function of the output), "
            "or output= to choose another output"
        )

    def of_target(self, target: Callable) -> Scoring:
        """The scores of ``target`` on the explained output, as (batch, K) float32."""
        if target not in self.targets:

            def fn(output: Any, _: Any) -> Any:
                scores = ops.cast(target(output), "float32")
                return scores[:, None] if len(scores.shape) == 1 else scores

            self.targets[target] = Scoring(self.view, fn)
            if len(self.targets) > TARGET_CACHE_SIZE:
                self.targets.popitem(last=False)
        self.targets.move_to_end(target)
        return self.targets[target]

    def resolve(
        self, class_index: object, target: object, outputs: np.ndarray, single: bool
    ) -> Request:
        """Resolve ``class_index`` or ``target`` for images whose raw outputs are ``outputs``."""
        top_k = None
        if isinstance(target, Classes):
            if class_index is not None:
                raise ValueError("pass class_index or target, not both")
            class_index, top_k, target = target.index, target.top_k, None
        if target is None:
            return self._classes(class_index, outputs, single, top_k)
        if class_index is not None:
            raise ValueError("pass class_index or target, not both")
        return self._targets(target, outputs)

    def _classes(
        self, class_index: object, outputs: np.ndarray, single: bool, top_k: int | None
    ) -> Request:
        if self.probability_head is None:
            self._refuse_classes()
        probabilities = backend.numpy(self.probability_head.transform(backend.tensor(outputs)))
        if top_k is not None:
            num_classes = probabilities.shape[1]
            if top_k > num_classes:
                raise ValueError(f"top_k={top_k} but the model has {num_classes} classes")
            class_index = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        classes, per_class_axis = class_matrix(
            class_index,
            len(outputs),
            self.probability_head.num_classes,
            single,
            top1=np.argmax(probabilities, axis=-1),
        )
        scores = np.take_along_axis(probabilities, classes, axis=1).astype(np.float32)
        return Request(classes, None, per_class_axis, scores, self)

    def _targets(self, target: object, outputs: np.ndarray) -> Request:
        if isinstance(target, (list, tuple)):
            if len(target) != len(outputs):
                raise ValueError(
                    f"got {len(target)} targets for {len(outputs)} images: pass one target, "
                    "or a list with one per image"
                )
            targets = tuple(target)
        else:
            targets = (target,) * len(outputs)
        scores = np.zeros((len(outputs), 0), np.float32)
        ranks = set()
        for one in dict.fromkeys(targets):  # each distinct target once, on its images
            rows = [i for i, t in enumerate(targets) if t is one]
            values = target_values(one, outputs[rows])
            ranks.add(values.ndim)
            values = values.reshape(len(rows), -1)
            if scores.shape[1] == 0:
                scores = np.zeros((len(outputs), values.shape[1]), np.float32)
            if values.shape[1] != scores.shape[1] or len(ranks) > 1:
                raise ValueError("every image's target must give scores of the same shape")
            scores[rows] = values
        return Request(None, targets, ranks.pop() == 2, scores, self)


@dataclass(frozen=True)
class Request:
    """What one call explains, resolved against the unmasked images.

    Exactly one of ``classes`` ((N, K) int32 class indices) and ``targets`` (one target per
    image; one object repeated when shared) is set. ``scores`` (N, K) are the scores on the
    unmasked images: class probabilities, or the targets' values.
    """

    classes: np.ndarray | None
    targets: tuple | None
    per_class_axis: bool
    scores: np.ndarray
    scorings: Scorings = field(repr=False, compare=False)

    @property
    def num_scores(self) -> int:
        """K, the scores explained per image."""
        return int(self.scores.shape[1])

    def scored(self, index: int) -> tuple[Scoring, np.ndarray]:
        """How image ``index`` is scored, and its parameters: its class indices (K,) int32,
        or an empty array for a target."""
        if self.targets is None:
            return self.scorings.of_classes(), self.classes[index]  # type: ignore[index]
        return self.scorings.of_target(self.targets[index]), np.zeros((0,), np.int32)

    def shares_scoring(self, i: int, j: int) -> bool:
        """Whether images ``i`` and ``j`` are scored the same way (one target, or classes)."""
        return self.targets is None or self.targets[i] is self.targets[j]

    def class_matrix(self) -> np.ndarray:
        """The classes (N, K) as reported: the class indices, or -1 for targets."""
        if self.classes is not None:
            return self.classes
        return np.full_like(self.scores, -1, dtype=np.int32)
