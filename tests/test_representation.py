"""Atoms <-> tensors (paper layout), space-group operation stacks, validation messages."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.spatial.transform import Rotation

from ase_crystalgen.representation import (
    MAX_OPERATIONS,
    atoms_to_tensors,
    composition_rows,
    get_spacegroup,
    n_operations,
    operation_table,
    spacegroup_operations,
    tensors_to_atoms,
    validate_spacegroup,
)
from ase_crystalgen.representation.tensors import species_order


def perovskite(a=3.905, symbols=("Sr", "Ti", "O", "O", "O")):
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Atoms(symbols, cell=np.eye(3) * a, scaled_positions=frac, pbc=True)


def random_crystal(rng, n=7, elements=("Ti", "O", "Sr", "Ba")):
    cell = np.diag(rng.uniform(4, 7, 3)) + rng.normal(0, 0.8, (3, 3))
    for _ in range(100):
        frac = rng.random((n, 3))
        atoms = Atoms(rng.choice(elements, n), cell=cell, scaled_positions=frac, pbc=True)
        if n == 1 or atoms.get_all_distances(mic=True)[np.triu_indices(n, 1)].min() > 1.0:
            return atoms
    raise RuntimeError("no packing")


def matches(a, b, **kw):
    adaptor = AseAtomsAdaptor()
    return StructureMatcher(**kw).fit(adaptor.get_structure(a), adaptor.get_structure(b))


# --- layout ------------------------------------------------------------------------------


def test_layout_of_paper_matrix():
    t = atoms_to_tensors(perovskite(), formation_energy=-2.5)
    assert t.x.shape == (64, 3)
    assert t.n_sites == 5 and t.max_atoms == 60
    assert np.all(t.x[5:61] == 0)  # padding rows and the separator row 60
    np.testing.assert_allclose(t.x[61:64], np.eye(3) * 3.905, atol=1e-12)
    assert t.mask.sum() == 5 and t.mask[:5].all()
    onehot = t.element_one_hot
    assert onehot.shape == (64, 103)
    np.testing.assert_array_equal(onehot.sum(1), t.mask.astype(float))
    np.testing.assert_array_equal(onehot[:5].argmax(1) + 1, t.numbers)
    props = t.element_properties
    assert props.shape == (64, 22) and np.all(props[5:] == 0) and np.all(np.abs(props[:5]).sum(1) > 0)
    assert t.spacegroup == 221 and t.spacegroup_operations.shape == (192, 4, 4)


def test_formula_order_follows_pymatgen():
    from pymatgen.core import Composition

    atoms = perovskite(symbols=("O", "O", "Ti", "O", "Sr"))
    t = atoms_to_tensors(atoms, formation_energy=0.0)
    symbols = [Atoms(numbers=[z]).get_chemical_symbols()[0] for z in t.numbers]
    assert symbols == ["Sr", "Ti", "O", "O", "O"]
    pmg_order = [el.symbol for el in Composition("SrTiO3").elements]
    assert list(dict.fromkeys(symbols)) == pmg_order
    z_order = atoms_to_tensors(atoms, formation_energy=0.0, order="z").numbers
    assert list(z_order) == [8, 8, 8, 22, 38]
    # atoms of one species keep their input order (stable)
    perm = species_order(np.array([8, 38, 8, 22, 8]), "formula")
    assert list(perm) == [1, 3, 0, 2, 4]


# --- round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_exact_and_matching(seed):
    rng = np.random.default_rng(seed)
    atoms = random_crystal(rng, n=int(rng.integers(1, 12)))
    t = atoms_to_tensors(atoms, formation_energy=-1.25, spacegroup=1)
    back = t.to_atoms()
    assert back.info == {"spacegroup": 1, "formation_energy": -1.25}
    assert matches(atoms, back, ltol=1e-6, stol=1e-6, angle_tol=1e-4, primitive_cell=False, scale=False)
    # exact: the same lattice parameters and, after the species permutation, the same
    # fractional coordinates (wrapped) to float precision
    np.testing.assert_allclose(back.cell.cellpar(), atoms.cell.cellpar(), rtol=1e-12, atol=1e-10)
    perm = species_order(atoms.numbers, "formula")
    np.testing.assert_allclose(back.get_scaled_positions(), atoms.get_scaled_positions()[perm], atol=1e-12)
    assert list(back.numbers) == list(atoms.numbers[perm])
    # and encoding the decoded structure again is a fixed point
    np.testing.assert_allclose(atoms_to_tensors(back).x, t.x, atol=1e-12)


def test_rotation_and_translation_invariance():
    rng = np.random.default_rng(7)
    atoms = random_crystal(rng, n=6)
    base = atoms_to_tensors(atoms, formation_energy=0.0, spacegroup=1)
    moved = atoms.copy()
    rot = Rotation.random(random_state=3).as_matrix()
    moved.set_cell(moved.cell[:] @ rot.T, scale_atoms=True)
    np.testing.assert_allclose(
        atoms_to_tensors(moved, formation_energy=0.0, spacegroup=1).x, base.x, atol=1e-10
    )
    # a translation by a lattice vector changes nothing after wrapping
    shifted = atoms.copy()
    shifted.positions += atoms.cell[0] - 2 * atoms.cell[2]
    np.testing.assert_allclose(
        atoms_to_tensors(shifted, formation_energy=0.0, spacegroup=1).x, base.x, atol=1e-10
    )


def test_left_handed_cell_is_made_right_handed_without_moving_atoms():
    rng = np.random.default_rng(11)
    atoms = random_crystal(rng, n=5)
    mirrored_cell = atoms.copy()
    mirrored_cell.set_cell(atoms.cell[[1, 0, 2]], scale_atoms=False)  # same positions, odd basis
    assert np.linalg.det(mirrored_cell.cell[:]) * np.linalg.det(atoms.cell[:]) < 0
    t = atoms_to_tensors(mirrored_cell, formation_energy=0.0, spacegroup=1)
    assert np.linalg.det(t.lattice) > 0
    back = t.to_atoms()
    # the same crystal (not its mirror image): interatomic distances agree and it matches
    d0 = np.sort(mirrored_cell.get_all_distances(mic=True).ravel())
    d1 = np.sort(back.get_all_distances(mic=True).ravel())
    np.testing.assert_allclose(d1, d0, atol=1e-9)
    assert matches(mirrored_cell, back, ltol=1e-5, stol=1e-5, angle_tol=1e-3, scale=False)


def test_niggli_reduction_keeps_the_crystal():
    atoms = bulk("Cu", "fcc", a=3.6).repeat((1, 1, 1))
    skew = atoms.copy()
    skew.set_cell([atoms.cell[0], atoms.cell[1], atoms.cell[2] + 2 * atoms.cell[0]], scale_atoms=False)
    t = atoms_to_tensors(skew, formation_energy=0.0, niggli=True, min_distance=0.5)
    np.testing.assert_allclose(np.sort(t.to_atoms().cell.lengths()), [2.5456] * 3, atol=1e-3)
    assert matches(skew, t.to_atoms())


def test_decoding_wraps_model_output():
    t = atoms_to_tensors(perovskite(), formation_energy=0.0)
    x = t.x.copy()
    x[:5] += np.array([1.0, -2.0, 3.0])  # integer shifts: the same crystal
    back = tensors_to_atoms(x, t.numbers)
    np.testing.assert_allclose(back.get_scaled_positions(), t.frac, atol=1e-12)


def test_composition_rows_order():
    assert list(composition_rows([8, 8, 22, 8, 38], 60)) == [38, 22, 8, 8, 8]


# --- validation messages -----------------------------------------------------------------


def test_error_too_many_atoms():
    atoms = perovskite().repeat((2, 2, 2))
    with pytest.raises(ValueError, match=r"^structure has 40 atoms, more than max_atoms=30$"):
        atoms_to_tensors(atoms, max_atoms=30, formation_energy=0.0)


def test_error_unknown_and_unsupported_elements():
    atoms = perovskite()
    atoms.numbers[0] = 118
    with pytest.raises(
        ValueError, match=r"^element Og \(Z=118\) is outside the supported range H-Lr \(Z=1-103\)$"
    ):
        atoms_to_tensors(atoms, formation_energy=0.0)
    with pytest.raises(ValueError, match=r"^unknown element 'Xx'$"):
        composition_rows(["Xx", "O"], 60)


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "space group 0 is outside 1-230"),
        (231, "space group 231 is outside 1-230"),
        (12.5, "space group 12.5 is not an integer"),
        ("Xx", "unknown space-group symbol 'Xx'"),
        (float("nan"), "space group nan is not a number 1-230"),
        (None, "space group None is not a number 1-230 or a symbol"),
    ],
)
def test_error_invalid_spacegroups(value, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        validate_spacegroup(value)
    if value is not None:
        with pytest.raises(ValueError):
            atoms_to_tensors(perovskite(), formation_energy=0.0, spacegroup=value)


def test_error_nan_inputs():
    atoms = perovskite()
    atoms.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^positions contain NaN or infinite values$"):
        atoms_to_tensors(atoms, formation_energy=0.0)
    with pytest.raises(ValueError, match=r"^formation energy is nan, not a finite number$"):
        atoms_to_tensors(perovskite(), formation_energy=float("nan"))
    with pytest.raises(ValueError, match=r"^no formation energy: pass formation_energy="):
        atoms_to_tensors(perovskite())
    x = atoms_to_tensors(perovskite(), formation_energy=0.0).x
    x[62, 0] = np.inf
    with pytest.raises(ValueError, match=r"^structure matrix contains NaN or infinite values$"):
        tensors_to_atoms(x, [38, 22, 8, 8, 8])


def test_error_overlapping_atoms_across_the_boundary():
    atoms = perovskite()
    atoms.set_scaled_positions(np.vstack([atoms.get_scaled_positions()[:4], [0.999, 0.0, 0.0]]))
    # atom 4 sits 0.004 A from atom 0 through the periodic boundary
    with pytest.raises(ValueError, match=r"^atoms 0 and 4 overlap: 0\.004 A apart \(minimum 0\.5 A\)$"):
        atoms_to_tensors(atoms, formation_energy=0.0, spacegroup=1)


def test_error_degenerate_cell():
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 0]], cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=True)
    with pytest.raises(ValueError, match=r"^cell is degenerate"):
        atoms_to_tensors(atoms, formation_energy=0.0, spacegroup=1)


# --- space groups ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number, count",
    [(1, 1), (2, 2), (14, 4), (166, 36), (194, 24), (221, 48), (225, 192), (227, 192), (229, 96)],
)
def test_operation_counts(number, count):
    assert n_operations(number) == count
    ops = spacegroup_operations(number)
    assert ops.shape == (MAX_OPERATIONS, 4, 4)
    np.testing.assert_array_equal(ops[0], np.eye(4))  # identity first
    assert np.all(ops[count:] == 0)  # zero padding
    assert np.all(ops[:count, 3, 3] == 1) and np.all(ops[:count, 3, :3] == 0)


def _site_set(frac):
    return {tuple(np.round(np.mod(f, 1.0), 6) % 1.0) for f in frac}


@pytest.mark.parametrize(
    "atoms, number",
    [
        (bulk("NaCl", "rocksalt", a=5.64, cubic=True), 225),
        (bulk("Si", "diamond", a=5.43, cubic=True), 227),
        (bulk("Fe", "bcc", a=2.87, cubic=True), 229),
        (bulk("Mg", "hcp", a=3.21, c=5.21), 194),
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # spglib's error-handling notice
def test_operations_map_the_crystal_onto_itself(atoms, number):
    """Every operation of the encoded setting is a symmetry of the crystal in spglib's
    standardised conventional cell (the default setting the encoding documents)."""
    import spglib

    assert get_spacegroup(atoms, symprec=1e-3) == number
    ops = spacegroup_operations(number)[: n_operations(number)]
    _, frac, numbers = spglib.standardize_cell(
        (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), to_primitive=False, symprec=1e-3
    )
    for z in set(numbers):
        sites = frac[numbers == z]
        reference = _site_set(sites)
        for op in ops:
            image = sites @ op[:3, :3].T + op[:3, 3]
            assert _site_set(image) == reference


@pytest.mark.parametrize("number", [2, 15, 62, 139, 166, 186, 205, 225, 230])
def test_operations_form_a_group(number):
    """Closure modulo lattice translations: the product of two operations is in the set."""
    ops = spacegroup_operations(number)[: n_operations(number)].astype(float)
    keys = {(tuple(op[:3, :3].ravel().astype(int)), tuple(np.round(op[:3, 3] % 1.0, 6) % 1.0)) for op in ops}
    for a in ops[:: max(1, len(ops) // 12)]:
        for b in ops:
            c = a @ b
            key = (tuple(np.rint(c[:3, :3]).ravel().astype(int)), tuple(np.round(c[:3, 3] % 1.0, 6) % 1.0))
            assert key in keys


def test_operation_table_is_read_only_and_row_zero_empty():
    table = operation_table()
    assert table.shape == (231, 192, 4, 4)
    assert not table.flags.writeable and np.all(table[0] == 0)


def test_symbols_and_detection():
    assert validate_spacegroup("Fm-3m") == 225
    assert validate_spacegroup("P6_3/mmc") == 194
    assert validate_spacegroup("225") == 225
    assert validate_spacegroup(np.int64(14)) == 14
    assert get_spacegroup(perovskite()) == 221
