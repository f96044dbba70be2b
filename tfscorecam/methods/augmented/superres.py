"""Fusing low-resolution maps of warped copies into one map at a finer resolution.

After Augmented Grad-CAM (Morbidelli et al., ICASSP 2020) and Augmented Score-CAM (Ibrahim &
Shafiq, 2022): the map h on a working grid of s x s sub-cells per feature cell minimises

    sum_k ||D W_k h - g_k||^2 + K tv_weight TV(h) / s + K energy_weight ||h||^2 / s^2

where g_k (h, w) is the map of copy k, W_k the warp of copy k on the grid
(``augment.warp_matrix``), D the observation operator from the grid onto the (h, w) feature
cells, and TV(h) the total variation with forward differences: anisotropic,
sum |dh/dx| + |dh/dy| (``"tv"``), or isotropic, sum sqrt((dh/dx)^2 + (dh/dy)^2)
(``"isotropic_tv"``). Dividing TV by s and the energy by s^2 measures both per feature cell, so the
weights mean the same whatever the working grid (a finer grid only resolves more detail); the
factor K (the authors' lambda = c * num_aug) makes them hold for any number of copies.

Two observation operators:

- ``"gaussian"`` (default): a feature cell sees a Gaussian-weighted neighbourhood of its centre
  (``sigma`` in cells). A deep cell responds to a wide neighbourhood (on MobileNetV2's 7x7
  ``out_relu``, the gradient of a cell has a standard deviation of 1.7 to 2.2 cells), so
  modelling the cell as a 32-px block makes the fused map blocky and blurred.
- ``"area"``: the cell averages exactly the pixels it covers (Augmented Grad-CAM's and the
  authors' operator).

Where a cell looks (``cell_shift``): D centres each feature cell on its half-pixel centre. A
real layer's cells may look elsewhere (MobileNetV2's ``out_relu``: about a third of a cell right
of and below their centres, ``benchmarks/studies/observation_model.py``). That displacement is
the same in every copy's own pixels, so in the image's it is divided by the copy's zoom, and
zoomed copies disagree with the image by a part of a cell that a centred D cannot explain.
``cell_shift`` (dx, dy), in feature cells, centres every cell's Gaussian there in each copy
(a cell at a copy's border still sees only that copy, as the layer does).

Three priors: ``"tv"`` (anisotropic total variation, the authors' choice), ``"isotropic_tv"``
(no preferred direction: the anisotropic one favours axis-aligned, rectangular plateaus), both
minimised by iteratively reweighted least squares (``iterations`` rounds), and ``"smooth"``
(the squared gradient, one round). Each round runs ``cg_iterations`` steps of
Jacobi-preconditioned conjugate gradients on the normal equations, warm-started from the
previous round: a fixed schedule, which the TensorFlow version of the solve
(``graph_fusion.GraphFusion``, for ``serving``) repeats step for step. The data term's
products go through A^T A, built once, when it is smaller than A, or else through each copy's
warp and the separable observation on its map (``operators.data_operators``).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import matmul
from typing import Any

import numpy as np
import scipy.sparse as sp

from tfscorecam.core import backend
from tfscorecam.core.maps import upsample
from tfscorecam.core.memory import DEFAULT_BUDGET, check_fits
from tfscorecam.core.validation import non_negative, positive_int
from tfscorecam.methods.augmented.augment import check_transforms, warp_matrix
from tfscorecam.methods.augmented.operators import (
    chain,
    data_operators,
    fastest,
    gradient_matrix,
    observation_operator,
    rescale_transform,
)

OBSERVATIONS = ("gaussian", "area")
PRIORS = ("tv", "isotropic_tv", "smooth")
# Defaults (benchmarks/studies/asc_study.py, 283 ImageNet validation photos with boxes): per feature
# cell; they are the weights tv 0.01 and energy 1e-4 per pixel of a 4-sub-cell grid.
TV_WEIGHT = 0.04
ENERGY_WEIGHT = 1.6e-3
SIGMA = 1.0
CELL_SHIFT = (0.0, 0.0)
SUBCELLS = 4
# conjugate-gradient steps per reweighting round: within 0.2% of the converged solution
# (400 steps) for 16 copies of 7x7 and 32 of 14x14 maps on the default grid; 100 halves that
# error again at twice the time
CG_ITERATIONS = 50
# The Augmented Score-CAM authors' weights per pixel of the input-resolution map
# (lambda_tv = 0.002 K, lambda_eng = 0.001 K); ``authors_weights`` turns them per cell.
AUTHORS_TV_PER_PIXEL = 0.002
AUTHORS_ENERGY_PER_PIXEL = 0.001


def authors_weights(subcells: float) -> tuple[float, float]:
    """The authors' (tv, energy) per-pixel weights as per-cell weights on a grid of
    ``subcells`` pixels per feature cell (their grid is the input: 32 at 224 px / 7 cells)."""
    return AUTHORS_TV_PER_PIXEL * subcells, AUTHORS_ENERGY_PER_PIXEL * subcells**2


# Peak bytes per entry of (I_K kron D) while ``SuperResolver`` builds its operators: measured
# 32 to 34 (7x7 maps with 81 views, 14x14 with 290, 28x28 with 33 and 129, on 4-sub-cell
# grids: SciPy's sparse products, transposes and conversions), with a margin.
BYTES_PER_ENTRY = 40


def fusion_bytes(
    num_views: int,
    low_shape: tuple[int, int],
    grid: tuple[int, int],
    observation: str = "gaussian",
    sigma: float = SIGMA,
) -> int:
    """About the peak memory, in bytes, that a ``SuperResolver`` of ``num_views`` views of
    ``low_shape`` maps on ``grid`` takes to build: ``BYTES_PER_ENTRY`` per non-zero of the
    block-diagonal observation, which grows with the views, the cells and the grid."""
    observe = observation_operator(grid, low_shape, observation, sigma)
    entries = np.count_nonzero(observe.rows) * np.count_nonzero(observe.cols)
    return int(BYTES_PER_ENTRY * num_views * entries)


def fusion_options(
    observation: str = "gaussian",
    sigma: float = SIGMA,
    prior: str = "tv",
    tv_weight: float = TV_WEIGHT,
    energy_weight: float = ENERGY_WEIGHT,
    cell_shift: tuple[float, float] = CELL_SHIFT,
) -> dict:
    """The fusion's options, checked (see ``SuperResolver``)."""
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    if not non_negative(sigma, "sigma") > 0:
        raise ValueError("sigma must be > 0")
    return {
        "observation": observation,
        "sigma": float(sigma),
        "prior": prior,
        "tv_weight": non_negative(tv_weight, "tv_weight"),
        "energy_weight": non_negative(energy_weight, "energy_weight"),
        "cell_shift": shift_pair(cell_shift, observation),
    }


def shift_pair(cell_shift: object, observation: str) -> tuple[float, float]:
    """``cell_shift`` as (dx, dy) floats, or a clear error."""
    pair = np.asarray(cell_shift, dtype=np.float64) if cell_shift is not None else None
    if pair is None or pair.shape != (2,) or not np.all(np.isfinite(pair)):
        raise ValueError(
            f"cell_shift must be two finite numbers (dx, dy) in feature cells, got {cell_shift!r}"
        )
    if observation == "area" and pair.any():
        raise ValueError(
            "cell_shift moves the Gaussian observation's cells; the area observation has none: "
            "use observation='gaussian' with it, or cell_shift=(0, 0)"
        )
    return float(pair[0]), float(pair[1])


@dataclass(frozen=True)
class Weights:
    """Per-pixel weights of the objective on the working grid: its TV and energy terms."""

    tv: float
    energy: float


class SuperResolver:
    """The fusion for one set of transforms and sizes: operators built once, solved many times.

    Args:
        transforms: (K, 8) transforms in pixels of ``output_shape`` (``augment``).
        low_shape: (h, w) of the observed maps.
        output_shape: (H, W) of the result.
        grid: (H', W') of the working grid h is solved on (then resized bilinearly to
            ``output_shape``); None solves at ``output_shape``.
        observation: ``"gaussian"`` or ``"area"`` (see the module docstring).
        sigma: the Gaussian's standard deviation in feature cells.
        prior: ``"tv"``, ``"isotropic_tv"`` or ``"smooth"``.
        tv_weight, energy_weight: the weights per feature cell (multiplied by K).
        cell_shift: (dx, dy) in feature cells: where each cell of a copy's map looks, minus
            its centre, in the copy's own map (0: at its centre; see the module docstring).
        iterations: reweighting rounds of the TV prior.
        cg_iterations: conjugate-gradient steps per round.
    """

    def __init__(
        self,
        transforms: object,
        low_shape: tuple[int, int],
        output_shape: tuple[int, int],
        grid: tuple[int, int] | None = None,
        *,
        observation: str = "gaussian",
        sigma: float = SIGMA,
        prior: str = "tv",
        tv_weight: float = TV_WEIGHT,
        energy_weight: float = ENERGY_WEIGHT,
        cell_shift: tuple[float, float] = CELL_SHIFT,
        iterations: int = 8,
        cg_iterations: int = CG_ITERATIONS,
    ) -> None:
        self.transforms = check_transforms(transforms)
        if len(output_shape) != 2 or len(low_shape) != 2 or min(low_shape) < 1:
            raise ValueError(f"expected (H, W) and (h, w) shapes, got {output_shape}, {low_shape}")
        self.low_shape = (int(low_shape[0]), int(low_shape[1]))
        self.shape = (int(output_shape[0]), int(output_shape[1]))
        self.grid = self.shape if grid is None else (int(grid[0]), int(grid[1]))
        if min(self.grid[0] - self.low_shape[0], self.grid[1] - self.low_shape[1]) < 0:
            raise ValueError(f"the grid {self.grid} is coarser than the maps {self.low_shape}")
        options = fusion_options(observation, sigma, prior, tv_weight, energy_weight, cell_shift)
        self.prior = prior
        self.iterations = positive_int(iterations, "iterations") if prior != "smooth" else 1
        self.cg_iterations = positive_int(cg_iterations, "cg_iterations")
        k = len(self.transforms)
        subcells = self.grid[1] / self.low_shape[1]
        self.weights = Weights(
            options["tv_weight"] * k / subcells, options["energy_weight"] * k / subcells**2
        )
        observe = observation_operator(
            self.grid, self.low_shape, observation, sigma, options["cell_shift"]
        )
        scale_y, scale_x = self.shape[0] / self.grid[0], self.shape[1] / self.grid[1]
        self.cell_shift = options["cell_shift"]
        self.pixel_shift = (  # cell_shift in pixels of the output (and of each copy)
            options["cell_shift"][0] * self.shape[1] / self.low_shape[1],
            options["cell_shift"][1] * self.shape[0] / self.low_shape[0],
        )
        warps = sp.vstack(
            [
                warp_matrix(rescale_transform(t, scale_y, scale_x), self.grid)
                for t in self.transforms
            ],
            format="csr",
        )
        self.forward = sp.kron(sp.identity(k), observe.matrix(), format="csr") @ warps
        self.forward.eliminate_zeros()
        self.data_operators = data_operators(self.forward, warps, observe)
        self._data = [fastest(m) for m in self.data_operators]
        # A^T (for the right-hand side): the second half of [A, A^T] or [W, D, D^T, W^T], the
        # same operators; A^T A has none, so A^T is kept sparse for its one product per solve
        self.adjoint_start = len(self.data_operators) // 2  # 0: no A^T in the chain
        if self.adjoint_start:
            self._adjoint = self._data[self.adjoint_start :]
        else:
            self._adjoint = [sp.csr_matrix(self.forward.T)]
        self.gradient = gradient_matrix(self.grid)
        self._gradient_t = sp.csr_matrix(self.gradient.T)
        self.data_diagonal = np.asarray(self.forward.multiply(self.forward).sum(axis=0)).ravel()
        self.gradient_squared = self.gradient.multiply(self.gradient).tocsr()

    def __call__(self, low_res: object) -> np.ndarray:
        """Fuse (K, h, w) maps into one ``output_shape`` float32 map (not normalised)."""
        maps = np.asarray(low_res, dtype=np.float64)
        if maps.shape != (len(self.transforms), *self.low_shape):
            raise ValueError(
                f"low_res must be {len(self.transforms)} maps of {self.low_shape} (one per "
                f"transform), got shape {maps.shape}"
            )
        if not np.all(np.isfinite(maps)):
            raise ValueError("low_res contains NaN or infinite values")
        solution = self.solve(maps.reshape(-1)).reshape(self.grid)
        if self.grid != self.shape:
            solution = backend.numpy(upsample(solution[None, ..., None], self.shape))[0, ..., 0]
        return solution.astype(np.float32)

    def solve(self, observed: np.ndarray) -> np.ndarray:
        """The minimiser on the grid (flat) for the stacked observations (K*h*w,)."""
        g, g_t, weights = self.gradient, self._gradient_t, self.weights
        rhs = chain(self._adjoint, observed, matmul)
        x = np.zeros(self.forward.shape[1])
        edges = np.ones(g.shape[0])
        eps = 1e-3 * max(float(np.abs(observed).max()), 1e-12)
        for round_ in range(self.iterations):
            if round_ > 0:
                edges = edge_weights(g @ x, eps, self.prior, np)
            diagonal = (
                self.data_diagonal + weights.tv * (self.gradient_squared.T @ edges) + weights.energy
            )

            def normal(v: np.ndarray, edges: np.ndarray = edges) -> np.ndarray:
                smooth = g_t @ (edges * (g @ v))
                data = chain(self._data, v, matmul)
                return data + weights.tv * smooth + weights.energy * v

            x = conjugate_gradients(normal, rhs, x, diagonal, self.cg_iterations)
        return x


def edge_weights(differences, eps, prior: str, ops):
    """The reweighting of the (2 N,) forward differences [d/dx; d/dy] for the next round:
    1 / (2 max(|d|, eps)) per difference (``"tv"``) or per pixel of the gradient's magnitude
    (``"isotropic_tv"``). ``ops`` is ``numpy`` or ``tensorflow.experimental.numpy``."""
    if prior == "isotropic_tv":
        dx, dy = ops.split(differences, 2)
        magnitude = ops.sqrt(dx * dx + dy * dy)
        return ops.concatenate([1.0 / (2.0 * ops.maximum(magnitude, eps))] * 2)
    return 1.0 / (2.0 * ops.maximum(ops.abs(differences), eps))


def conjugate_gradients(matvec, rhs: np.ndarray, x: np.ndarray, diagonal: np.ndarray, steps: int):
    """``steps`` steps of Jacobi-preconditioned conjugate gradients from ``x`` (no early stop)."""
    r = rhs - matvec(x)
    z = r / diagonal
    p = z.copy()
    rz = r @ z
    for _ in range(steps):
        mp = matvec(p)
        curvature = p @ mp
        alpha = rz / curvature if curvature > 0 else 0.0
        x = x + alpha * p
        r = r - alpha * mp
        z = r / diagonal
        rz_next = r @ z
        p = z + (rz_next / rz if rz > 0 else 0.0) * p
        rz = rz_next
    return x


# ``super_resolve``'s own defaults, for its documented use (recover a map from exact
# observations of its warps): on 32 copies of 14x14 maps of a synthetic at 224 px
# (tests/methods/augmented/test_superres.py), these reach 0.32 of bilinear upsampling's error
# for area observations (0.61 with the fusion's defaults, tuned for Augmented Score-CAM's
# noisy maps).
STANDALONE = {"observation": "area", "tv_weight": 5e-4, "energy_weight": 1e-5}
STANDALONE_SUBCELLS = 8


def super_resolve(
    low_res: object,
    transforms: object,
    output_shape: tuple[int, int],
    *,
    memory_budget: int = DEFAULT_BUDGET,
    **options: Any,
) -> np.ndarray:
    """Recover the (H, W) map whose warps, observed on the (h, w) grid, best match ``low_res``.

    ``low_res`` (K, h, w): copy k observes ``warp(hr, transforms[k])``. Returns (H, W) float32,
    not normalised; ``options`` as ``SuperResolver``. Its defaults suit that use, exact
    observations of a map, and differ from Augmented Score-CAM's (tuned for its noisy
    views): ``observation="area"`` (each cell averages the pixels it covers, as Augmented
    Grad-CAM models it; pass ``"gaussian"`` for maps that observe a blur), a light prior
    (``tv_weight=5e-4``, ``energy_weight=1e-5`` per feature cell) and a working ``grid`` of
    ``STANDALONE_SUBCELLS`` (8) pixels per feature cell (at most (H, W)), resized bilinearly
    to (H, W); ``grid=None`` solves at (H, W) itself (seconds for area observations of
    224 x 224, a minute for Gaussian ones). Measured on a synthetic map (32 rotated and
    shifted copies of 14x14 at 224 px): 0.32 of bilinear upsampling's error for area
    observations, 0.49 for Gaussian ones. What does not fit ``memory_budget`` bytes (or half
    the memory available) is refused before it is allocated (``core.memory``).
    """
    maps = np.asarray(low_res)
    if maps.ndim != 3 or 0 in maps.shape:
        raise ValueError(f"low_res must be (K, h, w) maps, got shape {maps.shape}")
    check_transforms(transforms, len(maps))
    options = {**STANDALONE, **options}
    if "grid" not in options and len(output_shape) == 2:
        options["grid"] = tuple(
            min(int(size), cells * STANDALONE_SUBCELLS)
            for size, cells in zip(output_shape, maps.shape[1:], strict=True)
        )
    grid = tuple(options["grid"] if options["grid"] is not None else output_shape)
    check_fits(
        fusion_bytes(
            len(maps),
            (maps.shape[1], maps.shape[2]),
            (int(grid[0]), int(grid[1])),
            options["observation"],
            options.get("sigma", SIGMA),
        ),
        memory_budget,
        f"super_resolve with {len(maps)} maps of {maps.shape[1]}x{maps.shape[2]} on a "
        f"{grid[0]}x{grid[1]} grid",
        "pass fewer maps, a coarser grid= or a larger memory_budget=",
    )
    return SuperResolver(transforms, maps.shape[1:], output_shape, **options)(maps)
