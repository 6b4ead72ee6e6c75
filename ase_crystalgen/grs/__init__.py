"""Generalized representative structures: objective and core repulsion."""

from .objective import DescriptorTarget, GRSObjective, central_moments
from .repulsion import CoreRepulsion

__all__ = ["DescriptorTarget", "GRSObjective", "CoreRepulsion", "central_moments"]
