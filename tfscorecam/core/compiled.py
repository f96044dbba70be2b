"""Compiled steps that belong to one explainer.

Every explainer compiles its own steps (forward pass, chunk scoring, gradients) over its own
model view, and traces each of them once. TensorFlow's retracing detector keys its counts on
a function's code object, which all explainers' steps share, so a loop over methods, layers or
targets looked like one function retraced and printed "triggered tf.function retracing"
warnings. ``compiled`` gives each step its own key: the counts then see what happens, one trace
per step, and a step that really retraces is still reported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import tensorflow as tf


def compiled(fn: Callable, **options: Any) -> tf.types.experimental.PolymorphicFunction:
    """``tf.function(fn, **options)`` whose traces are counted apart from other steps'."""
    return tf.function(functools.partial(fn), **options)
