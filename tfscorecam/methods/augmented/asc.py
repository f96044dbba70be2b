"""Augmented Score-CAM (Ibrahim & Shafiq, Knowledge-Based Systems 252, 2022), with a fusion
that models each feature cell's receptive field (see ``superres`` and the docs page "Augmented
Score-CAM")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from tfscorecam.core import backend
from tfscorecam.core.maps import score_cam_maps, weighted_sum
from tfscorecam.core.memory import DEFAULT_BUDGET, check_fits
from tfscorecam.core.progress import Progress
from tfscorecam.core.request import Request
from tfscorecam.core.validation import non_negative, positive_int
from tfscorecam.methods.augmented.augment import (
    IDENTITY,
    ZOOM_SCALES,
    moved,
    random_transforms,
    warp,
    warp_tensor,
    zoom_transforms,
)
from tfscorecam.methods.augmented.calibration import probe_cell_shift
from tfscorecam.methods.augmented.superres import (
    CELL_SHIFT,
    ENERGY_WEIGHT,
    SIGMA,
    SUBCELLS,
    TV_WEIGHT,
    SuperResolver,
    authors_weights,
    fusion_bytes,
    fusion_options,
)
from tfscorecam.methods.scorecam import ScoreCAM

if TYPE_CHECKING:  # TensorFlow's alone: imported where a graph is built
    from tfscorecam.methods.augmented.graph_fusion import GraphFusion

WEIGHTS = ("per_copy", "shared")
VIEWS = ("zoom", "rotations")
VIEW_SCALES = ("own", "image")
ROTATIONS = 16  # copies of views="rotations" unless num_augmentations says otherwise
MAX_ANGLE, AUTHORS_ANGLE = 0.1, 0.5  # radians: ours and the authors'
AUTHORS_SHIFT_AT_224 = 30.0  # the authors' +-30 px at 224 px
AUTO = "auto"  # cell_shift measured by calibration.probe_cell_shift, once per input size


class AugmentedScoreCAM(ScoreCAM):
    """Score-CAM on zoomed (or rotated) views of each image, fused at a finer resolution.

    Default (``views="zoom"``): view 0 is the image; then, at each zoom s of ``zoom_scales`` (3
    and 4), crops of the image magnified s times, the model's input size, offset by whole
    feature cells of the magnified image, ceil(s) - 1 cells apart (``augment.zoom_transforms``
    and ``crop_step``: 64 crops at each zoom for a 7x7 layer, 129 views in all), so that the
    crops' cells fall on every phase of a grid 1/s as fine as the image's. A zoomed crop puts
    the layer's cells over 1/s of the image each, with a receptive field 1/s as wide: that is
    where finer detail comes from; a rotation or a sub-cell shift at scale 1 only re-samples the
    same blur. The channels are scored once, on the image (``weights="shared"``), and each view
    costs one forward pass: C + K passes in all. Each view's map g_k = ReLU(sum_c w_c A_kc) is
    divided by its own maximum (``view_scale``); ``superres.SuperResolver`` fuses them (warp,
    then a Gaussian receptive field of ``sigma`` view cells, i.e. sigma / s image cells, then
    the view's sampling grid; TV prior; on a grid of ``subcells`` per feature cell, resized
    bilinearly to the input). With ``multiply_coarse`` the fused map is multiplied by the
    image's own upsampled map (view 0, Score-CAM's map up to ReLU order): a coarse-to-fine
    refinement as in Poly-CAM (Englebert et al.), so a region must show the class in the whole
    image and in the zoomed views. The result is min-max scaled to [0, 1].

    On 283 ImageNet photos with boxes the zoomed views raise MaxBoxAccV2 over Score-CAM, over
    the image alone (``num_augmentations=1``) and over rotations (docs page "Augmented
    Score-CAM"); views that lose the class are kept (dropping or down-weighting them
    localised worse).

    ``views="rotations"`` is the paper's augmentation: copy k rotated about the centre by an
    angle uniform in +-``max_angle`` radians and shifted by up to ``max_shift`` pixels
    (pixels from outside are 0 in the model's input space), K = 16 by default. v0.2's default
    is ``views="rotations", multiply_coarse=False``; the authors' exact settings are
    ``AugmentedScoreCAM.authors_settings(model)``.

    Args:
        num_augmentations: caps the views (1: the image alone, through the same fusion and
            product: the control for what the views add); None takes every zoomed view, or 16
            rotated copies. The paper uses 100 copies.
        max_angle: half-range of the rotation angles in radians (authors: 0.5).
        max_shift: half-range of the shifts in pixels; None = half a feature cell (the
            input size over the layer's, halved: 16 px for a 7x7 layer at 224). The
            authors use 30 px at 224.
        weights: ``"shared"`` (default: channels scored once on the image, weights reused for
            every view: C + K passes, about one Score-CAM's cost) or ``"per_copy"`` (the
            authors': every view's channels scored, K x C passes).
        seed: seeds the rotations; the same seed gives the same transforms and map.
        views: ``"zoom"`` (default) or ``"rotations"``.
        zoom_scales: the magnifications of ``views="zoom"``, each > 1 (v0.4's: (1.5, 2)).
        zoom_crops: None (default): the crops ``augment.crop_step(s)`` whole cells apart (every
            crop at 2x and below); an int n: n x n crops per scale, evenly spread (v0.2's
            option: 3).
        view_scale: ``"own"`` (default and the authors': each view's map divided by its own
            maximum) or ``"image"`` (every view divided by the image's peak, so a crop without
            the object stays dim).
        multiply_coarse: multiply the fused map by the image's own upsampled map (default
            True; False is the paper's fusion alone).
        observation: ``"gaussian"`` (default) or ``"area"`` (the authors'); see ``superres``.
        sigma: the Gaussian's standard deviation in feature cells.
        prior: ``"tv"`` (anisotropic total variation, the authors'), ``"isotropic_tv"`` or
            ``"smooth"`` (squared gradient).
        subcells: the working grid's pixels per feature cell; None solves at the input
            resolution (the authors').
        tv_weight: the weight of the fusion's prior per feature cell (``superres``).
        energy_weight: the weight of the fusion's energy term per feature cell (``superres``).
        cell_shift: (dx, dy) in feature cells: where the layer's cells look, minus their
            centres, in each view's own map (``superres``); the fusion's observation of every
            view, and the image's map in the product, are moved by it. ``"auto"`` (default)
            measures it with 17 forward passes once per input size
            (``calibration.probe_cell_shift``; MobileNetV2's ``out_relu``: (0.15, 0.09)); the
            area observation takes (0, 0), the authors' and v0.4's value. The value used:
            ``resolver(image_size, feature_size).cell_shift``.
        memory_budget: bytes that one image's views and fusion may take (default 3 GiB; with
            MobileNetV2's 1,280 channels, 129 views of a 7x7 map take about 0.3 GiB, the 451
            of 14x14 4.7 GiB). Without ``num_augmentations`` and ``zoom_crops`` the zoomed
            views are thinned to fit it; views asked for that do not fit, or anything over
            half the machine's available memory, raise ``MemoryError`` before allocating.

    ``verbose``: 1 shows a progress bar over the views; 0 is silent. ``model``, ``layer``,
    ``batch_size``, ``score``, ``channel_softmax``, ``baseline``, ``max_channels``, ``head``,
    ``output``, ``reshape``: as ``ScoreCAM``.
    """

    weighs_activations = False  # its map fuses views, not one weighted sum: no eigen_smooth
    progress_unit = "copy"
    served_tolerance = 1e-3  # the graph's fusion repeats the SciPy solve up to rounding

    def __init__(
        self,
        model: keras.Model,
        layer: str | keras.layers.Layer | None = None,
        *,
        num_augmentations: int | None = None,
        max_angle: float = MAX_ANGLE,
        max_shift: float | None = None,
        weights: str = "shared",
        seed: int = 0,
        views: str = "zoom",
        zoom_scales: tuple[float, ...] = ZOOM_SCALES,
        zoom_crops: int | None = None,
        view_scale: str = "own",
        multiply_coarse: bool = True,
        observation: str = "gaussian",
        sigma: float = SIGMA,
        prior: str = "tv",
        tv_weight: float = TV_WEIGHT,
        energy_weight: float = ENERGY_WEIGHT,
        cell_shift: tuple[float, float] | str = AUTO,
        subcells: int | None = SUBCELLS,
        memory_budget: int = DEFAULT_BUDGET,
        **options: Any,
    ) -> None:
        super().__init__(model, layer, **options)
        if self.spatial_rank != 2:
            raise ValueError(
                "Augmented Score-CAM warps and fuses 2-D views of an image; this model takes "
                f"volumes or video {self.input_shape[1:]}: use ScoreCAM (or another method) "
                "on it"
            )
        self.memory_budget = positive_int(memory_budget, "memory_budget")
        if num_augmentations is not None:
            num_augmentations = positive_int(num_augmentations, "num_augmentations")
        self.num_augmentations = num_augmentations
        self.max_angle = non_negative(max_angle, "max_angle")
        self.max_shift = None if max_shift is None else non_negative(max_shift, "max_shift")
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.weights = weights
        self.seed = seed
        if views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {views!r}")
        self.views = views
        self.zoom_scales = tuple(float(z) for z in zoom_scales)
        if any(not z > 1 for z in self.zoom_scales):
            raise ValueError(f"zoom_scales must all be > 1, got {zoom_scales}")
        self.zoom_crops = None if zoom_crops is None else positive_int(zoom_crops, "zoom_crops")
        if view_scale not in VIEW_SCALES:
            raise ValueError(f"view_scale must be one of {VIEW_SCALES}, got {view_scale!r}")
        self.view_scale = view_scale
        self.multiply_coarse = bool(multiply_coarse)
        self.subcells = None if subcells is None else positive_int(subcells, "subcells")
        if isinstance(cell_shift, str) and cell_shift != AUTO:
            raise ValueError(
                "cell_shift must be 'auto' or two finite numbers (dx, dy) in feature cells, "
                f"got {cell_shift!r}"
            )
        self.auto_shift = isinstance(cell_shift, str)
        self.fusion = fusion_options(
            observation,
            sigma,
            prior,
            tv_weight,
            energy_weight,
            CELL_SHIFT if isinstance(cell_shift, str) else cell_shift,
        )
        self.cell_shift: tuple[float, float] = self.fusion.pop("cell_shift")  # given, or (0, 0)
        self._resolvers: dict = {}
        self._shifts: dict = {}

    @classmethod
    def authors_settings(
        cls, model: keras.Model, layer: str | keras.layers.Layer | None = None, **options: Any
    ) -> AugmentedScoreCAM:
        """The authors' method: K = 100 copies rotated by up to 0.5 rad and shifted by up to
        30 px at 224 (scaled to the input), every copy scored, area observation, TV at the
        input resolution with their weights (lambda_tv = 0.002 K, lambda_eng = 0.001 K per
        pixel), each copy divided by its own maximum, no product with the image's map.
        ``options`` override any of these. The shift and weights depend on the input and
        feature sizes, so a first explainer reads those and a second one, built with every
        setting, is returned: all of them pass the constructor's checks."""
        settings = {
            "num_augmentations": 100,
            "views": "rotations",
            "view_scale": "own",
            "multiply_coarse": False,
            "max_angle": AUTHORS_ANGLE,
            "weights": "per_copy",
            "observation": "area",
            "prior": "tv",
            "subcells": None,
        }
        sizes = cls(model, layer, **{**settings, **options, "verbose": 0})
        height, width = sizes.input_shape[1:3]
        tv, energy = authors_weights(width / sizes.feature_size()[1])
        settings.update(
            max_shift=AUTHORS_SHIFT_AT_224 * min(height, width) / 224,
            tv_weight=tv,
            energy_weight=energy,
        )
        return cls(model, layer, **{**settings, **options})

    def transforms(
        self, image_size: tuple[int, int], feature_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The (K, 8) transforms used for images of this (H, W) size and feature map (h, w)."""
        if self.views == "zoom":
            if feature_size is None:
                raise ValueError("zoomed views need the feature map's size")
            views = zoom_transforms(image_size, feature_size, self.zoom_scales, self.zoom_crops)
            if self.num_augmentations is None and self.zoom_crops is None:
                views = self._thinned(views, image_size, feature_size)
            return views[: self.num_augmentations]  # None: all of them
        shift = self.max_shift
        if shift is None:
            if feature_size is None:
                raise ValueError("the default max_shift needs the feature map's size")
            shift = min(image_size[0] / feature_size[0], image_size[1] / feature_size[1]) / 2
        count = ROTATIONS if self.num_augmentations is None else self.num_augmentations
        return random_transforms(count, image_size, self.max_angle, shift, self.seed)

    def _thinned(
        self, views: np.ndarray, image_size: tuple[int, int], feature_size: tuple[int, int]
    ) -> np.ndarray:
        """Every zoomed view if they fit ``memory_budget``, else n x n evenly spread crops per
        scale, with the largest n that fits (at least 1)."""
        per_view = self.view_bytes(1, image_size, feature_size)
        if len(views) * per_view <= self.memory_budget:
            return views
        fitting = self.memory_budget // per_view - 1  # view 0 is the image
        crops = max(1, int(np.sqrt(max(fitting, 1) / len(self.zoom_scales))))
        return zoom_transforms(image_size, feature_size, self.zoom_scales, crops)

    def _grid(self, image_size: tuple[int, int], feature_size: tuple[int, int]) -> tuple:
        """The fusion's working grid: ``subcells`` per feature cell, at most the image."""
        if self.subcells is None:
            return tuple(image_size)
        pairs = zip(feature_size, image_size, strict=True)
        return tuple(min(f * self.subcells, i) for f, i in pairs)

    def view_bytes(
        self, count: int, image_size: tuple[int, int], feature_size: tuple[int, int]
    ) -> int:
        """About the memory ``count`` views of one image take: their warped copies and
        feature maps (float32) and the fusion's operators (``superres.fusion_bytes``)."""
        copies = 4 * count * image_size[0] * image_size[1] * (2 * (self.input_shape[-1] or 3))
        features = 4 * count * feature_size[0] * feature_size[1] * (self.num_channels or 1)
        fusion = fusion_bytes(
            count,
            feature_size,
            self._grid(image_size, feature_size),
            self.fusion["observation"],
            self.fusion["sigma"],
        )
        return copies + features + fusion

    def resolver(self, image_size: tuple[int, int], feature_size: tuple[int, int]):
        """The fusion for images of this size and feature maps of this size (built once,
        after checking that it fits ``memory_budget`` and the machine)."""
        key = (tuple(image_size), tuple(feature_size))
        if key not in self._resolvers:
            transforms = self.transforms(image_size, feature_size)
            grid = self._grid(image_size, feature_size)
            check_fits(
                self.view_bytes(len(transforms), image_size, feature_size),
                self.memory_budget,
                f"Augmented Score-CAM with {len(transforms)} views of a "
                f"{feature_size[0]}x{feature_size[1]} feature map fused on a "
                f"{grid[0]}x{grid[1]} grid",
                "use fewer views (num_augmentations=, zoom_crops=), a coarser grid "
                "(subcells=), a later layer with a smaller map, or, where the machine has the "
                "memory, a larger memory_budget= (command line: --num-augmentations N, "
                "--option KEY=VALUE)",
            )
            self._resolvers[key] = SuperResolver(
                transforms,
                feature_size,
                image_size,
                grid,
                cell_shift=self.shift_for(image_size, feature_size),
                **self.fusion,
            )
        return self._resolvers[key]

    def shift_for(
        self, image_size: tuple[int, int], feature_size: tuple[int, int]
    ) -> tuple[float, float]:
        """The fusion's ``cell_shift`` for images of this (H, W) size: the one given, or the
        probe's with ``"auto"`` ((0, 0) with the area observation), probed once per size."""
        if not self.auto_shift or self.fusion["observation"] == "area":
            return self.cell_shift
        key = (tuple(image_size), tuple(feature_size))
        if key not in self._shifts:
            self._shifts[key] = probe_cell_shift(
                lambda images: self.forward(images)[0],
                image_size,
                feature_size,
                self.input_shape[-1],
            )
        return self._shifts[key]

    def _work(self, activations: np.ndarray, request: Request) -> int:
        size = self.input_shape[1:3]
        if None in size:  # how many views there are does not depend on the images' size
            size = activations.shape[1:3]
        return len(activations) * len(self.transforms(size, activations.shape[1:3]))

    def _maps(
        self, images: np.ndarray, activations: np.ndarray, request: Request, progress: Progress
    ) -> np.ndarray:
        resolver = self.resolver(images.shape[1:3], activations.shape[1:3])
        transforms = resolver.transforms
        return np.stack(
            [
                [
                    backend.numpy(self.fuse(resolver, low))
                    for low in self.copy_maps(image, acts, request, i, transforms, progress)
                ]
                for i, (image, acts) in enumerate(zip(images, activations, strict=True))
            ]
        )

    def fuse(self, resolver: SuperResolver | GraphFusion, low: Any) -> Any:
        """One class's map (H, W), not yet scaled, from its views' maps (K, h, w)
        (``copy_maps``): ReLU of the fusion, times the image's own upsampled map (view 0)
        with ``multiply_coarse``. ``resolver`` is the SciPy fusion (``SuperResolver``) or its
        graph twin (``graph_fusion.GraphFusion``)."""
        fused = ops.relu(ops.convert_to_tensor(resolver(low)))
        if self.multiply_coarse:
            size = tuple(fused.shape)
            coarse = ops.cast(ops.convert_to_tensor(low[0]), "float32")[None, ..., None]
            fused = fused * moved(score_cam_maps(coarse, size), resolver.pixel_shift)[0, 0]
        return fused

    def copy_maps(
        self,
        image: np.ndarray,
        activations: np.ndarray,
        request: Request,
        index: int,
        transforms: np.ndarray,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Per score, the K copies' low-resolution maps (K_cls, K, h, w), scaled by
        ``scale_views``.

        Image ``index`` of ``request``; ``progress`` counts the copies."""
        copies = warp(image, transforms)
        # view 0 is usually the image itself, whose features are known
        parts = [activations[None]] if np.array_equal(transforms[0], IDENTITY) else []
        if len(parts) < len(copies):
            parts.append(self.forward(copies[len(parts) :])[0])
        copy_acts = np.concatenate(parts)
        if self.weights == "shared":
            weights = self.unit_weights(image, activations, request, index)
            used = np.flatnonzero(np.any(weights != 0, axis=1))  # max_channels leaves zeros
            low = weighted_sum(copy_acts[..., used], weights[used])
            if progress is not None:
                progress.add(len(copies))
        else:
            each = []
            for copy, acts in zip(copies, copy_acts, strict=True):
                each.append(weighted_sum(acts, self.unit_weights(copy, acts, request, index)))
                if progress is not None:
                    progress.add()
            low = np.stack(each)
        low = np.maximum(low, 0.0)  # (K, h, w, K_cls)
        return backend.numpy(self.scale_views(low.transpose(3, 0, 1, 2)))

    def scale_views(self, low: object) -> Any:
        """Views' maps (..., K, h, w), not negative, divided by their own peaks
        (``view_scale="own"``) or all by the image's, view 0 (``"image"``); an all-zero view
        stays zero. The eager and graph paths both scale with this."""
        low = ops.convert_to_tensor(low)
        peak = ops.max(low, axis=(-2, -1), keepdims=True)
        if self.view_scale == "image":
            peak = ops.broadcast_to(peak[..., :1, :, :], ops.shape(peak))
        return ops.divide_no_nan(low, peak)

    def graph_maps(self, images, activations, classes):
        tf = backend.tensorflow("a SavedModel")
        from tfscorecam.methods.augmented.graph_fusion import GraphFusion

        size, features = tuple(images.shape[1:3]), tuple(activations.shape[1:3])
        with tf.init_scope():  # the operators, and the probe of cell_shift="auto", run eagerly
            resolver = self.resolver(size, features)
        fusion = GraphFusion(resolver)
        transforms = tf.constant(resolver.transforms)
        count = len(resolver.transforms)

        def one(args):
            image, acts, class_index = args
            copies = warp_tensor(tf.repeat(image[None], count, axis=0), transforms)
            copy_acts, _ = self._forward_pass(copies)
            if self.weights == "shared":
                low = tf.einsum(
                    "khwc,c->khw", copy_acts, self.graph_weights(image, acts, class_index)
                )
            else:
                weights = tf.map_fn(
                    lambda pair: self.graph_weights(pair[0], pair[1], class_index),
                    (copies, copy_acts),
                    fn_output_signature=tf.TensorSpec((acts.shape[-1],), tf.float32),
                )
                low = tf.einsum("khwc,kc->khw", copy_acts, weights)
            return self.fuse(fusion, self.scale_views(tf.nn.relu(low)))

        return tf.map_fn(
            one,
            (images, activations, classes),
            fn_output_signature=tf.TensorSpec(size, tf.float32),
        )
