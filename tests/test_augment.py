"""Augmentation of the structure matrix: other writings of the same crystal, drawn reproducibly."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from ase_crystalgen.datasets.augment import (
    AUGMENTATIONS,
    augment_structure,
    lattice_operations,
    parse_augment,
)
from ase_crystalgen.representation.tensors import atoms_to_tensors, tensors_to_atoms


def _distances(atoms):
    return np.sort(atoms.get_all_distances(mic=True).ravel())


def _triclinic():
    rng = np.random.default_rng(7)
    cell = [[4.1, 0.0, 0.0], [0.7, 4.9, 0.0], [0.4, 0.9, 5.6]]
    return Atoms("Cu3Au2", scaled_positions=rng.random((5, 3)), cell=cell, pbc=True)


@pytest.mark.parametrize(
    ("atoms", "order"),
    [
        (bulk("NaCl", "rocksalt", a=5.64, cubic=True), 48),  # cubic holohedry m-3m
        (bulk("Mg", "hcp", a=3.21, c=5.21), 24),  # hexagonal 6/mmm
        (Atoms("Sn2", [[0, 0, 0], [2.9, 2.9, 0.8]], cell=[5.83, 5.83, 3.18], pbc=True), 16),  # 4/mmm
        (_triclinic(), 2),  # -1: identity and inversion
    ],
)
def test_lattice_point_groups_have_their_known_order_and_keep_the_metric(atoms, order):
    ops = lattice_operations(atoms.cell[:])
    assert len(ops) == order
    assert (ops[0] == np.eye(3)).all()
    assert len({w.tobytes() for w in ops}) == order
    metric = atoms.cell[:] @ atoms.cell[:].T
    for w in ops:
        assert abs(round(np.linalg.det(w))) == 1
        np.testing.assert_allclose(w.T @ metric @ w, metric, atol=1e-9)
    assert any((w == -np.eye(3)).all() for w in ops)  # inversion is always in a lattice's group


@pytest.mark.parametrize("kinds", [["permute"], ["shift"], ["lattice"], list(AUGMENTATIONS)])
@pytest.mark.parametrize("name", ["NaCl", "Mg", "triclinic"])
def test_every_augmentation_writes_the_same_crystal_in_the_same_cell(kinds, name):
    atoms = {
        "NaCl": bulk("NaCl", "rocksalt", a=5.64, cubic=True),
        "Mg": bulk("Mg", "hcp", a=3.21, c=5.21) * (1, 1, 2),
        "triclinic": _triclinic(),
    }[name]
    t = atoms_to_tensors(atoms, max_atoms=12, formation_energy=0.0)
    matcher = StructureMatcher(ltol=1e-4, stol=1e-4, angle_tol=1e-3, primitive_cell=False, scale=False)
    rng = np.random.default_rng(0)
    moved = 0
    for _ in range(8):
        x = augment_structure(t.x, t.numbers, rng, kinds)
        n = t.n_sites
        assert x.shape == t.x.shape
        np.testing.assert_array_equal(x[n:], t.x[n:])  # padding, separator and the cell rows
        assert ((x[:n] >= 0) & (x[:n] < 1)).all()
        new = tensors_to_atoms(x, t.numbers)
        old = tensors_to_atoms(t.x, t.numbers)
        np.testing.assert_allclose(_distances(new), _distances(old), atol=1e-9)
        assert matcher.fit(AseAtomsAdaptor.get_structure(old), AseAtomsAdaptor.get_structure(new))
        moved += not np.allclose(x[:n], t.x[:n])
    # it does write the crystal differently; a lattice operation alone may draw the identity
    # (half the time in a triclinic cell) or a symmetry of the crystal itself
    assert moved >= (1 if kinds == ["lattice"] else 6)


def test_permute_reorders_rows_of_one_element_only():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    t = atoms_to_tensors(atoms, max_atoms=8, formation_energy=0.0)
    x = augment_structure(t.x, t.numbers, np.random.default_rng(1), ["permute"])
    n = t.n_sites
    for z in np.unique(t.numbers):
        rows = t.numbers == z
        before = sorted(map(tuple, np.round(t.x[:n][rows], 12)))
        after = sorted(map(tuple, np.round(x[:n][rows], 12)))
        assert before == after


def test_same_seed_same_writing_and_the_input_is_untouched():
    t = atoms_to_tensors(_triclinic(), max_atoms=8, formation_energy=0.0)
    keep = t.x.copy()
    a = augment_structure(t.x, t.numbers, np.random.default_rng([3, 1, 5]))
    b = augment_structure(t.x, t.numbers, np.random.default_rng([3, 1, 5]))
    c = augment_structure(t.x, t.numbers, np.random.default_rng([3, 2, 5]))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(t.x, keep)


def test_parse_augment_names_bad_input():
    assert parse_augment(None) == parse_augment(False) == parse_augment([]) == ()
    assert parse_augment(True) == parse_augment("all") == AUGMENTATIONS
    assert parse_augment(["lattice", "permute"]) == ("permute", "lattice")
    with pytest.raises(ValueError, match=r"augmentation\(s\) 'rotate'; choose from permute, shift, lattice"):
        parse_augment(["shift", "rotate"])
    with pytest.raises(ValueError, match=r"augment must be true, false or a list"):
        parse_augment(3)
