"""From a trained model to ``ase.Atoms``: load, condition, sample, decode.

The pipeline owns the random generator and the device; the objective's sampler owns the
maths; the network sees only tensors. ``CrystalGenerator`` (user-facing) and
``crystalgen evaluate`` both sit on these functions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from ..representation.tensors import tensors_to_atoms
from .checkpoint import CheckpointError, load_checkpoint, read_model_dir


@dataclass
class LoadedModel:
    """A network with the objective and scaler it was trained with, and its description."""

    model: torch.nn.Module
    objective: Any
    scaler: Any
    meta: dict[str, Any]
    device: torch.device

    @property
    def max_atoms(self) -> int:
        return int(self.meta["data_schema"]["max_atoms"])

    @property
    def task(self) -> str:
        return self.meta["data_schema"].get("task", "generation")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model directory (``model.json`` + ``weights.pt``) or a run's ``checkpoint.pt``.

    A training checkpoint loads its EMA weights.
    """
    from ..generative import StructureScaler, objective_from_dict
    from ..models import CrystalUNet, UNetConfig

    path = Path(path)
    device = torch.device(device)
    if path.is_dir() and (path / "model.json").exists():
        meta, state = read_model_dir(path)
    elif path.is_dir() and (path / "checkpoint.pt").exists():
        return load_model(path / "checkpoint.pt", device)
    elif path.suffix == ".pt" and path.exists():
        ckpt = load_checkpoint(path)
        from .config import TrainConfig

        config = TrainConfig.from_dict(ckpt["config"])
        from ..datasets.cache import ProcessedDataset

        data_schema = {"max_atoms": ckpt["model_config"]["rows"] - 4, "task": config.task}
        try:
            settings = ProcessedDataset.load(config.data).meta["settings"]
            data_schema.update(order=settings["order"], niggli=settings["niggli"])
        except Exception:
            data_schema.update(order="formula", niggli=True)
        meta = {
            "model_class": "CrystalUNet",
            "model_config": ckpt["model_config"],
            "objective": ckpt.get("objective") or {"name": config.objective, **config.objective_args},
            "scaler": ckpt["scaler"],
            "data_schema": data_schema,
            "card": {"checkpoint": str(path), "step": ckpt["step"]},
        }
        state = ckpt["ema"]
    else:
        raise CheckpointError(f"{path} is neither a model directory nor a training checkpoint")
    if meta.get("model_class") != "CrystalUNet":
        raise CheckpointError(f"{path}: unknown model class {meta.get('model_class')!r}")
    try:
        model = CrystalUNet(UNetConfig.from_dict(meta["model_config"]))
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the described model ({exc})") from None
    model.to(device).eval()
    objective = objective_from_dict(meta["objective"])
    scaler = StructureScaler.from_state_dict(meta["scaler"])
    return LoadedModel(model, objective, scaler, meta, device)


def _supports(fn, name: str) -> bool:
    return name in inspect.signature(fn).parameters


@torch.no_grad()
def sample_tensors(
    loaded: LoadedModel,
    cond: dict[str, torch.Tensor],
    x_init: torch.Tensor | None = None,
    method: str | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample structure matrices (data space: fractional coordinates, Angstrom lattice).

    ``cond`` holds batched condition tensors (``mask``, ``elements``, ``properties``,
    ``spacegroup_ops``, ``energy``); ``x_init`` (data space) is the starting structure of
    the modification task.
    """
    device = loaded.device
    cond = {k: v.to(device) for k, v in cond.items()}
    mask = cond["mask"]
    kwargs: dict[str, Any] = {"generator": generator}
    if steps is not None:
        kwargs["steps"] = steps
    if method is not None and _supports(loaded.objective.sample, "method"):
        kwargs["method"] = method
    if x_init is not None:
        kwargs["x_init"] = loaded.scaler.to_model(x_init.to(device), mask)
    y = loaded.objective.sample(loaded.model, cond, **kwargs)
    return loaded.scaler.from_model(y, mask)


def decode(
    x: torch.Tensor | np.ndarray, numbers: list[np.ndarray], info: list[dict] | None = None
) -> list[Atoms]:
    """Structure matrices + atomic numbers of their atom rows -> ``ase.Atoms``.

    A matrix that cannot be a crystal (NaN from a diverged sampler) becomes Atoms with NaN
    positions and ``info["invalid"]`` saying why, so that evaluation counts it as invalid
    instead of stopping.
    """
    x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
    out = []
    for b, z in enumerate(numbers):
        try:
            atoms = tensors_to_atoms(x[b], z)
        except ValueError as exc:
            atoms = Atoms(numbers=z, positions=np.full((len(z), 3), np.nan), pbc=True)
            atoms.info["invalid"] = str(exc)
        if info is not None:
            atoms.info.update(info[b])
        out.append(atoms)
    return out
