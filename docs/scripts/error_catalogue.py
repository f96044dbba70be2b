"""Write the troubleshooting page's catalogue of every error message the package raises.

    python docs/scripts/error_catalogue.py          # writes docs/snippets/errors.md

Each ``raise SomeError("...")`` in ``tfscorecam/`` is read from the source (``ast``), its
message written with ``…`` where a value is filled in, grouped by the part of the package
that raises it. ``tests/test_docs.py`` regenerates it and fails if the committed file differs,
so a new message cannot miss the page.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tfscorecam"
OUT = ROOT / "docs" / "snippets" / "errors.md"

GROUPS = {  # module path prefix -> section title, in page order
    "interfaces/images": "Images and inputs",
    "interfaces/pipeline": "Images and inputs",
    "interfaces/volumes": "Images and inputs",
    "core/validation": "Images and inputs",
    "zoo/preprocessing": "Images and inputs",
    "core/model_graph": "Models and layers",
    "core/model_view": "Models and layers",
    "core/layer_choice": "Models and layers",
    "core/legacy": "Models and layers",
    "core/tokens": "Models and layers",
    "core/head": "Classes, heads and targets",
    "zoo/class_names": "Classes, heads and targets",
    "core/explainer": "Classes, heads and targets",
    "core/request": "Classes, heads and targets",
    "core/options": "Method options",
    "core/targets": "Classes, heads and targets",
    "core/detectors": "Classes, heads and targets",
    "core/embeddings": "Classes, heads and targets",
    "core/inputs": "Models and layers",
    "core/maps": "Boxes and maps",
    "core/memory": "Memory",
    "core/backend": "Backends",
    "methods": "Method options",
    "metrics": "Metrics",
    "interfaces/explanation": "explain() and Explanation",
    "interfaces/advice": "explain() and Explanation",
    "interfaces/cli": "Command line",
    "interfaces/arguments": "Command line",
    "interfaces/dataset": "Whole datasets (Ray)",
    "interfaces/serving": "Serving",
    "zoo": "Zoo models",
    "__init__": "The package",
}


def _text(node: ast.expr) -> str | None:
    """A message expression as text, ``…`` for each filled-in value; None if not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else "…" for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None or right is None else left + right
    return None


def _cell(text: str) -> str:
    """A message as a table cell: code (so that no character of it is read as markdown), its
    pipes escaped so that it cannot split the row."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def messages() -> list[tuple[str, str, str]]:
    """(group, exception name, message) for every literal message raised in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).with_suffix("").as_posix()
        group = next((g for prefix, g in GROUPS.items() if module.startswith(prefix)), None)
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", "Error"))
            text = _text(node.exc.args[0]) if node.exc.args else None
            if text is None:
                continue
            if group is None:
                raise SystemExit(f"{module} raises {text!r}: add it to GROUPS")
            found.append((group, name, " ".join(text.split())))
    return found


def catalogue() -> str:
    """The markdown of every message, grouped in ``GROUPS`` order, duplicates once."""
    order = list(dict.fromkeys(GROUPS.values()))
    lines = []
    found = messages()
    for group in order:
        rows = sorted({(name, text) for g, name, text in found if g == group})
        if not rows:
            continue
        lines += [f"### {group}", "", "| error | message |", "|---|---|"]
        lines += [f"| `{name}` | {_cell(text)} |" for name, text in rows]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(catalogue())
    print(f"{len(messages())} messages -> {OUT}")
