"""Every registered method gives the same maps on JAX (and PyTorch, where installed) as on
TensorFlow, for the same weights: the other backends run in their own process
(``backend_maps.py``), as Keras' backend is fixed when Keras is imported."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_maps import all_maps
from conftest import build_classifier
from references import BACKEND

from tfscorecam.methods import method_class

TOLERANCE = 1e-4  # absolute, on maps in [0, 1]; a method's served tolerance where larger


@pytest.mark.tensorflow
@pytest.mark.parametrize("other", ["jax", "torch"])
def test_every_method_gives_tensorflows_maps_on_another_backend(other, tmp_path):
    if other == "torch":
        pytest.importorskip("torch", reason="PyTorch is not installed")
    assert BACKEND == "tensorflow"
    model = build_classifier("softmax", deep_head=True)
    model.save_weights(tmp_path / "tiny.weights.h5")
    ours = all_maps(model)
    script = Path(__file__).with_name("backend_maps.py")
    env = {**os.environ, "KERAS_BACKEND": other, "PYTHONPATH": str(script.parent)}
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "tiny.weights.h5"), str(tmp_path / "m.npz")],
        env=env,
        check=True,
        timeout=600,
    )
    theirs = np.load(tmp_path / "m.npz")
    assert sorted(theirs.files) == sorted(ours)
    for method, maps in ours.items():
        tolerance = max(TOLERANCE, method_class(method.split("_")[0]).served_tolerance)
        assert maps.max() > 0, method  # a map to compare, not all zeros
        np.testing.assert_allclose(theirs[method], maps, atol=tolerance, err_msg=method)
