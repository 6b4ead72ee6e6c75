"""Completeness and independence of the enumerated ACE basis."""

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ase_crystalgen.descriptors.angular import wigner_d_real
from ase_crystalgen.descriptors.basis import ACEBasis, invariant_space_dimension


def independent_invariant_dimension(ls, classes):
    """Dimension of rotation-invariant multilinear forms on V_l1 x ... x V_lr that are
    symmetric under exchanging identical channels, from the null space of the rotation
    generators (an enumeration-free reference)."""
    lmax = max(ls)
    theta = 1e-5
    gens = []
    for axis in np.eye(3):
        Dp = wigner_d_real(lmax, Rotation.from_rotvec(theta * axis).as_matrix())
        Dm = wigner_d_real(lmax, Rotation.from_rotvec(-theta * axis).as_matrix())
        gens.append([(Dp[l] - Dm[l]) / (2 * theta) for l in range(lmax + 1)])
    dims = [2 * l + 1 for l in ls]
    total = int(np.prod(dims))
    rows = []
    for L in gens:
        J = np.zeros((total, total))
        for k in range(len(ls)):
            mats = [np.eye(d) for d in dims]
            mats[k] = L[ls[k]]
            M = mats[0]
            for m in mats[1:]:
                M = np.kron(M, m)
            J += M
        rows.append(J)
    # symmetric under permutations that map each channel to an identical one
    perms = [p for p in itertools.permutations(range(len(ls)))
             if all(classes[p[k]] == classes[k] for k in range(len(ls)))]
    P = np.zeros((total, total))
    flat = np.arange(total).reshape(dims)
    for p in perms:
        P[np.arange(total), np.transpose(flat, p).ravel()] += 1.0 / len(perms)
    rows.append(P - np.eye(total))
    M = np.vstack(rows)
    if not np.any(np.abs(M) > 1e-12):
        return total
    eig = np.linalg.eigvalsh(M.T @ M)
    return int(np.sum(eig < 1e-8 * eig.max()))


@pytest.mark.parametrize(
    "ls, classes",
    [
        ((0, 0, 0), (0, 0, 0)),
        ((1, 1, 2), (0, 0, 1)),
        ((2, 2, 2), (0, 0, 0)),
        ((2, 2, 2), (0, 1, 2)),
        ((1, 1, 1, 1), (0, 0, 0, 0)),
        ((1, 1, 1, 1), (0, 0, 1, 1)),
        ((1, 1, 1, 1), (0, 1, 2, 3)),
        ((1, 1, 2, 2), (0, 1, 2, 2)),
        ((2, 2, 2, 2), (0, 0, 0, 0)),
        ((2, 2, 2, 2), (0, 1, 2, 3)),
    ],
)
def test_selected_couplings_span_the_whole_invariant_space(ls, classes):
    assert invariant_space_dimension(ls, classes) == independent_invariant_dimension(ls, classes)


def test_counts_per_rank():
    # one species at the paper's basis; every number is checked block by block above
    assert ACEBasis(1, (8, 2, 2, 1), (0, 2, 2, 1)).counts_per_rank() == {1: 8, 2: 9, 3: 26, 4: 3}
    # binary at nmax (2,2,2,1): FitSNAP's enumeration lists 4 + 30 + 118 + 6 (see docs/ace.md)
    assert ACEBasis(2, (2, 2, 2, 1), (0, 2, 2, 1)).counts_per_rank() == {1: 4, 2: 30, 3: 160, 4: 20}


def test_descriptors_are_linearly_independent_functions(rng):
    """Evaluated on many random atomic bases, the descriptor matrix has full column rank."""
    basis = ACEBasis(2, (2, 2, 2, 1), (0, 2, 2, 1))
    A = rng.normal(size=(3 * basis.n_descriptors, basis.n_species * basis.n_a))
    B = basis.evaluate(A)
    s = np.linalg.svd(B / np.linalg.norm(B, axis=0), compute_uv=False)
    assert s[-1] / s[0] > 1e-8
    assert np.linalg.matrix_rank(B) == basis.n_descriptors


def test_vjp_and_jacobian_agree_with_finite_differences(rng):
    basis = ACEBasis(2, (3, 2, 2, 1), (0, 2, 2, 1))
    A = rng.normal(size=(3, basis.n_species * basis.n_a))
    G = rng.normal(size=(3, basis.n_descriptors))
    dA = basis.vjp(A, G)
    J = basis.jacobian(A)
    assert np.allclose(np.einsum("nk,nka->na", G, J), dA)
    h = 1e-6
    for a in rng.choice(A.shape[1], 6, replace=False):
        Ap, Am = A.copy(), A.copy()
        Ap[:, a] += h
        Am[:, a] -= h
        fd = ((basis.evaluate(Ap) - basis.evaluate(Am)) * G).sum(1) / (2 * h)
        assert np.allclose(fd, dA[:, a], rtol=1e-6, atol=1e-8)


def test_invalid_limits_are_rejected():
    with pytest.raises(ValueError, match="lmax\\[0\\] must be 0"):
        ACEBasis(1, (2, 2), (1, 2))
    with pytest.raises(ValueError, match="same length"):
        ACEBasis(1, (2, 2), (0,))
