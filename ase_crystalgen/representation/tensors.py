"""``ase.Atoms`` <-> the fixed-size matrices of the conditional-generation paper.

Layout of the structure matrix ``x`` for ``max_atoms = M`` (the paper: M = 60, 64 x 3):

========================  ===================================================
rows ``0 .. n-1``         fractional coordinates of the n atoms, wrapped to [0, 1)
rows ``n .. M-1``         zeros (padding)
row ``M``                 zeros (the paper's separator row)
rows ``M+1 .. M+3``       lattice vectors a, b, c in Angstrom (one per row)
========================  ===================================================

Choices (see docs/representation.md):

* **Atom order.** Species follow the order of the chemical formula, pymatgen's convention
  (increasing Pauling electronegativity, ties by atomic number), as in the paper where rows
  follow the elements of e.g. ``Ta1W1B6``; ``order="z"`` sorts by atomic number and
  ``order="input"`` keeps the given order. Atoms of one species keep their input order.
* **Lattice.** The cell is rotated to the standard orientation of
  :func:`ase.geometry.cellpar_to_cell` (a along x, b in the xy plane), which removes the
  arbitrary rotation and leaves fractional coordinates unchanged. A left-handed cell is made
  right-handed by inversion through the origin (same Cartesian positions). With
  ``niggli=True`` the cell is Niggli-reduced first (the CDVAE convention). Lengths stay in
  Angstrom: scaling for a network is the network's business, not the representation's.
* **Conditions.** Element one-hot (103 columns, H-Lr) and 22 standardised elemental properties
  per atom row, zero on every other row; the space group as its (192, 4, 4) operation stack
  (:mod:`.spacegroups`); formation energy per atom; number of sites; a mask of atom rows.

Only ``x``, the atomic numbers, the space-group number, the energy and ``n_sites`` are stored;
the wide condition matrices are expanded on demand from shipped tables, which keeps caches
small.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.geometry import cellpar_to_cell

from .elements import N_ELEMENTS, atomic_numbers_of, element_properties, one_hot
from .spacegroups import get_spacegroup, spacegroup_operations, validate_spacegroup

DEFAULT_MAX_ATOMS = 60
ORDERS = ("formula", "z", "input")


def n_rows(max_atoms: int) -> int:
    """Rows of the structure matrix: ``max_atoms`` + separator + 3 lattice rows."""
    return max_atoms + 4


def lattice_rows(max_atoms: int) -> slice:
    """Row slice of the lattice vectors in the structure matrix."""
    return slice(max_atoms + 1, max_atoms + 4)


@dataclass
class CrystalTensors:
    """One crystal in the paper's fixed-size layout (numpy; no torch needed).

    Attributes
    ----------
    x : (M + 4, 3) float64 structure matrix (see module docstring).
    numbers : (n_sites,) int atomic numbers in row order.
    spacegroup : int, 1-230.
    formation_energy : float, eV/atom.
    """

    x: np.ndarray
    numbers: np.ndarray
    spacegroup: int
    formation_energy: float

    @property
    def max_atoms(self) -> int:
        return self.x.shape[0] - 4

    @property
    def n_sites(self) -> int:
        return len(self.numbers)

    @property
    def frac(self) -> np.ndarray:
        return self.x[: self.n_sites]

    @property
    def lattice(self) -> np.ndarray:
        return self.x[lattice_rows(self.max_atoms)]

    @property
    def mask(self) -> np.ndarray:
        """(M + 4,) bool, True on the rows that hold atoms."""
        mask = np.zeros(self.x.shape[0], dtype=bool)
        mask[: self.n_sites] = True
        return mask

    @property
    def element_one_hot(self) -> np.ndarray:
        """(M + 4, 103) float32 one-hot over H-Lr, zero rows off the atoms."""
        return one_hot(self.numbers, length=self.x.shape[0])

    @property
    def element_properties(self) -> np.ndarray:
        """(M + 4, 22) float32 standardised elemental properties, zero rows off the atoms."""
        return element_properties(self.numbers, length=self.x.shape[0])

    @property
    def spacegroup_operations(self) -> np.ndarray:
        """(192, 4, 4) float32 zero-padded affine operations of the space group."""
        return spacegroup_operations(self.spacegroup)

    def to_atoms(self) -> Atoms:
        """Back to ``ase.Atoms`` (info carries the space group and formation energy)."""
        return tensors_to_atoms(
            self.x, self.numbers, spacegroup=self.spacegroup, formation_energy=self.formation_energy
        )


@cache
def _formula_rank(z: int) -> tuple[float, int]:
    from pymatgen.core import Element

    x = Element.from_Z(z).X
    return (x if np.isfinite(x) else np.inf, z)


def species_order(numbers: np.ndarray, order: str = "formula") -> np.ndarray:
    """Permutation that groups atoms by species in the chosen order (stable within species)."""
    numbers = np.asarray(numbers)
    if order == "input":
        return np.arange(len(numbers))
    if order == "z":
        return np.argsort(numbers, kind="stable")
    if order == "formula":
        species = sorted(set(numbers.tolist()), key=_formula_rank)
        rank = {z: i for i, z in enumerate(species)}
        return np.argsort(np.array([rank[z] for z in numbers.tolist()]), kind="stable")
    raise ValueError(f"unknown atom order {order!r}; choose from {', '.join(ORDERS)}")


def standard_cell(atoms: Atoms, niggli: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(lattice, fractional coordinates) in the standard orientation, right-handed, wrapped."""
    atoms = atoms.copy()
    if niggli:
        from ase.build import niggli_reduce

        atoms.pbc = True
        niggli_reduce(atoms)
    frac = atoms.cell.scaled_positions(atoms.positions)
    cell = np.asarray(atoms.cell[:], dtype=float)
    if np.linalg.det(cell) < 0:
        # inversion through the origin: same Cartesian positions, right-handed cell
        cell, frac = -cell, -frac
    lattice = cellpar_to_cell(_cellpar(cell))
    frac = np.mod(frac, 1.0)
    frac[frac >= 1.0] = 0.0  # mod can return 1.0 for tiny negative numbers
    return lattice, frac


def _cellpar(cell: np.ndarray) -> np.ndarray:
    lengths = np.linalg.norm(cell, axis=1)
    angles = []
    for i, j in ((1, 2), (0, 2), (0, 1)):
        cos = np.dot(cell[i], cell[j]) / (lengths[i] * lengths[j])
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.concatenate([lengths, angles])


def validate_structure(atoms: Atoms, max_atoms: int, min_distance: float = 0.5) -> np.ndarray:
    """Check ``atoms`` can be encoded; return its atomic numbers (validated, H-Lr)."""
    n = len(atoms)
    if n == 0:
        raise ValueError("structure has no atoms")
    if n > max_atoms:
        raise ValueError(f"structure has {n} atoms, more than max_atoms={max_atoms}")
    # symbols, so that an element beyond Lr is named in the message
    numbers = atomic_numbers_of(
        [chemical_symbols[z] if 0 < z < len(chemical_symbols) else z for z in atoms.numbers]
    )
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.all(np.isfinite(cell)):
        raise ValueError("cell contains NaN or infinite values")
    if not np.all(np.isfinite(atoms.positions)):
        raise ValueError("positions contain NaN or infinite values")
    volume = abs(np.linalg.det(cell))
    if volume < 1e-6:
        raise ValueError(f"cell is degenerate (volume {volume:.3g} A^3); a periodic 3D cell is needed")
    if min_distance > 0 and n > 1:
        i, j, d = _close_pairs(atoms, min_distance)
        if len(d):
            k = int(np.argmin(d))
            if i[k] == j[k]:
                raise ValueError(f"atom {i[k]} is {d[k]:.3f} A from its own periodic image (cell too small)")
            raise ValueError(
                f"atoms {min(i[k], j[k])} and {max(i[k], j[k])} overlap: {d[k]:.3f} A apart "
                f"(minimum {min_distance} A)"
            )
    return numbers


def _close_pairs(atoms: Atoms, cutoff: float):
    from ..descriptors.neighbors import neighbor_pairs

    probe = Atoms(atoms.numbers, cell=atoms.cell, scaled_positions=atoms.get_scaled_positions(), pbc=True)
    i, j, vec = neighbor_pairs(probe, cutoff)
    d = np.linalg.norm(vec, axis=1)
    keep = (i <= j) & (d < cutoff)
    return i[keep], j[keep], d[keep]


def atoms_to_tensors(
    atoms: Atoms,
    *,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    formation_energy: float | None = None,
    spacegroup: int | str | None = None,
    symprec: float = 0.1,
    order: str = "formula",
    niggli: bool = False,
    min_distance: float = 0.5,
) -> CrystalTensors:
    """Encode one crystal in the paper's layout.

    Parameters
    ----------
    atoms
        A periodic structure with at most ``max_atoms`` atoms of elements H-Lr.
    max_atoms
        Atom rows of the layout (the paper: 60, a 64 x 3 matrix).
    formation_energy
        eV/atom; default ``atoms.info["formation_energy"]``. Required: it is a condition.
    spacegroup
        Number or symbol; default ``atoms.info["spacegroup"]``, else computed with spglib at
        ``symprec``.
    order
        ``"formula"`` (default, the paper), ``"z"`` or ``"input"``; see module docstring.
    niggli
        Niggli-reduce the cell first.
    min_distance
        Atoms closer than this (Angstrom, all periodic images) are rejected as overlapping.
    """
    if max_atoms < 1:
        raise ValueError(f"max_atoms must be at least 1, got {max_atoms}")
    validate_structure(atoms, max_atoms, min_distance)
    if formation_energy is None:
        formation_energy = atoms.info.get("formation_energy")
    if formation_energy is None:
        raise ValueError(
            "no formation energy: pass formation_energy= or set atoms.info['formation_energy'] (eV/atom)"
        )
    formation_energy = float(formation_energy)
    if not np.isfinite(formation_energy):
        raise ValueError(f"formation energy is {formation_energy}, not a finite number")
    if spacegroup is None:
        spacegroup = atoms.info.get("spacegroup")
    spacegroup = get_spacegroup(atoms, symprec) if spacegroup is None else validate_spacegroup(spacegroup)

    lattice, frac = standard_cell(atoms, niggli=niggli)
    numbers = np.asarray(atoms.numbers)  # niggli_reduce keeps the atom order
    perm = species_order(numbers, order)
    x = np.zeros((n_rows(max_atoms), 3))
    x[: len(perm)] = frac[perm]
    x[lattice_rows(max_atoms)] = lattice
    return CrystalTensors(
        x=x, numbers=numbers[perm].astype(int), spacegroup=spacegroup, formation_energy=formation_energy
    )


def tensors_to_atoms(
    x: np.ndarray,
    numbers: np.ndarray,
    *,
    spacegroup: int | None = None,
    formation_energy: float | None = None,
    wrap: bool = True,
) -> Atoms:
    """Decode a structure matrix and the atomic numbers of its atom rows into ``ase.Atoms``.

    ``x`` may be a model output: fractional coordinates are wrapped into [0, 1) when ``wrap``,
    and the lattice rows are used as they are (rows = cell vectors, Angstrom).
    """
    x = np.asarray(x, dtype=float)
    numbers = atomic_numbers_of(np.asarray(numbers).tolist())
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] < 5:
        raise ValueError(f"structure matrix must have shape (max_atoms + 4, 3), got {x.shape}")
    max_atoms = x.shape[0] - 4
    n = len(numbers)
    if n > max_atoms:
        raise ValueError(f"{n} atomic numbers do not fit a layout of max_atoms={max_atoms}")
    if not np.all(np.isfinite(x[:n])) or not np.all(np.isfinite(x[lattice_rows(max_atoms)])):
        raise ValueError("structure matrix contains NaN or infinite values")
    frac = x[:n] % 1.0 if wrap else x[:n]
    atoms = Atoms(numbers=numbers, cell=x[lattice_rows(max_atoms)], scaled_positions=frac, pbc=True)
    if spacegroup is not None:
        atoms.info["spacegroup"] = int(spacegroup)
    if formation_energy is not None:
        atoms.info["formation_energy"] = float(formation_energy)
    return atoms


def composition_rows(numbers: np.ndarray, max_atoms: int, order: str = "formula") -> np.ndarray:
    """Atomic numbers of the atom rows for a composition (any order in, layout order out).

    Generation conditions on a composition before any structure exists; this gives the rows
    a sampled matrix will be decoded with.
    """
    numbers = atomic_numbers_of(np.asarray(numbers).tolist())
    if len(numbers) > max_atoms:
        raise ValueError(f"composition has {len(numbers)} atoms, more than max_atoms={max_atoms}")
    return numbers[species_order(numbers, order)]


__all__ = [
    "CrystalTensors",
    "DEFAULT_MAX_ATOMS",
    "N_ELEMENTS",
    "atoms_to_tensors",
    "composition_rows",
    "lattice_rows",
    "n_rows",
    "species_order",
    "standard_cell",
    "tensors_to_atoms",
    "validate_structure",
]
