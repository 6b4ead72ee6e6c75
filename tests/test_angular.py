"""Spherical harmonics, Clebsch-Gordan coefficients and coupling tensors."""

import numpy as np
import pytest
import scipy.special as sp
from scipy.spatial.transform import Rotation
from sympy.physics.quantum.cg import CG

from ase_crystalgen.descriptors.angular import (
    clebsch_gordan,
    complex_to_real,
    coupling_trees,
    real_coupling,
    real_sph_harm,
    wigner_d_real,
)


def sphere_quadrature(n=20):
    """Gauss-Legendre in cos(theta) x uniform phi: exact for degree < 2n polynomials."""
    x, w = np.polynomial.legendre.leggauss(n)
    phi = np.arange(2 * n) * np.pi / n
    T, P = np.meshgrid(x, phi, indexing="ij")
    W = np.outer(w, np.full(2 * n, np.pi / n)).ravel()
    s = np.sqrt(1 - T**2)
    u = np.stack([s * np.cos(P), s * np.sin(P), T], -1).reshape(-1, 3)
    return u, W


def complex_sph_harm(l, u):
    theta = np.arccos(np.clip(u[:, 2], -1, 1))
    phi = np.arctan2(u[:, 1], u[:, 0])
    if hasattr(sp, "sph_harm_y"):
        return np.stack([sp.sph_harm_y(l, m, theta, phi) for m in range(-l, l + 1)], 1)
    return np.stack([sp.sph_harm(m, l, phi, theta) for m in range(-l, l + 1)], 1)


def test_real_harmonics_orthonormal():
    u, W = sphere_quadrature()
    Y = real_sph_harm(u, 5)
    gram = (Y * W[:, None]).T @ Y
    assert np.allclose(gram, np.eye(36), atol=1e-12)


@pytest.mark.parametrize("l", range(6))
def test_real_harmonics_are_unitary_transform_of_scipy(l):
    u, _ = sphere_quadrature(8)
    U = complex_to_real(l)
    assert np.allclose(U @ U.conj().T, np.eye(2 * l + 1), atol=1e-14)
    Y = real_sph_harm(u, l)[:, l * l:(l + 1) ** 2]
    assert np.allclose(complex_sph_harm(l, u) @ U.T, Y, atol=1e-12)


def test_harmonic_gradient_finite_difference(rng):
    v = rng.normal(size=(7, 3))
    r = np.linalg.norm(v, axis=1)
    _, dY = real_sph_harm(v / r[:, None], 4, grad=True)
    dY /= r[:, None, None]

    def f(x):
        return real_sph_harm(x / np.linalg.norm(x, axis=1)[:, None], 4)

    h = 1e-6
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        fd = (f(v + e) - f(v - e)) / (2 * h)
        assert np.allclose(fd, dY[:, :, c], atol=1e-8)


def test_clebsch_gordan_matches_sympy():
    for j1 in range(4):
        for j2 in range(3):
            for J in range(abs(j1 - j2), j1 + j2 + 1):
                for m1 in range(-j1, j1 + 1):
                    for m2 in range(-j2, j2 + 1):
                        M = m1 + m2
                        ref = float(CG(j1, m1, j2, m2, J, M).doit()) if abs(M) <= J else 0
                        assert clebsch_gordan(j1, m1, j2, m2, J, M) == pytest.approx(ref, abs=1e-14)


def test_coupling_trees_enumerate_intermediate_couplings():
    assert coupling_trees((1, 1)) == [()]
    assert coupling_trees((1, 2)) == []
    assert coupling_trees((1, 1, 2)) == [(2,)]
    # rank 4: (l1 l2) -> L1, (L1 l3) -> l4
    assert coupling_trees((1, 1, 1, 1)) == [(0, 1), (1, 1), (2, 1)]
    assert coupling_trees((2, 2, 2, 2)) == [(L, 2) for L in range(5)]


@pytest.mark.parametrize(
    "ls",
    [(1, 1), (2, 2), (0, 1, 1), (1, 1, 2), (2, 2, 2), (1, 2, 3), (1, 1, 1, 1), (2, 1, 1, 2), (2, 2, 2, 2)],
)
def test_couplings_are_rotation_invariant(ls, rng):
    R = Rotation.random(random_state=7).as_matrix()
    D = wigner_d_real(max(ls), R)
    for Ls in coupling_trees(ls):
        G = real_coupling(ls, Ls)
        assert np.linalg.norm(G) == pytest.approx(1.0)
        vs = [rng.normal(size=2 * l + 1) for l in ls]
        a, b = G, G
        for l, v in zip(ls, vs):
            a = np.tensordot(a, v, axes=([0], [0]))
            b = np.tensordot(b, D[l] @ v, axes=([0], [0]))
        assert float(a) == pytest.approx(float(b), abs=1e-12)
        assert abs(float(a)) > 1e-6  # not trivially zero
