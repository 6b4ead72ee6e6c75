"""ASE calculator for the GRS effective potential."""

from __future__ import annotations

import os

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from ..descriptors import ACEDescriptor
from ..grs.objective import DescriptorTarget, GRSObjective, read_structures
from ..grs.repulsion import CoreRepulsion


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


def _elements_of(target) -> list[str]:
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


class GRSCalculator(Calculator):
    r"""GRS effective potential (GRS paper eq. 16) as an ASE calculator.

    .. math::

        E(R) = V_\mathrm{core}(R) + w_\mathrm{inter} Q(B(R)) + w_\mathrm{intra} Q(B(R) \cup C)

    ``B(R)`` are the per-atom descriptors of the structure, ``Q`` the moment distance to the
    target (:class:`~ase_crystalgen.grs.GRSObjective`), ``C`` the descriptors of other
    ensemble members and ``V_core`` the cosine core repulsion. Forces are
    ``-dE/dR = -(dQ/dB)(dB/dR) - dV_core/dR`` (analytic chain rule through the descriptor);
    the stress is ``(1/V) dE/d eps`` in eV/A^3 (Voigt order xx, yy, zz, yz, xz, xy).

    Parameters
    ----------
    target : Atoms, list of Atoms, file path (any format ASE reads, all frames), ``.npz``
        target file, (n, F) descriptor array, or a :class:`DescriptorTarget`.
    descriptor : an :class:`~ase_crystalgen.descriptors.ACEDescriptor` (default: the
        paper's basis over the target's elements, plus ``elements``).
    elements : extra elements candidates may contain (only used to build the default
        descriptor).
    weights : moment weights ``{order: alpha}`` or ``(alpha_1, alpha_2, ...)``.
    core_repulsion : a :class:`CoreRepulsion`, ``True`` for the default, ``None``/``False``
        for none.
    smoothing, w_inter, w_intra, context : see :class:`GRSObjective`.
    scale : descriptor scales of a target built here: ``"rms"`` (per descriptor; stiff,
        best for relaxing positions and cell) or ``"group"`` (per rank; smoother for
        chemical searches on a lattice); see :class:`DescriptorTarget`.

    Extra results: ``score`` (the objective without core repulsion) and ``core_energy``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase.optimize import FIRE
    >>> target = bulk("Cu", "fcc", a=3.6, cubic=True)
    >>> atoms = target.copy(); atoms.rattle(0.05, seed=0)
    >>> atoms.calc = GRSCalculator(target=target)
    >>> FIRE(atoms, logfile=None).run(fmax=1e-3, steps=200)  # doctest: +SKIP
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "score", "core_energy"]
    default_parameters = {
        "weights": (1.0, 1.0),
        "smoothing": 1e-4,
        "w_inter": 1.0,
        "w_intra": 0.0,
    }
    nolabel = True

    def __init__(self, target, descriptor: ACEDescriptor | None = None, elements=None,
                 weights=None, core_repulsion=True, smoothing=None, w_inter=None,
                 w_intra=None, context=None, scale="rms", **kwargs):
        super().__init__(**kwargs)
        if weights is not None:
            self.parameters["weights"] = weights
        for name, value in (("smoothing", smoothing), ("w_inter", w_inter), ("w_intra", w_intra)):
            if value is not None:
                self.parameters[name] = value
        if isinstance(target, (str, os.PathLike)) and not os.fspath(target).endswith(".npz"):
            target = read_structures(target)
        if descriptor is None:
            els = _elements_of(target)
            for e in elements or []:
                if e not in els:
                    els.append(e)
            descriptor = ACEDescriptor(els)
        self.descriptor = descriptor
        w = self.parameters["weights"]
        orders = tuple(w) if isinstance(w, dict) else tuple(range(1, len(w) + 1))
        self.target = make_target(target, descriptor, orders=orders, scale=scale)
        if self.target.n_features != descriptor.n_features:
            raise ValueError(f"target has {self.target.n_features} features, the descriptor "
                             f"{descriptor.n_features}: they were made with different bases")
        if context is not None and len(context) and isinstance(context[0], Atoms):
            context = descriptor.compute_many(context)
        self.objective = GRSObjective(
            self.target, weights=w, smoothing=self.parameters["smoothing"],
            w_inter=self.parameters["w_inter"], w_intra=self.parameters["w_intra"],
            context=context,
        )
        if core_repulsion is True:
            core_repulsion = CoreRepulsion()
        self.core = core_repulsion or None

    def set_context(self, context) -> None:
        """Replace the other ensemble members (Atoms or descriptor arrays)."""
        if context is not None and len(context) and isinstance(context[0], Atoms):
            context = self.descriptor.compute_many(context)
        self.objective.set_context(context)
        self.reset()

    def score(self, atoms: Atoms) -> float:
        """The objective alone (no core repulsion, no forces) for ``atoms``."""
        return self.objective.score(self.descriptor.compute(atoms))

    def energy_and_score(self, atoms: Atoms) -> tuple[float, float]:
        """``(energy, score)`` without forces (about half the cost of a full call), for
        searches that only compare energies."""
        Q = float(self.objective.score(self.descriptor.compute(atoms)))
        core = float(self.core(atoms)[0]) if self.core is not None else 0.0
        return Q + core, Q

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        try:
            B, backward = self.descriptor.forward(atoms)
        except ValueError as exc:
            raise ValueError(f"GRSCalculator: {exc}") from exc
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
        energy = float(Q + e_core)
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["score"] = float(Q)
        self.results["core_energy"] = float(e_core)
        self.results["forces"] = -dR
        if atoms.pbc.all():
            W = 0.5 * (W + W.T)
            s = W / atoms.get_volume()
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a cell periodic in all directions")
