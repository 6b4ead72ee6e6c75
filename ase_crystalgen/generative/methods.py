"""The paper's six generative methods (section 5, Algorithms 1-11): training loss and sampler.

A method pairs a training loss with the samplers that invert it. (The GRS score of
:mod:`ase_crystalgen.grs.objective` is another thing; in training configs and model
descriptions the method is still stored under the key ``objective``.)

Every method works in model space (:class:`~.StructureScaler`): the caller maps
``batch["x"]`` and ``batch["x_init"]`` with ``scaler.transform_batch`` before :meth:`loss` and
maps samples back with ``scaler.from_model``. Any callable ``model(x, t, cond) -> Tensor`` of
shape ``x.shape`` is a model; ``cond`` is the batch without ``x``/``x_init``/indices (plus
``x_init`` for Palette). Times reach the model on one scale, 0..1000: diffusion passes the
integer step, flow matching ``time_scale * t`` (1000 by default), regression 0.

Padding and separator rows are zero in every noise draw, interpolant and sample. Randomness
comes only from the ``generator`` argument, drawn on the generator's device and moved to the
data's, so results are reproducible and the device follows the input tensors.

Every method samples with one signature,
``sample(model, cond, *, x_init=None, steps=None, generator=None, **options)``, and declares the
names of its samplers in :attr:`GenerativeMethod.samplers` (the first is what
``CrystalGenerator`` runs by default; pass another as ``sampler=``). Without ``sampler`` a
method runs its configured sampler (diffusion: its ``method`` argument). Diffusion also
takes ``eta``.

The registry :data:`METHODS` maps the names ``ddpm``, ``flow-normal``, ``flow-uniform``
(generation) and ``regression``, ``modification-flow``, ``palette`` (modification) to classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from .diffusion import ddpm_scheduler, diffusion_sample, make_scheduler
from .flow import FlowPath, ode_sample
from .losses import check_kind, masked_loss, real_rows, structure_loss, zero_padding
from .scaling import COORD_ORIGIN, COORD_PERIOD

Model = Callable[[Tensor, Tensor, Mapping[str, Tensor]], Tensor]
NOT_CONDITIONS = frozenset({"x", "x_init", "index", "index_init"})


def condition(batch: Mapping[str, Any], keep_init: bool = False) -> dict[str, Any]:
    """The model's ``cond``: the batch without targets and indices (``x_init`` only if asked)."""
    cond = {k: v for k, v in batch.items() if k not in NOT_CONDITIONS}
    if keep_init and "x_init" in batch:
        cond["x_init"] = batch["x_init"]
    return cond


def _draw(kind: str, shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``randn``/``rand`` on the generator's device (CPU generators work for CUDA data)."""
    device = generator.device if generator is not None else like.device
    fn = torch.randn if kind == "normal" else torch.rand
    return fn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _template(cond: Mapping[str, Any], x_init: Tensor | None) -> Tensor:
    """An empty (B, R, 3) tensor with the sample's dtype (``x_init``'s, else cond's) and device."""
    if "mask" not in cond:
        raise ValueError("cond must hold the (B, R) atom 'mask' to know the sample's shape")
    mask = cond["mask"]
    floats = [v.dtype for v in cond.values() if isinstance(v, Tensor) and v.is_floating_point()]
    dtype = x_init.dtype if x_init is not None else (floats[0] if floats else torch.get_default_dtype())
    return torch.empty((*mask.shape, 3), dtype=dtype, device=mask.device)


class GenerativeMethod:
    """Base class: ``loss(model, batch, generator)`` and ``sample(model, cond, *, ...)``."""

    name: ClassVar[str] = ""
    task: ClassVar[str] = "generation"
    needs_init: ClassVar[bool] = False
    #: names of the samplers :meth:`sample` runs (``sampler=``); the first is the pipeline's default
    samplers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, arguments: Mapping[str, Any]):
        # the subclass's constructor arguments (its locals()), for to_dict / method_from_dict
        skip = ("self", "__class__", "kwargs", "extra")
        self._config = {k: v for k, v in arguments.items() if k not in skip}
        self._config.update(arguments.get("extra", {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able constructor arguments with the registry ``name``."""
        return {"name": self.name, **self._config}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"

    def loss(
        self, model: Model, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Scalar loss of a model-space batch and detached logs (``loss``, ``coords``, ``lattice``)."""
        raise NotImplementedError

    def sample(
        self,
        model: Model,
        cond: Mapping[str, Any],
        *,
        x_init: Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Model-space ``(B, R, 3)`` samples for ``cond`` (its ``mask`` fixes shape and device).

        ``x_init`` (model space) is the starting structure of the modification methods,
        ``steps`` the number of sampler steps (default: the method's), ``generator`` the only
        source of randomness. ``options``: ``sampler`` (one of :attr:`samplers`) and what
        that sampler takes.
        """
        raise NotImplementedError

    @property
    def default_sampler(self) -> str:
        """The sampler run when none is named: the first of :attr:`samplers`."""
        return self.samplers[0]

    def _sampler(self, sampler: str | None) -> str:
        """The sampler to run: ``sampler`` checked against :attr:`samplers`, or the default."""
        if sampler is None:
            return self.default_sampler
        if sampler not in self.samplers:
            raise ValueError(
                f"the {self.name!r} method samples with {', '.join(self.samplers)}, not {sampler!r}"
            )
        return sampler

    @staticmethod
    def _no_options(options: Mapping[str, Any], name: str) -> None:
        if options:
            raise TypeError(f"the {name!r} method's sampler takes no option(s) {', '.join(options)}")

    def _init(self, cond: Mapping[str, Any], x_init: Tensor | None) -> Tensor:
        x_init = x_init if x_init is not None else cond.get("x_init")
        if x_init is None:
            raise ValueError(f"the {self.name!r} method modifies a structure: pass x_init (model space)")
        return x_init


class GenerationDiffusion(GenerativeMethod):
    """Epsilon-prediction diffusion (Algorithms 9-11) with diffusers' schedulers.

    Training: ``t ~ U{0..T-1}``, ``eps ~ N(0, I)`` on the atom and lattice rows,
    ``x_t = sqrt(abar_t) x1 + sqrt(1 - abar_t) eps``, loss = masked ``kind`` error of
    ``model(x_t, t, cond) - eps`` over all real rows, divided by their number per structure.
    Sampling: ``method="ddpm"`` (ancestral) or ``"ddim"`` (deterministic for ``eta=0``) on
    the same schedule, ``inference_steps`` steps (100 in the paper), from Gaussian noise.

    The predicted clean sample is clipped to ``[-clip_sample_range, clip_sample_range]``
    (default 3; model space: coordinates in [-1, 1], standardised lattice). Without it the
    first step from ``t = 999`` (``timestep_spacing="trailing"``), where the cosine schedule's
    abar is 2.4e-9, multiplies the network's error by about 300 and every sample diverged
    (lattice edges of thousands of Angstrom). Measured on a Perov-5 DDPM (2000 steps, 300 test
    structures, field/paper tolerances): no clipping 1.3/0.0 % (DDPM) and 0.7/0.0 % (DDIM);
    clip 3 62.0/49.0 % and 65.3/41.7 %; clip 5 62.0/49.0 % and 51.7/25.7 %; leading spacing
    without clipping 60.0/47.7 % and 27.0/14.0 %.
    """

    name = "ddpm"
    samplers = ("ddim", "ddpm")

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        beta_schedule: str = "squaredcos_cap_v2",
        method: str = "ddpm",
        inference_steps: int = 100,
        eta: float = 0.0,
        kind: str = "l1",
        clip_sample: bool = True,
        timestep_spacing: str = "trailing",
        clip_sample_range: float = 3.0,
    ):
        super().__init__(locals())
        self.scheduler = ddpm_scheduler(
            num_train_timesteps, beta_start, beta_end, beta_schedule, "epsilon",
            clip_sample=clip_sample, timestep_spacing=timestep_spacing,
            clip_sample_range=float(clip_sample_range),
        )  # fmt: skip
        make_scheduler(method, self.scheduler)  # validates the name now rather than at sampling
        check_kind(kind)
        self.method, self.inference_steps, self.eta, self.kind = method, inference_steps, eta, kind

    def _cond(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return condition(batch)

    def loss(self, model, batch, generator=None):
        x1, mask = batch["x"], batch["mask"]
        x1 = zero_padding(x1, mask)
        noise = zero_padding(_draw("normal", x1.shape, x1, generator), mask)
        T = self.scheduler.config.num_train_timesteps
        device = generator.device if generator is not None else x1.device
        t = torch.randint(0, T, (x1.shape[0],), generator=generator, device=device).to(x1.device)
        xt = self.scheduler.add_noise(x1, noise, t)
        pred = model(xt, t.to(x1.dtype), self._cond(batch))
        loss = masked_loss(pred, noise, real_rows(mask), self.kind)
        _, parts = structure_loss(pred, noise, mask, kind=self.kind)
        return loss, {"loss": loss.detach(), **parts}

    def sample(self, model, cond, *, x_init=None, steps=None, generator=None, sampler=None, eta=None,
               **options):
        """Diffusion sampling; ``sampler`` ``"ddpm"`` or ``"ddim"`` (default: the configured
        ``method``), ``eta`` DDIM's noise scale (default: the configured one)."""
        self._no_options(options, self.name)
        sampler = self.method if sampler is None else self._sampler(sampler)
        cond = self._sample_cond(cond, x_init)
        like = _template(cond, cond.get("x_init"))
        mask = cond["mask"]
        x_T = zero_padding(_draw("normal", like.shape, like, generator), mask)
        scheduler = make_scheduler(sampler, self.scheduler)

        def eps_fn(x: Tensor, t: Tensor) -> Tensor:
            return model(x, t.to(x.dtype), cond)

        steps = steps or self.inference_steps
        eta = self.eta if eta is None else eta
        x = diffusion_sample(eps_fn, scheduler, x_T, steps, generator, real_rows(mask), eta)
        return zero_padding(x, mask)

    def _sample_cond(self, cond: Mapping[str, Any], x_init: Tensor | None) -> dict[str, Any]:
        return {k: v for k, v in cond.items() if k != "x_init"}


class ModificationPalette(GenerationDiffusion):
    """Palette (Algorithms 7-8): diffusion on the target ``x1`` with ``cond["x_init"]`` given.

    The model sees the initial structure only through ``cond["x_init"]`` (model space); noise,
    loss and sampler are those of :class:`GenerationDiffusion`.
    """

    name = "palette"
    task = "modification"
    needs_init = True

    def _cond(self, batch):
        if "x_init" not in batch:
            raise ValueError("the 'palette' method needs batch['x_init'] (a modification batch)")
        return condition(batch, keep_init=True)

    def _sample_cond(self, cond, x_init):
        return {**cond, "x_init": self._init(cond, x_init)}


class _FlowMethod(GenerativeMethod):
    """Shared flow-matching machinery: path, loss on velocities, Euler sampling."""

    #: ``flow``: Euler steps along the learned velocity; ``heun`` and ``midpoint``: second-order
    #: steps (two network evaluations each), see :func:`~ase_crystalgen.generative.flow.ode_sample`
    samplers = ("flow", "heun", "midpoint")

    def __init__(
        self,
        sigma: float = 0.0,
        periodic: bool = True,
        inference_steps: int = 100,
        kind: str = "l1",
        coord_weight: float = 0.5,
        lattice_weight: float = 0.5,
        time_scale: float = 1000.0,
        inference_sampler: str = "flow",
        **extra: Any,
    ):
        super().__init__(locals())
        if inference_sampler not in self.samplers:
            raise ValueError(
                f"inference_sampler {inference_sampler!r} is not one of {', '.join(self.samplers)}"
            )
        self.inference_sampler = inference_sampler
        self.path = FlowPath(sigma, COORD_PERIOD, COORD_ORIGIN)
        check_kind(kind)
        self.periodic, self.inference_steps, self.kind = bool(periodic), inference_steps, kind
        self.coord_weight, self.lattice_weight, self.time_scale = coord_weight, lattice_weight, time_scale

    @property
    def default_sampler(self) -> str:
        return self.inference_sampler

    def source(self, mask: Tensor, like: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def _x0(self, batch_or_cond: Mapping[str, Any], like: Tensor, generator, x_init=None) -> Tensor:
        return self.source(batch_or_cond["mask"], like, generator)

    def loss(self, model, batch, generator=None):
        mask = batch["mask"]
        x1 = zero_padding(batch["x"], mask)
        x0 = zero_padding(self._x0(batch, x1, generator, batch.get("x_init")), mask)
        rows = mask.bool() if self.periodic else None
        t, xt, ut = self.path.sample_location_and_conditional_flow(x0, x1, generator=generator, periodic=rows)
        xt = zero_padding(xt, mask)
        pred = model(xt, self.time_scale * t, condition(batch))
        loss, parts = structure_loss(
            pred, ut, mask, batch.get("n_sites"), self.coord_weight, self.lattice_weight, self.kind
        )
        return loss, {"loss": loss.detach(), **parts}

    def sample(self, model, cond, *, x_init=None, steps=None, generator=None, sampler=None, **options):
        self._no_options(options, self.name)
        sampler = self._sampler(sampler)
        x_init = x_init if x_init is not None else cond.get("x_init")
        cond = {k: v for k, v in cond.items() if k != "x_init"}
        mask = cond["mask"]
        like = _template(cond, x_init)
        x0 = zero_padding(self._x0(cond, like, generator, x_init), mask)
        rows = mask.bool() if self.periodic else None

        def velocity(x: Tensor, t: Tensor) -> Tensor:
            return model(x, self.time_scale * t, cond)

        def wrap(x: Tensor) -> Tensor:
            return self.path.wrap(zero_padding(x, mask), rows)

        solver = "euler" if sampler == "flow" else sampler
        return ode_sample(velocity, x0, steps or self.inference_steps, solver=solver, wrap=wrap)


class GenerationFlow(_FlowMethod):
    """Flow matching for generation (Algorithms 5-6): straight path from a noise source.

    ``source="normal"``: N(0, I) on every real row, the paper's first choice. ``"uniform"``:
    U(-1, 1) on coordinate rows, i.e. the paper's U(0, 1) on fractional coordinates mapped to
    model space, which matches the roughly uniform coordinate distribution of the data (paper
    Fig. 3); N(0, 1) on the standardised lattice rows, whose data distribution is unit
    Gaussian-like rather than uniform on [0, 1] (the paper draws U(0, 1) for every entry).
    ``periodic`` (default: on for the uniform source, which is the uniform distribution on the
    torus, off for the normal source as in the paper) uses the shortest periodic displacement
    on coordinate rows and wraps after every Euler step.
    """

    name = "flow"
    default_source: ClassVar[str] = "normal"

    def __init__(self, source: str | None = None, **kwargs: Any):
        source = source or self.default_source
        if source not in ("normal", "uniform"):
            raise ValueError(f"unknown flow source {source!r}; choose normal or uniform")
        if kwargs.get("periodic") is None:
            kwargs["periodic"] = source == "uniform"
        super().__init__(source=source, **kwargs)
        self.source_name = source

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "name": f"flow-{self.source_name}"}

    def source(self, mask, like, generator):
        x0 = _draw("normal", like.shape, like, generator)
        if self.source_name == "uniform":
            u = COORD_ORIGIN + COORD_PERIOD * _draw("uniform", like.shape, like, generator)
            x0 = torch.where(mask.bool()[..., None].to(like.device), u, x0)
        return x0


class FlowNormal(GenerationFlow):
    """:class:`GenerationFlow` from N(0, I) (registry name ``flow-normal``)."""

    name = "flow-normal"
    default_source = "normal"


class FlowUniform(GenerationFlow):
    """:class:`GenerationFlow` from uniform coordinates (registry name ``flow-uniform``)."""

    name = "flow-uniform"
    default_source = "uniform"


class ModificationFlow(_FlowMethod):
    """Flow matching from the initial structure to the target (Algorithms 4 and 6), ``x0 = x_init``.

    The model sees ``x_t`` and ``t`` (not ``x_init``, as in Algorithm 4); coordinates move along
    the shortest periodic displacement by default.
    """

    name = "modification-flow"
    task = "modification"
    needs_init = True

    def _x0(self, batch_or_cond, like, generator, x_init=None):
        return self._init(batch_or_cond, x_init).to(like.device, like.dtype)


class ModificationRegression(GenerativeMethod):
    """Direct regression of the target (Algorithms 1-2): ``x1 = model(x_init, 0, cond)``.

    Loss: :func:`structure_loss` with ``coords`` = ``"periodic"`` (default; the minimum-image
    loss that section 3.3 describes), ``"pbc"`` (appendix A.4 as written; use ``kind="norm"``
    for its Euclidean distances) or ``"plain"`` (section 3.1's L1).
    """

    name = "regression"
    task = "modification"
    needs_init = True
    samplers = ("regression",)  # one network evaluation

    def __init__(
        self,
        coords: str = "periodic",
        kind: str = "l1",
        coord_weight: float = 0.5,
        lattice_weight: float = 0.5,
        k: float = -20.0,
        tol: float = 1e-6,
    ):
        super().__init__(locals())
        check_kind(kind, coords)
        self.coords, self.kind, self.k, self.tol = coords, kind, k, tol
        self.coord_weight, self.lattice_weight = coord_weight, lattice_weight

    def _predict(self, model: Model, x_init: Tensor, cond: Mapping[str, Any]) -> Tensor:
        t = torch.zeros(x_init.shape[0], dtype=x_init.dtype, device=x_init.device)
        return model(x_init, t, cond)

    def loss(self, model, batch, generator=None):
        mask = batch["mask"]
        x_init = zero_padding(self._init(batch, None), mask)
        pred = self._predict(model, x_init, condition(batch))
        loss, parts = structure_loss(
            pred, zero_padding(batch["x"], mask), mask, batch.get("n_sites"), self.coord_weight,
            self.lattice_weight, self.kind, self.coords, COORD_PERIOD, COORD_ORIGIN, self.k, self.tol,
        )  # fmt: skip
        return loss, {"loss": loss.detach(), **parts}

    @torch.no_grad()
    def sample(self, model, cond, *, x_init=None, steps=None, generator=None, sampler=None, **options):
        self._no_options(options, self.name)
        self._sampler(sampler)
        x_init = self._init(cond, x_init)
        cond = {k: v for k, v in cond.items() if k != "x_init"}
        return zero_padding(self._predict(model, zero_padding(x_init, cond["mask"]), cond), cond["mask"])


METHODS: dict[str, type[GenerativeMethod]] = {
    "ddpm": GenerationDiffusion,
    "flow-normal": FlowNormal,
    "flow-uniform": FlowUniform,
    "regression": ModificationRegression,
    "modification-flow": ModificationFlow,
    "palette": ModificationPalette,
}


def make_method(name: str, **kwargs: Any) -> GenerativeMethod:
    """Build a registered method: ``make_method("flow-uniform", sigma=0.0)``."""
    if name not in METHODS:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name](**kwargs)


def method_from_dict(config: Mapping[str, Any]) -> GenerativeMethod:
    """Inverse of :meth:`GenerativeMethod.to_dict`."""
    config = dict(config)
    return make_method(config.pop("name"), **config)


__all__ = [
    "METHODS",
    "FlowNormal",
    "FlowUniform",
    "GenerationDiffusion",
    "GenerationFlow",
    "GenerativeMethod",
    "ModificationFlow",
    "ModificationPalette",
    "ModificationRegression",
    "condition",
    "make_method",
    "method_from_dict",
]
