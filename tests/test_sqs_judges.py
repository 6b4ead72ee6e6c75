"""The SQS benchmark's judges (benchmarks/sqs_judges.py) against known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from sqs_judges import (  # noqa: E402
    emt_energy,
    emt_relax,
    lattice_shells,
    msd_from_sites,
    random_occupation,
    site_displacements,
    warren_cowley,
)

A = 3.75


def l12_cu3au():
    atoms = bulk("Cu", "fcc", a=A, cubic=True)  # Cu at the origin and the 3 face centres
    atoms.symbols[0] = "Au"
    return atoms.repeat(2)


def test_fcc_shells_are_the_lattice_shells():
    # fcc shells: a/sqrt2 (12), a (6), a sqrt(3/2) (24), a sqrt2 (12), a sqrt(5/2) (24), a sqrt3 (8)
    atoms = bulk("Cu", "fcc", a=A, cubic=True).repeat(3)
    i, _, shell, radii = lattice_shells(atoms, 6)
    expected = A * np.sqrt([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    np.testing.assert_allclose(radii, expected, atol=1e-8)
    coordination = np.bincount(shell, minlength=6) / len(atoms)
    np.testing.assert_array_equal(coordination, [12, 6, 24, 12, 24, 8])
    assert np.all(np.bincount(i, minlength=len(atoms)) == 86)


def test_l12_alphas_exact():
    # each Au has 12 Cu first neighbours: alpha_1(Au, Cu) = 1 - 1 / c_Cu = -1/3,
    # alpha_1(Au, Au) = 1; each Cu has 8 Cu and 4 Au: alpha_1(Cu, Cu) = 1 - (8/12)/(3/4) = 1/9.
    # Second neighbours (a, along the cube axes) sit on the same simple-cubic sublattice:
    # alpha_2(Au, Au) = 1 - 1/(1/4) = -3, alpha_2(Cu, Cu) = 1 - 1/(3/4) = -1/3.
    wc = warren_cowley(l12_cu3au(), n_shells=3)
    assert wc.species == ["Au", "Cu"]
    assert wc.pair(1, "Au", "Cu") == pytest.approx(-1 / 3, abs=1e-12)
    assert wc.pair(1, "Cu", "Au") == pytest.approx(-1 / 3, abs=1e-12)
    assert wc.pair(1, "Au", "Au") == pytest.approx(1.0, abs=1e-12)
    assert wc.pair(1, "Cu", "Cu") == pytest.approx(1 / 9, abs=1e-12)
    assert wc.pair(2, "Au", "Au") == pytest.approx(-3.0, abs=1e-12)
    assert wc.pair(2, "Au", "Cu") == pytest.approx(1.0, abs=1e-12)
    assert wc.pair(2, "Cu", "Cu") == pytest.approx(-1 / 3, abs=1e-12)
    assert wc.pair(3, "Au", "Cu") == pytest.approx(-1 / 3, abs=1e-12)  # (a, a/2, a/2): Cu
    assert wc.max_abs(3) == pytest.approx(3.0, abs=1e-12)


def test_l10_and_b2_alphas_exact():
    # L1_0 CuAu: each Au has 4 Au (its own plane) and 8 Cu: alpha_1 = 1 - (8/12)/(1/2) = -1/3
    l10 = bulk("Cu", "fcc", a=A, cubic=True)
    l10.symbols[[0, 1]] = "Au"  # (0,0,0) and (0,1/2,1/2): the x = 0 planes
    assert warren_cowley(l10.repeat(2), 1).pair(1, "Au", "Cu") == pytest.approx(-1 / 3, abs=1e-12)
    # B2: all 8 first neighbours unlike (-1), all 6 second neighbours alike (+1)
    b2 = bulk("Nb", "bcc", a=3.24, cubic=True)
    b2.symbols[1] = "W"
    wc = warren_cowley(b2.repeat(3), 2)
    assert wc.pair(1, "Nb", "W") == pytest.approx(-1.0, abs=1e-12)
    assert wc.pair(2, "Nb", "W") == pytest.approx(1.0, abs=1e-12)


def test_alphas_invariant_under_supercell_and_permutation():
    rng = np.random.default_rng(3)
    atoms = random_occupation(bulk("Cu", "fcc", a=A, cubic=True).repeat(2),
                              {"Cu": 24, "Au": 8}, rng)
    ref = warren_cowley(atoms, 6).alpha
    np.testing.assert_allclose(warren_cowley(atoms.repeat((2, 1, 1)), 6).alpha, ref, atol=1e-12)
    perm = rng.permutation(len(atoms))
    np.testing.assert_allclose(warren_cowley(atoms[perm], 6).alpha, ref, atol=1e-12)


def test_large_random_alloy_has_small_alphas():
    lattice = bulk("Cu", "fcc", a=A, cubic=True).repeat(10)  # 4000 sites
    atoms = random_occupation(lattice, {"Cu": 2000, "Au": 2000}, np.random.default_rng(0))
    assert warren_cowley(atoms, 3).max_abs(3) < 0.03
    ordered = l12_cu3au().repeat(5)  # the same judge does see order in a big cell
    assert warren_cowley(ordered, 3).max_abs(3) > 1.0


def test_ideal_lattice_shells_judge_displaced_atoms():
    atoms = l12_cu3au()
    moved = atoms.copy()
    moved.rattle(0.1, seed=1)
    np.testing.assert_allclose(warren_cowley(moved, 3, ideal=atoms).alpha,
                               warren_cowley(atoms, 3).alpha, atol=1e-12)


def test_emt_energy_per_atom_is_size_extensive():
    atoms = l12_cu3au()
    assert emt_energy(atoms.repeat((2, 1, 1))) == pytest.approx(emt_energy(atoms), abs=1e-10)


def test_site_displacements_ignore_strain_and_translation():
    ideal = l12_cu3au()
    moved = ideal.copy()
    moved.set_cell(ideal.cell.array @ np.array([[1.03, 0.01, 0], [0, 0.98, 0], [0, 0, 1.05]]),
                   scale_atoms=True)
    moved.positions += [0.7, -0.2, 5.0]  # also across the periodic boundary
    np.testing.assert_allclose(site_displacements(moved, ideal), 0.0, atol=1e-12)
    assert msd_from_sites(moved, ideal) == pytest.approx(0.0, abs=1e-20)


def test_msd_recovers_known_displacements():
    ideal = l12_cu3au()
    rng = np.random.default_rng(5)
    u = rng.normal(scale=0.1, size=(len(ideal), 3))
    u -= u.mean(axis=0)
    moved = ideal.copy()
    moved.positions += u + [0.3, 0.0, -0.1]  # plus a rigid shift
    moved.wrap()  # atoms near a face come back on the other side
    np.testing.assert_allclose(site_displacements(moved, ideal), u, atol=1e-12)
    assert msd_from_sites(moved, ideal) == pytest.approx(np.mean(np.sum(u**2, axis=1)), rel=1e-12)
    # the same fractional displacements in a cell twice as large are twice as long
    big = moved.copy()
    big.set_cell(2 * moved.cell.array, scale_atoms=True)
    assert msd_from_sites(big, ideal) == pytest.approx(4 * msd_from_sites(moved, ideal),
                                                       rel=1e-12)


def test_emt_relax_lowers_the_energy_of_a_random_alloy():
    # Cu-Au on an ideal Vegard lattice: the size mismatch leaves forces that EMT relaxes
    lattice = bulk("Cu", "fcc", a=3.7275, cubic=True).repeat(2)
    atoms = random_occupation(lattice, {"Cu": 24, "Au": 8}, np.random.default_rng(1))
    relaxed, steps, converged = emt_relax(atoms, fmax=0.01, steps=500)
    assert converged and steps > 0
    assert emt_energy(relaxed) < emt_energy(atoms) - 1e-3
    assert emt_energy(atoms, relax=True) == pytest.approx(emt_energy(relaxed), abs=1e-12)
    assert msd_from_sites(relaxed, atoms) > 1e-4
    assert atoms.calc is None  # the input is not modified


def test_icet_judge_prefers_the_random_cluster_vector():
    pytest.importorskip("icet")
    from sqs_judges import IcetJudge

    judge = IcetJudge(bulk("Cu", "fcc", a=A), [5.0], ["Cu", "Au"], {"Cu": 0.75, "Au": 0.25})
    # L1_2 is as far from random as Cu3Au gets: its first-shell pair correlation is wrong
    l12 = judge(l12_cu3au())
    lattice = bulk("Cu", "fcc", a=A, cubic=True).repeat(6)
    big = judge(random_occupation(lattice, {"Cu": 648, "Au": 216}, np.random.default_rng(0)))
    assert big["icet_cv_l1"] < 0.1 < l12["icet_cv_l1"]
    assert l12["icet_objective"] == pytest.approx(l12["icet_cv_l1"])  # no optimal pair
