"""How every benchmark reports: where results go, intervals, table cells, timing and memory.

``RESULTS`` is ``benchmarks/results`` unless ``TFSCORECAM_BENCH_RESULTS`` names another folder
(the CI smoke runs, ``tests/test_benchmarks.py``, write there so that they never touch the
committed tables).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from tfscorecam import metrics

RESULTS = Path(os.environ.get("TFSCORECAM_BENCH_RESULTS") or Path(__file__).parent / "results")


def command() -> str:
    """The command line that produced a report, as the table's caption quotes it."""
    return f"`python -m {sys.modules['__main__'].__spec__.name} {' '.join(sys.argv[1:])}`"


def bootstrap(values: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and its 95% percentile-bootstrap interval."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (rounds, len(values)))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def cell(values: np.ndarray | None, sign: bool = False, digits: int = 3) -> str:
    """Mean [95% bootstrap interval] of per-photo values (NaN left out) as table text; "-"
    when there are none."""
    values = None if values is None else np.asarray(values, np.float64)
    if values is None or not np.any(~np.isnan(values)):
        return "-"
    spec = f"{{:{'+' if sign else ''}.{digits}f}}"
    return "{} [{}, {}]".format(*(spec.format(v) for v in bootstrap(values[~np.isnan(values)])))


def paired(rows_a: np.ndarray, a: np.ndarray, rows_b: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-photo differences a - b on the photos (rows) both were computed on."""
    common = np.intersect1d(rows_a, rows_b)
    return a[np.searchsorted(rows_a, common)] - b[np.searchsorted(rows_b, common)]


def interval(point: float, resampled: np.ndarray) -> str:
    """A difference on all photos and its 95% percentile-bootstrap interval over
    ``resampled`` (the same statistic on each resample)."""
    low, high = np.percentile(resampled, [2.5, 97.5])
    return f"{point:+.3f} [{low:+.3f}, {high:+.3f}]"


def mean_difference(a: np.ndarray, b: np.ndarray, resamples: np.ndarray) -> str:
    """Mean of a - b with its interval over the resamples (rows of photo indices), which every
    row of a table shares, so that its intervals are paired."""
    difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return interval(float(difference.mean()), difference[resamples].mean(axis=1))


class PairedBoxAccuracy:
    """MaxBoxAccV2 of named maps of the same photos, and the difference of any two with its
    95% interval over paired bootstrap resamples (each map's threshold re-chosen in every
    resample, as wsolevaluation's protocol chooses it on the whole set)."""

    def __init__(
        self, maps: dict, boxes: list, rounds: int = 2000, rng: np.random.Generator | None = None
    ) -> None:
        n = len(boxes)
        rng = np.random.default_rng(0) if rng is None else rng  # a study's own draws go on
        self.resamples = rng.integers(0, n, (rounds, n))
        self.accuracy = {name: metrics.max_box_accuracy(m, boxes) for name, m in maps.items()}
        self._resampled: dict[str, np.ndarray] = {}

    def value(self, name: str) -> float:
        """MaxBoxAccV2 of map ``name`` on all photos."""
        return self.accuracy[name].value

    def minus(self, name: str, other: str | None) -> str:
        """``name``'s MaxBoxAccV2 minus ``other``'s with its interval; "" when ``other`` is
        None, ``name`` itself or not among the maps."""
        if other is None or other == name or other not in self.accuracy:
            return ""
        point = self.value(name) - self.value(other)
        return interval(point, self.resampled(name) - self.resampled(other))

    def resampled(self, name: str) -> np.ndarray:
        """``name``'s MaxBoxAccV2 on each resample (computed once)."""
        if name not in self._resampled:
            score = self.accuracy[name].score
            self._resampled[name] = np.array([score(r) for r in self.resamples])
        return self._resampled[name]


def paired_rows(values: dict, reference: str, resamples: np.ndarray) -> list[str]:
    """Markdown rows ``| name | mean | minus the reference's | ... |``: for each map, per-photo
    values of one or more measures (a tuple of arrays), each measure's mean and its paired
    difference from ``reference``'s."""
    base = values[reference]
    return [
        f"| {name} | "
        + " | ".join(
            f"{a.mean():.4f} | {mean_difference(a, b, resamples)}"
            for a, b in zip(measures, base, strict=True)
        )
        + " |"
        for name, measures in values.items()
    ]


def best_of(fn, repeat: int = 3, warm: bool = False) -> float:
    """Smallest wall time of ``repeat`` calls of fn(), in seconds (after one untimed call,
    for tracing, with ``warm``)."""
    if warm:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rss_mib(field: str = "VmHWM") -> float:
    """This process's resident memory in MiB: its peak so far (``VmHWM``) or now (``VmRSS``).

    Read from /proc/self/status on Linux: ``ru_maxrss`` survives ``exec`` after a vfork-style
    spawn and would report the parent's peak in a subprocess.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if field == "VmHWM":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return float("nan")


@contextlib.contextmanager
def bar_shown():
    """Progress bars shown as on a terminal (a benchmark's output is not one), drawn into a
    buffer that is thrown away: the bar's cost is measured, its text is not printed."""
    from tfscorecam.core import progress

    before = progress.interactive
    progress.interactive = lambda: True
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        progress.interactive = before
