"""A progress bar for long explanations (Keras' Progbar), shown only where it can redraw in
place: ``verbose=1`` on a terminal or in a notebook. Written to a file or a pipe, a bar is
only control characters and repeated lines, so there it stays silent."""

from __future__ import annotations

import sys

import keras


def interactive() -> bool:
    """Whether a bar can redraw in place: standard output is a terminal, or a notebook."""
    return bool(getattr(sys.stdout, "isatty", lambda: False)()) or "ipykernel" in sys.modules


class Progress:
    """Counts units of work (chunks, copies) toward ``total``; shows a bar when verbose and
    ``interactive()``."""

    def __init__(self, total: int, verbose: int, unit: str) -> None:
        shown = verbose and total > 1 and interactive()
        self._bar = keras.utils.Progbar(total, unit_name=unit, verbose=1) if shown else None

    @property
    def shown(self) -> bool:
        """Whether a bar is shown (verbose, interactive, and more than one unit of work)."""
        return self._bar is not None

    def add(self, count: int = 1) -> None:
        """Record ``count`` more units done."""
        if self._bar is not None:
            self._bar.add(count)
