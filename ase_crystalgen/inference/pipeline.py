"""From a trained model to ``ase.Atoms``: load, condition, sample, decode.

The one inference pipeline::

    conditions --condition_tensors--> tensors --method.sample--> matrices --decode--> Atoms

The pipeline owns the random generator and the device; the generative method's sampler
(:mod:`ase_crystalgen.generative.methods`) owns the maths; the network sees only tensors.
:class:`~.CrystalGenerator`, :class:`~.CrystalModifier`, ``crystalgen screen`` and
:func:`ase_crystalgen.evaluation.evaluate_model` all sit on these functions. Loading reads
model directories and training checkpoints through :mod:`ase_crystalgen.models.io`; it
needs nothing from training.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from ..models.io import CheckpointError, load_checkpoint, load_weights, read_pretrained
from ..representation.tensors import tensors_to_atoms


@dataclass
class LoadedModel:
    """A network with the generative method and scaler it was trained with, and its description."""

    model: torch.nn.Module
    method: Any
    scaler: Any
    meta: dict[str, Any]
    device: torch.device

    @property
    def max_atoms(self) -> int:
        return int(self.meta["data_schema"]["max_atoms"])

    @property
    def task(self) -> str:
        return self.meta["data_schema"].get("task", "generation")


def _schema_from_data(data: str, schema: dict[str, Any], path: Path) -> dict[str, Any]:
    """Row order and Niggli setting of a checkpoint written before it stored its data schema."""
    from ..datasets.cache import CacheError, ProcessedDataset

    try:
        settings = ProcessedDataset.load(data).meta["settings"]
    except CacheError as exc:
        warnings.warn(
            f"{path}: its data set cannot be read ({exc}); assuming formula row order and Niggli cells",
            stacklevel=3,
        )
        return {**schema, "order": "formula", "niggli": True}
    return {**schema, "order": settings["order"], "niggli": settings["niggli"]}


def _checkpoint_description(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model description and EMA weights of a training checkpoint."""
    from ..generative.methods import METHODS

    ckpt = load_checkpoint(path)
    try:
        config = ckpt["config"]
        method = ckpt.get("objective") or {"name": config["objective"], **config.get("objective_args", {})}
        schema = ckpt.get("data_schema")
        if schema is None:
            task = METHODS[method["name"]].task
            schema = _schema_from_data(
                config["data"], {"max_atoms": ckpt["model_config"]["rows"] - 4, "task": task}, path
            )
        meta = {
            "model_class": ckpt.get("model_class", "CrystalUNet"),
            "model_config": ckpt["model_config"],
            "objective": method,
            "scaler": ckpt["scaler"],
            "data_schema": schema,
            "card": {"checkpoint": str(path), "step": ckpt["step"]},
        }
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks {exc}: not written by a training run") from None
    return meta, ckpt["ema"]


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model directory (``model.json`` + ``weights.pt``) or a run's ``checkpoint.pt``.

    A training checkpoint loads its EMA weights. Every problem raises
    :class:`~ase_crystalgen.models.io.CheckpointError` naming it.
    """
    from ..generative import StructureScaler, method_from_dict

    path = Path(path)
    device = torch.device(device)
    if path.is_dir() and (path / "model.json").exists():
        meta, state = read_pretrained(path)
    elif path.is_dir() and (path / "checkpoint.pt").exists():
        return load_model(path / "checkpoint.pt", device)
    elif path.suffix == ".pt" and path.exists():
        meta, state = _checkpoint_description(path)
    else:
        raise CheckpointError(f"{path} is neither a model directory nor a training checkpoint")
    model = load_weights(meta, state, path)
    model.to(device).eval()
    method = method_from_dict(meta["objective"])
    scaler = StructureScaler.from_state_dict(meta["scaler"])
    return LoadedModel(model, method, scaler, meta, device)


def condition_tensors(
    rows: Sequence[np.ndarray], spacegroups: Sequence[int], energies: Sequence[float], max_atoms: int
) -> dict[str, torch.Tensor]:
    """Batched condition tensors of structures given by their atom rows (atomic numbers in the
    model's row order), space groups and energies: ``mask``, ``elements``, ``properties``,
    ``spacegroup_ops`` and ``energy``."""
    from ..representation.elements import element_properties, one_hot
    from ..representation.spacegroups import spacegroup_operations
    from ..representation.tensors import n_rows

    r = n_rows(max_atoms)
    mask = np.zeros((len(rows), r), dtype=bool)
    for b, z in enumerate(rows):
        mask[b, : len(z)] = True
    return {
        "mask": torch.as_tensor(mask),
        "elements": torch.as_tensor(np.stack([one_hot(z, length=r) for z in rows])),
        "properties": torch.as_tensor(np.stack([element_properties(z, length=r) for z in rows])),
        "spacegroup_ops": torch.as_tensor(np.stack([spacegroup_operations(s) for s in spacegroups])),
        "energy": torch.as_tensor(np.asarray(energies, dtype=np.float32)),
    }


@torch.no_grad()
def sample_tensors(
    loaded: LoadedModel,
    cond: dict[str, torch.Tensor],
    x_init: torch.Tensor | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample structure matrices (data space: fractional coordinates, Angstrom lattice).

    ``cond`` holds batched condition tensors (:func:`condition_tensors`); ``x_init`` (data
    space) is the starting structure of the modification task; ``sampler`` one of the
    method's :attr:`~ase_crystalgen.generative.GenerativeMethod.samplers` (default: the
    method's configured one).
    """
    device = loaded.device
    cond = {k: v.to(device) for k, v in cond.items()}
    mask = cond["mask"]
    if x_init is not None:
        x_init = loaded.scaler.to_model(x_init.to(device), mask)
    y = loaded.method.sample(
        loaded.model, cond, x_init=x_init, steps=steps, generator=generator, sampler=sampler
    )
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


__all__ = ["LoadedModel", "condition_tensors", "decode", "load_model", "sample_tensors"]
