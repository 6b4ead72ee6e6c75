"""ASE calculator for the GRS effective potential (an adapter over GRSPotential)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from ..descriptors import ACEDescriptor
from ..grs.potential import DEFAULTS, GRSPotential, _orders, make_target, target_structures

__all__ = ["GRSCalculator", "make_target"]


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
    weights : moment weights ``{order: alpha}`` or ``(alpha_1, alpha_2, ...)``; default
        ``(1, 0.01)``: the mean, and the variance at 1/100 of its weight (means first,
        as for the ranks; docs/grs-core.md).
    core_repulsion : a :class:`CoreRepulsion`, ``True`` for the default, ``None``/``False``
        for none.
    rank_weights : share of the weight of each descriptor rank (body order minus one);
        default ``"hierarchy"``: each rank 1/100 of the one below, pairs first, as a
        cluster expansion orders its clusters (docs/grs-search.md has the measurements);
        ``"equal"``, ``None`` (per feature) or explicit weights otherwise.
    smoothing, w_inter, w_intra, context : see :class:`GRSObjective`.
    scale : descriptor scales of a target built here: ``"rms"`` (per descriptor) or
        ``"group"`` (per rank); see :class:`DescriptorTarget`.

    Notes
    -----
    The maths lives in :attr:`potential` (a
    :class:`~ase_crystalgen.grs.potential.GRSPotential`); ``set()`` rebuilds it.

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
        "weights": DEFAULTS["weights"],
        "smoothing": DEFAULTS["smoothing"],
        "rank_weights": DEFAULTS["rank_weights"],
        "scale": DEFAULTS["scale"],
        "w_inter": DEFAULTS["w_inter"],
        "w_intra": DEFAULTS["w_intra"],
    }
    nolabel = True

    def __init__(self, target, descriptor: ACEDescriptor | None = None, elements=None,
                 weights=None, core_repulsion=True, smoothing=None, w_inter=None,
                 w_intra=None, context=None, scale=None, rank_weights="default", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("weights", weights), ("smoothing", smoothing),
                            ("w_inter", w_inter), ("w_intra", w_intra), ("scale", scale)):
            if value is not None:
                self.parameters[name] = value
        if not (isinstance(rank_weights, str) and rank_weights == "default"):
            self.parameters["rank_weights"] = rank_weights
        self._target = target_structures(target)
        self._elements = elements
        self._core_repulsion = core_repulsion
        self._context = context
        self._descriptor = descriptor
        self._build()

    def _build(self) -> None:
        p = self.parameters
        target = self._target
        old = getattr(self, "potential", None)
        if old is not None and p["scale"] == self._built_scale and set(
                _orders(p["weights"])) <= set(old.target.orders):
            target = old.target  # same descriptors and scales: no need to recompute them
        self._built_scale = p["scale"]
        self.potential = GRSPotential.from_target(
            target, descriptor=self._descriptor, elements=self._elements,
            weights=p["weights"], scale=p["scale"], rank_weights=p["rank_weights"],
            smoothing=p["smoothing"], w_inter=p["w_inter"], w_intra=p["w_intra"],
            context=self._context, core_repulsion=self._core_repulsion)
        self._descriptor = self.potential.descriptor

    # the parts, for code that reads them
    @property
    def descriptor(self):
        return self.potential.descriptor

    @property
    def objective(self):
        return self.potential.objective

    @property
    def target(self):
        return self.potential.target

    @property
    def core(self):
        return self.potential.core

    def set(self, **kwargs):
        """Change parameters (``weights``, ``smoothing``, ``rank_weights``, ``scale``,
        ``w_inter``, ``w_intra``); the potential is rebuilt, so the energy changes."""
        changed = super().set(**kwargs)
        if changed:
            self._build()
            self.reset()  # ASE's set() keeps the old results
        return changed

    def set_context(self, context) -> None:
        """Replace the other ensemble members (Atoms or descriptor arrays)."""
        self._context = context
        self.potential.set_context(context)
        self.reset()

    def score(self, atoms: Atoms) -> float:
        """The objective alone (no core repulsion, no forces) for ``atoms``."""
        return self.potential.score(atoms)

    def energy_and_score(self, atoms: Atoms) -> tuple[float, float]:
        """``(energy, score)`` without forces (about half the cost of a full call)."""
        return self.potential.energy_and_score(atoms)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        try:
            res = self.potential.calculate(atoms)
        except ValueError as exc:
            raise ValueError(f"GRSCalculator: {exc}") from exc
        self.results["energy"] = res["energy"]
        self.results["free_energy"] = res["energy"]
        self.results["score"] = res["score"]
        self.results["core_energy"] = res["core_energy"]
        self.results["forces"] = -res["gradient"]
        if atoms.pbc.all():
            W = res["virial"]
            W = 0.5 * (W + W.T)
            s = W / atoms.get_volume()
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a cell periodic in all directions")
