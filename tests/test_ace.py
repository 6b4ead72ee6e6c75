"""ACE descriptors: hand-computed values, invariances, gradients, cutoff smoothness."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from conftest import l12_aucu3, random_cell
from numpy.polynomial import chebyshev
from scipy.spatial.transform import Rotation
from sympy.physics.quantum.cg import CG
from sympy.physics.wigner import wigner_3j

from ase_crystalgen.descriptors import ACEDescriptor
from ase_crystalgen.descriptors.radial import cheb_exp_cos

SMALL = dict(nmax=(4, 2, 2, 1), lmax=(0, 2, 2, 1))


def g_reference(r, rc, lam, n):
    """The radial basis written straight from its definition (n counts from 1)."""
    x = 1 - 2 * (np.exp(-lam * (r / rc - 1)) - 1) / (np.exp(lam) - 1)
    fc = 0.5 * (1 + np.cos(np.pi * r / rc))
    if n == 1:
        return fc
    return 0.5 * (1 - chebyshev.chebval(x, [0] * (n - 1) + [1])) * fc


def test_radial_basis_values_and_derivatives():
    r = np.linspace(0.3, 5.9, 40)
    rc, lam = np.full(40, 6.0), np.full(40, 0.3)
    g, dg = cheb_exp_cos(r, rc, lam, 8)
    for n in range(1, 9):
        assert np.allclose(g[:, n - 1], g_reference(r, 6.0, 0.3, n), atol=1e-14)
    h = 1e-6
    gp, _ = cheb_exp_cos(r + h, rc, lam, 8)
    gm, _ = cheb_exp_cos(r - h, rc, lam, 8)
    assert np.allclose((gp - gm) / (2 * h), dg, atol=1e-8)


def dimer(r, direction=(0.3, -0.5, 0.8), symbols="CuCu"):
    u = np.asarray(direction) / np.linalg.norm(direction)
    return Atoms(symbols, positions=[[1.0, 2.0, 3.0], np.array([1.0, 2.0, 3.0]) + r * u])


def test_dimer_hand_computed_values():
    """For two atoms every atomic base is g_n(r) Y_lm(u); rotating u onto z leaves only
    m = 0, so each invariant is a product of radial functions, sqrt((2l+1)/4pi) factors
    and the m = 0 element of its coupling tensor (a Wigner 3j / Clebsch-Gordan product)."""
    d = ACEDescriptor(["Cu"], **SMALL)
    r = 2.7
    rc = d.rcut[0, 0]
    B = d.compute(dimer(r))
    assert np.allclose(B[0], B[1])
    g = [g_reference(r, rc, 0.05 * rc, n) for n in range(1, 5)]
    y0 = [np.sqrt((2 * l + 1) / (4 * np.pi)) for l in range(3)]
    checked = set()
    for k, inv in enumerate(d.basis.invariants):
        ns = [c[1] for c in inv.channels]
        ls = [c[2] for c in inv.channels]
        radial = np.prod([g[n] * y0[l] for n, l in zip(ns, ls)])
        if inv.rank == 1:
            expected = g[ns[0]]
        elif inv.rank == 2:
            expected = radial / np.sqrt(2 * ls[0] + 1)
        elif inv.rank == 3:
            expected = abs(float(wigner_3j(*ls, 0, 0, 0))) * radial
        else:
            L1, L2 = inv.Ls
            c = (CG(ls[0], 0, ls[1], 0, L1, 0) * CG(L1, 0, ls[2], 0, L2, 0)
                 * CG(L2, 0, ls[3], 0, 0, 0)).doit()
            expected = abs(float(c)) * radial
        assert B[0, k] == pytest.approx(expected, rel=1e-12, abs=1e-15), inv
        checked.add(inv.rank)
    assert checked == {1, 2, 3, 4}


def test_cutoff_smoothness():
    """Descriptors and their first derivatives go to zero at the cutoff; beyond it they
    are exactly zero."""
    d = ACEDescriptor(["Cu"], cutoffs=5.0, **SMALL)
    B_out = d.compute(dimer(5.0 + 1e-9))
    assert np.all(B_out == 0)
    h = np.array([1e-2, 5e-3])
    vals = np.array([np.abs(d.compute(dimer(5.0 - x))[0]).max() for x in h])
    # first non-zero order is (rc - r)^2: halving the distance quarters the value
    assert vals[1] / vals[0] == pytest.approx(0.25, rel=0.02)


def test_rotation_translation_permutation_invariance(rng):
    atoms = random_cell(rng, ["Cu", "Au", "Ni"], n_atoms=9)
    d = ACEDescriptor(["Cu", "Au", "Ni"], **SMALL)
    B = d.compute(atoms)
    assert np.abs(B).max() > 1
    R = Rotation.random(random_state=3).as_matrix()
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ R.T, scale_atoms=True)
    assert np.allclose(d.compute(rot), B, atol=1e-10)
    moved = atoms.copy()
    moved.translate([0.37, -1.2, 2.9])
    assert np.allclose(d.compute(moved), B, atol=1e-10)
    perm = rng.permutation(len(atoms))
    assert np.allclose(d.compute(atoms[perm]), B[perm], atol=1e-10)
    # choice of periodic image: move atoms by lattice vectors
    shifted = atoms.copy()
    shifted.positions += rng.integers(-3, 4, (len(atoms), 3)) @ atoms.cell.array
    assert np.allclose(d.compute(shifted), B, atol=1e-10)


def test_supercell_and_small_cell_with_many_images():
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    prim = l12_aucu3(repeat=1)
    prim.rattle(0.05, seed=1)
    B1 = d.compute(prim)
    B8 = d.compute(prim.repeat(2))
    assert np.allclose(B8[: len(prim)], B1, atol=1e-10)
    assert np.allclose(B8.reshape(8, len(prim), -1), B1[None], atol=1e-10)
    # one-atom primitive fcc cell (cutoff sphere spans hundreds of images) vs cubic cell
    p = bulk("Cu", "fcc", a=3.6)
    c = bulk("Cu", "fcc", a=3.6, cubic=True)
    assert np.allclose(d.compute(c), d.compute(p)[0], atol=1e-10)


def test_cluster_equals_cluster_in_vacuum_box():
    d = ACEDescriptor(["C", "H", "O"], **SMALL)
    mol = molecule("CH3OH")
    B = d.compute(mol)
    boxed = mol.copy()
    boxed.set_cell([30, 30, 30])
    boxed.center()
    boxed.pbc = True
    assert np.allclose(d.compute(boxed), B, atol=1e-12)


def test_position_and_strain_gradients_finite_difference(rng):
    atoms = random_cell(rng, ["Cu", "Au"], n_atoms=6)
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    B, grads = d.compute_with_gradients(atoms)
    dpos, dstrain = grads.positions(), grads.strain()
    h = 1e-5
    for k in range(len(atoms)):
        for c in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[k, c] += h
            m.positions[k, c] -= h
            fd = (d.compute(p) - d.compute(m)) / (2 * h)
            assert np.allclose(fd, dpos[:, :, k, c], rtol=1e-6, atol=1e-7)
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            p, m = atoms.copy(), atoms.copy()
            p.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
            m.set_cell(atoms.cell.array @ (np.eye(3) - eps).T, scale_atoms=True)
            fd = (d.compute(p) - d.compute(m)) / (2 * h)
            assert np.allclose(fd, dstrain[:, :, a, b], rtol=1e-6, atol=1e-7)
    # the vector-Jacobian product used by the calculator agrees with the Jacobian
    G = rng.normal(size=B.shape)
    _, backward = d.forward(atoms)
    dR, W = backward(G)
    assert np.allclose(dR, np.einsum("if,ifkc->kc", G, dpos))
    assert np.allclose(W, np.einsum("if,ifab->ab", G, dstrain))


def test_non_periodic_gradient(rng):
    mol = molecule("CH3CH2OH")
    mol.rattle(0.05, seed=2)
    d = ACEDescriptor(["C", "H", "O"], **SMALL)
    G = rng.normal(size=(len(mol), d.n_features))
    _, backward = d.forward(mol)
    dR, _ = backward(G)
    h = 1e-5
    for k in (0, 3, 8):
        for c in range(3):
            p, m = mol.copy(), mol.copy()
            p.positions[k, c] += h
            m.positions[k, c] -= h
            fd = ((d.compute(p) - d.compute(m)) * G).sum() / (2 * h)
            assert fd == pytest.approx(dR[k, c], rel=1e-6, abs=1e-8)


def test_layout_batch_and_labels():
    d = ACEDescriptor(["Cu", "Au"])
    assert d.n_per_species == 16 + 30 + 160 + 20
    assert d.n_features == 2 * d.n_per_species
    assert len(d.feature_labels()) == d.n_features
    t = l12_aucu3(repeat=1)
    B = d.compute(t)
    K = d.n_per_species
    au = np.array(t.get_chemical_symbols()) == "Au"
    # blocks follow the element order: Cu first, Au second
    assert np.all(B[au, :K] == 0) and np.all(B[~au, K:] == 0)
    assert np.all(B[au, K:].any(axis=1)) and np.all(B[~au, :K].any(axis=1))
    many = d.compute_many([t, t.repeat((1, 1, 2))])
    assert np.allclose(many[0], B) and many[1].shape == (8, d.n_features)


def test_default_cutoffs_from_van_der_waals_radii():
    d = ACEDescriptor(["Cu", "Au"])
    assert d.rcut[0, 0] == pytest.approx(2 * (1.40 + 1.40))
    assert d.rcut[0, 1] == pytest.approx(2 * (1.40 + 1.66))
    d2 = ACEDescriptor(["Cu", "Au"], cutoffs={("Cu", "Au"): 5.0})
    assert d2.rcut[1, 0] == d2.rcut[0, 1] == 5.0


def test_bad_input_errors():
    d = ACEDescriptor(["Cu"], **SMALL)
    with pytest.raises(ValueError, match="unknown element 'Xx'"):
        ACEDescriptor(["Cu", "Xx"])
    with pytest.raises(ValueError, match=r"element\(s\) Au not in the descriptor's elements \['Cu'\]"):
        d.compute(Atoms("CuAu", positions=[[0, 0, 0], [2.5, 0, 0]]))
    with pytest.raises(ValueError, match="atoms 0 and 1 overlap"):
        d.compute(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        d.compute(Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="zero volume"):
        d.compute(Atoms("Cu", cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True))


def test_default_cutoffs_are_consistent_across_radius_tables():
    """Fe, Cr and V are missing from ASE's default van der Waals table; their fallback
    radii are scaled so that cutoffs stay in the 4-7 neighbour-shell range."""
    from ase_crystalgen.descriptors.radial import CUTOFF_RANGE, default_cutoffs

    rc = default_cutoffs(["Cu", "Fe", "Cr", "V", "Si"])
    assert all(CUTOFF_RANGE[0] <= v <= CUTOFF_RANGE[1] for v in rc.values())
    assert abs(rc[("Fe", "Fe")] - rc[("Cu", "Cu")]) < 1.2  # not 9.8 A as the raw table gives
    assert rc[("Si", "Si")] == CUTOFF_RANGE[1]
