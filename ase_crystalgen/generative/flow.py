"""Conditional flow matching on the straight path, after torchcfm's ``ConditionalFlowMatcher``.

The path between a source sample ``x0`` and a data sample ``x1`` (Lipman et al. 2023;
Tong et al. 2024, "I-CFM") is

    mu_t = (1 - t) x0 + t x1 = x0 + t u,     u = x1 - x0,
    x_t = mu_t + sigma * eps,                eps ~ N(0, I),

with conditional velocity ``u_t(x | x0, x1) = u`` (independent of ``t`` and ``sigma``); the
paper trains with ``sigma = 0`` (section 5.2, Algorithms 3-5).

**Periodic rows.** Fractional coordinates live on a torus: an atom at 0.98 and one at 0.02
are 0.04 apart. On the rows marked ``periodic`` the displacement is the shortest one,
``u = d - period * round(d / period)`` with ``d = x1 - x0``, and ``x_t`` is wrapped into
``[origin, origin + period)``. In model space (:class:`~.StructureScaler`) the period is 2 and
the origin -1. Other rows (lattice) are Euclidean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .losses import periodic_difference
from .scaling import COORD_ORIGIN, COORD_PERIOD, wrap_coordinates


def _expand(t: Tensor | float, x: Tensor) -> Tensor:
    """``(B,)`` or scalar times -> shape broadcastable against ``x`` (``(B, 1, ..., 1)``)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def _row_mask(periodic: Tensor | None, x: Tensor) -> Tensor | None:
    """``(B, R)`` row mask -> ``(B, R, 1)``; masks already shaped like ``x`` pass through."""
    if periodic is None:
        return None
    periodic = periodic.bool().to(x.device)
    return periodic[..., None] if periodic.ndim == x.ndim - 1 else periodic


def uniform_time(batch: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``t ~ U(0, 1)`` of shape ``(batch,)``, drawn on the generator's device, moved to ``like``'s."""
    device = generator.device if generator is not None else like.device
    return torch.rand(batch, generator=generator, device=device, dtype=like.dtype).to(like.device)


class FlowPath:
    """Straight conditional probability path with optional Gaussian width and periodic rows.

    Parameters
    ----------
    sigma
        Width of the Gaussian around the straight path (0: deterministic interpolation).
    period, origin
        Period and lower bound of the periodic coordinates (2 and -1 in model space).

    Notes
    -----
    Every method takes ``periodic``: a ``(B, R)`` boolean row mask (or a mask shaped like the
    data) selecting the periodic entries; ``None`` treats everything as Euclidean.
    """

    def __init__(self, sigma: float = 0.0, period: float = COORD_PERIOD, origin: float = COORD_ORIGIN):
        if sigma < 0:
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.sigma = float(sigma)
        self.period = float(period)
        self.origin = float(origin)

    def displacement(self, x0: Tensor, x1: Tensor, periodic: Tensor | None = None) -> Tensor:
        """``x1 - x0``, the shortest periodic displacement on periodic rows."""
        d = x1 - x0
        mask = _row_mask(periodic, x0)
        if mask is None:
            return d
        return torch.where(mask, periodic_difference(x1, x0, self.period), d)

    def wrap(self, x: Tensor, periodic: Tensor | None = None) -> Tensor:
        """Wrap the periodic rows into ``[origin, origin + period)``; others unchanged."""
        mask = _row_mask(periodic, x)
        if mask is None:
            return x
        return torch.where(mask, wrap_coordinates(x, self.period, self.origin), x)

    def compute_mu_t(
        self, x0: Tensor, x1: Tensor, t: Tensor | float, periodic: Tensor | None = None
    ) -> Tensor:
        """Mean of the path, ``x0 + t u`` (wrapped on periodic rows)."""
        return self.wrap(x0 + _expand(t, x0) * self.displacement(x0, x1, periodic), periodic)

    def compute_sigma_t(self, t: Tensor | float) -> Tensor | float:
        """Width of the path (constant)."""
        return self.sigma

    def sample_xt(
        self,
        x0: Tensor,
        x1: Tensor,
        t: Tensor | float,
        epsilon: Tensor | None = None,
        periodic: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """A point of the path: ``mu_t + sigma * eps`` (eps drawn from ``generator`` if not given)."""
        mu = self.compute_mu_t(x0, x1, t, periodic)
        if self.sigma == 0:
            return mu
        if epsilon is None:
            device = generator.device if generator is not None else x0.device
            epsilon = torch.randn(x0.shape, generator=generator, device=device, dtype=x0.dtype).to(x0.device)
        return self.wrap(mu + self.sigma * epsilon, periodic)

    def conditional_flow(
        self, x0: Tensor, x1: Tensor, t: Tensor | float | None = None, periodic: Tensor | None = None
    ) -> Tensor:
        """Target velocity ``u = x1 - x0`` (shortest on periodic rows); the same for every ``t``."""
        return self.displacement(x0, x1, periodic)

    def sample_location_and_conditional_flow(
        self,
        x0: Tensor,
        x1: Tensor,
        t: Tensor | None = None,
        generator: torch.Generator | None = None,
        periodic: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One training draw: ``(t, x_t, u_t)`` with ``t ~ U(0, 1)`` of shape ``(B,)`` if not given."""
        if t is None:
            t = uniform_time(x0.shape[0], x0, generator)
        xt = self.sample_xt(x0, x1, t, periodic=periodic, generator=generator)
        return t, xt, self.conditional_flow(x0, x1, t, periodic)

    def to_dict(self) -> dict[str, float]:
        return {"sigma": self.sigma, "period": self.period, "origin": self.origin}


@torch.no_grad()
def euler_sample(
    velocity_fn: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    steps: int = 100,
    wrap: Callable[[Tensor], Tensor] | None = None,
    callback: Callable[[int, Tensor, Tensor], None] | None = None,
) -> Tensor:
    """Integrate ``dx/dt = v(x, t)`` from ``t = 0`` to 1 with ``steps`` fixed Euler steps.

    Parameters
    ----------
    velocity_fn
        ``v(x, t)`` with ``t`` a ``(B,)`` tensor of the current time (Algorithm 6).
    x0
        ``(B, ...)`` source sample.
    steps
        Number of steps (100 in the paper), step size ``1 / steps``.
    wrap
        Applied after every step (wrap periodic rows, zero padding rows).
    callback
        ``callback(i, t_next, x)`` after step ``i``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x = x0 if wrap is None else wrap(x0)
    h = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * h, dtype=x.dtype, device=x.device)
        x = x + h * velocity_fn(x, t)
        if wrap is not None:
            x = wrap(x)
        if callback is not None:
            callback(i, t + h, x)
    return x


#: fixed-step integrators of :func:`ode_sample`: name -> network evaluations per step
SOLVERS = {"euler": 1, "midpoint": 2, "heun": 2}


@torch.no_grad()
def ode_sample(
    velocity_fn: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    steps: int = 100,
    solver: str = "euler",
    wrap: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Integrate ``dx/dt = v(x, t)`` from ``t = 0`` to 1 in ``steps`` fixed steps of ``solver``.

    ``"euler"`` is :func:`euler_sample` (first order, one network evaluation a step);
    ``"midpoint"`` (explicit midpoint) and ``"heun"`` (explicit trapezoid) are second order
    with two evaluations a step, so ``steps`` of them cost as much as ``2 * steps`` Euler
    steps. ``wrap`` is applied to every state the network sees and to the result (periodic
    rows back into the period, padding rows to zero); the increments themselves are not
    wrapped, which is right as long as one step moves a coordinate by less than half a period.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown ODE solver {solver!r}; choose from {', '.join(SOLVERS)}")
    if solver == "euler":
        return euler_sample(velocity_fn, x0, steps, wrap=wrap)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    keep = (lambda x: x) if wrap is None else wrap
    x = keep(x0)
    h = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * h, dtype=x.dtype, device=x.device)
        v0 = velocity_fn(x, t)
        if solver == "midpoint":
            x = keep(x + h * velocity_fn(keep(x + 0.5 * h * v0), t + 0.5 * h))
        else:  # heun
            v1 = velocity_fn(keep(x + h * v0), t + h)
            x = keep(x + 0.5 * h * (v0 + v1))
    return x


__all__ = ["SOLVERS", "FlowPath", "euler_sample", "ode_sample", "uniform_time"]
