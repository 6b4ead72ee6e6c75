"""ASE calculators."""

from .grs import GRSCalculator, make_target

__all__ = ["GRSCalculator", "make_target"]
