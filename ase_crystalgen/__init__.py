"""ase_crystalgen: representative and generated crystal structures for ASE.

Main entry points::

    from ase_crystalgen import GRSCalculator, generate_representative_structures
"""

__version__ = "0.1.0"

from .calculators import GRSCalculator  # noqa: E402
from .descriptors import ACEDescriptor  # noqa: E402
from .grs import CoreRepulsion, DescriptorTarget, GRSObjective, GRSPotential  # noqa: E402
from .optimize.ensemble import generate_representative_structures  # noqa: E402

__all__ = [
    "ACEDescriptor",
    "CoreRepulsion",
    "DescriptorTarget",
    "GRSCalculator",
    "GRSObjective",
    "GRSPotential",
    "generate_representative_structures",
    "__version__",
]
