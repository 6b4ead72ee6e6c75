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
        for fn in (_poly_rows_py, _poly_vjp_py, _lattice_bases_py):
            _COMPILED[fn.__name__] = njit(cache=True, nogil=True)(fn)
        # sums over atoms: fastmath lets them vectorise (reassociation changes round-off only)
        for fn in (_power_sums_t_py, _power_sums_gather_py, _moment_distance_py):
            _COMPILED[fn.__name__] = njit(cache=True, nogil=True, fastmath=True)(fn)
    return HAVE_NUMBA


def _poly_rows_py(AT, idx, coef, out, BT):  # pragma: no cover - compiled below
    # atoms along the fast axis: each term is one vectorisable loop over atoms, written
    # out for ranks 1-4 (one pass over the atoms per term, no scratch row)
    T, r = idx.shape
    n = AT.shape[1]
    if r == 1:
        for t in range(T):
            c, a0, bo = coef[t], AT[idx[t, 0]], BT[out[t]]
            for i in range(n):
                bo[i] += c * a0[i]
    elif r == 2:
        for t in range(T):
            c, a0, a1, bo = coef[t], AT[idx[t, 0]], AT[idx[t, 1]], BT[out[t]]
            for i in range(n):
                bo[i] += c * a0[i] * a1[i]
    elif r == 3:
        for t in range(T):
            c, bo = coef[t], BT[out[t]]
            a0, a1, a2 = AT[idx[t, 0]], AT[idx[t, 1]], AT[idx[t, 2]]
            for i in range(n):
                bo[i] += c * a0[i] * a1[i] * a2[i]
    elif r == 4:
        for t in range(T):
            c, bo = coef[t], BT[out[t]]
            a0, a1, a2, a3 = AT[idx[t, 0]], AT[idx[t, 1]], AT[idx[t, 2]], AT[idx[t, 3]]
            for i in range(n):
                bo[i] += c * a0[i] * a1[i] * a2[i] * a3[i]
    else:
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


def _power_sums_t_py(rowsT, seg, shift, sign, out):  # pragma: no cover - compiled below
    # rows transposed (features, atoms) and grouped by species: columns seg[c]:seg[c + 1]
    # are of species c, so every (feature, species) sum is a contiguous reduction
    K = rowsT.shape[0]
    P = out.shape[0]
    for f in range(K):
        r = rowsT[f]
        for c in range(len(seg) - 1):
            s = shift[c, f]
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            a4 = 0.0
            for i in range(seg[c], seg[c + 1]):
                y = r[i] - s
                y2 = y * y
                a1 += y
                a2 += y2
                if P > 2:
                    a3 += y2 * y
                    a4 += y2 * y2
            out[0, c, f] += sign * a1
            if P > 1:
                out[1, c, f] += sign * a2
            if P > 2:
                out[2, c, f] += sign * a3
            if P > 3:
                out[3, c, f] += sign * a4


def _power_sums_gather_py(rowsT, sites, seg, shift, sign,
                          out):  # pragma: no cover - compiled below
    # the same over columns ``sites`` of ``rowsT``, grouped by species: sites[seg[c]:seg[c+1]]
    K = rowsT.shape[0]
    P = out.shape[0]
    for f in range(K):
        r = rowsT[f]
        for c in range(len(seg) - 1):
            s = shift[c, f]
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            a4 = 0.0
            for i in range(seg[c], seg[c + 1]):
                y = r[sites[i]] - s
                y2 = y * y
                a1 += y
                a2 += y2
                if P > 2:
                    a3 += y2 * y
                    a4 += y2 * y2
            out[0, c, f] += sign * a1
            if P > 1:
                out[1, c, f] += sign * a2
            if P > 2:
                out[2, c, f] += sign * a3
            if P > 3:
                out[3, c, f] += sign * a4


def _moment_distance_py(S, n, shift, tmom, invs, wf, alpha, d):  # pragma: no cover
    # sum_p alpha_p sum_f wf_f |(M_p - T_p) / s^p|_d from power sums about ``shift``;
    # one loop over features per order, so that each vectorises
    P, F = S.shape
    inv_n = 1.0 / n
    Q = 0.0
    for p in range(P):
        a = alpha[p]
        if a == 0.0:
            continue
        t, v = tmom[p], invs[p]
        acc = 0.0
        for f in range(F):
            m = S[0, f] * inv_n
            if p == 0:
                M = shift[f] + m
            elif p == 1:
                M = S[1, f] * inv_n - m * m
            elif p == 2:
                M = S[2, f] * inv_n - 3.0 * m * S[1, f] * inv_n + 2.0 * m * m * m
            else:
                M = (S[3, f] * inv_n - 4.0 * m * S[2, f] * inv_n
                     + 6.0 * m * m * S[1, f] * inv_n - 3.0 * m * m * m * m)
            D = (M - t[f]) * v[f]
            acc += wf[f] * (np.sqrt(D * D + d * d) - d)
        Q += a * acc
    return Q


def moment_distance(S, n, shift, tmom, invs, wf, alpha, smoothing) -> float:
    """The GRS moment distance from power sums ``S`` (P, F) about ``shift`` of ``n``
    rows (compiled; P <= 4): ``sum_p alpha[p] sum_f wf_f |(M_p - tmom_p) invs_p|``, with
    the pseudo-Huber ``|x| = sqrt(x^2 + d^2) - d`` for ``d = smoothing > 0``."""
    return _COMPILED["_moment_distance_py"](S, float(n), shift, tmom, invs, wf, alpha,
                                            float(smoothing))


def add_power_sums_t(rowsT: np.ndarray, species: np.ndarray, shift: np.ndarray, sign: float,
                     out: np.ndarray, sites: np.ndarray | None = None) -> None:
    """``out[p - 1, c_i] += sign * (rows_i - shift[c_i])^p`` for ``p = 1..len(out)``
    (at most 4), rows stored transposed: ``rowsT`` (K, n) (compiled, in place).

    The rows are the columns ``sites`` of ``rowsT`` (default: all, in order), of species
    ``species`` (len(sites),). Sorted species without ``sites`` read contiguous columns.
    """
    if out.shape[0] > 4:
        raise ValueError("power sums are compiled up to the 4th power")
    species = np.asarray(species, dtype=np.intp)
    bounds = np.arange(shift.shape[0] + 1)
    if sites is None and not np.any(species[1:] < species[:-1]):
        _COMPILED["_power_sums_t_py"](rowsT, np.searchsorted(species, bounds), shift,
                                      float(sign), out)
        return
    sites = np.arange(len(species)) if sites is None else np.asarray(sites, dtype=np.intp)
    order = np.argsort(species, kind="stable")
    _COMPILED["_power_sums_gather_py"](rowsT, np.ascontiguousarray(sites[order]),
                                       np.searchsorted(species[order], bounds), shift,
                                       float(sign), out)


def _lattice_bases_py(A, species, affected, sites, old, new, col, centre, phi,
                      AT):  # pragma: no cover - compiled below
    # AT[:, k] = the base of site affected[k] as its new species, after the sites change
    na = phi.shape[3]
    width = AT.shape[0]
    local = np.full(A.shape[1], -1)
    for k in range(len(affected)):
        a = affected[k]
        local[a] = k
        row = A[species[a], a]
        for x in range(width):
            AT[x, k] = row[x]
    for t in range(len(sites)):
        s, a, b = sites[t], old[t], new[t]
        for q in range(col[s], col[s + 1]):
            ctr = centre[q]
            k = local[ctr]
            cc = species[ctr]
            pa, pb = phi[cc, a, q], phi[cc, b, q]
            for x in range(na):
                AT[a * na + x, k] -= pa[x]
                AT[b * na + x, k] += pb[x]


def lattice_bases(A, species, affected, sites, old, new, col, centre, phi) -> np.ndarray:
    """The atomic bases (transposed, (width, len(affected))) of the ``affected`` sites as
    their new ``species`` after ``sites`` change from species ``old`` to ``new``; ``A``
    (n_species, N, width) holds every site's base for every centre species and ``phi``
    the pair functions (see :class:`~ase_crystalgen.descriptors.local.LatticeBases`)."""
    AT = np.empty((A.shape[2], len(affected)))
    _COMPILED["_lattice_bases_py"](A, species, affected, sites, old, new, col, centre, phi, AT)
    return AT


def polynomial_t(AT: np.ndarray, terms, K: int) -> np.ndarray:
    """:func:`polynomial` of bases stored transposed, ``AT`` (width, n); returns ``BT``
    (K, n)."""
    BT = np.zeros((K, AT.shape[1]))
    kernel = _COMPILED["_poly_rows_py"]
    for idx, coef, out in terms:
        kernel(AT, idx, coef, out, BT)
    return BT


def polynomial(A: np.ndarray, terms, K: int) -> np.ndarray:
    """``B[:, out[t]] += coef[t] * prod_k A[:, idx[t, k]]`` over every ``(idx, coef, out)``
    of ``terms`` (compiled); returns ``B`` (n, K)."""
    return polynomial_t(np.ascontiguousarray(A.T), terms, K).T


def polynomial_vjp(A: np.ndarray, G: np.ndarray, terms) -> np.ndarray:
    """``dA = sum_t G[:, out[t]] d(term_t)/dA`` (compiled)."""
    AT = np.ascontiguousarray(A.T)
    GT = np.ascontiguousarray(G.T)
    dAT = np.zeros_like(AT)
    kernel = _COMPILED["_poly_vjp_py"]
    for idx, coef, out in terms:
        kernel(AT, GT, idx, coef, out, dAT)
    return dAT.T
