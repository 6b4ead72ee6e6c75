"""Networks of the conditional crystal generator (needs torch: ``pip install 'ase_crystalgen[ml]'``).

:class:`CrystalUNet` is the paper's conditional 1D UNet, configured by :class:`UNetConfig`
(``UNetConfig.small()`` for CPU training, ``UNetConfig.paper()`` for the published size). All
objectives call it as ``model(x, t, cond)``; see ``docs/models.md``.
"""

from .conditioning import (
    ConditionEncoder,
    ElementEncoder,
    InitEncoder,
    SpaceGroupEncoder,
    TimeEmbedding,
    timestep_embedding,
)
from .unet1d import CrystalUNet, UNetConfig

__all__ = [
    "ConditionEncoder",
    "CrystalUNet",
    "ElementEncoder",
    "InitEncoder",
    "SpaceGroupEncoder",
    "TimeEmbedding",
    "UNetConfig",
    "timestep_embedding",
]
