"""Thread control for the small linear algebra of structure optimisation."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path


def single_threaded_blas():
    """Context manager limiting BLAS to one thread where threadpoolctl is installed.

    GRS minimisation does tiny matrix work (3x3 cell algebra in ASE's cell filters, a few
    hundred descriptors); on a shared or small machine OpenBLAS threads spin-waiting on
    each other made it ten times slower than one thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores() -> float:
    """Cores other processes keep busy now: runnable tasks in ``/proc/loadavg``, less this reader.

    The median of five readings 10 ms apart, instantaneous rather than the 1-minute load
    average, so that this process's own earlier work does not count against it. Where there is
    no ``/proc/loadavg`` (not Linux), the 1-minute load average.
    """
    readings = []
    for k in range(5):
        try:
            running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
        except (OSError, IndexError):
            try:
                return float(os.getloadavg()[0])
            except (AttributeError, OSError):
                return 0.0
        readings.append(max(0, int(running) - 1))
        if k < 4:
            time.sleep(0.01)
    return float(sorted(readings)[2])


def default_threads() -> int:
    """Threads for torch inference: ``OMP_NUM_THREADS`` when set, else the free cores.

    Free cores are the usable cores (CPU affinity) less those other processes keep busy
    (:func:`busy_cores`), at least 1: a sampler with more threads than free cores spends its
    time waiting for the others (measured on 2 busy cores: 8 samples took 117-169 s with 2
    threads and 3.4 s with 1).
    """
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS={value!r} is not a whole number") from None
        if n < 1:
            raise ValueError(f"OMP_NUM_THREADS={value!r} must be at least 1")
        return n
    cores = usable_cores()
    return max(1, min(cores, cores - int(round(busy_cores()))))


@contextlib.contextmanager
def torch_threads(threads: int | None = None) -> Iterator[int]:
    """Run torch with ``threads`` intra-op threads (default :func:`default_threads`), then restore.

    Yields the number used. Raises ValueError for a count below 1.
    """
    import torch

    if threads is None:
        n = default_threads()
    else:
        if isinstance(threads, bool) or int(threads) != threads or int(threads) < 1:
            raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
        n = int(threads)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
