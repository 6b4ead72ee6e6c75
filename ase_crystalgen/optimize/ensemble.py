"""Sets of representative structures that together match a target (GRS eq. 14-16)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms

from .._threads import single_threaded_blas
from .montecarlo import SimulatedAnnealing, _validate_rng


def _target_structures(target):
    from ..grs.objective import read_structures

    if isinstance(target, Atoms):
        return [target]
    if isinstance(target, (str, bytes)) or hasattr(target, "__fspath__"):
        return read_structures(target)
    target = list(target)
    if not target or not all(isinstance(a, Atoms) for a in target):
        raise TypeError("target must be Atoms, a list of Atoms or a file path")
    return target


def _composition(structures) -> dict[str, float]:
    counts: dict[str, int] = {}
    for a in structures:
        for s in a.get_chemical_symbols():
            counts[s] = counts.get(s, 0) + 1
    total = sum(counts.values())
    return {s: c / total for s, c in counts.items()}


def _number_density(structures) -> float:
    periodic = [a for a in structures if a.pbc.all() and a.get_volume() > 0]
    if not periodic:
        raise ValueError("the target has no periodic structure to take a density from: "
                         "pass density= (atoms per cubic Angstrom)")
    return float(np.mean([len(a) / a.get_volume() for a in periodic]))


def generate_representative_structures(
    target,
    n_structures: int,
    n_atoms: int | Sequence[int],
    descriptor=None,
    candidates: str | Callable = "packing",
    parent: Atoms | None = None,
    composition: dict | None = None,
    density: float | None = None,
    weights=(1.0, 1.0),
    w_inter: float = 1.0,
    w_intra: float = 1.0,
    anneal_steps: int = 0,
    moves=None,
    relax_steps: int = 200,
    fmax: float = 1e-3,
    relax_cell: bool = True,
    optimizer: str = "BFGSLineSearch",
    rattle: float = 0.05,
    rng=None,
    progress: bool = False,
    existing: Sequence[Atoms] = (),
    on_member: Callable | None = None,
) -> list[Atoms]:
    """Generalized representative structures: ``n_structures`` cells that together
    reproduce the descriptor distribution of ``target``.

    Members are built one after the other. Each starts from a candidate cell, and its
    effective potential is ``w_inter Q(member) + w_intra Q(member + earlier members)``
    (the joint term of eq. 14 against the members made so far) plus the core
    repulsion. It is optimised by optional simulated annealing (chemical and spatial
    moves), then a FIRE relaxation of positions and, with ``relax_cell``, the cell.

    Parameters
    ----------
    target : Atoms, list of Atoms or a file (all frames).
    n_structures : number of members.
    n_atoms : atoms per member (one number, or one per member).
    descriptor : an ``ACEDescriptor`` (default: the paper's basis over the target's
        elements).
    candidates : ``"packing"`` (random dense cell at the target's density, minimum
        distances from covalent radii), ``"lattice"`` (random HNF supercell of ``parent``
        with a random occupation), or a callable ``f(n_atoms, rng) -> Atoms``.
    parent : parent lattice for ``"lattice"`` candidates.
    composition : element fractions of the members (default: the target's).
    density : atoms per cubic Angstrom (default: the target's).
    weights : moment weights, as for ``GRSCalculator``.
    anneal_steps : simulated-annealing steps per member before relaxing (0 = none).
    moves : annealing moves (default ``{"swap": 0.5, "displace": 0.5}``).
    relax_steps, fmax, relax_cell : the local relaxation.
    optimizer : an ``ase.optimize`` class or its name. ``"BFGSLineSearch"`` (default)
        converged ~50x further than FIRE in the same steps on cell relaxations of
        random-packing members (docs/grs-results.md); ``"FIRE"`` is more robust near the
        kinks of the smoothed absolute value on crystal targets.
    rattle : Gaussian displacement (A) of lattice candidates, so that forces are not
        zero by symmetry.
    rng : ``numpy.random.Generator`` or seed.
    progress : show a tqdm bar.
    existing : members made earlier (e.g. read back after an interruption); they count
        towards ``n_structures`` and form the context of the joint term.
    on_member : called as ``on_member(members)`` after each new member (e.g. to write a
        checkpoint).

    Returns
    -------
    The members; each ``atoms.info`` holds ``grs_score`` (its own inter score),
    ``grs_ensemble_score`` (the joint score of the set up to and including it) and
    ``grs_index``; ``grs_history`` lists the effective energy at each relaxation step.

    Examples
    --------
    >>> members = generate_representative_structures(liquid, 4, 32, rng=0)  # doctest: +SKIP
    """
    from ..build import random_lattice_candidate, random_packing
    from ..calculators import GRSCalculator
    from ..descriptors import ACEDescriptor

    rng = _validate_rng(rng)
    structures = _target_structures(target)
    if n_structures < 1:
        raise ValueError("n_structures must be >= 1")
    sizes = [int(n_atoms)] * n_structures if np.isscalar(n_atoms) else [int(n) for n in n_atoms]
    if len(sizes) != n_structures or min(sizes) < 1:
        raise ValueError("n_atoms must be a positive number or one per structure")
    target_elements = set(_composition(structures))
    composition = composition or _composition(structures)
    absent = sorted(target_elements - {e for e, x in composition.items() if x > 0})
    if absent:
        raise ValueError(f"the target contains {', '.join(absent)}, which the members' "
                         "composition lacks: they could never match it")
    if descriptor is None:
        descriptor = ACEDescriptor(list(composition))
    missing = sorted(set(composition) - set(descriptor.elements))
    if missing:
        raise ValueError(f"the members would contain {', '.join(missing)}, which the "
                         f"descriptor does not know ({descriptor.elements})")
    if candidates == "packing" and density is None:
        density = _number_density(structures)
    if candidates == "lattice" and parent is None:
        raise ValueError("candidates='lattice' needs a parent lattice (parent=Atoms)")

    def make_candidate(n):
        if callable(candidates):
            return candidates(n, rng)
        if candidates == "packing":
            return random_packing(composition, n_atoms=n, density=density, rng=rng)
        if candidates == "lattice":
            return random_lattice_candidate(parent, n, composition, rng, rattle=rattle)
        raise ValueError(f"unknown candidates {candidates!r}: use 'packing', 'lattice' or "
                         "a callable")

    if isinstance(optimizer, str):
        import ase.optimize

        if not hasattr(ase.optimize, optimizer):
            raise ValueError(f"unknown optimizer {optimizer!r} (a class of ase.optimize)")
        opt_class = getattr(ase.optimize, optimizer)
    else:
        opt_class = optimizer
    calc = GRSCalculator(structures, descriptor=descriptor, weights=weights,
                         w_inter=w_inter, w_intra=w_intra)
    single = GRSCalculator(calc.target, descriptor=descriptor, weights=weights,
                           core_repulsion=None)
    members: list[Atoms] = [a.copy() for a in existing]
    member_B: list[np.ndarray] = [descriptor.compute(a) for a in members]
    if len(members) > n_structures:
        raise ValueError(f"{len(members)} existing members but n_structures={n_structures}")
    it = range(len(members), n_structures)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="representative structures", unit="structure")
    for k in it:
        atoms = make_candidate(sizes[k])
        calc.set_context(member_B)
        atoms.calc = calc
        history = [calc.get_potential_energy(atoms)]
        if anneal_steps > 0:
            sa = SimulatedAnnealing(atoms, moves=moves or {"swap": 0.5, "displace": 0.5},
                                    rng=rng, n_steps=anneal_steps, tolerance=-1.0)
            sa.run()
            atoms = sa.best_atoms.copy()
            atoms.calc = calc
        if relax_steps > 0:
            import warnings

            from ase.filters import FrechetCellFilter

            obj = FrechetCellFilter(atoms) if relax_cell and atoms.pbc.all() else atoms
            opt = opt_class(obj, logfile=None)
            opt.attach(lambda h=history: h.append(float(calc.results["energy"])))
            with single_threaded_blas(), warnings.catch_warnings():
                # the cell filter's matrix logarithm warns on every step of large strains
                warnings.filterwarnings("ignore", message=".*logm result may be inaccurate.*")
                opt.run(fmax=fmax, steps=relax_steps)
        atoms.calc = None
        B = descriptor.compute(atoms)
        member_B.append(B)
        atoms.info["grs_index"] = k
        atoms.info["grs_score"] = float(single.objective.score(B))
        atoms.info["grs_ensemble_score"] = float(
            single.objective.ensemble_score(member_B, grad=False)[0])
        atoms.info["grs_history"] = history
        members.append(atoms)
        if on_member is not None:
            on_member(members)
    return members
