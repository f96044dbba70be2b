"""What to install when Keras' backend is missing. Nothing here imports Keras: importing it is
what fails then (Keras imports its backend as it loads)."""

from __future__ import annotations

import os

PACKAGES = {"tensorflow": "tensorflow", "jax": '"jax[cpu]"', "torch": "torch"}  # pip names


def backend_missing(error: ImportError) -> ModuleNotFoundError | None:
    """For an import that failed because Keras' backend is not installed, the error that says
    which backend and what to do; None for any other failed import."""
    backend = (error.name or "").split(".")[0]
    if backend not in PACKAGES:
        return None
    chosen = os.environ.get("KERAS_BACKEND")
    setting = f"KERAS_BACKEND={chosen}" if chosen else "Keras' default, KERAS_BACKEND unset"
    return ModuleNotFoundError(
        f"Keras runs on the {backend} backend ({setting}), which is not installed: "
        f"python -m pip install {PACKAGES[backend]} (in a clone, the extra: python -m pip "
        f'install -e ".[{backend}]"), or set KERAS_BACKEND to a backend you have (jax, '
        "torch or tensorflow)"
    )
