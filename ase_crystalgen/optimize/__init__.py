"""Global optimisers of the GRS objective (ASE-style drivers)."""

# the local-update evaluator lives in grs.local; importable here as before, not listed
from ..grs.local import IncrementalGRS as IncrementalGRS
from ..grs.local import LocalGRS as LocalGRS
from ..grs.local import Trial as Trial
from .ensemble import generate_representative_structures
from .genetic import (
    ChemistryMixing,
    FlipMutation,
    GeneticAlgorithm,
    RattleMutation,
    SliceCrossover,
    StrainMutation,
    SwapMutation,
)
from .montecarlo import SCHEDULES, MonteCarlo, RandomWalk, SimulatedAnnealing
from .moves import Displace, Flip, Move, Strain, Swap

__all__ = [
    "MonteCarlo", "RandomWalk", "SimulatedAnnealing", "SCHEDULES",
    "Move", "Flip", "Swap", "Displace", "Strain", "GeneticAlgorithm", "SliceCrossover",
    "ChemistryMixing", "FlipMutation", "SwapMutation", "RattleMutation", "StrainMutation",
    "generate_representative_structures",
]
