"""Trained models for users: generate and modify crystals, screen conditions.

``CrystalGenerator.from_pretrained(name).sample(...)`` and
``CrystalModifier.from_pretrained(name).modify(...)`` return ``ase.Atoms``;
:func:`available_models` lists the shipped models; :mod:`.screen` is ``crystalgen screen``;
:class:`EnergyRanker` (:mod:`.ranking`) picks among candidate samples by their predicted energy.
"""

from .conditions import ConditionWarning, parse_composition, parse_energy_grid
from .generator import CrystalGenerator, CrystalModifier
from .pretrained import available_models, resolve_model
from .ranking import EnergyRanker

__all__ = [
    "ConditionWarning",
    "CrystalGenerator",
    "CrystalModifier",
    "EnergyRanker",
    "available_models",
    "parse_composition",
    "parse_energy_grid",
    "resolve_model",
]
