"""Relaxation with any ASE calculator, and energy above the convex hull.

::

    from ase_crystalgen.relaxation import PhaseDiagramReference, relax

    relaxed = relax(candidates, calculator="chgnet")          # or "m3gnet", "emt", Vasp(...)
    refs = PhaseDiagramReference.from_calculator(["Li", "Fe", "O"], "chgnet", known_phases=known)
    e_hull = [refs.e_above_hull(a) for a in relaxed if "relax_error" not in a.info]

CHGNet and matgl are optional (``pip install 'ase_crystalgen[chgnet]'`` / ``[matgl]``) and are
imported only when asked for.
"""

from .calculators import (
    CALCULATOR_NAMES,
    M3GNET_DEFAULT_MODEL,
    CalculatorUnavailable,
    calculator_name,
    check_calculator,
    get_calculator,
)
from .hull import PROTOTYPES, PhaseDiagramReference, elemental_references, energy_above_hull, to_entry
from .relax import OPTIMIZERS, RELAX_INFO_KEYS, relax, relax_one
from .store import RelaxationStore

__all__ = [
    "CALCULATOR_NAMES",
    "M3GNET_DEFAULT_MODEL",
    "OPTIMIZERS",
    "PROTOTYPES",
    "RELAX_INFO_KEYS",
    "CalculatorUnavailable",
    "PhaseDiagramReference",
    "RelaxationStore",
    "calculator_name",
    "check_calculator",
    "elemental_references",
    "energy_above_hull",
    "get_calculator",
    "relax",
    "relax_one",
    "to_entry",
]
