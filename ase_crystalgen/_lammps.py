"""Moved to :mod:`ase_crystalgen.lammps.session`; this alias stays while
``descriptors/snap.py`` imports it from here."""

from .lammps.session import (  # noqa: F401
    QUIET_ARGS,
    import_lammps,
    lammps_from_atoms,
    new_lammps,
    scatter_positions,
)
