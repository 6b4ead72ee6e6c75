"""Starting structures for GRS searches: HNF supercells, random occupations and packings,
and random fcc alloys (:mod:`.alloys`)."""

from .alloys import random_fcc_alloy, vegard_lattice_constant
from .candidates import (
    LATTICES,
    RANDOM_CLOSE_PACKING,
    composition_counts,
    hermite_normal_forms,
    parent_lattice,
    random_lattice_candidate,
    random_occupation,
    random_packing,
    supercell,
)

__all__ = [
    "LATTICES",
    "RANDOM_CLOSE_PACKING",
    "composition_counts",
    "hermite_normal_forms",
    "parent_lattice",
    "random_lattice_candidate",
    "random_occupation",
    "random_fcc_alloy",
    "random_packing",
    "supercell",
    "vegard_lattice_constant",
]
