"""Names of the files the command line and ``explain_dataset`` write: one per input and per
explained output and class, never two inputs to one file."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def distinct_stems(paths: Sequence[str]) -> list[str]:
    """A name stem per path, unique among ``paths``: the file's stem where that is unique,
    else prefixed by as many parent folders as it takes to tell them apart (``a/pic.jpg`` and
    ``b/pic.jpg`` give ``a_pic`` and ``b_pic``), then with the suffix (``pic_jpg``,
    ``pic_png``); a path given twice gets a counter (``pic``, ``pic-2``)."""
    names = [Path(p).resolve() for p in paths]
    folders = [name.parent.parts[1:] for name in names]
    depth = [0] * len(names)
    suffixed = [False] * len(names)

    def key(i: int) -> str:
        parts = [*folders[i][len(folders[i]) - depth[i] :], names[i].stem]
        if suffixed[i]:
            parts.append(names[i].suffix.lstrip("."))
        return _safe("_".join(p for p in parts if p))

    while True:  # tell clashing names apart: by suffix in one folder, else by a folder more
        counts = Counter(key(i) for i in range(len(names)))
        clashing = [i for i in range(len(names)) if counts[key(i)] > 1]
        folder_of = Counter((key(i), names[i].parent) for i in clashing)
        same_file = Counter((key(i), names[i]) for i in clashing)
        changed = False
        for i in clashing:
            in_folder = folder_of[key(i), names[i].parent]
            if in_folder > same_file[key(i), names[i]] and not suffixed[i]:
                suffixed[i] = changed = True
            elif in_folder == 1 and depth[i] < len(folders[i]):
                depth[i] += 1
                changed = True
        if not changed:
            break
    seen: Counter = Counter()
    stems = []
    for i in range(len(names)):
        seen[key(i)] += 1
        stems.append(key(i) if seen[key(i)] == 1 else f"{key(i)}-{seen[key(i)]}")
    return stems


def overlay_name(
    stem: str,
    method: str,
    output: str | int | None,
    class_index: int | None,
    class_name: str | None = None,
    target: str = "target",
) -> str:
    """``<stem>_<method>[_output-<output>]_<class>_<name or class>.png``: the explained output
    appears when one was chosen, so that two outputs of one model never share a file; a
    target (no class) is named by ``target`` (e.g. ``regression-0-negate``), so that two
    targets never share one either."""
    parts = [stem, method]
    if output is not None:
        parts.append(f"output-{output}")
    if class_index is None:
        parts.append(target)
    else:
        parts += [str(class_index), class_name or str(class_index)]
    return _safe("_".join(parts)) + ".png"


def _safe(text: str) -> str:
    """``text`` with every character but letters, digits, ``-``, ``_``, ``+`` and ``.``
    replaced by ``_``."""
    return re.sub(r"[^\w\-+.]", "_", text)
