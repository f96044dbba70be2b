"""ARCHITECTURE.md's import table, checked: an ``ast`` walk over every module of the package
(imports inside functions included) finds each ``tfscorecam`` import and refuses one the table
does not allow, and any import of the package root from inside it (a loop through its lazy
loader)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tfscorecam"
EVERYWHERE = {"tfscorecam.version"}  # the version number: a module of one constant


def _table() -> dict[str, set[str]]:
    """package -> the packages it may import, read from ARCHITECTURE.md's table."""
    allowed = {}
    for line in (ROOT / "ARCHITECTURE.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[\w/]+/`", cells[0]):
            package = "tfscorecam." + cells[0].strip("`/").replace("/", ".")
            may = set(re.findall(r"`([\w/]+)`", cells[2]))
            allowed[package] = {package} | {"tfscorecam." + m.replace("/", ".") for m in may}
    return allowed


def _package_of(module: str, allowed: dict) -> str | None:
    """The longest package of the table that ``module`` lies in."""
    found = [p for p in allowed if module == p or module.startswith(p + ".")]
    return max(found, key=len) if found else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every tfscorecam import in the file, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tfscorecam")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfscorecam"):
            found.append((node.lineno, node.module))
    return found


def test_the_table_is_read():
    allowed = _table()
    assert {"tfscorecam.core", "tfscorecam.methods", "tfscorecam.interfaces"} <= set(allowed)
    assert allowed["tfscorecam.core"] == {"tfscorecam.core"}


def test_every_import_in_the_package_is_allowed_by_the_table():
    allowed = _table()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        home = _package_of(module, allowed)
        for line, imported in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {imported}"
            if imported in EVERYWHERE or module in ("tfscorecam", "tfscorecam.version"):
                continue
            if imported == "tfscorecam":
                wrong.append(f"{where} (the package root)")
            elif home is not None and _package_of(imported, allowed) not in allowed[home]:
                wrong.append(f"{where} (not in the table for {home})")
    assert not wrong, "\n".join(wrong)


def test_the_tests_mirror_the_package():
    """tests/<folder>/ exists only for a package folder tfscorecam/<folder>/; the suites that
    cross packages (contract, docs, examples, errors...) stay at the top."""
    tests = ROOT / "tests"
    folders = [p for p in tests.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert folders, "tests/ has no package folders"
    for folder in folders:
        assert (PACKAGE / folder.relative_to(tests)).is_dir(), f"{folder} mirrors no package"
