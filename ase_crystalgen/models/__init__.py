"""Networks of the conditional crystal generator (needs torch: ``pip install 'ase_crystalgen[ml]'``).

:class:`CrystalUNet` is the paper's conditional 1D UNet, configured by :class:`UNetConfig`
(``UNetConfig.small()`` for CPU training, ``UNetConfig.paper()`` for the published size). All
generative methods call it as ``model(x, t, cond)``; see ``docs/models.md``. Model
directories and checkpoints: :mod:`.io` (``save_pretrained``, ``from_pretrained``).
"""

from .io import CheckpointError, from_pretrained, register_model, save_pretrained
from .unet1d import CrystalUNet, UNetConfig

__all__ = [
    "CheckpointError",
    "CrystalUNet",
    "UNetConfig",
    "from_pretrained",
    "register_model",
    "save_pretrained",
]
