"""An explainer's options: recorded as given, checked by name, and shown by ``repr``.

Every ``__init__`` of a subclass of ``Recorded`` is wrapped so that the outermost call records
the keyword options it was given (refusing a name no class in the chain takes, with the
closest one it does take); ``option_defaults`` reads every option and its default from the
signatures, and ``repr`` shows the layer and the options set to other than their default.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np


def _recording(init: Callable) -> Callable:
    """``init``, recording the options the outermost ``__init__`` was given."""

    @functools.wraps(init)
    def recorded(self, model, layer=None, **options: Any) -> None:
        if "_options" not in vars(self):
            _check_names(type(self), options)
            self._options = options
        init(self, model, layer, **options)

    return recorded


def _check_names(cls: type[Recorded], options: dict) -> None:
    """Refuse an option ``cls`` does not take, with the closest name it does take."""
    accepted = list(cls.option_defaults())
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


class Recorded:
    """A class built as ``cls(model, layer=None, **options)`` whose options are recorded."""

    layer_path: str

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
            if "__init__" not in vars(klass) or klass is Recorded or klass is object:
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
