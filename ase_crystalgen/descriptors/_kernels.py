"""Compiled loops for the ACE polynomial (numba), with NumPy equivalents as the fallback.

The descriptors are sums of products of atomic-base entries, ``B[i, out[t]] += coef[t] *
prod_k A[i, idx[t, k]]``. NumPy has to materialise every product as an (n, T) array; a
compiled loop keeps ``A[i]`` in cache and touches each term once, which is what makes a
Monte Carlo trial on a fixed lattice cheap. numba is a dependency of this field's stack
(icet uses it); if it cannot be imported the NumPy path gives the same numbers.

``ASE_CRYSTALGEN_NO_NUMBA=1`` forces the NumPy path (tests compare the two).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

#: numba is imported (and the loops compiled, or loaded from its cache) on first use, so
#: that ``import ase_crystalgen`` stays light
HAVE_NUMBA = (not os.environ.get("ASE_CRYSTALGEN_NO_NUMBA")
              and importlib.util.find_spec("numba") is not None)
_COMPILED: dict = {}


def enabled() -> bool:
    """Whether the compiled loops are used (numba importable and not disabled)."""
    global HAVE_NUMBA
    if HAVE_NUMBA and not _COMPILED:
        try:
            from numba import njit
        except ImportError:  # pragma: no cover - a broken numba: NumPy it is
            HAVE_NUMBA = False
            return False
        for fn in (_poly_rows_py, _poly_vjp_py, _power_sums_py):
            _COMPILED[fn.__name__] = njit(cache=True, nogil=True)(fn)
    return HAVE_NUMBA


def _poly_rows_py(AT, idx, coef, out, BT):  # pragma: no cover - compiled below
    # atoms along the fast axis: each term is one vectorisable loop over atoms
    T, r = idx.shape
    n = AT.shape[1]
    tmp = np.empty(n)
    for t in range(T):
        c = coef[t]
        a0 = AT[idx[t, 0]]
        for i in range(n):
            tmp[i] = c * a0[i]
        for k in range(1, r):
            ak = AT[idx[t, k]]
            for i in range(n):
                tmp[i] *= ak[i]
        bo = BT[out[t]]
        for i in range(n):
            bo[i] += tmp[i]


def _poly_vjp_py(AT, GT, idx, coef, out, dAT):  # pragma: no cover - compiled below
    T, r = idx.shape
    n = AT.shape[1]
    tmp = np.empty(n)
    for t in range(T):
        c = coef[t]
        g = GT[out[t]]
        for k in range(r):
            for i in range(n):
                tmp[i] = c * g[i]
            for kk in range(r):
                if kk != k:
                    ak = AT[idx[t, kk]]
                    for i in range(n):
                        tmp[i] *= ak[i]
            d = dAT[idx[t, k]]
            for i in range(n):
                d[i] += tmp[i]


def _power_sums_py(rows, species, shift, sign, out):  # pragma: no cover - compiled below
    m, K = rows.shape
    P = out.shape[0]
    y = np.empty(K)
    yp = np.empty(K)
    for i in range(m):
        c = species[i]
        r = rows[i]
        s = shift[c]
        for f in range(K):
            y[f] = r[f] - s[f]
            yp[f] = sign * y[f]
        for p in range(P):
            if p:
                for f in range(K):
                    yp[f] *= y[f]
            o = out[p, c]
            for f in range(K):
                o[f] += yp[f]


def add_power_sums(rows: np.ndarray, species: np.ndarray, shift: np.ndarray, sign: float,
                   out: np.ndarray) -> None:
    """``out[p - 1, s_i] += sign * (rows[i] - shift[s_i])^p`` for every row ``i`` and
    ``p = 1..len(out)`` (in place; compiled)."""
    _COMPILED["_power_sums_py"](np.ascontiguousarray(rows),
                                np.ascontiguousarray(species, dtype=np.intp), shift,
                                float(sign), out)


def polynomial(A: np.ndarray, terms, K: int) -> np.ndarray:
    """``B[:, out[t]] += coef[t] * prod_k A[:, idx[t, k]]`` over every ``(idx, coef, out)``
    of ``terms`` (compiled); returns ``B`` (n, K)."""
    AT = np.ascontiguousarray(A.T)
    BT = np.zeros((K, A.shape[0]))
    kernel = _COMPILED["_poly_rows_py"]
    for idx, coef, out in terms:
        kernel(AT, idx, coef, out, BT)
    return BT.T


def polynomial_vjp(A: np.ndarray, G: np.ndarray, terms) -> np.ndarray:
    """``dA = sum_t G[:, out[t]] d(term_t)/dA`` (compiled)."""
    AT = np.ascontiguousarray(A.T)
    GT = np.ascontiguousarray(G.T)
    dAT = np.zeros_like(AT)
    kernel = _COMPILED["_poly_vjp_py"]
    for idx, coef, out in terms:
        kernel(AT, GT, idx, coef, out, dAT)
    return dAT.T
