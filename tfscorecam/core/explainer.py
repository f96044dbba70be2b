"""The base of every explainer: model, layer, images, what to explain, progress and output.

``Explainer`` (``CAM`` in v0.2, still an alias) resolves the output and the target layer, taps
the model, checks images, runs the forward pass, resolves classes or targets, shows the progress
bar and shapes the output. A method is a subclass that says only how it builds maps
(``_maps``) and how much work that is (``_work``).
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfscorecam.core.compiled import compiled
from tfscorecam.core.head import HEAD_KINDS, ScoringHead, scoring_head
from tfscorecam.core.maps import minmax
from tfscorecam.core.model_graph import resolve_layer, select_output, tap
from tfscorecam.core.progress import Progress
from tfscorecam.core.targets import Classes
from tfscorecam.core.tokens import Reshape
from tfscorecam.core.validation import as_image_batch, class_matrix, positive_int

TARGET_CACHE_SIZE = 16  # compiled scoring steps kept per explainer, one per target object
BATCH_SIZE = 64  # the default most images (or masked images) per forward pass, every method


@dataclass(frozen=True, eq=False)
class Scoring:
    """A model that inputs go through, and how its output becomes scores.

    ``fn(output, params)`` returns (batch, K) float32 scores; ``params`` are class indices,
    (K,) for every row or (batch, K) per row, and are ignored by targets.
    """

    model: keras.Model
    fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    stripped: bool = False  # ``model`` is the explained model without its final layer


def class_scoring(head: ScoringHead) -> Scoring:
    """The scores of a class head's classes (``ScoringHead.scores``)."""
    return Scoring(head.model, head.scores, head.stripped)


def target_scoring(model: keras.Model, target: Callable) -> Scoring:
    """The scores of a target on the raw output of ``model``, as (batch, K) float32."""

    def fn(output: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
        scores = tf.cast(target(output), tf.float32)
        return scores[:, None] if scores.shape.rank == 1 else scores

    return Scoring(model, fn)


def target_values(target: object, outputs: np.ndarray) -> np.ndarray:
    """``target`` run on raw outputs: float32 (batch,) or (batch, K), or a clear error."""
    if not callable(target):
        raise TypeError(f"a target must be a callable of the model's output, got {target!r}")
    try:
        scores = target(tf.constant(outputs))
    except (ValueError, TypeError) as error:
        raise ValueError(f"the target failed on the model's output: {error}") from None
    shape = tuple(getattr(scores, "shape", ()))
    if len(shape) not in (1, 2) or shape[0] != len(outputs):
        raise ValueError(
            f"a target must return one score per image (batch,) or K scores per image "
            f"(batch, K); for a batch of {len(outputs)} it returned shape {shape}"
        )
    values = np.asarray(scores, np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError("the target returned NaN or infinite scores")
    return values


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

    def params(self, index: int) -> np.ndarray:
        """The scoring parameters of image ``index``: its classes, or nothing for a target."""
        if self.classes is not None:
            return self.classes[index]
        return np.zeros((0,), np.int32)


@dataclass(frozen=True)
class Explained:
    """Maps (N, K, H, W) in [0, 1] with the classes (N, K; -1 for targets) and scores (N, K)."""

    maps: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    per_class_axis: bool
    single: bool

    def output(self) -> np.ndarray:
        """The maps as ``__call__`` returns them: K axis only if asked, N axis only if given."""
        maps = self.maps if self.per_class_axis else self.maps[:, 0]
        return maps[0] if self.single else maps


def _recording(init: Callable) -> Callable:
    """``init``, recording the options the outermost ``__init__`` was given (``__repr__``)."""

    @functools.wraps(init)
    def recorded(self, model, layer=None, **options: Any) -> None:
        if "_options" not in vars(self):
            _check_names(type(self), options)
            self._options = options
        init(self, model, layer, **options)

    return recorded


def _check_names(cls: type, options: dict) -> None:
    """Refuse an option ``cls`` does not take, with the closest name it does take."""
    accepted = list(cls.option_defaults())  # type: ignore[attr-defined]
    for name in options:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"{cls.__name__} has no option {name!r}{hint}; its options: {', '.join(accepted)}"
            )


def _same(value: object, default: object) -> bool:
    """Whether an option's value is its default (arrays compared by value)."""
    if value is default:
        return True
    try:
        return bool(np.all(value == default))
    except (TypeError, ValueError):
        return False


class Explainer:
    """Base class of the explainers.

    Args:
        model: a functional or Sequential Keras model with one image input (channels last);
            backbones nested in Sequential or functional wrappers are supported. Its inputs
            are images already preprocessed for it.
        layer: the target layer: None (see ``model_graph.resolve_layer``: the last conv
            feature map of a CNN, the last attention block's input tokens of a transformer),
            a layer name, a path into a nested model such as
            ``"mobilenetv2_1.00_224/out_relu"``, or the ``keras.layers.Layer`` itself.
        output: for a model with several outputs, the name or index of the one to explain.
        reshape: a function from the layer's output to a (batch, h, w, channels) map, for
            layers whose output is neither that nor (batch, tokens, channels) tokens of a
            patch grid (see ``tokens``).
        head: ``"auto"`` (read from the output's last layer), ``"softmax"``, ``"sigmoid"`` or
            ``"logits"``: what a class output is. Unused by targets.
        batch_size: the most images per forward pass; bounds memory.
        verbose: 1 shows a progress bar; 0 is silent. The perturbation methods count
            chunks of channels on it, each in a Python call; silent, they run an image's
            chunks in one compiled loop, which is faster where a chunk is short (Ablation-CAM
            at MobileNetV2's last conv layer takes 1.7x as long with the bar).
    """

    progress_unit = "batch"
    served_tolerance = 1e-5  # a SavedModel's maps equal the eager ones to this (absolute)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            setattr(cls, "__init__", _recording(vars(cls)["__init__"]))  # noqa: B010

    @classmethod
    def option_defaults(cls) -> dict[str, object]:
        """Every keyword option after ``model`` and ``layer``, with its default: those the
        class passes on to its base classes first, then its own."""
        levels: list[list[inspect.Parameter]] = []
        for klass in cls.__mro__:
            if "__init__" not in vars(klass):
                continue
            parameters = list(inspect.signature(vars(klass)["__init__"]).parameters.values())
            levels.append([p for p in parameters[3:] if p.kind is not p.VAR_KEYWORD])
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                break
        return {p.name: p.default for level in reversed(levels) for p in level}

    def __repr__(self) -> str:
        """The class, its layer and every option set to other than its default."""
        defaults = self.option_defaults()
        changed = [
            f"{name}={value!r}"
            for name, value in getattr(self, "_options", {}).items()
            if not _same(value, defaults.get(name, inspect.Parameter.empty))
        ]
        return f"{type(self).__name__}({', '.join([f'layer={self.layer_path!r}', *changed])})"

    @_recording  # its subclasses' own __init__ are wrapped by __init_subclass__
    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        output: str | int | None = None,
        reshape: Reshape | None = None,
        head: str = "auto",
        verbose: int = 1,
    ) -> None:
        self.view = select_output(model, output)
        self.layer_path, chain, self._reshape = resolve_layer(self.view, layer, reshape)
        self.input_shape = tuple(self.view.inputs[0].shape)
        self.output_shape = tuple(self.view.outputs[0].shape)
        self.batch_size = positive_int(batch_size, "batch_size")
        self.verbose = verbose
        if head != "auto" and head not in HEAD_KINDS:
            raise ValueError(f"head must be 'auto' or one of {HEAD_KINDS}, got {head!r}")
        self.head = head
        self.chain = chain
        self._tapped = tap(self.view, chain)
        channels = self._tapped.outputs[0].shape[-1]
        self.num_channels = int(channels) if channels is not None else None
        self._forward_step = compiled(
            self._forward_pass,
            input_signature=[tf.TensorSpec((None, *self.input_shape[1:]), tf.float32)],
        )
        self._target_scorings: OrderedDict = OrderedDict()
        self._feature_sizes: dict[tuple[int, ...], tuple[int, int]] = {}
        self.probabilities = self.class_head("probability")
        scored = self.scored_head()
        self.class_scoring = class_scoring(scored) if scored is not None else None

    # the model ------------------------------------------------------------------------------

    @property
    def has_class_output(self) -> bool:
        """Whether the explained output is class scores (batch, num_classes)."""
        return len(self.output_shape) == 2 and self.output_shape[-1] is not None

    def class_head(self, score: str) -> ScoringHead | None:
        """The class head for ``score`` ("probability" or "logit"); None without class output."""
        if not self.has_class_output:
            return None
        return scoring_head(self.view, self.head, score)

    def scored_head(self) -> ScoringHead | None:
        """The class head whose scores a method uses (default: the probabilities)."""
        return self.probabilities

    def to_grid(self, activations: tf.Tensor) -> tf.Tensor:
        """The target layer's output as a float32 (batch, h, w, C) feature map."""
        if self._reshape is not None:
            activations = self._reshape(activations)
            if activations.shape.rank != 4:
                raise ValueError(
                    f"reshape must return (batch, h, w, channels), got shape {activations.shape}"
                )
        return tf.cast(activations, tf.float32)

    def _forward_pass(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        activations, output = self._tapped(images, training=False)
        return self.to_grid(activations), output

    def forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature maps (N, h, w, C) float32 and raw outputs (N, ...) of checked images."""
        acts, outputs = [], []
        for start in range(0, len(images), self.batch_size):
            a, o = self._forward_step(tf.constant(images[start : start + self.batch_size]))
            acts.append(a.numpy())
            outputs.append(o.numpy())
        return np.concatenate(acts), np.concatenate(outputs)

    def feature_size(self, size: tuple[int, int] | None = None) -> tuple[int, int]:
        """(h, w) of the feature map for inputs of (H, W) ``size`` (default: the model's input
        size), from one forward pass of zeros, remembered per size."""
        shape = tuple(self.input_shape[1:3]) if size is None else tuple(int(s) for s in size)
        if None in shape:
            raise ValueError("the model's input size is variable: its feature size depends on it")
        if shape not in self._feature_sizes:
            zeros = np.zeros((1, *shape, *self.input_shape[3:]), np.float32)
            activations, _ = self.forward(zeros)
            self._feature_sizes[shape] = (int(activations.shape[1]), int(activations.shape[2]))
        return self._feature_sizes[shape]

    def predict_probabilities(self, images: object) -> np.ndarray:
        """Class probabilities (N, num_classes) of the explained output for ``images``."""
        if self.probabilities is None:
            raise ValueError(f"the explained output has shape {self.output_shape}, not classes")
        batch, _ = self.check_images(images)
        _, outputs = self.forward(batch)
        return self.probabilities.transform(tf.constant(outputs)).numpy()

    def check_images(self, images: object) -> tuple[np.ndarray, bool]:
        """(float32 batch (N, H, W, C), whether one image was given), or a clear error."""
        return as_image_batch(images, self.input_shape)

    # what to explain ------------------------------------------------------------------------

    def classes_scoring(self) -> Scoring:
        """How a class output is scored, or a clear error for an output without classes."""
        if self.class_scoring is None:
            raise ValueError(
                "this output has no classes to explain: pass a target "
                "(tfscorecam.targets.segmentation(...), regression(...) or detection(...))"
            )
        return self.class_scoring

    def scoring(self, request: Request, index: int) -> Scoring:
        """How image ``index`` of ``request`` is scored: ``class_scoring`` or its target's."""
        if request.targets is None:
            return self.classes_scoring()
        target = request.targets[index]
        if target not in self._target_scorings:
            self._target_scorings[target] = target_scoring(self.view, target)
            if len(self._target_scorings) > TARGET_CACHE_SIZE:
                self._target_scorings.popitem(last=False)
        self._target_scorings.move_to_end(target)
        return self._target_scorings[target]

    def resolve(
        self, class_index: object, target: object, outputs: np.ndarray, single: bool
    ) -> Request:
        """Resolve ``class_index`` or ``target`` for images whose raw outputs are ``outputs``."""
        if isinstance(target, Classes):
            if class_index is not None:
                raise ValueError("pass class_index or target, not both")
            class_index, target = target.index, None
        if target is None:
            return self._resolve_classes(class_index, outputs, single)
        if class_index is not None:
            raise ValueError("pass class_index or target, not both")
        return self._resolve_targets(target, outputs)

    def _resolve_classes(self, class_index: object, outputs: np.ndarray, single: bool) -> Request:
        if self.probabilities is None:
            raise ValueError(
                f"the explained output has shape {self.output_shape}; class_index needs class "
                "scores (batch, num_classes). Pass target= (e.g. "
                "tfscorecam.targets.segmentation(...), regression(...), detection(...) or a "
                "function of the output), or output= to choose another output"
            )
        probabilities = self.probabilities.transform(tf.constant(outputs)).numpy()
        classes, per_class_axis = class_matrix(
            class_index,
            len(outputs),
            self.probabilities.num_classes,
            single,
            top1=np.argmax(probabilities, axis=-1),
        )
        scores = np.take_along_axis(probabilities, classes, axis=1).astype(np.float32)
        return Request(classes, None, per_class_axis, scores)

    def _resolve_targets(self, target: object, outputs: np.ndarray) -> Request:
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
        return Request(None, targets, ranks.pop() == 2, scores)

    # explaining -----------------------------------------------------------------------------

    def __call__(
        self, images: object, class_index: object = None, *, target: object = None
    ) -> np.ndarray:
        """Explain ``images``.

        Args:
            images: float array (N, H, W, C) preprocessed for the model, or one image (H, W, C).
            class_index: None (each image's top-1 class), an int (every image), N ints (one
                per image; for one image, a sequence is several classes of it) or an (N, K)
                array (K classes per image).
            target: instead of ``class_index``, a function of the explained output giving
                (batch,) or (batch, K) scores, or a list of one per image (see
                ``tfscorecam.targets``).

        Returns:
            float32 maps in [0, 1]: (N, H, W), or (N, K, H, W) for several classes (or a
            target's K scores) per image; without the N axis for one image.
        """
        return self.explain_batch(images, class_index, target=target).output()

    def explain_batch(
        self, images: object, class_index: object = None, *, target: object = None
    ) -> Explained:
        """As ``__call__``, with the classes and scores of what was explained."""
        batch, single = self.check_images(images)
        activations, outputs = self.forward(batch)
        request = self.resolve(class_index, target, outputs, single)
        work = self._work(activations, request) if self.verbose else 0  # counted for a bar
        progress = Progress(work, self.verbose, self.progress_unit)
        maps = minmax(self._maps(batch, activations, request, progress)).numpy()
        classes = (
            request.classes
            if request.classes is not None
            else np.full_like(request.scores, -1, dtype=np.int32)
        )
        return Explained(maps, classes, request.scores, request.per_class_axis, single)

    def _work(self, activations: np.ndarray, request: Request) -> int:
        """Units of work ``_maps`` reports to the progress bar."""
        return -(-len(activations) // self.batch_size)

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        """Maps (N, K, H, W) at the input size, non-negative, not yet scaled."""
        raise NotImplementedError

    # in a graph (SavedModel export) -----------------------------------------------------------

    def graph_explain(self, images: tf.Tensor, classes: tf.Tensor | None = None) -> dict:
        """The explanation inside a graph: ``maps`` (N, H, W) in [0, 1] of ``classes`` (N,)
        int32 (None: each image's top-1), the ``classes`` and their probabilities ``scores``."""
        if self.probabilities is None:
            raise ValueError(
                f"the explained output has shape {self.output_shape}; a SavedModel explains "
                "class scores (batch, num_classes): choose a class output with output="
            )
        activations, outputs = self._forward_pass(images)
        probabilities = self.probabilities.transform(outputs)
        if classes is None:
            classes = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        tf.debugging.assert_less(classes, self.probabilities.num_classes, "class_index too large")
        tf.debugging.assert_non_negative(classes, "class_index must be >= 0")
        maps = minmax(self.graph_maps(images, activations, classes))
        scores = tf.gather(probabilities, classes, axis=1, batch_dims=1)
        return {"maps": maps, "classes": classes, "scores": scores}

    def graph_maps(
        self, images: tf.Tensor, activations: tf.Tensor, classes: tf.Tensor
    ) -> tf.Tensor:
        """``_maps`` in TensorFlow ops for one class per image: (N, H, W), not yet scaled."""
        raise NotImplementedError


CAM = Explainer  # v0.2's name of the base class (``tsc.CAM``), kept working
