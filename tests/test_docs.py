"""The documentation site: it builds strictly, and its troubleshooting page lists every error
message the package raises (the pages' code blocks run in ``test_examples.py``)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "scripts" / "error_catalogue.py"


def _catalogue_module():
    spec = importlib.util.spec_from_file_location("error_catalogue", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _troubleshooting_text() -> str:
    """The troubleshooting page with its snippets included, as the site shows it."""
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    return re.sub(
        r'--8<-- "([^"]+)"', lambda m: (ROOT / "docs" / "snippets" / m[1]).read_text(), page
    )


def test_the_error_catalogue_is_current():
    catalogue = _catalogue_module()
    assert catalogue.OUT.read_text() == catalogue.catalogue(), (
        "a message changed: run python docs/scripts/error_catalogue.py"
    )


def test_the_method_lists_are_the_registry():
    script = SCRIPT.parent / "registry_snippets.py"
    spec = importlib.util.spec_from_file_location("snippets", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.snippets().items():
        assert (module.SNIPPETS / name).read_text() == text, (
            "the registry changed: run python docs/scripts/registry_snippets.py"
        )


def test_every_raise_in_the_package_is_on_the_troubleshooting_page():
    page = _troubleshooting_text()
    found = _catalogue_module().messages()
    assert len(found) > 150  # the parser still finds the package's messages
    missing = [text for _, _, text in found if text.replace("`", "'") not in page]
    assert not missing, missing


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "troubleshooting" / "index.html").exists()
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
