"""Global optimisers of the GRS objective (ASE-style drivers)."""

from ..grs.local import IncrementalGRS, LocalGRS, Trial
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
    "IncrementalGRS", "LocalGRS", "Trial", "MonteCarlo", "RandomWalk", "SimulatedAnnealing", "SCHEDULES",
    "Move", "Flip", "Swap", "Displace", "Strain", "GeneticAlgorithm", "SliceCrossover",
    "ChemistryMixing", "FlipMutation", "SwapMutation", "RattleMutation", "StrainMutation",
    "generate_representative_structures",
]
