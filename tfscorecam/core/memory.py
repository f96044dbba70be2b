"""Memory budgets: what grows with the map size or the number of views is estimated before it
is allocated, and refused with one line when it cannot fit.

Two limits apply: the explainer's own budget (an option, a fixed number of bytes, so that the
same call gives the same map on every machine) and what this machine can hold now: half of
the memory available (``MemAvailable``, and the address space left under ``ulimit -v``).
"""

from __future__ import annotations

import resource
from pathlib import Path

GIB = 2**30
DEFAULT_BUDGET = 3 * GIB  # what one image's views and fusion may take by default


def available_bytes() -> int | None:
    """The memory this process can still take: the smaller of the system's available memory
    and the address space left under its limit (``ulimit -v``); None where unknown."""
    found = []
    status, meminfo = Path("/proc/self/status"), Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY and status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmSize:"):
                found.append(max(limit - int(line.split()[1]) * 1024, 0))
    return min(found) if found else None


def check_fits(needed: int, budget: int, what: str, fix: str) -> None:
    """Refuse ``what``, which needs about ``needed`` bytes, when that is over ``budget`` or
    over half the memory this machine has available now; ``fix`` says what to change."""
    if needed > budget:
        raise MemoryError(
            f"{what} needs about {needed / GIB:.2f} GiB, over its memory budget of "
            f"{budget / GIB:.2f} GiB: {fix}"
        )
    available = available_bytes()
    if available is not None and needed > available / 2:
        raise MemoryError(
            f"{what} needs about {needed / GIB:.2f} GiB, more than half the "
            f"{available / GIB:.2f} GiB this machine has available now: {fix}"
        )
