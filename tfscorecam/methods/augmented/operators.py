"""The linear operators of Augmented Score-CAM's fusion (``superres``): the observation of a
feature cell on the working grid (an area average or a Gaussian, ``Separable`` along the two
axes), the forward differences of the TV prior, each copy's warp rescaled to the grid, and
the data term's products as the cheapest chain of them (``data_operators``, applied by
``chain``). SciPy sparse matrices, dense arrays where a matrix is mostly non-zero
(``fastest``); ``graph_fusion`` turns the same operators into TensorFlow constants."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tfscorecam.core.maps import area_weights


def area_matrix(high: tuple[int, int], low: tuple[int, int]) -> sp.csr_matrix:
    """Area averaging from (H, W) onto (h, w) as a sparse (h*w, H*W) matrix.

    Each low-resolution cell averages the high-resolution pixels it covers, weighted by the
    fraction of each pixel inside it; for whole factors this is
    ``tf.image.resize(method="area")``.
    """
    return observation_operator(high, low, "area", sigma=1.0).matrix()  # sigma: unused


def gaussian_matrix(high: tuple[int, int], low: tuple[int, int], sigma: float) -> sp.csr_matrix:
    """Gaussian observation from (H, W) onto (h, w) as a sparse (h*w, H*W) matrix.

    Cell (i, j) is the mean of the pixels weighted by a Gaussian of ``sigma`` cells around
    the cell's centre (pixel and cell centres at half-integers, as ``tf.image.resize``);
    weights under 1e-4 of a row's sum are dropped.
    """
    return observation_operator(high, low, "gaussian", sigma).matrix()


@dataclass(frozen=True)
class Separable:
    """The operator kron(rows, cols) on each (H, W) map of a flattened stack, never formed:
    ``op @ v`` maps K*H*W values to K*h*w, with rows (h, H) and cols (w, W)."""

    rows: np.ndarray
    cols: np.ndarray

    def __matmul__(self, vector: np.ndarray) -> np.ndarray:
        maps = vector.reshape(-1, self.rows.shape[1], self.cols.shape[1])
        return (self.rows @ maps @ self.cols.T).reshape(-1)

    @property
    def T(self) -> Separable:  # noqa: N802 (as a matrix's transpose)
        return Separable(self.rows.T, self.cols.T)

    def cost(self) -> int:
        """Multiply-adds per map."""
        (h, height), (w, width) = self.rows.shape, self.cols.shape
        return h * height * width + h * width * w

    def matrix(self) -> sp.csr_matrix:
        """The (h*w, H*W) matrix of one map."""
        return sp.kron(sp.csr_matrix(self.rows), sp.csr_matrix(self.cols), format="csr")


def observation_operator(
    high: tuple[int, int],
    low: tuple[int, int],
    observation: str,
    sigma: float,
    cell_shift: tuple[float, float] = (0.0, 0.0),
) -> Separable:
    """The observation D from (H, W) onto (h, w): ``"area"`` or ``"gaussian"`` (see
    ``area_matrix`` and ``gaussian_matrix``), the Gaussian of cell i centred at i + 0.5 plus
    ``cell_shift`` (dx, dy) cells; both are separable."""

    def gaussian(n_high: int, n_low: int, shift: float) -> np.ndarray:
        pixels = (np.arange(n_high) + 0.5) * n_low / n_high  # pixel centres in cell units
        centres = np.arange(n_low)[:, None] + 0.5 + shift
        weights = np.exp(-0.5 * ((centres - pixels) / sigma) ** 2)
        weights /= weights.sum(axis=1, keepdims=True)
        weights[weights < 1e-4] = 0.0
        return weights / weights.sum(axis=1, keepdims=True)

    if observation == "area":
        return Separable(area_weights(high[0], low[0]), area_weights(high[1], low[1]))
    return Separable(
        gaussian(high[0], low[0], cell_shift[1]), gaussian(high[1], low[1], cell_shift[0])
    )


def gradient_matrix(shape: tuple[int, int]) -> sp.csr_matrix:
    """Forward differences (2*H*W, H*W): d/dx then d/dy, zero on the last column / row."""
    height, width = shape

    def diff(n: int) -> sp.csr_matrix:
        d = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n), format="lil")
        d[n - 1, n - 1] = 0
        return d.tocsr()

    dx = sp.kron(sp.identity(height), diff(width))
    dy = sp.kron(diff(height), sp.identity(width))
    return sp.vstack([dx, dy], format="csr")


DENSE_ABOVE = 0.2  # fraction of non-zeros above which a product runs on a dense matrix


def fastest(matrix: sp.spmatrix | Separable) -> sp.csr_matrix | np.ndarray | Separable:
    """``matrix`` as a dense array when it is mostly non-zero, else as CSR (a ``Separable``
    operator as it is)."""
    if isinstance(matrix, Separable):
        return matrix
    if matrix.nnz > DENSE_ABOVE * matrix.shape[0] * matrix.shape[1]:
        return matrix.toarray()
    return sp.csr_matrix(matrix)


def rescale_transform(transform: np.ndarray, scale_y: float, scale_x: float) -> np.ndarray:
    """A transform in pixels of one image, for the same image sampled ``scale`` times coarser
    (pixel centres at half-integers in both)."""
    a0, a1, a2, b0, b1, b2, c0, c1 = np.asarray(transform, np.float64)
    matrix = np.array([[a0, a1, a2], [b0, b1, b2], [c0, c1, 1.0]])
    to_fine = np.array(
        [[scale_x, 0, (scale_x - 1) / 2], [0, scale_y, (scale_y - 1) / 2], [0, 0, 1.0]]
    )
    coarse = np.linalg.inv(to_fine) @ matrix @ to_fine
    return (coarse / coarse[2, 2]).ravel()[:8].astype(np.float32)


# The separable chain's small batched products run about 3x slower per multiply-add than one
# dense product (32 copies of 7 x 7 maps on a 28 x 28 grid, this project's CPU).
SEPARABLE_COST = 3


def data_operators(forward: sp.csr_matrix, warps: sp.csr_matrix, observe: Separable) -> list:
    """The operators whose successive products give A^T A v for A = (I_K kron D) W:

    - [A^T A] when even a dense one has fewer entries than A and A^T together (few unknowns,
      many observations: many views of a small map);
    - else the cheaper per product of [A, A^T] and [W, D, D^T, W^T], with D applied to each
      view's map as two small matrices (``Separable``: large maps, where A is nearly dense).
    """
    unknowns = forward.shape[1]
    if unknowns * unknowns <= 2 * forward.nnz:
        return [sp.csr_matrix(forward.T @ forward)]
    dense = forward.shape[0] * forward.shape[1]
    pair = 2 * (forward.nnz if forward.nnz <= DENSE_ABOVE * dense else dense)
    copies = warps.shape[0] // unknowns
    separable = SEPARABLE_COST * 2 * (warps.nnz + copies * observe.cost())
    if pair <= separable:
        return [forward, sp.csr_matrix(forward.T)]
    return [warps, observe, observe.T, sp.csr_matrix(warps.T)]


def chain(operators: list, vector, mul):
    """``vector`` multiplied by each operator in turn with ``mul(operator, vector)``:
    ``operator.matmul`` (NumPy, SciPy and ``Separable`` operators) or
    ``graph_fusion.GraphFusion._mul``."""
    for operator in operators:
        vector = mul(operator, vector)
    return vector
