"""The output folder of ``explain_dataset``: Parquet rows written whole and renamed into place,
the run's recorded settings, the tidying that makes a stopped run resumable, and reading the
rows back."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

COLUMNS = (
    "path",
    "class_index",
    "class_name",
    "score",
    "heatmap",
    "map_peak",
    "map_depth",
    "map_height",
    "map_width",
    "image_depth",
    "image_height",
    "image_width",
    "method",
    "seconds",
    "error",
    "warning",
)


def require(module: str):
    """``module`` imported, or an ImportError that names the ``dataset`` extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"explain_dataset needs {module.split('.')[0]}: python -m pip install "
            "'ray[data]>=2.40,<3' 'pyarrow>=15' pandas"
        ) from None


def _schema():
    pa = require("pyarrow")
    return pa.schema(
        [
            ("path", pa.string()),
            ("class_index", pa.int32()),
            ("class_name", pa.string()),
            ("score", pa.float32()),
            ("heatmap", pa.list_(pa.float16())),
            ("map_peak", pa.float32()),
            ("map_depth", pa.int32()),
            ("map_height", pa.int32()),
            ("map_width", pa.int32()),
            ("image_depth", pa.int32()),
            ("image_height", pa.int32()),
            ("image_width", pa.int32()),
            ("method", pa.string()),
            ("seconds", pa.float32()),
            ("error", pa.string()),
            ("warning", pa.string()),
        ]
    )


def write_rows(out: Path, rows: list[dict], prefix: str) -> None:
    """Write rows as one Parquet file, renamed into place once complete."""
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    table = pa.Table.from_pylist(rows, schema=_schema())
    name = f"{prefix}-{uuid.uuid4().hex}.parquet"
    partial = out / f".{name}.partial"
    pq.write_table(table, partial)
    os.replace(partial, out / name)


def _files(out: Path, prefix: str) -> list[Path]:
    return sorted(out.glob(f"{prefix}-*.parquet"))


def _read(files: list[Path], columns: list[str] | None = None):
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    if not files:
        return (
            _schema().empty_table() if columns is None else _schema().empty_table().select(columns)
        )
    wanted = columns or _schema().names
    tables = []
    for file in files:  # files of a version before a column (warning, map_peak) get nulls
        present = set(pq.read_schema(file).names)
        table = pq.read_table(file, columns=[c for c in wanted if c in present])
        for missing in [c for c in wanted if c not in present]:
            nulls = pa.nulls(len(table), _schema().field(missing).type)
            table = table.append_column(missing, nulls)
        tables.append(table.select(wanted))
    return pa.concat_tables(tables)


def tidy(out: Path) -> set[str]:
    """Make the output consistent and return the paths already explained.

    Drops partial files of a stopped run, and error rows whose image has since been explained
    or that a later error row replaces (one error row per image, the newest file's)."""
    for partial in out.glob(".*.partial"):
        partial.unlink()
    done = set(_read(_files(out, "part"), ["path"]).column("path").to_pylist())
    error_files = _files(out, "errors")
    if not error_files:
        return done
    newest: dict[str, dict] = {}
    for file in sorted(error_files, key=lambda f: f.stat().st_mtime_ns):
        for row in _read([file]).to_pylist():
            if row["path"] not in done:
                newest[row["path"]] = row
    kept = list(newest.values())
    if kept:
        write_rows(out, kept, "errors")
    for file in error_files:
        file.unlink()
    return done


def read_results(out: str | os.PathLike):
    """The results under ``out`` as a pandas DataFrame, one row per image (``COLUMNS``)."""
    require("pandas")
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no results folder {out}")
    pa = require("pyarrow")
    pd = require("pandas")
    table = _read(_files(out, "part") + _files(out, "errors"))
    # integer columns stay integers (pandas' nullable Int32) when error rows hold nulls
    return table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)


def heatmap(row) -> np.ndarray:
    """The (map_height, map_width) float32 map of a result row (a DataFrame row or a dict);
    a volume's (map_depth, map_height, map_width)."""
    depth = row.get("map_depth")  # None or pandas' NA for an image
    shape: tuple = (row["map_height"], row["map_width"])
    shape = (int(depth), *shape) if isinstance(depth, (int, np.integer)) else shape
    return np.asarray(row["heatmap"], np.float32).reshape(shape)


def check_settings(out: Path, settings: dict) -> None:
    """Record ``settings`` in a new output folder; refuse a folder made with other ones."""
    record = out / "settings.json"
    if record.is_file():
        earlier = json.loads(record.read_text())
        if earlier != settings:
            changed = [k for k in settings if settings[k] != earlier.get(k)]
            then = ", ".join(f"{k}={earlier.get(k)!r}" for k in changed)
            now = ", ".join(f"{k}={settings[k]!r}" for k in changed)
            raise ValueError(
                f"{out} holds results made with other settings ({then}; this run: {now}), "
                "whose rows would be taken as done. Use another output folder for these "
                "settings, or delete it to start again"
            )
        return
    if _files(out, "part") or _files(out, "errors"):
        raise ValueError(
            f"{out} holds results without recorded settings (an earlier tfscorecam version), so "
            "they cannot be matched to this run: use another output folder"
        )
    record.write_text(json.dumps(settings, indent=1, sort_keys=True))
