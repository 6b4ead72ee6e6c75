"""Time embedding and condition encoders of the conditional crystal UNet (paper Fig. 2a).

The network is conditioned on a time ``t`` and on the target's chemistry, symmetry and energy:

* ``t`` -> sinusoidal (transformer positional) encoding -> MLP, as in improved DDPM;
* elements (one-hot, 103) + elemental properties (22) per row -> :class:`ElementEncoder`;
* the space group as its (192, 4, 4) operation stack -> :class:`SpaceGroupEncoder`;
* the formation energy (or energy difference, for modification) as a raw scalar.

:class:`ConditionEncoder` concatenates ``[energy, space group, elements]`` and maps them with one
linear layer to the width of the time embedding; the UNet adds the two. :class:`InitEncoder` is
the "x0 encoder" of the modification models, which see the initial structure ``x_init``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) times.

    Parameters
    ----------
    t
        (B,) times, in the units of the training objective (see :class:`CrystalUNet`).
    dim
        Embedding width.
    max_period
        Longest period of the sinusoids; the shortest is 2 pi.

    Returns
    -------
    Tensor
        (B, dim) float32 embedding ``[cos(t w_k), sin(t w_k)]`` with geometrically spaced
        frequencies ``w_k`` from 1 down to ``1 / max_period``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimeEmbedding(nn.Module):
    """Sinusoidal encoding of ``t`` followed by Linear-SiLU-Linear (improved DDPM).

    Parameters
    ----------
    channels
        Width of the sinusoidal encoding (the UNet's ``model_channels``).
    emb_dim
        Output width (``4 * model_channels``).
    """

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: Tensor) -> Tensor:
        emb = timestep_embedding(t, self.channels)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


def _masked(h: Tensor, mask: Tensor) -> Tensor:
    return h * mask[:, None, :].to(h.dtype)


class ElementEncoder(nn.Module):
    """Per-row chemistry -> one vector: three Conv1d (kernel 3) along the rows, flatten, linear.

    The rows are *positions*: row i of the condition describes the atom whose coordinates are
    row i of ``x``, so the encoder keeps the row order (flatten + linear, as the original)
    instead of pooling it away. Features are multiplied by the atom mask before every
    convolution, so whatever the non-atom rows hold never reaches the output.

    Parameters
    ----------
    rows
        Rows of the structure matrix (``max_atoms + 4``).
    in_channels
        One-hot width + property width (103 + 22).
    channels
        Width of the convolutions and of the output vector.
    """

    def __init__(self, rows: int, in_channels: int, channels: int):
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv1d(in_channels if i == 0 else channels, channels, 3, padding=1) for i in range(3)]
        )
        self.act = nn.SiLU()
        self.proj = nn.Linear(channels * rows, channels)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """(B, R, in_channels) features and (B, R) bool mask -> (B, channels)."""
        h = _masked(features.transpose(1, 2), mask)
        for conv in self.convs:
            h = _masked(self.act(conv(h)), mask)
        return self.proj(h.flatten(1))


class SpaceGroupEncoder(nn.Module):
    """Operation stack -> one vector: three Conv2d (kernel 2) over the 4x4 matrices, linear.

    The 192 (padded) operations are the input channels and the 4x4 affine matrix the image, so
    each kernel-2 convolution shrinks it 4x4 -> 3x3 -> 2x2 -> 1x1.

    Parameters
    ----------
    max_operations
        Number of operation channels (192).
    channels
        Width of the convolutions and of the output vector.
    """

    def __init__(self, max_operations: int, channels: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(max_operations, channels, 2),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 2),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 2),
            nn.SiLU(),
        )
        self.proj = nn.Linear(channels, channels)

    def forward(self, ops: Tensor) -> Tensor:
        """(B, max_operations, 4, 4) -> (B, channels)."""
        return self.proj(self.convs(ops).flatten(1))


class InitEncoder(nn.Module):
    """The "x0 encoder" of modification models: a small Conv1d stack over ``x_init``.

    Its output has the width of the UNet's first feature map and is *added* to it (after the
    input convolution, before the first skip connection). A sum after separate convolutions is
    as expressive as Palette's channel concatenation (concat + conv is a sum of two convs) and
    leaves every other layer identical between generation and modification models.

    Parameters
    ----------
    in_channels
        Channels of ``x_init`` (3).
    channels
        The UNet's ``model_channels``.
    groups
        GroupNorm groups.
    """

    def __init__(self, in_channels: int, channels: int, groups: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv1d(channels, channels, 3, padding=1),
        )

    def forward(self, x_init: Tensor) -> Tensor:
        """(B, C_in, R) -> (B, channels, R)."""
        return self.net(x_init)


def require(cond: Mapping[str, Tensor], key: str) -> Tensor:
    """``cond[key]``, or a ValueError that names the missing key."""
    if key not in cond:
        raise ValueError(f"condition {key!r} is missing from cond (keys given: {sorted(cond)})")
    return cond[key]


def atom_mask(cond: Mapping[str, Tensor]) -> Tensor:
    """The (B, R) atom mask: ``cond["mask"]`` if given, else the rows with a non-zero one-hot."""
    if "mask" in cond:
        return cond["mask"].bool()
    return require(cond, "elements").abs().sum(-1) > 0


class ConditionEncoder(nn.Module):
    """``concat(energy, space group, elements)`` -> linear -> width of the time embedding.

    Parameters
    ----------
    rows
        Rows of the structure matrix.
    n_elements, n_properties
        Widths of the one-hot and property blocks.
    max_operations
        Operations in the space-group stack.
    element_channels, spacegroup_channels
        Widths of the two branches (256 in the paper).
    use_energy
        Whether ``cond["energy"]`` is part of the condition.
    emb_dim
        Output width.
    """

    def __init__(
        self,
        rows: int,
        n_elements: int,
        n_properties: int,
        max_operations: int,
        element_channels: int,
        spacegroup_channels: int,
        use_energy: bool,
        emb_dim: int,
    ):
        super().__init__()
        self.rows = rows
        self.n_elements = n_elements
        self.max_operations = max_operations
        self.n_properties = n_properties
        self.use_energy = use_energy
        self.elements = ElementEncoder(rows, n_elements + n_properties, element_channels)
        self.spacegroup = SpaceGroupEncoder(max_operations, spacegroup_channels)
        self.proj = nn.Linear(int(use_energy) + spacegroup_channels + element_channels, emb_dim)

    def forward(self, cond: Mapping[str, Tensor], dtype: torch.dtype) -> Tensor:
        """Condition vector (B, emb_dim) from the tensors of ``cond``, cast to ``dtype``."""
        elements = require(cond, "elements").to(dtype)
        properties = require(cond, "properties").to(dtype)
        ops = require(cond, "spacegroup_ops").to(dtype)
        b = ops.shape[0]
        for name, tensor, shape in (
            ("elements", elements, (b, self.rows, self.n_elements)),
            ("properties", properties, (b, self.rows, self.n_properties)),
            ("spacegroup_ops", ops, (b, self.max_operations, 4, 4)),
        ):
            if tuple(tensor.shape) != shape:
                raise ValueError(f"cond[{name!r}] must have shape {shape}, got {tuple(tensor.shape)}")
        parts = [
            self.spacegroup(ops),
            self.elements(torch.cat([elements, properties], dim=-1), atom_mask(cond)),
        ]
        if self.use_energy:
            energy = require(cond, "energy").to(dtype)
            parts.insert(0, energy.reshape(energy.shape[0], 1))
        return self.proj(torch.cat(parts, dim=-1))
