"""Moved to :mod:`ase_crystalgen.lammps.export`; this alias stays while ``docs/grs-core.md``
names the old path."""

from .lammps.export import (  # noqa: F401
    ExperimentalWarning,
    GRSMLIAPModel,
    evaluate_yace,
    lammps_input,
    read_yace,
    write_yace,
)
