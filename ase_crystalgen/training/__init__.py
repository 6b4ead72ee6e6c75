"""Training of the generative models (needs torch: the ``ml`` extra).

``train(TrainConfig)`` runs or resumes a run; ``crystalgen train CONFIG.yaml`` is the same
from the command line (``torchrun --nproc_per_node N -m ase_crystalgen train ...`` for DDP).
Checkpoints and model directories are :mod:`ase_crystalgen.models.io`'s; evaluation of a
trained model is :func:`ase_crystalgen.evaluation.evaluate_model`.
"""

from .config import TrainConfig, load_config
from .trainer import TrainResult, build_model, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "build_model",
    "load_config",
    "train",
]
