"""Training configuration: one YAML file, one dataclass, every field checked.

Example (``crystalgen train run.yaml``)::

    data: data/perov5-val          # a processed data set (crystalgen dataset build)
    out: runs/perov5-flow
    objective: flow-uniform  # ddpm, flow-normal, flow-uniform, regression, modification-flow, palette
    model: small                   # small | paper | {model_channels: 64, channel_mult: [1, 2, 4], ...}
    augment: [permute, shift, lattice]   # or true; none by default (generation only)
    batch_size: 64
    epochs: 50
    lr: 3.0e-4
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GENERATION_OBJECTIVES = ("ddpm", "flow-normal", "flow-uniform")
MODIFICATION_OBJECTIVES = ("regression", "modification-flow", "palette")

# fields that may change between an interrupted run and its resumption
RESUMABLE_CHANGES = frozenset(
    {"epochs", "max_steps", "checkpoint_every", "num_workers", "device", "progress", "log_every", "out"}
)


_NUMERIC = {
    **dict.fromkeys(("lr", "weight_decay", "ema_decay", "grad_clip"), float),
    **dict.fromkeys(
        (
            "batch_size",
            "epochs",
            "max_steps",
            "warmup_steps",
            "seed",
            "checkpoint_every",
            "val_every",
            "log_every",
            "cap_per_group",
            "num_workers",
        ),
        int,
    ),
}


@dataclass
class TrainConfig:
    """Everything a training run needs; saved inside every checkpoint.

    ``model`` is a preset name (``"small"``, ``"paper"``) or a dict of
    :class:`~ase_crystalgen.models.UNetConfig` fields (over the small preset). ``objective``
    names the training method; ``objective_args`` go to its constructor. ``init_from`` (a
    model directory) starts from trained weights, for fine-tuning or a warm restart. ``mixed_precision``
    is ``"auto"`` (the same as ``"off"``: float32, measured faster than bf16 autocast for
    these networks on an H200), ``"off"``, ``"fp16"`` or ``"bf16"`` (autocast on CUDA only).
    ``augment`` lists the augmentations of the training structures
    (:mod:`ase_crystalgen.datasets.augment`: ``permute``, ``shift``, ``lattice``; ``true`` for
    all three), for the generation objectives; none by default.
    """

    data: str
    out: str
    objective: str = "flow-uniform"
    objective_args: dict[str, Any] = field(default_factory=dict)
    model: str | dict[str, Any] = "small"
    init_from: str | None = None
    augment: Any = field(default_factory=list)
    batch_size: int = 64
    epochs: int = 100
    max_steps: int | None = None
    lr: float = 3e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 500
    lr_schedule: str = "cosine"
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    mixed_precision: str = "auto"
    seed: int = 42
    checkpoint_every: int = 500
    val_every: int = 1
    log_every: int = 10
    train_split: str = "train"
    val_split: str = "val"
    cap_per_group: int = 8
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        # YAML 1.1 reads "1e-3" as a string: coerce numbers, and name the field that is not one
        for name, kind in _NUMERIC.items():
            value = getattr(self, name)
            if value is None and name == "max_steps":
                continue
            try:
                setattr(self, name, kind(float(value)) if kind is int else kind(value))
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        objectives = GENERATION_OBJECTIVES + MODIFICATION_OBJECTIVES
        if self.objective not in objectives:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {', '.join(objectives)}")
        if isinstance(self.model, str) and self.model not in ("small", "paper"):
            raise ValueError(f"unknown model preset {self.model!r}; choose small, paper or give a dict")
        for name in ("batch_size", "epochs", "checkpoint_every", "val_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose cosine or constant")
        if self.mixed_precision not in ("auto", "off", "fp16", "bf16"):
            raise ValueError(
                f"unknown mixed_precision {self.mixed_precision!r}; choose auto, off, fp16, bf16"
            )
        self.betas = tuple(float(b) for b in self.betas)
        from ..datasets.augment import parse_augment

        self.augment = list(parse_augment(self.augment))
        if self.augment and self.objective in MODIFICATION_OBJECTIVES:
            raise ValueError(
                f"augment applies to the generation objectives ({', '.join(GENERATION_OBJECTIVES)}), "
                f"not to {self.objective!r}: the two structures of a modification pair have no "
                "common rows or cell to transform together"
            )

    @property
    def task(self) -> str:
        return "generation" if self.objective in GENERATION_OBJECTIVES else "modification"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        missing = [k for k in ("data", "out") if k not in d]
        if missing:
            raise ValueError(f"training config needs {' and '.join(missing)}")
        return cls(**d)

    def changes_from(self, other: TrainConfig) -> list[str]:
        """Fields that differ from ``other`` and forbid resuming its run."""
        a, b = self.to_dict(), other.to_dict()
        return sorted(k for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k])


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML training config; ``overrides`` are ``key=value`` strings (YAML values)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of training options")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        data[key.strip()] = yaml.safe_load(value)
    return TrainConfig.from_dict(data)
