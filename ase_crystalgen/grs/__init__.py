"""Generalized representative structures: objective, core repulsion and the potential."""

# internals importable from here, not part of the public list
from .local import LocalGRS as LocalGRS
from .local import Trial as Trial
from .objective import DescriptorTarget, GRSObjective
from .objective import central_moments as central_moments
from .potential import GRSPotential
from .repulsion import CoreRepulsion

__all__ = ["DescriptorTarget", "GRSObjective", "GRSPotential", "CoreRepulsion"]
