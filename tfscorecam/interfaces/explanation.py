"""The front door: ``explain(model, image)`` and the ``Explanation`` it returns."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import matplotlib
import numpy as np
from PIL import Image

from tfscorecam.core.legacy import as_keras3
from tfscorecam.core.maps import image_boxes, renormalise_in_boxes, upsample
from tfscorecam.core.targets import Classes
from tfscorecam.interfaces.advice import InputWarning, input_warnings, linear_head_advice
from tfscorecam.interfaces.images import display_image, image_list, resize
from tfscorecam.interfaces.pipeline import model_input, preprocessed
from tfscorecam.interfaces.volumes import (
    MAX_SLICES,
    display_volume,
    montage,
    read_volumes,
    readable,
)
from tfscorecam.methods import METHODS, cached_explainer
from tfscorecam.zoo.class_names import IMAGENET_CLASSES, load_class_names, named_classes
from tfscorecam.zoo.models import ZooModel, imagenet_class_names


@dataclass(frozen=True, repr=False)
class Explanation:
    """One image explained for one class.

    Attributes:
        heatmap: (H, W) float32 in [0, 1], at the image's own size; for a volume or video,
            (D, H, W) (or (T, H, W)).
        class_index: the class explained (None for a ``target``).
        class_name: its name when the class names are known, else None.
        score: the model's probability of that class on the image (a target's value).
        image: the image (H, W, 3) uint8; a volume's (D, H, W, 3) for showing
            (``volumes.display_volume``).
        method: the method's name ("scorecam", ...).
        raw: the map before min-max scaling, at the heatmap's size, in the method's own units
            (see the explainers' ``normalize=False``): its values, unlike the heatmap's, can
            be compared across images and classes. ``peak`` is its maximum.

    A volume's ``overlay``, ``plot`` and ``save`` show a montage of up to ``slices`` (16)
    evenly spaced slices or frames (``volumes.montage``).
    """

    heatmap: np.ndarray
    class_index: int | None
    class_name: str | None
    score: float
    image: np.ndarray
    method: str
    raw: np.ndarray | None = None

    @property
    def peak(self) -> float | None:
        """The raw map's maximum (None when the raw map was not kept)."""
        return None if self.raw is None else float(np.max(self.raw))

    def __repr__(self) -> str:
        def array(a: np.ndarray) -> str:
            return f"<{'x'.join(map(str, a.shape))} {a.dtype}>"

        return (
            f"Explanation(method={self.method!r}, class_index={self.class_index!r}, "
            f"class_name={self.class_name!r}, score={self.score:.4g}, "
            f"peak={self.peak if self.peak is None else format(self.peak, '.4g')}, "
            f"heatmap={array(self.heatmap)}, image={array(self.image)})"
        )

    @property
    def label(self) -> str:
        """ "name (index): probability" for titles and printing."""
        if self.class_index is None:
            return f"target: {self.score:.3f}"
        name = self.class_name if self.class_name is not None else "class"
        return f"{name} ({self.class_index}): {self.score:.3f}"

    def overlay(
        self,
        alpha: float = 0.4,
        colormap: str = "jet",
        boxes: object = None,
        renormalise: bool = False,
        box_colour: tuple[int, int, int] = (0, 255, 0),
        slices: int = MAX_SLICES,
    ) -> np.ndarray:
        """The heatmap coloured with ``colormap`` and blended over the image: (H, W, 3) uint8.

        ``boxes``: (B, 4) boxes ``(x0, y0, x1, y1)`` in the image's pixels, drawn as
        ``box_colour`` outlines (e.g. the detection a ``targets.detection`` explains). With
        ``renormalise`` the heatmap is rescaled inside each box and blanked outside
        (``maps.renormalise_in_boxes``), as the YOLO / EigenCAM tutorials show detections.
        A volume's overlay is the montage of ``slices`` of its slices' overlays.
        """
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if self.heatmap.ndim == 3:
            if boxes is not None or renormalise:
                raise ValueError("boxes and renormalise are for 2-D images, not volumes")
            return montage(self._blend(self.heatmap, alpha, colormap), slices)
        if renormalise and boxes is None:
            raise ValueError("renormalise=True rescales the heatmap inside boxes: pass boxes=")
        heatmap = self.heatmap if not renormalise else renormalise_in_boxes(self.heatmap, boxes)
        picture = self._blend(heatmap, alpha, colormap)
        if boxes is not None:
            draw_boxes(picture, boxes, box_colour)
        return picture

    def _blend(self, heatmap: np.ndarray, alpha: float, colormap: str) -> np.ndarray:
        return blend(self.image, heatmap, alpha, colormap)

    def plot(self, ax=None, alpha: float = 0.4, colormap: str = "jet", **overlay):
        """Draw the overlay into ``ax``; without ``ax``, a new figure with the image, heatmap
        and overlay, titled with the class and score (a volume's: montages of the same
        slices). ``overlay``: ``boxes``, ``renormalise``, ``box_colour`` and ``slices``, as
        for ``overlay``. Returns the figure."""
        import matplotlib.pyplot as plt

        title = (
            f"{METHODS[self.method].title if self.method in METHODS else self.method}: {self.label}"
        )
        picture = self.overlay(alpha, colormap, **overlay)
        if ax is not None:
            ax.imshow(picture)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
            return ax.figure
        figure, axes = plt.subplots(1, 3, figsize=(10, 3.6))
        image, heatmap = self.image, self.heatmap
        if heatmap.ndim == 3:  # a volume's: montages of the same slices
            slices = overlay.get("slices", MAX_SLICES)
            image, heatmap = montage(image, slices), montage(heatmap, slices)
        for axis, shown, name in zip(
            axes, (image, heatmap, picture), ("image", "heatmap", "overlay"), strict=True
        ):
            axis.imshow(
                shown,
                cmap=colormap if shown is heatmap else None,
                vmin=0,
                vmax=1 if shown is heatmap else None,
            )
            axis.set_title(name, fontsize=9)
            axis.axis("off")
        figure.suptitle(title)
        figure.tight_layout()
        return figure

    def save(self, path: str | Path, alpha: float = 0.4, colormap: str = "jet", **overlay) -> Path:
        """Write the overlay (options as for ``overlay``) as an image file (PNG by the file
        name); returns the path. A volume's montage is magnified by a whole factor to at least
        512 pixels wide (``volumes.readable``), so that small slices stay readable."""
        path = Path(path)
        picture = self.overlay(alpha, colormap, **overlay)
        Image.fromarray(readable(picture) if self.heatmap.ndim == 3 else picture).save(path)
        return path


def blend(image: np.ndarray, heatmap: np.ndarray, alpha: float, colormap: str) -> np.ndarray:
    """``heatmap`` in [0, 1] coloured with ``colormap`` over ``image`` (same size, 0-255) at
    opacity ``alpha``: uint8 RGB."""
    colours = matplotlib.colormaps[colormap](heatmap)[..., :3] * 255
    blended = (1 - alpha) * np.asarray(image, np.float32) + alpha * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def overlay(
    image: object, heatmap: object, alpha: float = 0.4, colormap: str = "jet"
) -> np.ndarray:
    """Any map over any image: (H, W, 3) uint8 at the image's size.

    ``image``: a path, a PIL image or an array in display range (as ``explain`` takes: uint8,
    0-255 or [0, 1] floats, uint16, grey or RGBA). ``heatmap``: (h, w) values in [0, 1] (a
    map of this package, another library's or a model's own), resized bilinearly to the
    image when its size differs; values outside [0, 1] are refused, NaN too: min-max scale
    raw maps first (``tfscorecam.maps.minmax``). As pytorch-grad-cam's ``show_cam_on_image``
    and torch-cam's ``overlay_mask``, with the colour map and opacity of ``Explanation``.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    picture = display_image(image)
    heat = np.asarray(heatmap, np.float32)
    if heat.ndim == 3 and heat.shape[-1] == 1:
        heat = heat[..., 0]
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be (h, w), got shape {heat.shape}")
    if not np.all(np.isfinite(heat)) or heat.min() < 0 or heat.max() > 1:
        raise ValueError(
            "heatmap values must be finite and in [0, 1]: scale a raw map first, e.g. "
            "tfscorecam.maps.minmax(raw[None])[0]"
        )
    if heat.shape != picture.shape[:2]:
        heat = np.clip(resize(heat[..., None], picture.shape[:2])[..., 0], 0, 1)
    return blend(picture, heat, alpha, colormap)


def draw_boxes(picture: np.ndarray, boxes: object, colour: tuple[int, int, int]) -> None:
    """Draw 2-pixel outlines of ``boxes`` ((B, 4) ``(x0, y0, x1, y1)`` pixels) into ``picture``
    (H, W, 3) uint8, in place; parts outside the picture are clipped."""
    height, width = picture.shape[:2]
    for x0, y0, x1, y1 in np.round(image_boxes(boxes)).astype(int):
        left, right = np.clip([x0, x1 - 1], 0, width - 1)
        top, bottom = np.clip([y0, y1 - 1], 0, height - 1)
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            continue
        for edge in (
            (slice(top, top + 2), slice(left, right + 1)),
            (slice(max(bottom - 1, top), bottom + 1), slice(left, right + 1)),
            (slice(top, bottom + 1), slice(left, left + 2)),
            (slice(top, bottom + 1), slice(max(right - 1, left), right + 1)),
        ):
            picture[edge] = colour


class Explanations(list):
    """A list of ``Explanation``, one per (image, class), image-major."""

    def plot(self, alpha: float = 0.4, colormap: str = "jet"):
        """All overlays side by side in one figure."""
        return plot_comparison(self, alpha=alpha, colormap=colormap)


def plot_comparison(explanations: Sequence[Explanation], alpha: float = 0.4, colormap: str = "jet"):
    """The image and each explanation's overlay side by side (e.g. several methods)."""
    import matplotlib.pyplot as plt

    if not explanations:
        raise ValueError("no explanations to plot")
    figure, axes = plt.subplots(
        1, len(explanations) + 1, figsize=(3.2 * (len(explanations) + 1), 3.6)
    )
    image = explanations[0].image
    axes[0].imshow(montage(image) if image.ndim == 4 else image)  # a volume's: its slices
    axes[0].set_title("image", fontsize=9)
    axes[0].axis("off")
    for axis, explanation in zip(axes[1:], explanations, strict=True):
        explanation.plot(ax=axis, alpha=alpha, colormap=colormap)
    figure.tight_layout()
    return figure


def _refuse_one_linear_unit(explainer) -> None:
    """A class output of one linear unit is ambiguous: ask what it is (``head`` or a target)."""
    head = explainer.probability_head
    if explainer.head == "auto" and head and head.num_classes == 1 and head.kind == "logits":
        raise ValueError(
            "the explained output is one linear unit: a regression, or the logit of a binary "
            "classifier? For a binary classifier pass head='logits' (command line: --head "
            "logits), and its sigmoid is explained; for a regression pass "
            "target=tfscorecam.targets.regression(0) (command line: --target regression:0)"
        )


def explain(
    model: keras.Model | ZooModel,
    image: object,
    method: str = "scorecam",
    *,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    layer: str | keras.layers.Layer | None = None,
    class_index: object = None,
    target: object = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
    inputs: dict | None = None,
    **options: Any,
) -> Explanation | Explanations:
    """Explain an image (or several) in display range for ``model``.

    Args:
        model: a Keras classifier, or a ``tfscorecam.zoo`` model (which brings its own
            ``preprocess`` and ``class_names``).
        image: a path, a PIL image, an (H, W, 3) array in display range (uint8 or 0-255
            float; float in [0, 1] and uint16 are scaled, see ``tfscorecam.images``), or a
            list / (N, H, W, 3) batch of those. For a model on volumes or video (batch, D,
            H, W, C): a (D, H, W, C) array or ``.npy`` file at the model's size and in its
            value range (not resized; ``preprocess`` applies), or a list / batch of those
            (see ``interfaces.volumes``).
        method: one of ``methods.METHODS``: "scorecam", "augmented", "gradcam",
            "gradcam++", "iscam", "sscam", "layercam", "hirescam", "xgradcam", "eigencam",
            "ablationcam", "reciprocam", "polycam" (a test checks this list against the
            registry).
        preprocess: maps resized display-range images (N, H, W, 3) float32 to the model's
            input, e.g. ``keras.applications.mobilenet_v2.preprocess_input``; None feeds them
            as they are. Images are resized (bilinear, no crop) to the model's input size
            here, and each heatmap comes back at its image's own size.
        layer: the target layer, as for ``ScoreCAM``.
        class_index: as for ``ScoreCAM``: None explains the top-1 class; class names (from
            ``class_names``) may stand for indices, e.g. ``"tabby"`` or ``["tabby", 285]``.
        target: instead of ``class_index``, a target (see ``tfscorecam.targets``), e.g.
            ``tfscorecam.targets.top_k(3)`` for each image's three most probable classes.
        class_names: names for the class indices: a list, or a JSON or text file (see
            ``class_names.load_class_names``). Not given: a zoo model's own names; for a
            model with 1000 classes, the ImageNet names; otherwise none.
        inputs: for a model with several inputs, the other inputs' values by name, one per
            image or one for all, fed as given (not preprocessed); they pass unchanged while
            the image is explained. The image input is the model's one 4-D input, or the one
            named by the option ``input=``; the option ``input_shapes=`` gives the shape of
            one value of those whose size varies (a SAM's prompts).
        **options: passed to the method's class (``output``, ``input``, ``batch_size``, ``score``,
            ``num_augmentations``, ``verbose``...).

    The explainer is built once per (model, method, layer, options) and reused by later calls
    while the model lives (``methods.cached_explainer``), so a loop over many photos traces
    its compiled steps once.

    An image smaller on a side than the target layer's feature map (7x7 for MobileNetV2 at
    224 px), or one that gives a 1x1 feature map, is refused with a ``ValueError``.
    Images that look wrong for the model get an ``advice.InputWarning`` saying what to fix:
    values far outside the range a known ``keras.applications`` backbone expects (a missing
    ``preprocess``), a top-1 probability below 0.1 when the top-1 class is explained, or an
    all-zero or near-empty map (less than 10% of its raw pixels above zero; e.g. a negative
    regression value: ``targets.regression(i, negate=True)``).

    Returns:
        An ``Explanation`` for one image and one class, else ``Explanations`` (image-major).
    """
    if isinstance(model, ZooModel):
        preprocess = preprocess or model.preprocess
        class_names = class_names or model.class_names
        model = model.model
    model = as_keras3(model)
    explainer = cached_explainer(model, method, layer, **options)
    class_names = load_class_names(class_names)
    if class_names is None and explainer.output_shape[-1] == IMAGENET_CLASSES:
        class_names = imagenet_class_names()
    class_index = named_classes(class_index, class_names)
    if target is None or isinstance(target, Classes):
        _refuse_one_linear_unit(explainer)
    if explainer.spatial_rank == 3:
        volumes, single, what = read_volumes(image, explainer.input_shape)
        if len({v.shape for v in volumes}) > 1:
            raise ValueError("volumes of different sizes: explain them one call each")
        x = preprocessed(np.stack(volumes), preprocess)
        images = [display_volume(v) for v in volumes]
    else:
        images, single = image_list(image)
        what = [
            str(image) if isinstance(image, (str, os.PathLike)) else f"image {n}"
            for n in range(len(images))
        ]
        x = model_input(explainer, images, preprocess, what)
    explained = explainer.explain_batch(
        x[0] if single else x, class_index, target=target, inputs=inputs
    )
    top1 = class_index is None and target is None
    found = input_warnings(model, explainer, x, explained, what, target, top1)
    reading = linear_head_advice(explainer) if target is None else None
    for text in dict.fromkeys([*(text for texts in found for text in texts), reading]):
        if text:
            warnings.warn(text, InputWarning, stacklevel=2)
    results = Explanations()
    for n, original in enumerate(images):
        for k, index in enumerate(explained.classes[n]):
            heatmap, raw = explained.maps[n, k], explained.raw[n, k]
            if heatmap.ndim == 2 and heatmap.shape != original.shape[:2]:
                both = upsample(np.stack([heatmap, raw], -1)[None], original.shape[:2])
                heatmap, raw = np.moveaxis(keras.ops.convert_to_numpy(both)[0], -1, 0)
            results.append(
                Explanation(
                    heatmap=np.clip(heatmap, 0, 1).astype(np.float32),
                    class_index=int(index) if index >= 0 else None,
                    class_name=class_names[index] if class_names and index >= 0 else None,
                    score=float(explained.scores[n, k]),
                    image=np.clip(np.round(original), 0, 255).astype(np.uint8),
                    method=method,
                    raw=raw.astype(np.float32),
                )
            )
    return results[0] if len(results) == 1 and single else results
