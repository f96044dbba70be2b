"""Write the documentation's lists of methods from the registry (``methods.METHODS``).

    python docs/scripts/registry_snippets.py     # writes docs/snippets/method-*.md

``tests/test_docs.py`` regenerates them and fails if a committed file differs, so a method
added to the registry cannot be missing from a page that lists the methods.
"""

from __future__ import annotations

from pathlib import Path

from tfscorecam.methods import METHODS

SNIPPETS = Path(__file__).resolve().parents[1] / "snippets"


def snippets() -> dict[str, str]:
    """File name -> text: the method names with their display names, and the classes."""
    names = ", ".join(f'`"{name}"` ({method.title})' for name, method in METHODS.items())
    classes = ", ".join(f"`{method.class_name}`" for method in METHODS.values())
    return {"method-names.md": names + "\n", "method-classes.md": classes + "\n"}


if __name__ == "__main__":
    for name, text in snippets().items():
        (SNIPPETS / name).write_text(text)
        print(f"{len(METHODS)} methods -> {SNIPPETS / name}")
