"""Overlay PNGs drawn from a finished run's stored maps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tfscorecam.interfaces.dataset.store import heatmap, read_results


def write_overlays(
    out: str | os.PathLike,
    folder: str | os.PathLike | None = None,
    alpha: float = 0.4,
    colormap: str = "jet",
) -> int:
    """Overlay PNGs of the explained rows under ``out`` (into ``folder``, default
    ``out/overlays``), from the stored heatmaps: nothing is recomputed (a volume's: a montage
    of its slices, ``volumes.montage``). Returns the count."""
    from tfscorecam.interfaces.explanation import Explanation
    from tfscorecam.interfaces.filenames import distinct_stems, overlay_name
    from tfscorecam.interfaces.images import display_image, resize
    from tfscorecam.interfaces.volumes import display_volume, load_volume

    table = read_results(out)
    settings = Path(out) / "settings.json"
    output = (
        json.loads(settings.read_text())["options"].get("output") if settings.is_file() else None
    )
    folder = Path(folder) if folder is not None else Path(out) / "overlays"
    folder.mkdir(parents=True, exist_ok=True)
    explained = table[table["error"].isna()]
    for stem, (_, row) in zip(
        distinct_stems(list(explained["path"])), explained.iterrows(), strict=True
    ):
        heat = heatmap(row)
        if heat.ndim == 3:  # a volume's: at its own size, shown as a montage
            volume = load_volume(row["path"])
            image = display_volume(volume[..., None] if volume.ndim == 3 else volume)
        else:
            image = display_image(row["path"])
            heat = resize(heat[..., None], image.shape[:2])[..., 0]
        name = row["class_name"] if isinstance(row["class_name"], str) else None
        explanation = Explanation(
            heatmap=np.clip(heat, 0, 1),
            class_index=int(row["class_index"]),
            class_name=name,
            score=float(row["score"]),
            image=np.clip(np.round(image), 0, 255).astype(np.uint8),
            method=row["method"],
        )
        file = overlay_name(stem, row["method"], output, int(row["class_index"]), name)
        explanation.save(folder / file, alpha, colormap)
    return len(explained)
