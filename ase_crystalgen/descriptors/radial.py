"""Radial basis (Chebyshev-exponential-cosine) and default per-element-pair cutoffs."""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers, chemical_symbols, vdw_radii
from ase.data.vdw_alvarez import vdw_radii as vdw_alvarez


def cheb_exp_cos(r: np.ndarray, rcut: np.ndarray, lam: np.ndarray, nmax: int):
    """Chebyshev-exponential-cosine radial functions and their derivatives.

    With the scaled distance ``x = 1 - 2 (exp(-lam (r/rc - 1)) - 1) / (exp(lam) - 1)``
    (``x = -1`` at ``r = 0`` and ``x = 1`` at ``r = rc``) and the cosine cutoff
    ``fc = (1 + cos(pi r / rc)) / 2``::

        g_1 = fc
        g_k = (1 - T_{k-1}(x)) fc / 2      for k = 2..nmax

    ``T`` is the Chebyshev polynomial of the first kind. Every ``g_k`` and its first
    derivative vanish at ``rc``; beyond ``rc`` they are zero.

    Parameters
    ----------
    r, rcut, lam : (n,) arrays (distance, cutoff and scaled-distance parameter per pair).
    nmax : number of functions.

    Returns
    -------
    g, dg : (n, nmax) arrays, values and derivatives with respect to ``r``.
    """
    r = np.asarray(r, dtype=float)
    rr = r / rcut
    inside = rr < 1.0
    fc = np.where(inside, 0.5 * (1.0 + np.cos(np.pi * rr)), 0.0)
    dfc = np.where(inside, -0.5 * np.pi / rcut * np.sin(np.pi * rr), 0.0)
    e = np.exp(-lam * (rr - 1.0))
    denom = np.expm1(lam)
    x = 1.0 - 2.0 * (e - 1.0) / denom
    dx = 2.0 * lam * e / (denom * rcut)
    n = len(r)
    g = np.empty((n, nmax))
    dg = np.empty((n, nmax))
    g[:, 0] = fc
    dg[:, 0] = dfc
    if nmax > 1:
        # Chebyshev T_k(x) and derivatives dT_k/dx via U_{k-1}: T_k' = k U_{k-1}
        T_prev, T = np.ones(n), x.copy()
        U_prev, U = np.ones(n), 2.0 * x  # U_0, U_1
        for k in range(1, nmax):
            # here T = T_k, U_prev = U_{k-1}
            dT = k * U_prev
            g[:, k] = 0.5 * (1.0 - T) * fc
            dg[:, k] = 0.5 * (-dT * dx * fc + (1.0 - T) * dfc)
            T_prev, T = T, 2.0 * x * T - T_prev
            U_prev, U = U, 2.0 * x * U - U_prev
    return g, dg


def _d_block_ratio() -> float:
    """Median ratio of ASE's default (Bondi-type) to Alvarez's van der Waals radii over
    the d-block metals that have both (about 0.69: Alvarez's radii are larger)."""
    d_block = list(range(21, 31)) + list(range(39, 49)) + list(range(72, 81))
    ratios = [vdw_radii[z] / vdw_alvarez[z] for z in d_block
              if np.isfinite(vdw_radii[z]) and np.isfinite(vdw_alvarez[z])]
    return float(np.median(ratios))


ALVAREZ_SCALE = _d_block_ratio()

#: default cutoffs are clipped to this range (Angstrom): 4-7 neighbour shells of most solids
CUTOFF_RANGE = (4.5, 7.0)


def vdw_radius(symbol: str) -> float:
    """Van der Waals radius in Angstrom from ASE's default table. Elements it lacks (Fe,
    Cr, V, Ti, Mo, W, Ta, ...) take Alvarez's (2013) radius times :data:`ALVAREZ_SCALE`,
    so that the two tables give comparable values (Alvarez's are ~45 % larger for metals,
    which would otherwise double the number of neighbour shells)."""
    z = atomic_numbers[symbol]
    r = vdw_radii[z]
    if not np.isfinite(r):
        r = vdw_alvarez[z] * ALVAREZ_SCALE
    if not np.isfinite(r):
        raise ValueError(f"no van der Waals radius tabulated for {symbol}")
    return float(r)


def default_cutoffs(elements, scale: float = 2.0) -> dict[tuple[str, str], float]:
    """Per-pair cutoffs ``rc(a, b) = scale * (r_vdw(a) + r_vdw(b))``, clipped to
    :data:`CUTOFF_RANGE`.

    With ``scale = 2`` this is 5.6 A for Cu-Cu and 6.64 A for Au-Au (4-5 neighbour shells
    of the fcc metals) and 6.7 A for Fe-Fe (6 bcc shells), within the 4-7 shells the GRS
    paper recommends; main-group elements with large van der Waals radii (Si: 8.4 A
    unclipped) are held at 7 A.
    """
    lo, hi = CUTOFF_RANGE
    out = {}
    for a in elements:
        for b in elements:
            out[(a, b)] = float(np.clip(scale * (vdw_radius(a) + vdw_radius(b)), lo, hi))
    return out


def validate_element(symbol: str) -> str:
    if symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}")
    return chemical_symbols[atomic_numbers[symbol]]
