"""The base of every explainer: the template of one call, and its path inside a graph.

``Explainer`` (``CAM`` in v0.2, still an alias) resolves the output and the target layer, taps
the model, checks images, runs the forward pass, has the call's classes or targets resolved
into a ``core.request.Request``, shows the progress bar and shapes the output. A method is a
subclass that says only how it builds maps (``_maps``, and ``graph_maps`` in a graph) and how
much work that is (``_work``). Its options are recorded and shown by ``core.options``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.embeddings import explains_embedding
from tfscorecam.core.head import HEAD_KINDS, ScoringHead, gradient_head, scoring_head
from tfscorecam.core.inputs import bind, check_values, fixed_inputs, row, split_model_inputs
from tfscorecam.core.layer_choice import resolve_layer
from tfscorecam.core.maps import minmax
from tfscorecam.core.model_graph import tail, tap
from tfscorecam.core.model_view import select_output
from tfscorecam.core.options import Recorded
from tfscorecam.core.progress import Progress
from tfscorecam.core.request import Request, Scoring, Scorings
from tfscorecam.core.tokens import Reshape
from tfscorecam.core.validation import as_image_batch, boolean, positive_int

BATCH_SIZE = 64  # the default most images (or masked images) per forward pass, every method


@dataclass(frozen=True)
class Explained:
    """Maps (N, K, H, W) in [0, 1] (volumes: (N, K, D, H, W)) with the classes (N, K; -1 for
    targets) and scores (N, K); ``raw`` holds the same maps before min-max scaling."""

    maps: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    per_class_axis: bool
    single: bool
    raw: np.ndarray

    def output(self, normalize: bool = True) -> np.ndarray:
        """The maps as ``__call__`` returns them: K axis only if asked, N axis only if given;
        min-max scaled, or the raw maps without ``normalize``."""
        maps = self.maps if normalize else self.raw
        maps = maps if self.per_class_axis else maps[:, 0]
        return maps[0] if self.single else maps


class Explainer(Recorded):
    """Base class of the explainers.

    Args:
        model: a functional or Sequential Keras model with one image input (channels last),
            or one volume or video input (batch, D, H, W, C): Conv3D, or TimeDistributed;
            backbones nested in Sequential or functional wrappers are supported. Its inputs
            are images already preprocessed for it.
        layer: the target layer: None (see ``layer_choice.resolve_layer``: the last conv
            feature map of a CNN, the last attention block's input tokens of a transformer),
            a layer name, a path into a nested model such as
            ``"mobilenetv2_1.00_224/out_relu"``, or the ``keras.layers.Layer`` itself.
        output: for a model with several outputs, the name or index of the one to explain.
        input: for a model with several inputs, the name (dict key or Input name) of the image
            input to explain; None: its one image input (batch, H, W, C). The other inputs
            are held at each image's value, given at call time as ``inputs=``.
        input_shapes: for those other inputs whose size varies (a SAM's prompt points), the
            shape of one value, by name, e.g. ``{"points": (1, 2), "labels": (1,)}``: the
            values given at call time must have it.
        reshape: a function from the layer's output to a (batch, h, w, channels) map, for
            layers whose output is neither that nor (batch, tokens, channels) tokens of a
            patch grid (see ``tokens``).
        head: ``"auto"`` (read from the output's last layer), ``"softmax"``, ``"sigmoid"`` or
            ``"logits"``: what a class output is. Unused by targets.
        batch_size: the most images per forward pass; bounds memory.
        verbose: 1 shows a progress bar (on a terminal or in a notebook); 0 is silent. Both
            run the same compiled steps: the perturbation methods report their chunks from
            inside their compiled loop, about five times per image.
        aug_smooth: test-time augmentation as pytorch-grad-cam's ``aug_smooth``: the maps of
            the image and of its mirror image, each with its input values multiplied by 0.9,
            1 and 1.1 (6 runs), mirrored back, min-max scaled and averaged (the raw map is
            then that average). The classes or targets are those of the image itself. Six
            times the cost; not in an exported SavedModel.
        eigen_smooth: for the methods whose map is a sum of weighted activations (the
            gradient family, Score-CAM, IS-CAM, SS-CAM, Ablation-CAM), the projection of
            the weighted activations on their first principal component instead of their
            sum (pytorch-grad-cam's ``eigen_smooth``; ``maps.weighted_map``): less noise,
            and one component only.
    """

    progress_unit = "batch"
    score = "probability"  # the class score a method uses: "probability", "logit", "gradient"
    served_tolerance = 1e-5  # a SavedModel's maps equal the eager ones to this (absolute)
    weighs_activations = False  # its map sums weighted activations: eigen_smooth applies
    AUG_FACTORS = (0.9, 1.0, 1.1)  # aug_smooth's input multipliers, as pytorch-grad-cam's

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        output: str | int | None = None,
        input: str | None = None,
        input_shapes: dict | None = None,
        reshape: Reshape | None = None,
        head: str = "auto",
        verbose: int = 1,
        aug_smooth: bool = False,
        eigen_smooth: bool = False,
    ) -> None:
        self.aug_smooth = boolean(aug_smooth, "aug_smooth")
        self.eigen_smooth = boolean(eigen_smooth, "eigen_smooth")
        if self.eigen_smooth and not self.weighs_activations:
            raise ValueError(
                f"{type(self).__name__} does not sum weighted activations, so eigen_smooth does "
                "not apply; it does to the gradient family, Score-CAM, IS-CAM, SS-CAM and "
                "Ablation-CAM"
            )
        self.view = select_output(model, output, input, input_shapes)
        self.fixed = fixed_inputs(self.view)  # the other inputs of a multi-input model
        self.embedding = explains_embedding(model, output)  # a dual encoder's image embedding
        self.layer_path, chain, self._reshape = resolve_layer(self.view, layer, reshape)
        self.input_shape = tuple(self.view.inputs[0].shape)
        self.spatial_rank = len(self.input_shape) - 2  # 2: images; 3: volumes and video
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
        self._forward_step = backend.compile(
            self._forward_pass, [((None, *self.input_shape[1:]), "float32")]
        )
        self._feature_sizes: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._tails: dict[bool, keras.Model] = {}
        self.probability_head = self.class_head("probability")
        self.scorings = Scorings(
            self.view,
            self.class_head(self.score),
            self.probability_head,
            "an image embedding" if self.embedding else "",
        )

    # the model ------------------------------------------------------------------------------

    def class_head(self, score: str) -> ScoringHead | None:
        """The class head for ``score`` ("probability", "logit" or "gradient": the logit where
        it can be recovered, see ``head.gradient_head``); None for an output that is not class
        scores (batch, num_classes), such as a dual encoder's image embedding."""
        if self.embedding or len(self.output_shape) != 2 or self.output_shape[-1] is None:
            return None
        if score == "gradient":
            return gradient_head(self.view, self.head)
        return scoring_head(self.view, self.head, score)

    def tail(self, scoring: Scoring | None) -> keras.Model:
        """The model's tail: from the target layer's output to what ``scoring`` scores
        (``model_graph.tail``; built once for the stripped and once for the whole head,
        whatever the number of targets): what the tail methods run, and what the gradient
        methods differentiate outside TensorFlow."""
        if self.fixed:
            raise ValueError(
                f"{type(self).__name__} runs the model from the target layer on"
                f"{' outside TensorFlow' if backend.name() != 'tensorflow' else ''}, which "
                f"cannot carry a multi-input model's other inputs ({', '.join(self.fixed)}); "
                "use a Score-CAM family method"
                f"{'' if backend.name() != 'tensorflow' else ' or a gradient method'}"
            )
        stripped = scoring is not None and scoring.stripped
        if stripped not in self._tails:
            self._tails[stripped] = tail(self.view, self.chain, stripped)
        return self._tails[stripped]

    def to_grid(self, activations: Any) -> Any:
        """The target layer's output as a float32 (batch, h, w, C) feature map."""
        if self._reshape is not None:
            activations = self._reshape(activations)
            if len(activations.shape) != self.spatial_rank + 2:
                wanted = "d, h, w" if self.spatial_rank == 3 else "h, w"
                raise ValueError(
                    f"reshape must return (batch, {wanted}, channels), got shape "
                    f"{activations.shape}"
                )
        return ops.cast(activations, "float32")

    def _forward_pass(self, images: Any) -> tuple[Any, Any]:
        activations, output = self._tapped(images, training=False)
        return self.to_grid(activations), output

    def forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature maps (N, h, w, C) (volumes: (N, d, h, w, C)) float32 and raw outputs
        (N, ...) of checked images."""
        acts, outputs = [], []
        for start in range(0, len(images), self.batch_size):
            a, o = self._forward_step(backend.tensor(images[start : start + self.batch_size]))
            acts.append(backend.numpy(a))
            outputs.append(backend.numpy(o))
        return np.concatenate(acts), np.concatenate(outputs)

    def feature_size(self, size: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """(h, w) of the feature map for inputs of (H, W) ``size`` (volumes: (d, h, w) for
        (D, H, W); default: the model's input size), from one forward pass of zeros,
        remembered per size."""
        shape = tuple(self.input_shape[1:-1]) if size is None else tuple(int(s) for s in size)
        if None in shape:
            raise ValueError("the model's input size is variable: its feature size depends on it")
        if shape not in self._feature_sizes:
            zeros = np.zeros((1, *shape, self.input_shape[-1]), np.float32)
            activations, _ = self.forward(zeros)
            self._feature_sizes[shape] = tuple(int(d) for d in activations.shape[1:-1])
        return self._feature_sizes[shape]

    def predict_probabilities(self, images: object) -> np.ndarray:
        """Class probabilities (N, num_classes) of the explained output for ``images``."""
        if self.probability_head is None:
            raise ValueError(f"the explained output has shape {self.output_shape}, not classes")
        batch, _ = as_image_batch(images, self.input_shape)
        _, outputs = self.forward(batch)
        return backend.numpy(self.probability_head.transform(backend.tensor(outputs)))

    # explaining -----------------------------------------------------------------------------

    def __call__(
        self,
        images: object,
        class_index: object = None,
        *,
        target: object = None,
        inputs: dict | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Explain ``images``.

        Args:
            images: float array (N, H, W, C) preprocessed for the model, or one image (H, W, C);
                for a model on volumes or video, (N, D, H, W, C) or one (D, H, W, C). A model
                with several inputs also takes its own input dict, as it is called
                (``{"image": x, "meta": m}``): the explained image input by name, the rest
                as ``inputs``.
            class_index: None (each image's top-1 class), an int (every image), N ints (one
                per image; for one image, a sequence is several classes of it) or an (N, K)
                array (K classes per image).
            target: instead of ``class_index``, a function of the explained output giving
                (batch,) or (batch, K) scores, or a list of one per image (see
                ``tfscorecam.targets``).
            inputs: for a model with several inputs, the other inputs' values by name: N
                values (one per image) or one for every image; they pass unchanged while
                each image is explained.
            normalize: True (default) scales each map to [0, 1] (min-max); False returns the
                raw maps, in the method's own units and comparable across images and
                classes (as torch-cam's ``normalized=False``): Score-CAM's family the ReLU
                of the score-weighted sum of the layer's channels, the gradient family the
                ReLU of the gradient-weighted channels, EigenCAM the first component's
                projection, Ablation-CAM the relative drops; Recipro-CAM's and Augmented
                Score-CAM's are already scaled in their own way (per the official code: at
                the layer's resolution, per view).

        Returns:
            float32 maps in [0, 1]: (N, H, W), or (N, K, H, W) for several classes (or a
            target's K scores) per image; without the N axis for one image. A volume's maps
            are (D, H, W): (N, D, H, W) or (N, K, D, H, W), trilinearly upsampled and
            min-max scaled over the whole volume.
        """
        normalize = boolean(normalize, "normalize")
        explained = self.explain_batch(images, class_index, target=target, inputs=inputs)
        return explained.output(normalize)

    def explain_batch(
        self,
        images: object,
        class_index: object = None,
        *,
        target: object = None,
        inputs: dict | None = None,
    ) -> Explained:
        """As ``__call__``, with the classes and scores of what was explained."""
        images, inputs = split_model_inputs(self.view, images, inputs)
        batch, single = as_image_batch(images, self.input_shape)
        values = check_values(self.fixed, inputs, len(batch))
        if not values:
            return self._explain(batch, single, class_index, target)
        if len(batch) == 1 or all(np.all(v == v[:1]) for v in values.values()):
            bind(self.fixed, values, 0)  # one value for all: one batch
            return self._explain(batch, single, class_index, target)
        parts = []
        for i in range(len(batch)):  # each image with its own values
            bind(self.fixed, values, i)
            parts.append(
                self._explain(batch[i : i + 1], False, row(class_index, i), row(target, i))
            )
        return Explained(
            np.concatenate([part.maps for part in parts]),
            np.concatenate([part.classes for part in parts]),
            np.concatenate([part.scores for part in parts]),
            parts[0].per_class_axis,
            single,
            np.concatenate([part.raw for part in parts]),
        )

    def _explain(
        self, batch: np.ndarray, single: bool, class_index: object, target: object
    ) -> Explained:
        activations, outputs = self.forward(batch)
        request = self.scorings.resolve(class_index, target, outputs, single)
        runs = len(self.AUG_FACTORS) * 2 if self.aug_smooth else 1
        work = self._work(activations, request) * runs if self.verbose else 0  # for a bar
        progress = Progress(work, self.verbose, self.progress_unit)
        if self.aug_smooth:
            raw = self._augmented_maps(batch, request, progress)
        else:
            raw = self._maps(batch, activations, request, progress)
        maps = backend.numpy(minmax(raw, self.spatial_rank))
        return Explained(
            maps,
            request.class_matrix(),
            request.scores,
            request.per_class_axis,
            single,
            backend.numpy(ops.cast(raw, "float32")),
        )

    def _augmented_maps(self, batch: np.ndarray, request: Request, progress: Progress) -> Any:
        """``aug_smooth``'s maps: the min-max scaled maps of the image and its mirror image,
        each times every ``AUG_FACTORS`` value, mirrored back and averaged."""
        runs = []
        for mirrored in (False, True):
            for factor in self.AUG_FACTORS:
                images = (batch[..., ::-1, :] if mirrored else batch) * np.float32(factor)
                images = np.ascontiguousarray(images, np.float32)
                activations, _ = self.forward(images)
                maps = minmax(self._maps(images, activations, request, progress), self.spatial_rank)
                runs.append(backend.numpy(maps)[..., ::-1] if mirrored else backend.numpy(maps))
        return np.mean(runs, axis=0)

    def _work(self, activations: np.ndarray, request: Request) -> int:
        """Units of work ``_maps`` reports to the progress bar."""
        return -(-len(activations) // self.batch_size)

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        """Maps (N, K, H, W) at the input size, non-negative, not yet scaled."""
        raise NotImplementedError

    # in a graph (SavedModel export) -----------------------------------------------------------

    def graph_explain(self, images: Any, classes: Any = None) -> dict:
        """The explanation inside a TensorFlow graph: ``maps`` (N, H, W) in [0, 1] of
        ``classes`` (N,) int32 (None: each image's top-1), the ``classes``, their
        probabilities ``scores`` and the raw maps' maxima before scaling, ``peaks`` (N,)."""
        tf = backend.tensorflow("a SavedModel")
        if self.aug_smooth:
            raise ValueError(
                "aug_smooth runs six explanations per image eagerly; export the explainer "
                "without it"
            )
        if self.spatial_rank != 2:
            raise ValueError(
                "a SavedModel explains images; a model on volumes or video is explained "
                "eagerly (call the explainer, or tfscorecam.explain)"
            )
        head = self.probability_head
        if head is None:
            raise ValueError(
                f"the explained output has shape {self.output_shape}; a SavedModel explains "
                "class scores (batch, num_classes): choose a class output with output="
            )
        activations, outputs = self._forward_pass(images)
        probabilities = head.transform(outputs)
        if classes is None:
            classes = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        tf.debugging.assert_less(classes, head.num_classes, "class_index too large")
        tf.debugging.assert_non_negative(classes, "class_index must be >= 0")
        raw = ops.cast(self.graph_maps(images, activations, classes), "float32")
        scores = tf.gather(probabilities, classes, axis=1, batch_dims=1)
        peaks = ops.max(raw, axis=(1, 2))
        return {"maps": minmax(raw), "classes": classes, "scores": scores, "peaks": peaks}

    def graph_maps(self, images: Any, activations: Any, classes: Any) -> Any:
        """``_maps`` inside a TensorFlow graph for one class per image: (N, H, W), not yet
        scaled."""
        raise NotImplementedError


CAM = Explainer  # v0.2's name of the base class (``tsc.CAM``), kept working
