"""Threads and processes: how many worker threads a call may use (shared by interpolation, zonal statistics
and sensitivity), and how geoplan's processes end (:func:`leave`)."""

from __future__ import annotations

import os
import sys


def n_threads(n_jobs: int | None) -> int:
    """Worker threads: ``None`` or ``-1`` = all CPUs available to this process."""
    if n_jobs is None or n_jobs < 1:
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    return n_jobs


def runnable_now(samples: int = 5) -> int | None:
    """How many threads on this machine want a CPU now, this one included (Linux: the fourth field of
    /proc/loadavg, the least of a few samples 2 ms apart, so that a program waiting briefly is not
    counted as idle and a short burst of another is); None where there is no /proc/loadavg."""
    import time

    seen = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                seen.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return None
        if i + 1 < samples:
            time.sleep(0.002)
    return min(seen)


def second_core_idle() -> bool:
    """Whether a second CPU is free for the PDF process to draw figures too (:class:`geoplan.report.pdf.PdfWorker`).

    That process then imports matplotlib, geopandas and mapclassify a second time (about 3–4 s CPU) to
    draw half of the figures on the other core: on an idle machine the report is ready sooner; on a busy
    one (every CPU wanted now, e.g. by a test suite on every core) it only takes CPU from other programs,
    so it draws none. The outputs are the same either way. Judged by the threads that want a CPU now
    (:func:`runnable_now`), not by the load average, which still counts the last run a minute later;
    without /proc/loadavg by the load average of the last minute (at most CPUs − 1).
    """
    cpus = n_threads(None)
    if cpus < 2:
        return False
    now = runnable_now()
    if now is not None:
        return now <= cpus - 1  # this thread and at most CPUs − 2 others
    try:
        return os.getloadavg()[0] <= cpus - 1
    except (AttributeError, OSError):  # no load figures at all: judge by the CPUs alone
        return True


def leave(code: int) -> None:  # pragma: no cover - ends the process (tests run the CLI and the PDF worker as processes)
    """End the process with ``code`` without the interpreter's teardown.

    Used where a process's work is done: the ``geoplan`` command (:func:`geoplan.cli.entry`) and the PDF
    process once bericht.pdf is written (the parent waits for it to end). Freeing the objects of
    the loaded libraries one by one took about 0.6–0.7 s at the end of each. What a normal exit
    does first still runs: the ``atexit`` functions (temporary folders, logging) and flushing the
    standard streams; every output file is closed by then.
    """
    import atexit

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:  # not CPython: the normal exit
        sys.exit(code)
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
