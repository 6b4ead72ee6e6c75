"""Map structure matrices between data space and the unit-scale space the networks model.

Data space (:mod:`ase_crystalgen.representation.tensors`): fractional coordinates in [0, 1)
on atom rows, zero padding and separator rows, lattice vectors in Angstrom on the last three
rows. Lattice entries are of order 3-20 A with spreads of a few A, while the coordinates
spread over 1; Gaussian noise of unit variance would drown the coordinates long before it
touched the lattice, and a network would see inputs of very different scales. In model
space every real entry has unit scale:

* coordinate rows: ``y = 2 f - 1`` in [-1, 1), a period of 2 (``COORD_PERIOD``) and an
  origin at -1 (``COORD_ORIGIN``), the range diffusion models are usually given;
* lattice rows: ``(L - mean) / std`` per entry (3 x 3 of each), fitted on a training set;
  entries that never vary there (the zeros above the diagonal of the standard orientation)
  get std 1, so they map to 0 and come back unchanged;
* padding and separator rows stay exactly 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

COORD_PERIOD = 2.0
COORD_ORIGIN = -1.0


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))


def _row_mask(mask: Tensor, like: Tensor) -> Tensor:
    return mask.bool().to(like.device)[..., None]


def wrap_coordinates(y: Tensor, period: float = COORD_PERIOD, origin: float = COORD_ORIGIN) -> Tensor:
    """Wrap into ``[origin, origin + period)``, also when ``remainder`` rounds up to the period."""
    w = torch.remainder(y - origin, period)
    # remainder of a tiny negative number can round to exactly the period
    w = torch.where(w >= period, torch.zeros_like(w), w)
    return w + origin


class StructureScaler:
    """Affine map of structure matrices to model space and back (module docstring).

    Parameters
    ----------
    lattice_mean, lattice_std
        ``(3, 3)`` per-entry statistics of the lattice rows; default 0 and 1 (no scaling).
    min_std
        Stds below this (Angstrom) are replaced by 1 when fitting.

    Examples
    --------
    >>> scaler = StructureScaler.fit(train_x)          # (N, R, 3) data-space matrices
    >>> y = scaler.to_model(batch["x"], batch["mask"])
    >>> x = scaler.from_model(sample, batch["mask"])   # coordinates wrapped to [0, 1)
    """

    coord_period = COORD_PERIOD
    coord_origin = COORD_ORIGIN

    def __init__(
        self,
        lattice_mean: Tensor | np.ndarray | None = None,
        lattice_std: Tensor | np.ndarray | None = None,
        min_std: float = 1e-6,
    ):
        mean = torch.zeros(3, 3) if lattice_mean is None else _as_tensor(lattice_mean)
        std = torch.ones(3, 3) if lattice_std is None else _as_tensor(lattice_std)
        mean, std = mean.to(torch.float64), std.to(torch.float64)
        if mean.shape != (3, 3) or std.shape != (3, 3):
            shapes = f"{tuple(mean.shape)} and {tuple(std.shape)}"
            raise ValueError(f"lattice mean and std must be 3 x 3, got {shapes}")
        if not (torch.all(torch.isfinite(mean)) and torch.all(torch.isfinite(std))):
            raise ValueError("lattice mean and std must be finite")
        if torch.any(std <= 0):
            raise ValueError("lattice std must be positive")
        self.lattice_mean = mean
        self.lattice_std = std
        self.min_std = float(min_std)

    @classmethod
    def fit(cls, x: Tensor | np.ndarray, min_std: float = 1e-6) -> StructureScaler:
        """Fit the lattice statistics on ``(N, R, 3)`` data-space matrices (population std)."""
        x = _as_tensor(x).to(torch.float64)
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[1] < 5:
            raise ValueError(f"expected (N, max_atoms + 4, 3) structure matrices, got {tuple(x.shape)}")
        if x.shape[0] < 1:
            raise ValueError("cannot fit a scaler on an empty set")
        lat = x[:, -3:, :]
        mean = lat.mean(0)
        std = lat.std(0, unbiased=False)
        std = torch.where(std < min_std, torch.ones_like(std), std)
        return cls(mean, std, min_std=min_std)

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        return self.lattice_mean.to(like.device, like.dtype), self.lattice_std.to(like.device, like.dtype)

    def to_model(self, x: Tensor, mask: Tensor) -> Tensor:
        """Data space -> model space; ``mask`` (``(..., R)`` bool) marks the atom rows."""
        mean, std = self._stats(x)
        atoms = _row_mask(mask, x)
        y = torch.where(atoms, 2.0 * x - 1.0, torch.zeros_like(x))
        y[..., -3:, :] = (x[..., -3:, :] - mean) / std
        return y

    def from_model(self, y: Tensor, mask: Tensor, wrap: bool = True) -> Tensor:
        """Model space -> data space; coordinates wrapped to [0, 1) when ``wrap``; padding 0."""
        mean, std = self._stats(y)
        atoms = _row_mask(mask, y)
        f = (y + 1.0) / 2.0
        if wrap:
            f = wrap_coordinates(f, 1.0, 0.0)
        x = torch.where(atoms, f, torch.zeros_like(y))
        x[..., -3:, :] = y[..., -3:, :] * std + mean
        return x

    def transform_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Shallow copy of a data-loader batch with ``x`` (and ``x_init``) in model space."""
        out = dict(batch)
        for key in ("x", "x_init"):
            if key in out:
                out[key] = self.to_model(out[key], out["mask"])
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (plain lists of floats)."""
        return {
            "lattice_mean": self.lattice_mean.tolist(),
            "lattice_std": self.lattice_std.tolist(),
            "min_std": self.min_std,
            "coord_period": self.coord_period,
            "coord_origin": self.coord_origin,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> StructureScaler:
        """Inverse of :meth:`state_dict`."""
        for key in ("lattice_mean", "lattice_std"):
            if key not in state:
                raise ValueError(f"scaler state has no {key!r} (keys: {sorted(state)})")
        if state.get("coord_period", COORD_PERIOD) != COORD_PERIOD:
            period = state["coord_period"]
            raise ValueError(f"scaler state has coordinate period {period}, expected {COORD_PERIOD}")
        return cls(
            torch.tensor(state["lattice_mean"], dtype=torch.float64),
            torch.tensor(state["lattice_std"], dtype=torch.float64),
            min_std=state.get("min_std", 1e-6),
        )

    def __repr__(self) -> str:
        mean, std = self.lattice_mean.tolist(), self.lattice_std.tolist()
        return f"StructureScaler(lattice_mean={mean}, lattice_std={std})"


__all__ = ["COORD_ORIGIN", "COORD_PERIOD", "StructureScaler", "wrap_coordinates"]
