"""Maps of every registered method on the backend this process runs on, for
``test_backends.py``: ``python tests/backend_maps.py WEIGHTS OUT.npz`` (KERAS_BACKEND set by
the caller) builds the tiny classifier, loads ``WEIGHTS`` and saves each method's maps."""

import sys

import numpy as np
from conftest import build_classifier
from references import images

from tfscorecam.core.targets import regression
from tfscorecam.methods import METHODS, make_explainer

# SS-CAM's noise comes from each backend's own generator: compared without it
OPTIONS = {"sscam": {"noise": 0.0}}
CLASSES = [4, 0, 2]


def all_maps(model) -> dict[str, np.ndarray]:
    """Each registered method's maps of three images (one class each), by method name, and a
    regression target's (the second output, as a value) by Score-CAM and Grad-CAM."""
    x = images(3)
    maps = {
        method: make_explainer(model, method, verbose=0, batch_size=2, **OPTIONS.get(method, {}))(
            x, CLASSES
        )
        for method in METHODS
    }
    for method in ("scorecam", "gradcam"):
        cam = make_explainer(model, method, verbose=0, batch_size=2)
        maps[f"{method}_regression"] = cam(x, target=regression(1))
    return maps


if __name__ == "__main__":
    weights, out = sys.argv[1:3]
    model = build_classifier("softmax", deep_head=True)
    model.load_weights(weights)
    np.savez(out, **all_maps(model))
