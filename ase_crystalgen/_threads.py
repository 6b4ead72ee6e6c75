"""Thread control for the small linear algebra of structure optimisation."""

from __future__ import annotations

import contextlib


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
