"""Generative training objectives and samplers, apart from the networks.

Losses on structure matrices (plain, the paper's PBC loss, minimum-image), the model-space
scaler, the flow-matching path and Euler sampler, diffusers-based diffusion helpers, and the
six generative methods of the paper (loss + samplers, :mod:`.methods`) behind one registry.
See docs/generative.md.
"""

from .diffusion import (
    add_noise,
    ddim_scheduler,
    ddpm_scheduler,
    diffusion_sample,
    make_scheduler,
    scheduler_from_dict,
    scheduler_to_dict,
)
from .flow import FlowPath, euler_sample, uniform_time
from .losses import (
    lattice_mask,
    masked_loss,
    pbc_loss,
    periodic_difference,
    periodic_loss,
    real_rows,
    row_error,
    soft_min,
    structure_loss,
    zero_padding,
)
from .methods import (
    METHODS,
    FlowNormal,
    FlowUniform,
    GenerationDiffusion,
    GenerationFlow,
    GenerativeMethod,
    ModificationFlow,
    ModificationPalette,
    ModificationRegression,
    condition,
    make_method,
    method_from_dict,
)
from .scaling import COORD_ORIGIN, COORD_PERIOD, StructureScaler, wrap_coordinates

__all__ = [
    "COORD_ORIGIN",
    "COORD_PERIOD",
    "METHODS",
    "FlowNormal",
    "FlowPath",
    "FlowUniform",
    "GenerationDiffusion",
    "GenerationFlow",
    "ModificationFlow",
    "ModificationPalette",
    "ModificationRegression",
    "GenerativeMethod",
    "StructureScaler",
    "add_noise",
    "condition",
    "ddim_scheduler",
    "ddpm_scheduler",
    "diffusion_sample",
    "euler_sample",
    "lattice_mask",
    "make_method",
    "make_scheduler",
    "masked_loss",
    "method_from_dict",
    "pbc_loss",
    "periodic_difference",
    "periodic_loss",
    "real_rows",
    "row_error",
    "scheduler_from_dict",
    "scheduler_to_dict",
    "soft_min",
    "structure_loss",
    "uniform_time",
    "wrap_coordinates",
    "zero_padding",
]
