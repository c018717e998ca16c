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


def second_core_idle() -> bool:
    """Whether a second CPU is free for the PDF process to draw figures too (:class:`geoplan.report.pdf.PdfWorker`).

    That process then imports matplotlib, geopandas and mapclassify a second time (about 3–4 s CPU) to
    draw half of the figures on the other core: on an idle machine the report is ready sooner; on a busy
    one (load average of the last minute above the CPUs minus one, e.g. a test suite on every core) it
    only takes CPU from other programs, so it draws none. The outputs are the same either way.
    """
    cpus = n_threads(None)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available here: judge by the CPUs alone
        load = 0.0
    return cpus >= 2 and load <= cpus - 1


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
