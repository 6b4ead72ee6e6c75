"""Neighbour lists agree with ASE's reference implementation."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list
from conftest import random_cell

from ase_crystalgen.descriptors.neighbors import dense_neighbor_pairs, neighbor_pairs


def as_set(i, j, vec):
    return sorted((int(a), int(b), tuple(np.round(v, 6))) for a, b, v in zip(i, j, vec))


def cases(rng):
    out = [random_cell(rng, ["Cu", "Au"], n_atoms=6) for _ in range(3)]
    out += [bulk("Cu", "fcc", a=3.6), molecule("CH3CH2OH")]
    slab = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    slab.pbc = [True, False, True]
    out.append(slab)
    return out


@pytest.mark.parametrize("cutoff", [2.9, 6.64, 9.5])
def test_neighbour_lists_match_ase(rng, cutoff):
    for atoms in cases(rng):
        ref = as_set(*neighbor_list("ijD", atoms, cutoff))
        assert as_set(*neighbor_pairs(atoms, cutoff)) == ref
        assert as_set(*dense_neighbor_pairs(atoms, cutoff)) == ref
