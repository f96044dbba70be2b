"""The fusion of ``superres.SuperResolver`` inside a TensorFlow graph, for a SavedModel export
of Augmented Score-CAM (TensorFlow's alone: the eager fusion is SciPy's on every backend)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from tfscorecam.core.maps import upsample
from tfscorecam.methods.augmented.operators import Separable, chain, fastest
from tfscorecam.methods.augmented.superres import SuperResolver, edge_weights


def _graph_operator(matrix: sp.spmatrix | Separable) -> tf.Tensor | tf.SparseTensor | tuple:
    """``matrix`` as a float64 constant: dense when mostly non-zero (as ``fastest``), else a
    ``tf.sparse`` tensor; a ``Separable`` operator as its (rows, cols) pair."""
    if isinstance(matrix, Separable):
        return tf.constant(matrix.rows, tf.float64), tf.constant(matrix.cols, tf.float64)
    if not isinstance(fastest(matrix), sp.spmatrix):
        return tf.constant(matrix.toarray(), tf.float64)
    coo = matrix.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    order = np.lexsort((indices[:, 1], indices[:, 0]))
    return tf.SparseTensor(indices[order], coo.data[order].astype(np.float64), coo.shape)


class GraphFusion(tf.Module):
    """``SuperResolver`` in TensorFlow, for a graph (SavedModel export): its operators as
    constants (``tf.sparse``, or dense when mostly non-zero) and the same schedule of
    reweighting rounds and conjugate-gradient steps, in float64. Equal to the SciPy solve up
    to rounding."""

    def __init__(self, resolver: SuperResolver) -> None:
        super().__init__(name="fusion")
        self.resolver = resolver
        self.pixel_shift = resolver.pixel_shift  # as the SciPy fusion's, for the product
        self.data = [_graph_operator(m) for m in resolver.data_operators]
        if resolver.adjoint_start:
            self.adjoint = self.data[resolver.adjoint_start :]
        else:
            self.adjoint = [_graph_operator(resolver.forward.T)]
        self.gradient = _graph_operator(resolver.gradient)
        self.gradient_t = _graph_operator(resolver.gradient.T)
        self.gradient_squared_t = _graph_operator(resolver.gradient_squared.T)
        self.data_diagonal = tf.constant(resolver.data_diagonal, tf.float64)

    @staticmethod
    def _mul(matrix: tf.Tensor | tf.SparseTensor | tuple, vector: tf.Tensor) -> tf.Tensor:
        if isinstance(matrix, tuple):  # Separable: rows @ map @ cols^T for each map
            rows, cols = matrix
            maps = tf.reshape(vector, (-1, rows.shape[1], cols.shape[1]))
            return tf.reshape(tf.einsum("ij,kjl,ml->kim", rows, maps, cols), (-1,))
        if isinstance(matrix, tf.SparseTensor):
            return tf.sparse.sparse_dense_matmul(matrix, vector[:, None])[:, 0]
        return tf.linalg.matvec(matrix, vector)

    def __call__(self, low_res: tf.Tensor) -> tf.Tensor:
        """Fuse (K, h, w) maps into one ``output_shape`` float32 map (not normalised)."""
        resolver, weights, mul = self.resolver, self.resolver.weights, self._mul
        observed = tf.reshape(tf.cast(low_res, tf.float64), (-1,))
        rhs = chain(self.adjoint, observed, mul)
        x = tf.zeros_like(rhs)
        edges = tf.ones((resolver.gradient.shape[0],), tf.float64)
        eps = 1e-3 * tf.maximum(tf.reduce_max(tf.abs(observed)), 1e-12)
        for round_ in range(resolver.iterations):
            if round_ > 0:
                edges = edge_weights(mul(self.gradient, x), eps, resolver.prior, tnp)
            diagonal = (
                self.data_diagonal
                + weights.tv * mul(self.gradient_squared_t, edges)
                + weights.energy
            )

            def normal(v, edges=edges):
                smooth = mul(self.gradient_t, edges * mul(self.gradient, v))
                return chain(self.data, v, mul) + weights.tv * smooth + weights.energy * v

            x = _graph_conjugate_gradients(normal, rhs, x, diagonal, resolver.cg_iterations)
        solution = tf.cast(tf.reshape(x, resolver.grid), tf.float32)
        if resolver.grid != resolver.shape:
            solution = upsample(solution[None, ..., None], resolver.shape)[0, ..., 0]
        return solution


def _graph_conjugate_gradients(matvec, rhs, x, diagonal, steps: int) -> tf.Tensor:
    """``conjugate_gradients`` in a ``tf.while_loop``."""
    r = rhs - matvec(x)
    z = r / diagonal
    dot = lambda a, b: tf.reduce_sum(a * b)  # noqa: E731

    def body(i, x, r, p, rz):
        mp = matvec(p)
        alpha = tf.math.divide_no_nan(rz, tf.maximum(dot(p, mp), 0.0))
        x = x + alpha * p
        r = r - alpha * mp
        z = r / diagonal
        rz_next = dot(r, z)
        p = z + tf.math.divide_no_nan(rz_next, tf.maximum(rz, 0.0)) * p
        return i + 1, x, r, p, rz_next

    _, x, *_ = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), x, r, z, dot(r, z)))
    return x
