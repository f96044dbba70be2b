"""MkDocs hook: the figures that benchmark scripts write to ``benchmarks/results`` are served
as ``figures/<name>.png``, so each lives in one place and the pages never hold a stale copy."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def on_files(files: Files, config) -> Files:
    for figure in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"figures/{figure.name}", abs_src_path=str(figure)))
    return files
