"""Global optimisers of the GRS objective (ASE-style drivers)."""

from .evaluator import IncrementalGRS, Trial
from .montecarlo import SCHEDULES, MonteCarlo, RandomWalk, SimulatedAnnealing
from .moves import Displace, Flip, Move, Strain, Swap

__all__ = [
    "IncrementalGRS", "Trial", "MonteCarlo", "RandomWalk", "SimulatedAnnealing", "SCHEDULES",
    "Move", "Flip", "Swap", "Displace", "Strain",
]
