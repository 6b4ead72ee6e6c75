"""The GRS effective potential: descriptor + target moments + weights + core repulsion.

:class:`GRSPotential` owns the maths. The ASE calculator
(:class:`~ase_crystalgen.calculators.GRSCalculator`) is an adapter over it, and the
drivers (annealing, random walk, genetic algorithm, ensembles) call it directly: its
energy, its gradients with respect to positions and strain, and its local updates after
Monte Carlo moves (:meth:`GRSPotential.local`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from .objective import DescriptorTarget, GRSObjective, read_structures
from .repulsion import CoreRepulsion

#: the defaults every entry point shares (calculator, drivers, top-level call)
DEFAULTS = {
    "weights": (1.0, 0.01),
    "scale": "rms",
    "rank_weights": "hierarchy",
    "smoothing": 1e-2,
    "w_inter": 1.0,
    "w_intra": 0.0,
}


def make_target(target, descriptor, orders=(1, 2, 3, 4), scale="rms") -> DescriptorTarget:
    """A :class:`DescriptorTarget` from Atoms, a list of Atoms, a file path, an ``.npz``
    target file, an (n, F) array or an existing target."""
    if isinstance(target, DescriptorTarget):
        return target
    if isinstance(target, (str, os.PathLike)) and os.fspath(target).endswith(".npz"):
        return DescriptorTarget.load(target)
    if isinstance(target, np.ndarray):
        return DescriptorTarget.from_arrays(target, orders=orders, scale=scale,
                                            block_size=descriptor.n_per_species,
                                            groups=descriptor.feature_ranks(),
                                            elements=descriptor.elements)
    return DescriptorTarget.from_structures(target, descriptor, orders=orders, scale=scale)


def target_structures(target):
    """Read a file target into a list of Atoms; other targets pass through."""
    if isinstance(target, (str, os.PathLike)) and not os.fspath(target).endswith(".npz"):
        return read_structures(target)
    if isinstance(target, Atoms):
        if len(target) == 0:
            raise ValueError("the target structure has no atoms")
        return [target]
    if isinstance(target, (list, tuple)):
        if not target:
            raise ValueError("the target is an empty list of structures")
        if all(isinstance(a, Atoms) for a in target) and all(len(a) == 0 for a in target):
            raise ValueError("the target structures have no atoms")
    return target


def elements_of(target) -> list[str]:
    """Elements of a target, in order of first appearance."""
    if isinstance(target, Atoms):
        target = [target]
    if isinstance(target, (list, tuple)) and target and isinstance(target[0], Atoms):
        seen = []
        for a in target:
            for s in a.get_chemical_symbols():
                if s not in seen:
                    seen.append(s)
        return seen
    if isinstance(target, DescriptorTarget) and target.elements:
        return list(target.elements)
    raise ValueError("cannot infer the elements of this target: pass descriptor=ACEDescriptor(...)")


def _orders(weights) -> tuple[int, ...]:
    if isinstance(weights, dict):
        return tuple(sorted(int(k) for k in weights))
    return tuple(range(1, len(np.atleast_1d(weights)) + 1))


class GRSPotential:
    r"""GRS effective potential (GRS paper eq. 16).

    .. math::

        E(R) = V_\mathrm{core}(R) + w_\mathrm{inter} Q(B(R)) + w_\mathrm{intra} Q(B(R) \cup C)

    Parameters
    ----------
    descriptor : per-atom descriptor (:class:`~ase_crystalgen.descriptors.ACEDescriptor`).
    objective : the moment distance (:class:`GRSObjective`) to the target.
    core : :class:`CoreRepulsion` or ``None``.

    Use :meth:`from_target` in most cases.
    """

    def __init__(self, descriptor, objective: GRSObjective, core: CoreRepulsion | None = None):
        if objective.target.n_features != descriptor.n_features:
            raise ValueError(f"target has {objective.target.n_features} features, the "
                             f"descriptor {descriptor.n_features}: they were made with "
                             "different bases")
        self.descriptor, self.objective, self.core = descriptor, objective, core

    @classmethod
    def from_target(cls, target, descriptor=None, elements: Sequence[str] | None = None,
                    weights=DEFAULTS["weights"], scale=DEFAULTS["scale"],
                    rank_weights=DEFAULTS["rank_weights"], smoothing=DEFAULTS["smoothing"],
                    w_inter=DEFAULTS["w_inter"], w_intra=DEFAULTS["w_intra"], context=None,
                    core_repulsion=True) -> GRSPotential:
        """The potential of a target: Atoms, a list of Atoms, a file (all frames), an
        ``.npz`` target file, an (n, F) array or a :class:`DescriptorTarget`. Parameters
        as :class:`GRSObjective`; ``elements`` adds elements to the default descriptor
        (the paper's ACE basis over the target's elements)."""
        from ..descriptors import ACEDescriptor

        target = target_structures(target)
        if descriptor is None:
            els = elements_of(target)
            for e in elements or []:
                if e not in els:
                    els.append(e)
            descriptor = ACEDescriptor(els)
        if isinstance(target, DescriptorTarget):
            dt = target
        else:
            dt = make_target(target, descriptor, orders=_orders(weights), scale=scale)
        if dt.n_features != descriptor.n_features:
            raise ValueError(f"target has {dt.n_features} features, the descriptor "
                             f"{descriptor.n_features}: they were made with different bases")
        if isinstance(rank_weights, str) and rank_weights == "hierarchy" and not getattr(
                descriptor, "ranks_are_body_orders", False):
            rank_weights = None  # e.g. SNAP: its groups are angular orders, not body orders
        if (rank_weights is not None and getattr(dt, "groups", None) is None
                and hasattr(descriptor, "feature_ranks")):
            dt.groups = descriptor.feature_ranks()
        if context is not None and len(context) and isinstance(context[0], Atoms):
            context = descriptor.compute_many(context)
        objective = GRSObjective(dt, weights=weights, smoothing=smoothing, w_inter=w_inter,
                                 w_intra=w_intra, context=context, rank_weights=rank_weights)
        if core_repulsion is True:
            core_repulsion = CoreRepulsion()
        return cls(descriptor, objective, core_repulsion or None)

    @property
    def target(self) -> DescriptorTarget:
        return self.objective.target

    # ---------------------------------------------------------------- evaluation
    def _check(self, atoms: Atoms) -> None:
        if len(atoms) == 0:
            raise ValueError("the structure has no atoms")

    def set_context(self, context) -> None:
        """Replace the other ensemble members (Atoms or descriptor arrays)."""
        if context is not None and len(context) and isinstance(context[0], Atoms):
            context = self.descriptor.compute_many(context)
        self.objective.set_context(context)

    def score(self, atoms: Atoms) -> float:
        """The objective alone (no core repulsion)."""
        self._check(atoms)
        return float(self.objective.score(self.descriptor.compute(atoms)))

    def energy_and_score(self, atoms: Atoms) -> tuple[float, float]:
        """``(energy, score)`` without gradients (about half the cost of :meth:`calculate`)."""
        Q = self.score(atoms)
        core = float(self.core(atoms)[0]) if self.core is not None else 0.0
        return Q + core, Q

    def calculate(self, atoms: Atoms) -> dict:
        """Energy, score, core energy, ``dE/dR`` (N, 3) and the virial
        ``W = dE/d eps`` (3, 3) of a homogeneous strain."""
        self._check(atoms)
        B, backward = self.descriptor.forward(atoms)
        Q, G = self.objective.score_and_gradient(B)
        dR, W = backward(G)
        e_core = 0.0
        if self.core is not None:
            # the descriptor's pair list covers the core range unless cutoffs are tiny
            pairs = getattr(backward, "pairs", None)
            reuse = pairs is not None and (
                self.core.max_cutoff(atoms.numbers) <= self.descriptor.rcut.min())
            e_core, dRc, Wc = self.core(atoms, pairs if reuse else None)
            dR, W = dR + dRc, W + Wc
        return {"energy": float(Q + e_core), "score": float(Q), "core_energy": float(e_core),
                "gradient": dR, "virial": W}

    def local(self, atoms: Atoms, skin: float = 0.5):
        """A :class:`~.local.LocalGRS`: this potential for ``atoms`` with local updates
        after Monte Carlo moves (what the annealer and random walk call)."""
        from .local import LocalGRS

        return LocalGRS(atoms, self, skin=skin)

    def todict(self) -> dict:
        return {"descriptor": self.descriptor.todict(), **self.objective.todict(),
                "core_repulsion": None if self.core is None else
                {"strength": self.core.strength, "scale": self.core.scale}}
