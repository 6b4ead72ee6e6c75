"""Synthetic polymorphs: real pyxtal, real EMT, real spglib; assertions on the physics."""

import importlib.util
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

import ase.io
import numpy as np
import pytest
import spglib
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.neighborlist import neighbor_list
from pymatgen.core import Composition
from scipy.optimize import minimize_scalar

from ase_crystalgen.datasets.synthetic import (
    EMT_ELEMENTS,
    fcc_chemical_potentials,
    formation_energy,
    generate_polymorphs,
    random_polymorph,
    relax_polymorph,
    write_synthetic_set,
)

HAS_PYXTAL = importlib.util.find_spec("pyxtal") is not None
needs_pyxtal = pytest.mark.skipif(not HAS_PYXTAL, reason="pyxtal (the synthetic extra) is not installed")

FMAX = 0.02
SYMPREC = 0.1


def fcc_energy_by_lattice_scan(symbol):
    """Energy per atom of fcc at its EMT lattice constant, by a 1-D minimisation over ``a``.

    Independent of the filters and optimisers of the module: cubic conventional cell, plain
    EMT energies.
    """

    def energy(a):
        crystal = bulk(symbol, "fcc", a=a, cubic=True)
        crystal.calc = EMT()
        return crystal.get_potential_energy() / len(crystal)

    a0 = bulk(symbol, "fcc").cell.cellpar()[0] * np.sqrt(2)
    result = minimize_scalar(energy, bracket=(0.95 * a0, a0, 1.05 * a0), tol=1e-10)
    return result.fun


def reduced(atoms):
    return Composition(dict(Counter(atoms.get_chemical_symbols()))).reduced_formula


@pytest.fixture(scope="module")
def mu():
    return fcc_chemical_potentials(["Cu", "Au"])


@pytest.fixture(scope="module")
def generated(mu):
    """A small set: two compositions, three groups, cells of at most 4 atoms."""
    if not HAS_PYXTAL:
        pytest.skip("pyxtal (the synthetic extra) is not installed")
    with warnings.catch_warnings():
        # discarded duplicates and unrealisable pairs are reported, and expected here
        warnings.simplefilter("ignore", RuntimeWarning)
        return generate_polymorphs(["Cu", "Cu3Au"], [225, 221, 123], rng=np.random.default_rng(11),
                                   max_atoms=4, references=mu, fmax=FMAX, progress=False, symprec=SYMPREC)


# ----------------------------------------------------------------------------- references and E_f


def test_emt_elements_are_the_metals_emt_parametrises():
    from ase.calculators.emt import parameters

    assert set(EMT_ELEMENTS) == set(parameters) - {"H", "C", "N", "O"}


@pytest.mark.parametrize("symbol", ["Cu", "Au"])
def test_elemental_reference_matches_lattice_scan(mu, symbol):
    assert mu[symbol] == pytest.approx(fcc_energy_by_lattice_scan(symbol), abs=1e-6)


def test_pure_fcc_polymorph_has_zero_formation_energy(mu):
    relaxed = relax_polymorph(bulk("Cu", "fcc", a=3.7, cubic=True))
    assert relaxed.info["converged"]
    assert abs(formation_energy(relaxed, mu)) < 1e-3


def test_l12_cu3au_formation_energy_by_hand_and_negative(mu):
    l12 = bulk("Cu", "fcc", a=3.75, cubic=True)
    l12[0].symbol = "Au"  # Au on the cube corners, Cu on the face centres
    relaxed = relax_polymorph(l12, fmax=1e-3)
    assert relaxed.info["converged"]

    check = relaxed.copy()
    check.calc = EMT()
    e_per_atom = check.get_potential_energy() / len(check)
    by_hand = e_per_atom - (0.75 * mu["Cu"] + 0.25 * mu["Au"])
    assert formation_energy(relaxed, mu) == pytest.approx(by_hand, abs=1e-9)
    assert by_hand < -5e-3  # EMT orders Cu3Au (about -10 meV/atom)
    # still L1_2: cubic, Pm-3m
    assert spglib.get_symmetry_dataset((relaxed.cell[:], relaxed.get_scaled_positions(),
                                        relaxed.numbers), symprec=1e-3).number == 221


def test_relax_polymorph_returns_plain_atoms_and_leaves_input_alone():
    start = bulk("Au", "fcc", a=4.3)
    start.info["tag"] = "kept"
    before = start.cell[:].copy()
    relaxed = relax_polymorph(start)
    assert relaxed is not start and relaxed.calc is None and relaxed.constraints == []
    assert np.allclose(start.cell[:], before)
    assert relaxed.info["tag"] == "kept"
    assert relaxed.info["converged"] is True and relaxed.info["n_steps"] > 0
    assert relaxed.get_volume() < start.get_volume()  # 4.3 Å is stretched; EMT Au has a = 4.06 Å


# ------------------------------------------------------------------------------------ generation


@needs_pyxtal
def test_generated_structures_are_relaxed_symmetric_and_physical(generated, mu):
    assert len(generated) >= 3
    for atoms in generated:
        info = atoms.info
        # composition preserved (the cell may hold several formula units)
        assert reduced(atoms) == info["formula"] and info["formula"] in ("Cu", "Cu3Au")
        # spglib on the structure as returned agrees with the recorded group
        dataset = spglib.get_symmetry_dataset(
            (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=SYMPREC)
        assert dataset.number == info["spacegroup"]
        assert info["spacegroup_generated"] in (225, 221, 123)
        # no overlaps, including periodic images
        assert neighbor_list("d", atoms, 3.0).min() >= 1.5
        # relaxed: recomputed EMT forces and cell stress below the criterion
        check = atoms.copy()
        check.calc = EMT()
        assert np.abs(check.get_forces()).max() < FMAX
        virial_per_atom = np.abs(check.get_stress(voigt=False)) * check.get_volume() / len(check)
        assert virial_per_atom.max() < FMAX
        # the recorded energies are those of this structure
        e_per_atom = check.get_potential_energy() / len(check)
        assert info["energy_per_atom"] == pytest.approx(e_per_atom, abs=1e-9)
        counts = Counter(atoms.get_chemical_symbols())
        by_hand = e_per_atom - sum(n / len(atoms) * mu[s] for s, n in counts.items())
        assert info["formation_energy"] == pytest.approx(by_hand, abs=1e-9)
        assert info["id"].startswith(f"synthetic-{info['formula']}-{info['spacegroup_generated']}-")
    assert len({a.info["id"] for a in generated}) == len(generated)


@needs_pyxtal
def test_generated_pure_fcc_is_the_zero_of_formation_energy(generated):
    fcc = [a for a in generated if a.info["formula"] == "Cu" and a.info["spacegroup"] == 225]
    assert fcc, "Cu in Fm-3m with one atom per primitive cell can only be fcc"
    assert all(abs(a.info["formation_energy"]) < 1e-3 for a in fcc)
    # simple cubic (one atom in Pm-3m) is far from close packed: hundreds of meV above fcc
    simple_cubic = [a for a in generated if a.info["formula"] == "Cu" and a.info["spacegroup"] == 221
                    and len(a) == 1]
    assert simple_cubic and all(a.info["formation_energy"] > 0.1 for a in simple_cubic)


@needs_pyxtal
def test_min_atoms_gives_the_same_crystal_in_a_larger_cell(mu):
    out = generate_polymorphs("Cu", [225], rng=np.random.default_rng(0), max_atoms=4, min_atoms=4,
                              references=mu, progress=False)
    (fcc,) = out
    # the 1-atom primitive cell comes as the conventional cube of fcc copper
    assert len(fcc) == 4 and np.allclose(fcc.cell.cellpar()[3:], 90.0)
    assert np.allclose(fcc.cell.lengths(), fcc.cell.lengths()[0])
    dataset = spglib.get_symmetry_dataset((fcc.cell[:], fcc.get_scaled_positions(), fcc.numbers),
                                          symprec=SYMPREC)
    assert dataset.number == fcc.info["spacegroup"] == 225
    check = fcc.copy()
    check.calc = EMT()
    assert check.get_potential_energy() / 4 == pytest.approx(fcc.info["energy_per_atom"], abs=1e-12)
    assert abs(fcc.info["formation_energy"]) < 1e-3


@needs_pyxtal
def test_same_seed_same_crystal_different_seed_different():
    a = random_polymorph("Cu3Au", 123, np.random.default_rng(5))
    b = random_polymorph("Cu3Au", 123, np.random.default_rng(5))
    c = random_polymorph("Cu3Au", 123, np.random.default_rng(6))
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell[:], b.cell[:])
    assert not np.allclose(a.cell[:], c.cell[:])


@needs_pyxtal
@pytest.mark.filterwarnings("ignore:discarded:RuntimeWarning")
def test_generation_is_reproducible_and_leaves_global_random_state_alone(mu):
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    first, again = [generate_polymorphs("CuAu", [123, 221], rng=np.random.default_rng(3), max_atoms=2,
                                        references=mu, progress=False) for _ in range(2)]
    # neither pyxtal nor the relaxation (scipy's logm would) draws from numpy's global stream
    assert np.array_equal(np.random.get_state()[1], state)
    assert first and [a.info["id"] for a in first] == [a.info["id"] for a in again]
    for x, y in zip(first, again):
        assert np.array_equal(x.positions, y.positions) and np.array_equal(x.cell[:], y.cell[:])
        assert x.info["energy_per_atom"] == y.info["energy_per_atom"]


@needs_pyxtal
def test_random_polymorph_has_requested_symmetry_and_primitive_cell():
    atoms = random_polymorph({"Cu": 3, "Au": 1}, 225, np.random.default_rng(0))
    # F-centred: pyxtal's 16-atom conventional cell comes back as the 4-atom primitive cell
    assert len(atoms) == 4 and reduced(atoms) == "Cu3Au"
    dataset = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                          symprec=1e-3)
    assert dataset.number == 225 and atoms.info["spacegroup_generated"] == 225


@needs_pyxtal
def test_random_polymorph_returns_none_when_wyckoff_multiplicities_do_not_fit():
    # the smallest orbit of Ia-3d has 8 sites per primitive cell
    assert random_polymorph("Cu", 230, np.random.default_rng(0)) is None


@needs_pyxtal
def test_unrealisable_pairs_are_reported_not_fatal():
    with pytest.warns(RuntimeWarning) as caught:
        out = generate_polymorphs("Cu", [230], max_atoms=4, references={"Cu": 0.0}, progress=False)
    assert out == []
    assert [str(w.message) for w in caught] == [
        "1 composition / space-group pairs have no Wyckoff arrangement with at most max_atoms=4 atoms: "
        "Cu in 230"
    ]


# ---------------------------------------------------------------------------------------- errors


def test_unsupported_element_is_named():
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["Cu", "FeAl"], [225], progress=False)
    assert str(err.value) == "element 'Fe' is not supported by EMT; choose from Al, Cu, Ag, Au, Ni, Pd, Pt"
    with pytest.raises(ValueError) as err:
        fcc_chemical_potentials(["O"])
    assert str(err.value) == "element 'O' is not supported by EMT; choose from Al, Cu, Ag, Au, Ni, Pd, Pt"


@pytest.mark.parametrize("group", [231, 0])
def test_space_group_outside_range(group):
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["Cu"], [225, group], progress=False)
    assert str(err.value) == f"space group {group} is outside 1-230"


def test_formula_unit_larger_than_max_atoms():
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["Cu12Au"], [225], max_atoms=12, progress=False)
    assert str(err.value) == "composition Cu12Au has 13 atoms per formula unit, more than max_atoms=12"


def test_other_bad_input():
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["CuAu", "Cu2Au2"], [225], progress=False)
    assert str(err.value) == (
        "compositions 'CuAu' and 'Cu2Au2' share the reduced formula CuAu; give each formula once"
    )
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["Cu"], [225], n_per_group=0, progress=False)
    assert str(err.value) == "n_per_group must be a positive integer, got 0"
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["cu3au"], [225], progress=False)
    assert str(err.value) == (
        "cannot read the formula 'cu3au': unexpected 'c' at position 0 (element symbols start with a "
        "capital letter)"
    )
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["Cu"], [225], references={"Au": 0.0}, progress=False)
    assert str(err.value) == "references has no energy for 'Cu'"
    with pytest.raises(ValueError) as err:
        generate_polymorphs(["Cu"], [225], max_atoms=4, min_atoms=6, progress=False)
    assert str(err.value) == "min_atoms=6 is larger than max_atoms=4"
    with pytest.raises(TypeError) as err:
        generate_polymorphs(["Cu"], [225], rng=42, progress=False)
    assert str(err.value) == "rng must be a numpy.random.Generator, got int"


def test_missing_pyxtal_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyxtal", None)  # what an uninstalled package looks like
    message = "pyxtal is needed for synthetic polymorphs: pip install 'ase_crystalgen[synthetic]'"
    with pytest.raises(ImportError) as err:
        random_polymorph("Cu", 225, np.random.default_rng(0))
    assert str(err.value) == message
    with pytest.raises(ImportError) as err:
        generate_polymorphs("Cu", 225, references={"Cu": 0.0}, progress=False)
    assert str(err.value) == message


# ------------------------------------------------------------------------------------------ files


@needs_pyxtal
def test_extxyz_round_trip_keeps_info(generated, tmp_path):
    path = tmp_path / "set.extxyz"
    write_synthetic_set(generated, path)
    assert [p.name for p in tmp_path.iterdir()] == ["set.extxyz"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600
    back = ase.io.read(path, ":")
    assert len(back) == len(generated)
    for a, b in zip(generated, back):
        for key in ("formation_energy", "energy_per_atom", "spacegroup", "spacegroup_generated", "id",
                    "formula", "converged", "n_steps"):
            assert b.info[key] == pytest.approx(a.info[key]) if isinstance(a.info[key], float) \
                else b.info[key] == a.info[key], key
        assert np.allclose(a.positions, b.positions) and a.get_chemical_symbols() == b.get_chemical_symbols()


def test_write_refuses_an_empty_set(tmp_path):
    with pytest.raises(ValueError) as err:
        write_synthetic_set([], tmp_path / "empty.extxyz")
    assert str(err.value) == "no structures to write"


@needs_pyxtal
def test_example_quick_run(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location(
        "synthetic_polymorphs_example", Path(__file__).parents[1] / "examples" / "synthetic_polymorphs.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)

    structures = example.main(quick=True)

    assert (tmp_path / "synthetic.extxyz").exists()
    assert len(ase.io.read(tmp_path / "synthetic.extxyz", ":")) == len(structures)
    groups = Counter(a.info["formula"] for a in structures)
    assert max(groups.values()) >= 2, groups  # polymorph groups, the point of the set
    out = capsys.readouterr().out
    assert "polymorph groups" in out and "synthetic-Cu-225-0" in out
