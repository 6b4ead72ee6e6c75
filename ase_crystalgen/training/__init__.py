"""Training and evaluation of the generative models (needs torch: the ``ml`` extra).

``train(TrainConfig)`` runs or resumes a run; ``crystalgen train CONFIG.yaml`` is the same
from the command line (``torchrun --nproc_per_node N -m ase_crystalgen train ...`` for DDP).
"""

from .checkpoint import CheckpointError, load_checkpoint, read_model_dir, save_checkpoint, save_model_dir
from .config import TrainConfig, load_config
from .trainer import TrainResult, build_model, train

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "load_checkpoint",
    "load_config",
    "read_model_dir",
    "save_checkpoint",
    "save_model_dir",
    "train",
]
