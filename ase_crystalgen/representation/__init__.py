"""Crystals as fixed-size matrices for the generative models (paper section 2).

``atoms_to_tensors`` / ``tensors_to_atoms`` convert between ``ase.Atoms`` and the paper's
layout; ``elements`` holds the one-hot and elemental-property tables; ``spacegroups`` the
(192, 4, 4) operation stacks. Networks never see ``Atoms``: they see these arrays.
"""

from .elements import (
    ELEMENT_SYMBOLS,
    N_ELEMENTS,
    N_PROPERTIES,
    PROPERTY_NAMES,
    atomic_numbers_of,
    element_properties,
    one_hot,
    property_table,
)
from .spacegroups import (
    MAX_OPERATIONS,
    get_spacegroup,
    n_operations,
    operation_table,
    spacegroup_operations,
    validate_spacegroup,
)
from .tensors import (
    DEFAULT_MAX_ATOMS,
    CrystalTensors,
    atoms_to_tensors,
    composition_rows,
    lattice_rows,
    n_rows,
    tensors_to_atoms,
)

__all__ = [
    "DEFAULT_MAX_ATOMS",
    "ELEMENT_SYMBOLS",
    "MAX_OPERATIONS",
    "N_ELEMENTS",
    "N_PROPERTIES",
    "PROPERTY_NAMES",
    "CrystalTensors",
    "atomic_numbers_of",
    "atoms_to_tensors",
    "composition_rows",
    "element_properties",
    "get_spacegroup",
    "lattice_rows",
    "n_operations",
    "n_rows",
    "one_hot",
    "operation_table",
    "property_table",
    "spacegroup_operations",
    "tensors_to_atoms",
    "validate_spacegroup",
]
