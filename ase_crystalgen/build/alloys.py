"""Random substitutional alloys on fcc lattices (the targets of the GRS demo and examples)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

#: lattice constants (A) of the pure fcc metals, the end points of Vegard's law
#: (experimental, room temperature)
LATTICE_CONSTANTS = {"Cu": 3.61, "Au": 4.08, "Ag": 4.09, "Al": 4.05, "Ni": 3.52, "Pd": 3.89,
                     "Pt": 3.92}


def vegard_lattice_constant(fractions: dict[str, float]) -> float:
    """Lattice constant of an fcc alloy by Vegard's law (linear in the atomic fractions).

    Parameters
    ----------
    fractions : ``{element: atomic fraction}``; elements from :data:`LATTICE_CONSTANTS`.

    Returns
    -------
    float
        ``sum_e x_e a_e / sum_e x_e`` in Angstrom.
    """
    total = sum(fractions.values())
    return sum(x * LATTICE_CONSTANTS[e] for e, x in fractions.items()) / total


def random_fcc_alloy(
    composition: dict[str, int], a: float, repeat: int, rng: np.random.Generator
) -> Atoms:
    """Conventional fcc supercell with a random occupation of fixed composition.

    Parameters
    ----------
    composition : ``{element: count}``; the counts must add up to ``4 * repeat**3``.
    a : cubic lattice constant in Angstrom.
    repeat : conventional cells along each axis.
    rng : source of the random occupation.

    Returns
    -------
    Atoms
        Periodic cubic cell; ``atoms.info["occupation"]`` is ``"random"``.
    """
    n_sites = 4 * repeat**3
    if sum(composition.values()) != n_sites:
        raise ValueError(f"composition {composition} does not fill the {n_sites} sites of a "
                         f"{repeat}x{repeat}x{repeat} fcc supercell")
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    symbols = np.repeat(list(composition), list(composition.values()))
    atoms.set_chemical_symbols(rng.permutation(symbols))
    atoms.info["occupation"] = "random"
    return atoms


__all__ = ["LATTICE_CONSTANTS", "random_fcc_alloy", "vegard_lattice_constant"]
