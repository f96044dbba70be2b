"""Class names: read from a list or a file, and used to name classes in ``class_index``."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Sequence
from pathlib import Path

IMAGENET_CLASSES = 1000


def load_class_names(source: Sequence[str] | str | os.PathLike | None) -> list[str] | None:
    """Class names in class-index order from ``source``.

    ``source`` is None or empty (no names: None), a sequence of names, or a file: JSON (a
    list of names, a ``{"index": name}`` dict, or Keras' ``imagenet_class_index.json`` with
    ``{"0": ["n01440764", "tench"], ...}``) or text (one name per line).
    """
    if source is None:
        return None
    if not isinstance(source, (str, os.PathLike)):
        return [str(n) for n in source] or None
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"class names file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".json":
        names = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"cannot read class names from {path}: {error}") from None
        if isinstance(data, dict):
            try:
                items = sorted((int(k), v) for k, v in data.items())
            except ValueError:
                raise ValueError(
                    f"{path}: a JSON object of class names needs integer keys (the indices)"
                ) from None
            if [k for k, _ in items] != list(range(len(items))):
                raise ValueError(f"{path}: the class indices must be 0..{len(items) - 1}")
            data = [v[-1] if isinstance(v, list) else v for _, v in items]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list or object of class names")
        names = [str(n) for n in data]
    if not names:
        raise ValueError(f"no class names in {path}")
    return names


def class_index_of(name: str, names: Sequence[str] | None) -> int:
    """The index of class ``name`` (a name, or an index written as text)."""
    if name.lstrip("-").isdigit():
        return int(name)
    if not names:
        raise ValueError(
            f"class {name!r} is a name, but the model's class names are not known: pass "
            "class_names= (a list, or a JSON or text file; command line: --class-names)"
        )
    if name in names:
        return list(names).index(name)
    close = difflib.get_close_matches(name, list(names), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown class {name!r}{hint}")


def named_classes(class_index: object, names: Sequence[str] | None) -> object:
    """``class_index`` with every class name in it replaced by its index (see
    ``class_index_of``); anything else is returned as it is."""
    if isinstance(class_index, str):
        return class_index_of(class_index, names)
    if isinstance(class_index, (list, tuple)) and any(
        isinstance(v, (str, list, tuple)) for v in class_index
    ):
        return [named_classes(v, names) for v in class_index]
    return class_index
