"""What differs between Keras' backends: compiling a step, a loop of chunks, a gradient.

The methods are written in ``keras.ops`` and run on the backend Keras runs on
(``KERAS_BACKEND``, ``keras.config.backend()``); nothing switches it. This module is the one
place that asks which backend that is:

- ``compile``: ``tf.function`` on TensorFlow (each step keyed apart: TensorFlow's retracing
  detector keys its counts on a function's code object, which all explainers' steps share, so
  a loop over methods or targets would look like one function retraced), ``jax.jit`` on JAX,
  and eager on PyTorch, without autograd's graph (``torch.compile`` ran MobileNetV2 1.35x
  faster on a CPU after a 47 s compile per shape: see docs/backends.md).
- ``chunk_loop``: the chunks of one image's units. On TensorFlow a ``tf.while_loop`` inside
  the compiled loop (also what a SavedModel export carries); elsewhere a Python loop over the
  compiled step, the last chunk padded to a power of two (at most the chunk size), so the step
  compiles for a few shapes only, and at most half of that last chunk is padding.
- ``feature_gradients``: the gradients of scores with respect to the target layer's output:
  TensorFlow's tape, ``jax.vjp`` or PyTorch's autograd.

TensorFlow is imported only on the TensorFlow backend: with ``KERAS_BACKEND=jax`` the package
runs where TensorFlow is not installed. ``tensorflow()`` gives it to the code that is
TensorFlow's alone (SavedModel export, image decoding in a graph), or a clear error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

BACKENDS = ("tensorflow", "jax", "torch")


def name() -> str:
    """The backend Keras runs on: "tensorflow", "jax" or "torch"."""
    return keras.config.backend()


def tensorflow(feature: str = "this") -> Any:
    """The ``tensorflow`` module, for what only TensorFlow does; a clear error elsewhere."""
    if name() != "tensorflow":
        raise RuntimeError(
            f"{feature} needs Keras' TensorFlow backend (it runs on {name()!r}): save the "
            "model as .keras and run this with KERAS_BACKEND=tensorflow"
        )
    import tensorflow as tf

    return tf


def compile(
    fn: Callable,
    signature: Sequence[tuple[tuple, str]] | None = None,
    *,
    jit: bool = False,
    static: tuple[int, ...] = (),
    shapes_from_data: bool = False,
) -> Callable:
    """``fn`` compiled by the backend. ``signature``: (shape, dtype) of each argument, None
    for a dimension that varies (TensorFlow traces once for them; JAX specialises on shapes).
    ``jit``: XLA-compile on TensorFlow too (JAX always does). ``static``: the positions of
    Python arguments (bools) a compiled function is specialised on. ``shapes_from_data``:
    ``fn``'s shapes depend on its inputs' values (a selection of channels), so only
    TensorFlow's graphs compile it; elsewhere it runs eagerly around its compiled steps."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        specs = None if signature is None else [tf.TensorSpec(s, d) for s, d in signature]
        if not jit:
            return tf.function(functools.partial(fn), input_signature=specs)
        # one function per rank of the arguments: retracing is reduced by relaxing shapes,
        # and an image's (H, W, C) and a volume's (D, H, W, C) would relax to unknown rank
        by_rank: dict[tuple, Callable] = {}

        def compiled(*args: Any) -> Any:
            ranks = tuple(getattr(arg, "ndim", None) for arg in args)
            if ranks not in by_rank:
                by_rank[ranks] = tf.function(
                    functools.partial(fn),
                    input_signature=specs,
                    jit_compile=True,
                    reduce_retracing=True,
                )
            return by_rank[ranks](*args)

        return compiled
    if backend == "jax" and not shapes_from_data:
        import jax

        return jax.jit(fn, static_argnums=static)
    if backend == "torch":  # eager, without recording a graph for autograd
        import torch

        return torch.no_grad()(fn)
    return fn


def not_converted(fn: Callable) -> Callable:
    """``fn``, a NumPy helper that compiled steps call while they are traced (a region's
    mask), marked on TensorFlow so that AutoGraph runs it as it is instead of trying to
    convert it and logging that it could not."""
    if name() == "tensorflow":
        return tensorflow().autograph.experimental.do_not_convert(fn)
    return fn


def widest_float() -> str:
    """The widest float the backend computes in: "float64", or "float32" on JAX (whose
    64-bit types are off unless ``jax_enable_x64`` is set)."""
    if name() == "jax":
        import jax

        return "float64" if jax.config.read("jax_enable_x64") else "float32"
    return "float64"


def tensor(value: object, dtype: str = "float32") -> Any:
    """``value`` as a backend tensor of ``dtype``."""
    return ops.convert_to_tensor(np.asarray(value, dtype), dtype)


def numpy(value: object) -> np.ndarray:
    """A backend tensor (or anything array-like) as a NumPy array."""
    return np.asarray(ops.convert_to_numpy(value))


def concrete(value: object) -> bool:
    """Whether ``value`` holds numbers now (eager), not a symbol being traced or compiled."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(value, jax.core.Tracer)
    return True


def chunk_loop(
    step: Callable[[Any], Any],
    units: Any,
    size: int,
    k: int | Any,
    reports: int,
    tick: Callable[[int], None] | None = None,
) -> Any:
    """``step(chunk)`` -> (c, k) scores over ``units`` (n,) int32, ``size`` at a time: (n, k).

    One chunk runs at a time, so at most ``size`` perturbed inputs exist at once.
    ``tick(chunks done)`` runs after about every (chunks / ``reports``)-th chunk and after the
    last (on TensorFlow through ``tf.py_function``, from inside the compiled loop)."""
    if name() == "tensorflow":
        return _tf_chunk_loop(step, units, size, k, reports, tick)
    count = int(ops.shape(units)[0])
    chunks = -(-count // size)
    every = max(1, chunks // reports)
    scores = []
    for index, start in enumerate(range(0, count, size)):
        chunk = units[start : start + size]
        real = int(ops.shape(chunk)[0])
        padded = min(size, 1 << (real - 1).bit_length())  # a power of two, at most size
        if real < padded:  # the last chunk, padded with its last unit: few compiled shapes
            chunk = ops.concatenate([chunk, ops.repeat(chunk[-1:], padded - real)])
        scores.append(step(chunk)[:real])
        if tick is not None and ((index + 1) % every == 0 or index + 1 == chunks):
            tick(index + 1)
    if not scores:
        return ops.zeros((0, int(k)), "float32")
    return ops.concatenate(scores, axis=0)


def _tf_chunk_loop(step, units, size, k, reports, tick):
    import tensorflow as tf

    count = tf.size(units)
    every = tf.maximum(1, (count + size - 1) // size // reports)

    def report(done):
        tick(int(done))
        return tf.constant(0)

    def body(start, scores):
        chunk = step(units[start : start + size])
        if tick is not None:
            done = start // size + 1
            due = tf.logical_or(done % every == 0, start + size >= count)
            with tf.control_dependencies([chunk]):
                tf.cond(
                    due,
                    lambda: tf.reshape(tf.py_function(report, [done], tf.int32), ()),
                    lambda: tf.constant(0),
                )
        return start + size, tf.concat([scores, chunk], axis=0)

    _, scores = tf.while_loop(
        lambda start, _: start < count,
        body,
        (tf.constant(0), tf.zeros(tf.stack([0, k]))),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None])),
        parallel_iterations=1,
    )
    return scores


def unit_normals(seed: int, units: Any, shape: Sequence) -> Any:
    """Standard normal samples (c, *shape), float32, for each of ``units`` (c,) int32, drawn
    from (``seed``, unit) alone: the same whatever the chunks. Each backend has its own
    generator (TensorFlow's stateless normal, JAX's threefry keys, PyTorch's seeded
    generator), so the numbers differ between backends."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        def one(unit):
            pair = tf.stack([tf.constant(seed, tf.int32), unit])
            return tf.random.stateless_normal(tf.stack(shape), pair, dtype=tf.float32)

        return tf.map_fn(one, units, fn_output_signature=tf.float32)
    if backend == "jax":
        import jax

        key = jax.random.key(seed)
        draw = lambda unit: jax.random.normal(jax.random.fold_in(key, unit), tuple(shape))  # noqa: E731
        return jax.vmap(draw)(units)
    import torch

    return torch.stack(
        [
            torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed * 65_537 + u))
            for u in numpy(units).tolist()
        ]
    ).to(ops.convert_to_tensor(0.0).device)


def feature_gradients(
    tapped: keras.Model,
    tail: Callable[[], keras.Model],
    scores: Callable[[Any], Any],
    images: Any,
    k: int,
) -> tuple[Any, Any]:
    """The target layer's output A (n, ...) and the gradients (n, k, ...) of each of the
    ``k`` columns of ``scores(output)`` with respect to A.

    ``tapped``: the model images -> [A, output]. ``tail`` builds the model A -> output (on
    JAX and PyTorch, which differentiate a function of A; TensorFlow's tape follows the
    tapped model and never builds it)."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape(persistent=True) as tape:
            acts, output = tapped(images, training=False)
            per_score = tf.unstack(scores(output), num=k, axis=1)
        return acts, tf.stack([tape.gradient(s, acts) for s in per_score], axis=1)
    acts, _ = tapped(images, training=False)
    model_tail = tail()
    if backend == "jax":
        import jax

        values, pull = jax.vjp(lambda a: scores(model_tail(a, training=False)), acts)
        grads = [pull(jax.numpy.zeros_like(values).at[:, j].set(1.0))[0] for j in range(k)]
        return acts, ops.stack(grads, axis=1)
    import torch

    with torch.enable_grad():  # inside a compiled (no_grad) step
        acts = acts.detach().requires_grad_(True)
        values = scores(model_tail(acts, training=False))
        grads = [
            torch.autograd.grad(values[:, j].sum(), acts, retain_graph=j < k - 1)[0]
            for j in range(k)
        ]
    return acts.detach(), ops.stack(grads, axis=1)
