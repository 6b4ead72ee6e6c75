"""Exact recovery of L1_2 AuCu3 by the lattice searches (examples/grs_l12_search.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "grs_l12_search.py"
A_FCC = 3.75


def _load_example():
    spec = importlib.util.spec_from_file_location("example_grs_l12_search", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _au_sublattices(atoms: Atoms) -> set[int]:
    """Which of the four simple-cubic sublattices of the fcc cube hold Au, from positions
    (the GA's crossovers may reorder atoms)."""
    parity = np.mod(np.rint(2 * atoms.positions / A_FCC).astype(int), 2)
    label = parity @ np.array([4, 2, 1])
    assert set(label) <= {0, 3, 5, 6}, "not on the fcc sites of the conventional cube"
    return set(label[atoms.numbers == 79].tolist())


def _is_l12(atoms: Atoms) -> bool:
    n_au = int(np.sum(atoms.numbers == 79))
    return 4 * n_au == len(atoms) and len(_au_sublattices(atoms)) == 1


def test_sublattice_check_tells_l12_from_other_au_cu3():
    l12 = bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(2)
    l12.symbols[::4] = "Au"
    assert _is_l12(l12)
    shifted = l12.copy()
    shifted.numbers = np.roll(l12.numbers, 1)  # Au on another sublattice: still L1_2
    assert _is_l12(shifted)
    mixed = l12.copy()
    au, cu = 0, 1  # one Au moved onto a face-centre site
    mixed.numbers[[au, cu]] = mixed.numbers[[cu, au]]
    assert not _is_l12(mixed)


@pytest.fixture(scope="module")
def result():
    return _load_example().main(quick=True, seed=0)


def test_simulated_annealing_finds_l12_exactly(result):
    assert result["sa_steps"] is not None and result["sa_steps"] > 0
    assert result["sa_score"] <= 1e-10
    atoms = result["sa_atoms"]
    assert len(atoms) == 32 and _is_l12(atoms)


def test_genetic_algorithm_finds_l12_exactly(result):
    assert result["ga_generations"] is not None
    assert result["ga_score"] <= 1e-10
    assert _is_l12(result["ga_atoms"])


def test_found_structures_match_the_target_crystal(result):
    pytest.importorskip("pymatgen")
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    target = bulk("Cu", "fcc", a=A_FCC, cubic=True)
    target[0].symbol = "Au"
    ref = AseAtomsAdaptor.get_structure(target)
    matcher = StructureMatcher()
    for key in ("sa_atoms", "ga_atoms"):
        assert matcher.fit(ref, AseAtomsAdaptor.get_structure(result[key])), key
    # a wrong Au8Cu24 arrangement does not match
    wrong = result["sa_atoms"].copy()
    au = int(np.flatnonzero(wrong.numbers == 79)[0])
    cu = int(np.flatnonzero(wrong.numbers == 29)[0])
    wrong.numbers[[au, cu]] = wrong.numbers[[cu, au]]
    assert not matcher.fit(ref, AseAtomsAdaptor.get_structure(wrong))
