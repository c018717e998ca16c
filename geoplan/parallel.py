"""How many worker threads a call may use (shared by interpolation, zonal statistics and sensitivity)."""

from __future__ import annotations

import os


def n_threads(n_jobs: int | None) -> int:
    """Worker threads: ``None`` or ``-1`` = all CPUs available to this process."""
    if n_jobs is None or n_jobs < 1:
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    return n_jobs
