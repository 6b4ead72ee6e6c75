"""Reducing a data set to a few GRS: the one call with the settings measured for it.

:func:`~ase_crystalgen.optimize.generate_representative_structures` builds each member to
match the target on its own (``w_inter``) and the set jointly (``w_intra``). For a data
set that spans temperatures, strains or compositions the own term pulls every member to
the data set's average environment (and its average composition), so the set has little
spread; a linear ACE potential fitted on such members predicts held-out snapshots badly.
Here the data set is split by composition, each group is reduced on its own, and each
member minimises the joint term only, with the variance weighted like the mean
(``benchmarks/bench_reduction.py``, ``docs/benchmarks/reduction.md`` for what that buys
and what it does not).

The one call builds the members one after another, each against the earlier ones fixed.
``build="joint"`` instead relaxes all members of a group together, one optimiser over
every member's positions and cell, against the joint term of the whole set (GRS eq. 15
with the members optimised at once); ``build="alternating"`` relaxes each member in
turn against all the others, over several passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.utils.abc import Optimizable

from .._threads import single_threaded_blas
from ..build import composition_counts
from ..structures import as_rng, element_counts

__all__ = ["BUILDS", "OBJECTIVES", "REDUCTION_DEFAULTS", "allocate", "composition_groups",
           "joint_relax", "reduce_dataset"]

#: how :func:`reduce_dataset` builds the members of a composition group
BUILDS = ("sequential", "joint", "alternating")

#: what :func:`reduce_dataset` makes the members match: the GRS moment distance or the
#: kernel distance of :mod:`ase_crystalgen.grs.kernel` (the whole distribution)
OBJECTIVES = ("moments", "kernel")

#: the options of the one call that the joint and alternating builds take
_TOGETHER_OPTIONS = ("weights", "scale", "rank_weights", "smoothing", "w_inter", "w_intra",
                     "relax_steps", "fmax", "relax_cell", "optimizer")

#: the options the kernel objective takes (the moment weights and scales mean nothing to it)
_KERNEL_OPTIONS = ("w_inter", "w_intra", "relax_steps", "fmax", "relax_cell", "optimizer")

#: the settings of :func:`reduce_dataset` that differ from the one call's
REDUCTION_DEFAULTS = dict(weights=(1.0, 1.0), w_inter=0.0, w_intra=1.0, relax_steps=150)


def _fractions(atoms: Atoms) -> tuple:
    """The composition of ``atoms`` as sorted (element, fraction) pairs (a dict key)."""
    return tuple(sorted((s, c / len(atoms)) for s, c in element_counts(atoms).items()))


def composition_groups(data: Sequence[Atoms]) -> dict[tuple, list[int]]:
    """Indices of the data set's structures by composition (element fractions)."""
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(data):
        if len(a) == 0:
            raise ValueError(f"structure {i} of the data set has no atoms")
        groups.setdefault(_fractions(a), []).append(i)
    return groups


def allocate(weights: Sequence[float], n: int) -> list[int]:
    """``n`` members shared out in proportion to ``weights`` (largest remainders), every
    group getting one first while there are enough."""
    w = np.asarray(weights, float)
    if n >= len(w):
        base = np.ones(len(w), int)
        raw = w / w.sum() * (n - len(w))
    else:
        base = np.zeros(len(w), int)
        raw = w / w.sum() * n
    extra = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - extra), kind="stable")[: n - base.sum() - extra.sum()]:
        extra[i] += 1
    return [int(x) for x in base + extra]


class _JointEvaluator:
    """Energies and gradients of several structures under one GRS potential, all at once.

    Each structure pays its core repulsion and ``w_inter`` times its own score; the set
    pays ``w_intra`` times the joint score of all of them pooled with ``context`` (shared
    out evenly, so the energies add up to the set's). Evaluated again only when a
    structure moved.
    """

    def __init__(self, potential, members, context, w_inter, w_intra):
        self.potential, self.members = potential, members
        self.context = [np.asarray(c, float) for c in context]
        self.w_inter, self.w_intra = float(w_inter), float(w_intra)
        self._state = None

    def _now(self):
        return [np.concatenate([m.positions.ravel(), m.cell.array.ravel()])
                for m in self.members]

    def evaluate(self) -> list[dict]:
        now = self._now()
        if self._state is not None and all(np.array_equal(a, b) for a, b in zip(now, self._state)):
            return self._results
        pot, k = self.potential, len(self.members)
        fwd = [pot.descriptor.forward(m) for m in self.members]
        Bs = [B for B, _ in fwd]
        joint, Gs = pot.objective.ensemble_score(Bs + self.context)
        results = []
        for m, (B, back), G in zip(self.members, fwd, Gs):
            energy, G = self.w_intra * joint / k, self.w_intra * G
            if self.w_inter:
                q, g = pot.objective.score_and_gradient(B)
                energy, G = energy + self.w_inter * q, G + self.w_inter * g
            dR, W = back(G)
            if pot.core is not None:
                pairs = getattr(back, "pairs", None)
                reuse = pairs is not None and (
                    pot.core.max_cutoff(m.numbers) <= pot.descriptor.rcut.min())
                e_core, dRc, Wc = pot.core(m, pairs if reuse else None)
                energy, dR, W = energy + e_core, dR + dRc, W + Wc
            res = {"energy": float(energy), "free_energy": float(energy), "forces": -dR}
            if m.pbc.all():
                W = 0.5 * (W + W.T) / m.get_volume()
                res["stress"] = np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])
            results.append(res)
        self._state, self._results, self.joint_score = now, results, float(joint)
        return results


class _MemberCalculator(Calculator):
    """One structure's share of a :class:`_JointEvaluator` (what its cell filter reads)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, joint: _JointEvaluator, index: int):
        super().__init__()
        self.joint, self.index = joint, index

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        self.results = dict(self.joint.evaluate()[self.index])


class _JointOptimizable(Optimizable):
    """Several structures (or their cell filters) as one point for an ASE optimiser."""

    def __init__(self, parts):
        self.parts = parts
        self._sizes = [3 * len(p) for p in parts]

    def ndofs(self) -> int:
        return sum(self._sizes)

    def get_x(self) -> np.ndarray:
        return np.concatenate([p.get_positions().ravel() for p in self.parts])

    def set_x(self, x: np.ndarray) -> None:
        for p, chunk in zip(self.parts, np.split(x, np.cumsum(self._sizes)[:-1])):
            p.set_positions(chunk.reshape(-1, 3))

    def get_gradient(self) -> np.ndarray:
        return -np.concatenate([p.get_forces().ravel() for p in self.parts])

    def get_value(self) -> float:
        return float(sum(p.get_potential_energy() for p in self.parts))

    def iterimages(self):
        for p in self.parts:
            yield getattr(p, "atoms", p)


def joint_relax(members: Sequence[Atoms], potential, *, context: Sequence = (),
                steps: int = 150, fmax: float = 1e-3, relax_cell: bool = True,
                optimizer="BFGSLineSearch", w_inter: float = 0.0,
                w_intra: float = 1.0) -> dict:
    """Relax several structures at once against their joint GRS score (in place).

    One optimiser moves every member's positions (and, with ``relax_cell``, its cell
    through a :class:`~ase.filters.FrechetCellFilter`) down the effective energy

    ``sum_m [V_core(m) + w_inter Q(m)] + w_intra Q(m_1 + ... + m_k + context)``

    so that no member is built against others held fixed.

    Parameters
    ----------
    members : the structures to move (changed in place).
    potential : a :class:`~ase_crystalgen.grs.GRSPotential`; its objective gives the
        scores (its own ``w_inter`` and ``w_intra`` are not used) and its core the
        repulsion.
    context : descriptor arrays (or Atoms) pooled into the joint score but not moved.
    steps, fmax, relax_cell, optimizer : of the relaxation (``optimizer`` an
        ``ase.optimize`` class or its name).
    w_inter, w_intra : weights of each member's own score and of the joint score.

    Returns
    -------
    dict with ``joint_score`` (of the members and the context pooled), ``energy`` (the
    effective energy above), ``history`` (that energy after each step) and ``steps``.
    """
    import warnings

    import ase.optimize
    from ase.filters import FrechetCellFilter

    members = list(members)
    if not members or any(len(m) == 0 for m in members):
        raise ValueError("joint_relax needs at least one structure, each with atoms")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps}")
    if isinstance(optimizer, str):
        if not hasattr(ase.optimize, optimizer):
            raise ValueError(f"unknown optimizer {optimizer!r} (a class of ase.optimize)")
        optimizer = getattr(ase.optimize, optimizer)
    context = list(context)
    if context and isinstance(context[0], Atoms):
        context = potential.descriptor.compute_many(context)
    joint = _JointEvaluator(potential, members, context, w_inter, w_intra)
    for i, m in enumerate(members):
        m.calc = _MemberCalculator(joint, i)
    parts = [FrechetCellFilter(m) if relax_cell and m.pbc.all() else m for m in members]
    point = _JointOptimizable(parts)
    history = [point.get_value()]
    n_steps = 0
    if steps > 0:
        opt = optimizer(point, logfile=None)
        opt.attach(lambda: history.append(point.get_value()))
        with single_threaded_blas(), warnings.catch_warnings():
            # the cell filter's matrix logarithm warns on every step of large strains
            warnings.filterwarnings("ignore", message=".*logm result may be inaccurate.*")
            opt.run(fmax=fmax, steps=int(steps))
        n_steps = opt.nsteps
    energy = point.get_value()
    for m in members:
        m.calc = None
    return {"joint_score": joint.joint_score, "energy": energy, "history": history,
            "steps": n_steps}


def _build_together(part, n_members, n_atoms, composition, density, descriptor, rng, kw,
                    build, passes, objective="moments"):
    """Members of one composition group built by :func:`joint_relax`: ``build`` joint,
    alternating, or (kernel objective) sequential, each member against the earlier ones."""
    from ..build import random_packing
    from ..grs.potential import DEFAULTS, GRSPotential
    from ..grs.repulsion import CoreRepulsion

    if density is None:
        raise ValueError(f"build={build!r} starts from packings at the data's density: "
                         "the data set's structures must be periodic")
    if objective == "kernel":
        from ..grs.kernel import KernelObjective, KernelTarget

        target = KernelTarget.from_structures(part, descriptor, rng=rng)
        potential = GRSPotential(descriptor, KernelObjective(target), CoreRepulsion())
    else:
        potential = GRSPotential.from_target(
            part, descriptor=descriptor, weights=kw["weights"],
            scale=kw.get("scale", DEFAULTS["scale"]),
            rank_weights=kw.get("rank_weights", DEFAULTS["rank_weights"]),
            smoothing=kw.get("smoothing", DEFAULTS["smoothing"]), w_inter=1.0, w_intra=0.0)
    members = [random_packing(composition, n_atoms=n_atoms, density=density, rng=rng)
               for _ in range(n_members)]
    relax = dict(fmax=kw.get("fmax", 1e-3), relax_cell=kw.get("relax_cell", True),
                 optimizer=kw.get("optimizer", "BFGSLineSearch"), w_inter=kw["w_inter"],
                 w_intra=kw["w_intra"])
    steps = int(kw["relax_steps"])
    if build == "joint":
        out = joint_relax(members, potential, steps=steps, **relax)
        history = out["history"]
    elif build == "sequential":
        history = []
        for i in range(n_members):
            earlier = [potential.descriptor.compute(m) for m in members[:i]]
            out = joint_relax([members[i]], potential, context=earlier, steps=steps, **relax)
            history += out["history"]
    else:
        history = []
        per_pass = max(1, steps // passes)
        for _ in range(passes):
            for i in range(n_members):
                others = [potential.descriptor.compute(m) for j, m in enumerate(members)
                          if j != i]
                out = joint_relax([members[i]], potential, context=others, steps=per_pass,
                                  **relax)
                history += out["history"]
    Bs = [potential.descriptor.compute(m) for m in members]
    joint = float(potential.objective.ensemble_score(Bs, grad=False)[0])
    for k, (m, B) in enumerate(zip(members, Bs)):
        m.info.update(grs_index=k, grs_score=float(potential.objective.score(B)),
                      grs_ensemble_score=joint, grs_history=list(history), grs_build=build,
                      grs_objective=objective)
    return members


def reduce_dataset(data: Sequence[Atoms], n_structures: int, n_atoms: int = 32, *,
                   descriptor=None, rng=None, progress: bool = False,
                   existing: Sequence[Atoms] = (), on_member: Callable | None = None,
                   build: str = "sequential", passes: int = 3, objective: str = "moments",
                   **options) -> list[Atoms]:
    """``n_structures`` GRS of ``n_atoms`` atoms that stand for the data set ``data``.

    The data set is split by composition; each composition group gets members in
    proportion to its atoms (one each first, while there are enough), made by the one
    call with the group as the target, the group's composition and mean density.

    Parameters
    ----------
    data : the structures to reduce (a list of Atoms; at least two).
    n_structures, n_atoms : members and atoms per member (compositions are rounded to
        whole counts of ``n_atoms``).
    descriptor : an ``ACEDescriptor`` (default: the paper's basis over all the data set's
        elements, shared by every group).
    rng : generator or seed.
    progress : a tqdm bar over the members, showing the score of the latest.
    existing : members made earlier (``info["grs_group"]`` says which group); they count
        towards their group's share. The builds that make a group at once (``joint``,
        ``alternating``, every ``kernel`` build) keep whole groups from ``existing`` and
        refuse a group that has only some of its members there.
    on_member : called as ``on_member(members)`` after each new member (after each
        group with the builds that make a group at once).
    build : ``"sequential"`` (the one call: members one after another, each against the
        earlier ones); ``"joint"`` (all members of a group start as random packings and
        one optimiser relaxes them together for ``relax_steps`` steps against the joint
        term, see :func:`joint_relax`); ``"alternating"`` (the same starts; ``passes``
        passes, each relaxing every member in turn for ``relax_steps // passes`` steps
        against all the others).
    passes : passes of the alternating build.
    objective : ``"moments"`` (default): the GRS moment distance (mean and variance,
        :data:`REDUCTION_DEFAULTS`); ``"kernel"``: the maximum mean discrepancy of
        :class:`~ase_crystalgen.grs.kernel.KernelObjective` between the members' and the
        group's environments (the whole distribution, not two moments; every build starts
        from random packings and relaxes with :func:`joint_relax`, the sequential one each
        member against the earlier ones; no annealing). Measured in
        ``docs/reduction.md``.
    options : anything else of the one call,
        :func:`~ase_crystalgen.optimize.generate_representative_structures`;
        :data:`REDUCTION_DEFAULTS` unless given.

    Returns
    -------
    The members (``info`` as the one call's, plus ``grs_group``).
    """
    from ..descriptors import ACEDescriptor
    from ..optimize import generate_representative_structures

    data = [data] if isinstance(data, Atoms) else list(data)
    if len(data) < 2:
        raise ValueError(f"a data set to reduce needs at least two structures, got {len(data)}")
    if int(n_atoms) < 1 or int(n_structures) < 1:
        raise ValueError("n_structures and n_atoms must be positive")
    if build not in BUILDS:
        raise ValueError(f"unknown build {build!r}; use one of {', '.join(BUILDS)}")
    if int(passes) != passes or passes < 1:
        raise ValueError(f"passes must be a whole number >= 1, got {passes}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    together = build != "sequential" or objective == "kernel"
    if together:
        what = f"build={build!r}" if objective == "moments" else f"objective={objective!r}"
        takes = _TOGETHER_OPTIONS if objective == "moments" else _KERNEL_OPTIONS
        unknown = sorted(set(options) - set(takes))
        if unknown:
            raise ValueError(f"{what} does not take {', '.join(unknown)} (it "
                             f"takes {', '.join(takes)})")
    rng = as_rng(rng)
    kw = {**REDUCTION_DEFAULTS, **options}
    groups = composition_groups(data)
    keys = list(groups)
    if descriptor is None:
        descriptor = ACEDescriptor(sorted({s for k in keys for s, _ in k}))
    counts = allocate([sum(len(data[i]) for i in groups[k]) for k in keys], int(n_structures))
    existing = list(existing)
    members: list[Atoms] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(n_structures), desc="reduced set", unit="structure")
    for g in range(len(keys)):
        if counts[g] == 0:
            continue
        part = [data[i] for i in groups[keys[g]]]
        done = [m for m in existing if m.info.get("grs_group") == g][: counts[g]]
        density = float(np.mean([len(a) / a.get_volume() for a in part])) if all(
            a.pbc.all() for a in part) else None

        def hook(ms, g=g, before=members):
            for m in ms:
                m.info["grs_group"] = g
            if bar is not None:
                bar.update(1)
                bar.set_postfix(score=f"{ms[-1].info['grs_score']:.3g}",
                                formula=ms[-1].get_chemical_formula())
            if on_member is not None:
                on_member(before + list(ms))

        if together and done:
            # a group is made, and written by on_member, at once: existing members are whole
            # groups from an earlier run, kept as they are
            if len(done) < counts[g]:
                raise ValueError(f"{what} makes each group at once: it cannot resume a group "
                                 f"from {len(done)} of its {counts[g]} members")
            members += done
            if bar is not None:
                bar.update(len(done))
            continue
        if together:
            made = _build_together(part, counts[g], int(n_atoms),
                                   composition_counts(dict(keys[g]), int(n_atoms)), density,
                                   descriptor, rng, kw, build, int(passes), objective)
            for m in made:
                m.info["grs_group"] = g
            members += made
            if bar is not None:
                bar.update(len(made))
                bar.set_postfix(score=f"{made[-1].info['grs_ensemble_score']:.3g}")
            if on_member is not None:
                on_member(list(members))
            continue
        made = generate_representative_structures(
            part if len(part) > 1 else part[0], counts[g], int(n_atoms), descriptor=descriptor,
            composition=composition_counts(dict(keys[g]), int(n_atoms)),
            density=density, rng=rng,
            existing=done, on_member=hook, **kw)
        for m in made:
            m.info["grs_group"] = g
        if bar is not None:
            bar.update(len(done))  # members read back count as done
        members += made
    if bar is not None:
        bar.close()
    return members
