"""A missing Keras backend is one line naming it and the command that installs it."""

import subprocess
import sys

from tfscorecam.core.install import backend_missing

BLOCKED = "import sys; sys.modules['tensorflow'] = None; "  # as if TensorFlow were not installed


def _run(code: str) -> subprocess.CompletedProcess:
    env = {"KERAS_BACKEND": "tensorflow", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", BLOCKED + code], capture_output=True, text=True, timeout=300,
        env=env,
    )  # fmt: skip


def test_a_missing_backend_names_itself_and_its_install_command():
    python = _run("import tfscorecam; tfscorecam.ScoreCAM")
    assert python.returncode == 1
    last = python.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: Keras runs on the tensorflow backend")
    assert "python -m pip install tensorflow" in last and "KERAS_BACKEND=tensorflow" in last
    cli = _run("from tfscorecam.interfaces.cli import main; sys.exit(main(['demo']))")
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines() == [f"tfscorecam: error: {last.split(': ', 1)[1]}"]


def test_other_failed_imports_are_left_as_they_are():
    assert backend_missing(ModuleNotFoundError("no", name="ray")) is None
    jax = backend_missing(ModuleNotFoundError("no", name="jax"))
    assert 'python -m pip install "jax[cpu]"' in str(jax)
