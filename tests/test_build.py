"""Candidate builders: HNF enumeration, supercells, occupations and random packings."""

import importlib.util
import itertools
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build.supercells import eval_shape_deviation
from ase.data import atomic_numbers, covalent_radii
from ase.geometry import minkowski_reduce
from ase.geometry.minkowski_reduction import is_minkowski_reduced
from ase.neighborlist import neighbor_list

from ase_crystalgen.build import (
    LATTICES,
    composition_counts,
    hermite_normal_forms,
    parent_lattice,
    random_lattice_candidate,
    random_occupation,
    random_packing,
    supercell,
)
from ase_crystalgen.build.candidates import _hnf_stack, _reduce_cells

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "build_candidates.py"


def raises(exc, message):
    """``pytest.raises`` on the exact message."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def lattice_coordinates(atoms, parent):
    """Positions of ``atoms`` in the basis of ``parent.cell``, less the parent's basis site
    each atom sits on; integers exactly when every atom is a parent lattice site."""
    frac = atoms.positions @ np.linalg.inv(parent.cell.array)
    basis = parent.get_scaled_positions(wrap=False)
    # for each atom, the basis site that leaves it the nearest integer offset
    diff = frac[:, None, :] - basis[None]
    err = np.abs(diff - np.rint(diff)).max(axis=2)
    return diff[np.arange(len(atoms)), err.argmin(axis=1)]


# --------------------------------------------------------------------------------------------
# Hermite normal forms
# --------------------------------------------------------------------------------------------


def test_hnf_counts_follow_the_known_sequence():
    # OEIS A001001: number of sublattices of index n in Z^3
    assert [len(hermite_normal_forms(n)) for n in range(1, 9)] == [1, 7, 13, 35, 31, 91, 57, 155]


@pytest.mark.parametrize("det", [1, 4, 6, 12])
def test_hnfs_are_lower_triangular_and_reduced(det):
    for H in hermite_normal_forms(det):
        assert H.dtype.kind == "i"
        assert round(np.linalg.det(H)) == det
        assert np.all(np.triu(H, 1) == 0)
        for i, j in itertools.combinations(range(3), 2):
            assert 0 <= H[j, i] < H[j, j]


def test_hnfs_are_distinct_and_complete():
    # distinct: no two are the same lattice (H_i^-1 H_j is never an integer matrix)
    for det in (2, 4, 6):
        H = np.array(hermite_normal_forms(det), dtype=float)
        for Hi, Hj in itertools.combinations(H, 2):
            U = np.linalg.solve(Hi, Hj)
            assert not np.allclose(U, np.rint(U))
    # complete: any integer basis of index 4 spans the lattice of exactly one HNF
    H = np.array(hermite_normal_forms(4), dtype=float)
    rng = np.random.default_rng(0)
    tested = 0
    while tested < 30:
        B = rng.integers(-3, 4, (3, 3))
        if round(abs(np.linalg.det(B))) != 4:
            continue
        U = np.linalg.solve(H, B.astype(float))  # (k, 3, 3): H_k^-1 B
        same = np.all(np.isclose(U, np.rint(U)), axis=(1, 2))
        assert same.sum() == 1
        tested += 1


def test_hnf_list_is_a_copy():
    hermite_normal_forms(2)[0][0, 0] = 99
    assert hermite_normal_forms(2)[0][0, 0] != 99


def test_batched_reduction_is_minkowski():
    for name in LATTICES:
        parent = parent_lattice(name, 3.7)
        H = _hnf_stack(8)
        cells = np.einsum("mji,jk->mik", H, parent.cell.array)
        reduced = _reduce_cells(cells)
        for cell, red in zip(cells, reduced, strict=True):
            assert is_minkowski_reduced(red)
            # the same lattice: an integer change of basis of determinant +-1
            U = np.linalg.solve(cell.T, red.T)
            assert np.allclose(U, np.rint(U), atol=1e-8)
            assert abs(round(np.linalg.det(U))) == 1
            ref, _ = minkowski_reduce(cell)
            assert np.allclose(np.linalg.norm(red, axis=1), np.sort(np.linalg.norm(ref, axis=1)))


# --------------------------------------------------------------------------------------------
# Parent lattices and supercells
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, sites, volume",
    [("fcc", 1, 1 / 4), ("bcc", 1, 1 / 2), ("sc", 1, 1.0), ("diamond", 2, 1 / 4)],
)
def test_parent_lattice_cubic_volumes(name, sites, volume):
    a = 3.3
    atoms = parent_lattice(name, a)
    assert len(atoms) == sites
    assert atoms.get_volume() == pytest.approx(volume * a**3)
    assert set(atoms.get_chemical_symbols()) == {"X"}


def test_parent_lattice_hcp_is_ideal_by_default():
    a = 3.2
    atoms = parent_lattice("hcp", a, symbol="Mg")
    assert atoms.cell.lengths()[2] == pytest.approx(np.sqrt(8 / 3) * a)
    assert atoms.get_chemical_symbols() == ["Mg", "Mg"]
    # ideal hcp: 12 nearest neighbours at a, like fcc
    i = neighbor_list("i", atoms.repeat(3), 1.1 * a)
    assert np.all(np.bincount(i) == 12)
    assert parent_lattice("hcp", a, c=5.0).cell.lengths()[2] == pytest.approx(5.0)


@pytest.mark.parametrize("name", LATTICES)
@pytest.mark.parametrize("det", [2, 3, 5])
def test_hnf_supercell_size_density_and_sites(name, det, rng):
    parent = parent_lattice(name, 3.6)
    n = det * len(parent)
    atoms = supercell(parent, n_atoms=n, rng=rng, shape_tolerance=None)
    assert len(atoms) == n
    assert atoms.get_volume() / n == pytest.approx(parent.get_volume() / len(parent))
    M = atoms.info["supercell_matrix"]
    assert round(np.linalg.det(M)) == det
    assert np.allclose(M @ parent.cell.array, atoms.cell.array)
    assert is_minkowski_reduced(atoms.cell.array)
    # every atom sits on a parent site, and no site is taken twice
    coords = lattice_coordinates(atoms, parent)
    assert np.allclose(coords, np.rint(coords), atol=1e-8)
    frac = atoms.get_scaled_positions()
    d = frac[:, None] - frac[None]
    d -= np.rint(d)
    assert np.linalg.norm(d + np.eye(n)[..., None], axis=2).min() > 1e-6


def test_fcc_hnf_supercells_are_fcc(rng):
    a = 3.6
    parent = parent_lattice("fcc", a, symbol="Cu")
    first, second = a / np.sqrt(2), a
    for det in (3, 4, 7, 12):
        atoms = supercell(parent, n_atoms=det, rng=rng, shape_tolerance=None)
        i, d = neighbor_list("id", atoms, (first + second) / 2)
        assert np.all(np.bincount(i, minlength=det) == 12)
        assert np.allclose(d, first)
        i = neighbor_list("i", atoms, (second + np.sqrt(1.5) * a) / 2)
        assert np.all(np.bincount(i, minlength=det) == 18)  # 12 at a/sqrt(2), 6 at a


def test_explicit_matrices():
    a = 3.6
    parent = parent_lattice("fcc", a)
    assert len(supercell(parent, 2)) == 8
    assert len(supercell(parent, [1, 2, 3])) == 6
    # the conventional cube of fcc from the primitive cell
    cube = supercell(parent, [[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    assert len(cube) == 4
    assert np.allclose(cube.cell.cellpar(), [a, a, a, 90, 90, 90])


def test_most_cubic_supercell_without_rng():
    for name, n, edge in [("fcc", 4, 1), ("bcc", 2, 1), ("sc", 8, 2), ("fcc", 32, 2)]:
        atoms = supercell(parent_lattice(name, 3.0), n_atoms=n)
        assert np.allclose(atoms.cell.cellpar(), [3 * edge] * 3 + [90] * 3)


def test_shape_tolerance_prefers_compact_cells():
    parent = parent_lattice("fcc", 3.6)

    def deviations(tol, seed):
        rng = np.random.default_rng(seed)
        cells = [supercell(parent, n_atoms=16, rng=rng, shape_tolerance=tol) for _ in range(40)]
        return np.array([eval_shape_deviation(c.cell.array, "sc") for c in cells])

    best = deviations(0.0, 1)
    assert np.allclose(best, best.min())
    assert np.median(deviations(0.5, 2)) < np.median(deviations(None, 3))
    assert deviations(0.5, 2).min() >= best.min() - 1e-12


def test_seeded_supercells_reproduce():
    parent = parent_lattice("bcc", 3.1)

    def matrices(seed):
        rng = np.random.default_rng(seed)
        return [supercell(parent, n_atoms=12, rng=rng).info["supercell_matrix"] for _ in range(8)]

    assert all(np.array_equal(x, y) for x, y in zip(matrices(5), matrices(5), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(matrices(5), matrices(6), strict=True))


# --------------------------------------------------------------------------------------------
# Compositions and occupations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "composition, n, expected",
    [
        ({"Au": 8, "Cu": 24}, 32, {"Au": 8, "Cu": 24}),
        ({"Au": 0.25, "Cu": 0.75}, 32, {"Au": 8, "Cu": 24}),
        ({"Au": 0.26, "Cu": 0.74}, 10, {"Au": 3, "Cu": 7}),
        # a tie of remainders (1.5, 8.5) goes to the species listed first
        ({"Au": 0.15, "Cu": 0.85}, 10, {"Au": 2, "Cu": 8}),
        ({"Cu": 0.85, "Au": 0.15}, 10, {"Cu": 9, "Au": 1}),
        ({"Au": 1 / 3, "Cu": 1 / 3, "Ag": 1 / 3}, 10, {"Au": 4, "Cu": 3, "Ag": 3}),
        # 0.1 * 30 is 3.0000000000000004 in floating point; it must stay 3
        ({"Au": 0.1, "Cu": 0.2, "Ag": 0.7}, 30, {"Au": 3, "Cu": 6, "Ag": 21}),
        ({"Au": 0.0, "Cu": 1.0}, 5, {"Cu": 5}),
        ("AuCu3", 32, {"Au": 8, "Cu": 24}),
        ("Au2Cu6", 4, {"Au": 1, "Cu": 3}),
        ("AuCu3", None, {"Au": 1, "Cu": 3}),
        ({"Au": 2, "Cu": 6}, None, {"Au": 2, "Cu": 6}),
    ],
)
def test_composition_counts(composition, n, expected):
    counts = composition_counts(composition, n)
    assert counts == expected
    assert list(counts) == list(expected)


def test_largest_remainder_is_within_one_of_exact():
    rng = np.random.default_rng(3)
    for _ in range(50):
        f = rng.dirichlet(np.ones(4))
        n = int(rng.integers(1, 60))
        counts = composition_counts(dict(zip(["H", "He", "Li", "Be"], f, strict=True)), n)
        got = np.array([counts.get(s, 0) for s in ["H", "He", "Li", "Be"]])
        assert got.sum() == n
        assert np.all(np.abs(got - f * n) < 1)


def test_random_occupation_exact_counts(rng):
    cell = supercell(parent_lattice("fcc", 3.75), n_atoms=32)
    before = cell.copy()
    atoms = random_occupation(cell, {"Au": 0.25, "Cu": 0.75}, rng)
    assert atoms.symbols.formula.count() == {"Au": 8, "Cu": 24}
    assert np.array_equal(atoms.positions, cell.positions)
    assert np.array_equal(atoms.cell, cell.cell)
    assert cell == before  # input untouched
    # a sublattice: the other sites keep their species
    sub = random_occupation(cell, "AuCu", rng, sites=range(0, 32, 2))
    assert sub.symbols.formula.count() == {"X": 16, "Au": 8, "Cu": 8}
    assert set(sub.symbols[1::2]) == {"X"}


def test_random_occupation_reproducible_and_uniform():
    cell = supercell(parent_lattice("sc", 3.0), n_atoms=8)

    def draw(seed):
        return random_occupation(cell, {"Au": 2, "Cu": 6}, np.random.default_rng(seed)).numbers

    assert np.array_equal(draw(1), draw(1))
    assert not np.array_equal(draw(1), draw(2))
    # each site is Au with probability 2/8
    rng = np.random.default_rng(7)
    freq = np.mean(
        [random_occupation(cell, {"Au": 2, "Cu": 6}, rng).numbers == 79 for _ in range(2000)],
        axis=0,
    )
    assert np.allclose(freq, 0.25, atol=0.04)


def test_random_lattice_candidate(rng):
    a = 3.75
    parent = parent_lattice("fcc", a)
    atoms = random_lattice_candidate(parent, 24, "AuCu3", rng)
    assert atoms.symbols.formula.count() == {"Au": 6, "Cu": 18}
    coords = lattice_coordinates(atoms, parent)
    assert np.allclose(coords, np.rint(coords), atol=1e-8)

    sigma = 0.05
    rattled = random_lattice_candidate(parent, 64, {"Au": 16, "Cu": 48}, rng, rattle=sigma)
    coords = lattice_coordinates(rattled, parent)
    disp = (coords - np.rint(coords)) @ parent.cell.array
    # Gaussian displacements: variance sigma^2 per coordinate (192 samples: ~10% error)
    assert np.mean(disp**2) == pytest.approx(sigma**2, rel=0.3)
    assert np.abs(disp.mean()) < 4 * sigma / np.sqrt(disp.size)


def test_lattice_candidates_reproducible():
    parent = parent_lattice("hcp", 3.2)

    def draw(seed):
        rng = np.random.default_rng(seed)
        return random_lattice_candidate(parent, 16, "MgCa", rng, rattle=0.1)

    one, two = draw(4), draw(4)
    assert np.array_equal(one.numbers, two.numbers)
    assert np.allclose(one.positions, two.positions)
    assert not np.allclose(draw(5).positions[:16], one.positions[:16])


# --------------------------------------------------------------------------------------------
# Random packings
# --------------------------------------------------------------------------------------------


def min_distance_violation(atoms, blmin):
    """Largest shortfall below the pair minimum distance over all pairs (<= 0 when none)."""
    d = atoms.get_all_distances(mic=True)
    z = atoms.numbers
    limit = np.array([[blmin[(a, b)] for b in z] for a in z])
    off = ~np.eye(len(atoms), dtype=bool)
    return float((limit - d)[off].max())


def covalent_blmin(symbols, factor):
    z = [atomic_numbers[s] for s in symbols]
    return {(a, b): factor * (covalent_radii[a] + covalent_radii[b]) for a in z for b in z}


def test_random_packing_density_composition_and_distances(rng):
    pytest.importorskip("ase_ga")
    for vpa in (20.0, 11.0, 6.0):
        atoms = random_packing({"Au": 8, "Cu": 24}, volume_per_atom=vpa, rng=rng)
        assert atoms.symbols.formula.count() == {"Au": 8, "Cu": 24}
        assert atoms.get_volume() / len(atoms) == pytest.approx(vpa)
        assert np.allclose(atoms.cell.cellpar()[3:], 90)
        assert min_distance_violation(atoms, covalent_blmin(["Au", "Cu"], 0.5)) <= 1e-9
        assert np.all(atoms.pbc)

    # a number density, a cell shape, fractions and a larger minimum distance
    atoms = random_packing(
        {"Si": 1 / 3, "O": 2 / 3},
        n_atoms=30,
        density=0.07,
        cell=[8.0, 8.0, 12.0],
        min_distance_factor=0.8,
        rng=rng,
    )
    assert atoms.symbols.formula.count() == {"Si": 10, "O": 20}
    assert len(atoms) / atoms.get_volume() == pytest.approx(0.07)
    lengths = atoms.cell.lengths()
    assert lengths[2] / lengths[0] == pytest.approx(1.5)
    assert min_distance_violation(atoms, covalent_blmin(["Si", "O"], 0.8)) <= 1e-9


def test_random_packing_blmin_and_cell(rng):
    pytest.importorskip("ase_ga")
    blmin = {("Cu", "Cu"): 2.2, ("Au", "Au"): 2.5, (29, 79): 2.35}
    cell = [[9.0, 0, 0], [3.0, 8.0, 0], [1.0, 2.0, 8.5]]
    atoms = random_packing("AuCu3", n_atoms=16, cell=cell, blmin=blmin, rng=rng)
    assert np.allclose(atoms.cell.array, cell)  # used as it is without a density
    full = {(79, 79): 2.5, (29, 29): 2.2, (29, 79): 2.35, (79, 29): 2.35}
    assert min_distance_violation(atoms, full) <= 1e-9


def test_random_packing_reproducible():
    pytest.importorskip("ase_ga")

    def draw(seed):
        return random_packing("AuCu3", n_atoms=12, density=0.06, rng=np.random.default_rng(seed))

    assert np.allclose(draw(1).positions, draw(1).positions)
    assert not np.allclose(draw(1).positions, draw(2).positions)


def test_random_packing_gives_up_with_a_reason():
    pytest.importorskip("ase_ga")
    # hard spheres at packing fraction 0.5: possible (below 0.64) but beyond what random
    # sequential insertion reaches (about 0.38)
    d = 1.9
    volume_per_atom = np.pi / 6 * d**3 / 0.5
    message = (
        "could not place 8 atoms at the minimum distances in 2 attempts "
        "(hard-sphere packing fraction 0.50): lower the density or the "
        "minimum distances, or raise max_attempts"
    )
    with raises(RuntimeError, message):
        random_packing(
            {"Cu": 8},
            volume_per_atom=volume_per_atom,
            blmin={("Cu", "Cu"): d},
            max_attempts=2,
            rng=np.random.default_rng(0),
        )


# --------------------------------------------------------------------------------------------
# Error messages
# --------------------------------------------------------------------------------------------


def test_lattice_and_supercell_errors():
    fcc = parent_lattice("fcc", 3.6)
    with raises(ValueError, "unknown lattice 'fcx'; choose from bcc, diamond, fcc, hcp, sc"):
        parent_lattice("fcx", 3.6)
    with raises(ValueError, "lattice constant a must be positive, got 0"):
        parent_lattice("fcc", 0)
    with raises(ValueError, "c must be positive and is only used for hcp"):
        parent_lattice("fcc", 3.6, c=5.0)
    with raises(ValueError, "unknown element 'Xx'"):
        parent_lattice("fcc", 3.6, symbol="Xx")
    with raises(ValueError, "det must be a positive integer, got 0"):
        hermite_normal_forms(0)
    with raises(ValueError, "give exactly one of matrix and n_atoms"):
        supercell(fcc)
    with raises(ValueError, "give exactly one of matrix and n_atoms"):
        supercell(fcc, 2, n_atoms=8)
    with raises(ValueError, "n_atoms must be a positive integer, got 0"):
        supercell(fcc, n_atoms=0)
    with raises(ValueError, "n_atoms=3 is not a multiple of the 2 atoms in the parent"):
        supercell(parent_lattice("hcp", 3.2), n_atoms=3)
    with raises(ValueError, "supercell matrix must have a positive determinant, got 0"):
        supercell(fcc, [[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    with raises(ValueError, "supercell matrix must have a positive determinant, got -1"):
        supercell(fcc, [1, 1, -1])
    with raises(
        ValueError, "supercell matrix must be an integer, 3 integers or a 3x3 integer matrix"
    ):
        supercell(fcc, 1.5)
    with raises(ValueError, "parent has no atoms"):
        supercell(Atoms(cell=np.eye(3), pbc=True), 2)
    with raises(ValueError, "parent cell has zero volume; a 3D periodic cell is needed"):
        supercell(Atoms("Cu", cell=[3.0, 3.0, 0.0]), 2)
    with raises(TypeError, "parent must be an ase.Atoms, got str"):
        supercell("fcc", 2)
    with raises(ValueError, "shape_tolerance must be non-negative, got -1"):
        supercell(fcc, n_atoms=4, shape_tolerance=-1)
    with raises(ValueError, "shape_tolerance=None draws at random and needs an rng"):
        supercell(fcc, n_atoms=4, shape_tolerance=None)


def test_composition_errors(rng):
    with raises(ValueError, "composition {'Xx': 1, 'Cu': 3}: unknown element 'Xx'"):
        composition_counts({"Xx": 1, "Cu": 3})
    with raises(ValueError, "composition {'X': 1}: unknown element 'X'"):
        composition_counts({"X": 1})
    with raises(ValueError, "composition 'QqCu3': unknown element 'Qq'"):
        composition_counts("QqCu3")
    with raises(ValueError, "composition has 30 atoms, but 32 are needed"):
        composition_counts({"Au": 8, "Cu": 22}, 32)
    with raises(ValueError, "composition fractions sum to 0.9, not 1"):
        composition_counts({"Au": 0.2, "Cu": 0.7}, 10)
    with raises(ValueError, "composition given as fractions needs n_atoms"):
        composition_counts({"Au": 0.25, "Cu": 0.75})
    with raises(ValueError, "composition {} has no atoms"):
        composition_counts({}, 4)
    with raises(ValueError, "composition {'Au': 0, 'Cu': 0} has no atoms"):
        composition_counts({"Au": 0, "Cu": 0}, 4)
    with raises(ValueError, "composition {'Au': -1, 'Cu': 5} has negative or non-finite amounts "
                            "{'Au': -1.0}"):
        composition_counts({"Au": -1, "Cu": 5}, 4)
    with raises(ValueError, "formula unit AuCu3 has 4 atoms, which does not divide 30"):
        composition_counts("Au2Cu6", 30)
    with raises(ValueError, "cannot read the formula 'auCu': unexpected 'a' at position 0 (element "
                            "symbols start with a capital letter)"):
        composition_counts("auCu", 2)
    with raises(ValueError, "n_atoms must be a positive integer, got -4"):
        composition_counts("AuCu3", -4)
    with raises(TypeError, "composition must be a dict or a formula string, got list"):
        composition_counts(["Au", "Cu"], 2)

    cell = supercell(parent_lattice("sc", 3.0), n_atoms=8)
    with raises(ValueError, "the cell has no sites"):
        random_occupation(Atoms(cell=np.eye(3)), "Cu", rng)
    with raises(ValueError, "composition has 6 atoms, but 8 are needed"):
        random_occupation(cell, {"Au": 2, "Cu": 4}, rng)
    with raises(ValueError, "sites must be distinct indices of atoms in the cell"):
        random_occupation(cell, "Cu", rng, sites=[0, 0, 1])
    with raises(ValueError, "sites must be distinct indices of atoms in the cell"):
        random_occupation(cell, "Cu", rng, sites=[8])
    with raises(ValueError, "sites must be distinct indices of atoms in the cell"):
        random_occupation(cell, "Cu", rng, sites=[0, -8])
    with raises(ValueError, "rattle must be non-negative, got -0.1"):
        random_lattice_candidate(parent_lattice("fcc", 3.6), 4, "AuCu3", rng, rattle=-0.1)
    with raises(ValueError, "formula unit AuCu3 has 4 atoms, which does not divide 6"):
        random_lattice_candidate(parent_lattice("fcc", 3.6), 6, "AuCu3", rng)


def test_packing_errors(rng):
    pytest.importorskip("ase_ga")
    with raises(ValueError, "n_atoms must be a positive integer, got 0"):
        random_packing("Cu", n_atoms=0, density=0.08, rng=rng)
    with raises(ValueError, "density must be positive, got -1"):
        random_packing("Cu", n_atoms=4, density=-1, rng=rng)
    with raises(ValueError, "volume_per_atom must be positive, got 0"):
        random_packing("Cu", n_atoms=4, volume_per_atom=0, rng=rng)
    with raises(ValueError, "give at most one of density and volume_per_atom"):
        random_packing("Cu", n_atoms=4, density=0.1, volume_per_atom=10, rng=rng)
    with raises(ValueError, "give density, volume_per_atom or cell"):
        random_packing("Cu", n_atoms=4, rng=rng)
    with raises(ValueError, "cell has zero volume"):
        random_packing("Cu", n_atoms=4, density=0.08, cell=[4.0, 4.0, 0.0], rng=rng)
    with raises(ValueError, "max_attempts must be a positive integer, got 0"):
        random_packing("Cu", n_atoms=4, density=0.08, max_attempts=0, rng=rng)
    with raises(ValueError, "min_distance_factor must be non-negative, got -0.5"):
        random_packing("Cu", n_atoms=4, density=0.08, min_distance_factor=-0.5, rng=rng)
    with raises(ValueError, "blmin has no entry for the pair ('Au', 'Cu')"):
        random_packing("AuCu", density=0.05, blmin={("Au", "Au"): 2, ("Cu", "Cu"): 2}, rng=rng)
    with raises(ValueError, "unknown element in blmin key ('Cu', 'Yy')"):
        random_packing("Cu", n_atoms=4, density=0.05, blmin={("Cu", "Yy"): 2}, rng=rng)

    # Cu spheres of diameter 1.0 x 2 r_cov = 2.64 A at 12 A^3 per atom
    d = 2 * covalent_radii[29]
    fraction = np.pi / 6 * d**3 / 12.0
    assert fraction > 0.64
    with raises(
        ValueError,
        f"hard-sphere packing fraction {fraction:.2f} is above random close packing (0.64): "
        "lower the density or the minimum distances",
    ):
        random_packing("Cu", n_atoms=8, volume_per_atom=12.0, min_distance_factor=1.0, rng=rng)
    # a flat cell whose short axis is below the Cu-Cu minimum distance of 1.32 A
    with raises(
        ValueError,
        "cell too small: its shortest period 1.00 Å is below the minimum distance 1.32 Å "
        "between like atoms",
    ):
        random_packing("Cu", n_atoms=2, cell=[10.0, 10.0, 1.0], rng=rng)


def test_packing_names_the_missing_extra(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "ase_ga.startgenerator", None)
    with raises(ImportError, "random_packing needs ase-ga: pip install 'ase_crystalgen[ga]'"):
        random_packing("Cu", n_atoms=4, density=0.08, rng=rng)


# --------------------------------------------------------------------------------------------
# Example
# --------------------------------------------------------------------------------------------


def test_example_runs_quick():
    pytest.importorskip("ase_ga")
    spec = importlib.util.spec_from_file_location("build_candidates_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(quick=True)
    assert out["hnf_counts"] == [1, 7, 13, 35, 31, 91, 57, 155]
    assert out["cube_shape_deviation"] == pytest.approx(0, abs=1e-12)
    assert out["occupied"].symbols.formula.count() == {"Au": 1, "Cu": 3}
    assert len(out["hnf_cell"]) == 12
    # 0.5 x (r_Au + r_Cu) is the smallest pair bound present
    assert out["packing_min_distance"] >= 0.5 * 2 * covalent_radii[29] - 1e-9
