"""Real spherical harmonics with gradients, Clebsch-Gordan coefficients and the
generalised Clebsch-Gordan coupling tensors that make rotation invariants.

Conventions
-----------
* Real, orthonormal spherical harmonics ``Y_lm`` ordered ``m = -l..l`` (the usual
  "tesseral" harmonics: ``m < 0`` the sine, ``m > 0`` the cosine combinations).
* Clebsch-Gordan coefficients in the Condon-Shortley phase (Racah's formula).
* Coupling tensors are built in the complex basis with a left-coupled tree
  ``((l1 l2) L1 l3) L2 ... l_N -> 0`` and transformed to the real basis; each is a real
  tensor of unit Frobenius norm whose contraction with ``N`` real vectors of degree
  ``l_1..l_N`` is invariant under rotations.
"""

from __future__ import annotations

import itertools
from functools import cache
from math import comb, factorial, pi, sqrt

import numpy as np


def n_lm(lmax: int) -> int:
    """Number of (l, m) pairs for ``l <= lmax``."""
    return (lmax + 1) ** 2


def lm_index(l: int, m: int) -> int:  # noqa: E743
    """Flat index of ``(l, m)`` in the ``(lmax+1)^2`` layout."""
    return l * l + l + m


@cache
def _legendre_part(l: int, m: int) -> np.ndarray:
    """Polynomial coefficients (highest power first) in z of the associated Legendre
    factor of the real harmonic on the unit sphere, including the normalisation."""
    coeffs = np.zeros(l - m + 1)
    for k in range((l - m) // 2 + 1):
        power = l - 2 * k - m
        c = (-1) ** k * comb(l, k) * comb(2 * l - 2 * k, l) * factorial(l - 2 * k)
        c /= factorial(l - 2 * k - m) * 2**l
        coeffs[len(coeffs) - 1 - power] += c
    norm = sqrt((2 * l + 1) / (4 * pi)) * sqrt(factorial(l - m) / factorial(l + m))
    if m > 0:
        norm *= sqrt(2.0)
    return coeffs * norm


def real_sph_harm(u: np.ndarray, lmax: int, grad: bool = False):
    """Real orthonormal spherical harmonics of unit vectors.

    Parameters
    ----------
    u : (n, 3) array of unit vectors.
    lmax : maximal degree.
    grad : also return the gradient of each harmonic with respect to ``u`` along the
        sphere (tangential). For a vector ``r = |r| u`` the gradient with respect to
        ``r`` is this divided by ``|r|``.

    Returns
    -------
    Y : (n, (lmax+1)^2) array; and, with ``grad``, dY : (n, (lmax+1)^2, 3).
    """
    u = np.asarray(u, dtype=float)
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    n = len(u)
    Y = np.empty((n, n_lm(lmax)))
    dP = np.zeros((n, n_lm(lmax), 3)) if grad else None
    w = x + 1j * y
    wpow = [np.ones(n, dtype=complex)]
    for _ in range(lmax):
        wpow.append(wpow[-1] * w)
    for l in range(lmax + 1):  # noqa: E741
        for m in range(l + 1):
            c = _legendre_part(l, m)
            p = np.polyval(c, z)
            re, im = wpow[m].real, wpow[m].imag
            Y[:, lm_index(l, m)] = p * re
            if m > 0:
                Y[:, lm_index(l, -m)] = p * im
            if grad:
                dp = np.polyval(np.polyder(c), z) if len(c) > 1 else np.zeros(n)
                if m > 0:
                    dw = m * wpow[m - 1]  # d/dx (x+iy)^m; d/dy is i times that
                    dP[:, lm_index(l, m)] = np.stack([p * dw.real, -p * dw.imag, dp * re], 1)
                    dP[:, lm_index(l, -m)] = np.stack([p * dw.imag, p * dw.real, dp * im], 1)
                else:
                    dP[:, lm_index(l, 0), 2] = dp
    if not grad:
        return Y
    # project onto the tangent plane of the sphere
    radial = np.einsum("nkc,nc->nk", dP, u)
    dY = dP - radial[:, :, None] * u[:, None, :]
    return Y, dY


# ---------------------------------------------------------------------------------------
# Clebsch-Gordan coefficients and coupling tensors


@cache
def clebsch_gordan(j1: int, m1: int, j2: int, m2: int, J: int, M: int) -> float:
    """<j1 m1 j2 m2 | J M> for integer angular momenta (Racah's formula)."""
    if m1 + m2 != M or abs(m1) > j1 or abs(m2) > j2 or abs(M) > J:
        return 0.0
    if J < abs(j1 - j2) or J > j1 + j2:
        return 0.0
    f = factorial
    pref = (2 * J + 1) * f(J + j1 - j2) * f(J - j1 + j2) * f(j1 + j2 - J) / f(j1 + j2 + J + 1)
    pref *= f(J + M) * f(J - M) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2)
    s = 0.0
    kmin = max(0, j2 - J - m1, j1 - J + m2)
    kmax = min(j1 + j2 - J, j1 - m1, j2 + m2)
    for k in range(kmin, kmax + 1):
        s += (-1) ** k / (
            f(k) * f(j1 + j2 - J - k) * f(j1 - m1 - k) * f(j2 + m2 - k)
            * f(J - j2 + m1 + k) * f(J - j1 - m2 + k)
        )
    return sqrt(pref) * s


@cache
def complex_to_real(l: int) -> np.ndarray:  # noqa: E741
    """Unitary ``U`` with ``Y_real = U @ Y_complex`` (Condon-Shortley complex harmonics).

    Derived in closed form: for m > 0, Y_{l,m}^R = sqrt(2) (-1)^m Re Y_l^m and
    Y_{l,-m}^R = sqrt(2) (-1)^m Im Y_l^m, with Y_l^{-m} = (-1)^m conj(Y_l^m).
    """
    d = 2 * l + 1
    U = np.zeros((d, d), dtype=complex)
    U[l, l] = 1.0
    s = 1 / sqrt(2)
    for m in range(1, l + 1):
        sign = (-1) ** m
        # Re Y^m = (Y^m + conj Y^m)/2 = (Y^m + (-1)^m Y^-m)/2
        U[l + m, l + m] = sign * s
        U[l + m, l - m] = s
        # Im Y^m = (Y^m - (-1)^m Y^-m)/(2i)
        U[l - m, l + m] = -1j * sign * s
        U[l - m, l - m] = 1j * s
    return U


def coupling_trees(ls: tuple[int, ...]) -> list[tuple[int, ...]]:
    """All intermediate couplings ``(L1, ..., L_{N-2})`` of a left-coupled tree that
    couples degrees ``ls`` to a total of zero."""
    N = len(ls)
    if N == 1:
        return [()] if ls[0] == 0 else []
    if N == 2:
        return [()] if ls[0] == ls[1] else []
    out = []

    def rec(prefix, current, k):
        # current: the angular momentum after coupling ls[:k]
        if k == N - 1:
            if current == ls[-1]:
                out.append(tuple(prefix))
            return
        for L in range(abs(current - ls[k]), current + ls[k] + 1):
            rec(prefix + [L], L, k + 1)

    for L1 in range(abs(ls[0] - ls[1]), ls[0] + ls[1] + 1):
        rec([L1], L1, 2)
    return out


def _complex_coupling(ls: tuple[int, ...], Ls: tuple[int, ...]) -> np.ndarray:
    """Generalised Clebsch-Gordan tensor in the complex basis, shape (2l_1+1, ...)."""
    N = len(ls)
    if N == 1:
        return np.ones(1, dtype=complex)
    shape = tuple(2 * l + 1 for l in ls)
    G = np.zeros(shape, dtype=complex)
    # full chain of total momenta after each coupling step: L1, ..., L_{N-2}, 0
    chain = list(Ls) + [0]
    for ms in itertools.product(*[range(-l, l + 1) for l in ls]):
        if sum(ms) != 0:
            continue
        val = 1.0
        Jprev, Mprev = ls[0], ms[0]
        for k in range(1, N):
            J = chain[k - 1]
            M = Mprev + ms[k]
            val *= clebsch_gordan(Jprev, Mprev, ls[k], ms[k], J, M)
            if val == 0.0:
                break
            Jprev, Mprev = J, M
        G[tuple(m + l for m, l in zip(ms, ls))] = val
    return G


@cache
def real_coupling(ls: tuple[int, ...], Ls: tuple[int, ...] = ()) -> np.ndarray:
    """Rotation-invariant coupling tensor in the real basis (unit Frobenius norm).

    The sign is fixed so that the element with all ``m = 0`` is positive, or, where
    that vanishes, the first non-zero element in C order.
    """
    G = _complex_coupling(ls, Ls)
    for axis, l in enumerate(ls):
        Ud = complex_to_real(l).conj().T  # A_complex = U^dagger A_real
        G = np.moveaxis(np.tensordot(G, Ud, axes=([axis], [0])), -1, axis)
    re, im = G.real, G.imag
    R = re if np.linalg.norm(re) >= np.linalg.norm(im) else im
    norm = np.linalg.norm(R)
    if norm < 1e-12:
        return np.zeros_like(R)
    R = R / norm
    R[np.abs(R) < 1e-14] = 0.0
    centre = tuple(l for l in ls)
    ref = R[centre]
    if abs(ref) < 1e-12:
        ref = R.flat[np.flatnonzero(np.abs(R) > 1e-12)[0]]
    return R if ref > 0 else -R


def wigner_d_real(lmax: int, rotation: np.ndarray, n_quad: int = 0) -> list[np.ndarray]:
    """Real-basis rotation matrices ``D_l`` with ``Y(R u) = D_l Y(u)`` (fitted on points;
    used by tests and by the invariant-space dimension check)."""
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(max(n_quad, 4 * n_lm(lmax)), 3))
    pts /= np.linalg.norm(pts, axis=1)[:, None]
    Y = real_sph_harm(pts, lmax)
    YR = real_sph_harm(pts @ rotation.T, lmax)
    out = []
    for l in range(lmax + 1):
        sl = slice(l * l, (l + 1) ** 2)
        D, *_ = np.linalg.lstsq(Y[:, sl], YR[:, sl], rcond=None)
        out.append(D.T)
    return out
