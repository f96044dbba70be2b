"""A progress bar for long explanations (Keras' Progbar), silent with ``verbose=0``."""

from __future__ import annotations

import keras


class Progress:
    """Counts units of work (chunks, copies) toward ``total``; shows a bar when verbose."""

    def __init__(self, total: int, verbose: int, unit: str) -> None:
        self._bar = (
            keras.utils.Progbar(total, unit_name=unit, verbose=1) if verbose and total > 1 else None
        )

    @property
    def shown(self) -> bool:
        """Whether a bar is shown (verbose, and more than one unit of work)."""
        return self._bar is not None

    def add(self, count: int = 1) -> None:
        """Record ``count`` more units done."""
        if self._bar is not None:
            self._bar.add(count)
