"""Generalized representative structures: objective, core repulsion and the potential."""

from .local import LocalGRS, Trial
from .objective import DescriptorTarget, GRSObjective, central_moments
from .potential import GRSPotential
from .repulsion import CoreRepulsion

__all__ = ["DescriptorTarget", "GRSObjective", "GRSPotential", "CoreRepulsion", "LocalGRS",
           "Trial", "central_moments"]
