"""Sets of representative structures that together match a target (GRS eq. 14-16)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms

from .._threads import single_threaded_blas
from ..structures import element_counts
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
    counts = element_counts(structures)
    total = sum(counts.values())
    return {s: c / total for s, c in counts.items()}


def _number_density(structures) -> float:
    periodic = [a for a in structures if a.pbc.all() and a.get_volume() > 0]
    if not periodic:
        raise ValueError("the target has no periodic structure to take a density from: "
                         "pass density= (atoms per cubic Angstrom)")
    return float(np.mean([len(a) / a.get_volume() for a in periodic]))


_UNSET = object()


def _lattice_start(cell: Atoms, composition, rng) -> tuple[Atoms, dict | None]:
    """The starting occupation of a given cell and, for bounded compositions, the flip
    bounds ``{element: (lo, hi)}``."""
    from ..build import random_occupation

    if len(cell) == 0:
        raise ValueError("the cell has no sites")
    if composition is None:
        return cell.copy(), None
    bounded = {e: v for e, v in composition.items() if isinstance(v, (tuple, list))}
    if not bounded:
        try:
            return random_occupation(cell, composition, rng), None
        except ValueError as exc:
            raise ValueError(f"the cell's {len(cell)} sites cannot hold the composition "
                             f"{composition}: {exc}") from None
    if len(bounded) != len(composition):
        raise ValueError("give every element of a bounded composition as (min, max) counts")
    bounds = {}
    for e, (lo, hi) in bounded.items():
        lo, hi = int(lo), int(hi)
        if lo < 0 or hi < lo:
            raise ValueError(f"bounds for {e} must satisfy 0 <= min <= max, got ({lo}, {hi})")
        bounds[e] = (lo, hi)
    if sum(lo for lo, _ in bounds.values()) > len(cell) or sum(
            hi for _, hi in bounds.values()) < len(cell):
        raise ValueError(f"the cell's {len(cell)} sites cannot hold the composition bounds "
                         f"{bounds}")
    # start from counts at the middle of the bounds that fill the cell
    mids = {e: (lo + hi) / 2 for e, (lo, hi) in bounds.items()}
    total = sum(mids.values()) or 1.0
    counts = {e: int(round(len(cell) * m / total)) for e, m in mids.items()}
    counts = {e: min(max(c, bounds[e][0]), bounds[e][1]) for e, c in counts.items()}
    els = list(counts)
    k = 0
    while sum(counts.values()) != len(cell):  # move to the sum within the bounds
        e = els[k % len(els)]
        step = 1 if sum(counts.values()) < len(cell) else -1
        if bounds[e][0] <= counts[e] + step <= bounds[e][1]:
            counts[e] += step
        k += 1
    return random_occupation(cell, {e: c for e, c in counts.items() if c}, rng), bounds


def generate_representative_structures(
    target,
    n_structures: int = 1,
    n_atoms: int | Sequence[int] | None = None,
    *,
    cell: Atoms | None = None,
    descriptor=None,
    candidates: str | Callable | None = None,
    parent: Atoms | None = None,
    composition: dict | str | None = None,
    density: float | None = None,
    weights=_UNSET,
    scale=_UNSET,
    rank_weights=_UNSET,
    smoothing=_UNSET,
    w_inter: float = 1.0,
    w_intra: float = 1.0,
    anneal_steps: int | None = None,
    restarts: int | None = None,
    moves=None,
    relax_steps: int | None = None,
    fmax: float = 1e-3,
    relax_cell: bool = True,
    optimizer: str = "BFGSLineSearch",
    rattle: float = 0.0,
    rng=None,
    progress: bool = False,
    existing: Sequence[Atoms] = (),
    on_member: Callable | None = None,
) -> list[Atoms]:
    """Generalized representative structures: ``n_structures`` cells that together
    reproduce the descriptor distribution of ``target`` (GRS eq. 13-16).

    The one call of the package, like icet's ``generate_sqs``: on a lattice it makes SQS
    and orderings; off the lattice, representative cells of liquids, thermal snapshots
    or data sets.

    * **On a lattice** (``cell=`` or ``candidates="lattice"``): the sites of the cell
      (given, or a random Hermite-normal-form supercell of ``parent``) are occupied at
      random with ``composition`` and annealed with swaps (composition kept) or, for a
      composition given as bounds ``{"Au": (6, 10), "Cu": (22, 26)}``, with flips inside
      the bounds. Atoms stay on their sites unless ``relax_steps`` asks for a
      relaxation afterwards.
    * **Off the lattice** (default): each member starts from a random dense packing at
      the target's density (or ``candidates(n_atoms, rng)``), is optionally annealed,
      then relaxed (positions and, with ``relax_cell``, the cell).

    Members are built one after the other; each minimises
    ``w_inter Q(member) + w_intra Q(member + earlier members)`` plus the core repulsion.

    Parameters
    ----------
    target : Atoms, list of Atoms, a file (all frames) or a
        :class:`~ase_crystalgen.grs.DescriptorTarget` (then give ``descriptor``, and
        ``composition`` / ``density`` where the search needs them).
    n_structures : number of members.
    n_atoms : atoms per member (one number, or one per member); taken from ``cell``.
    cell : a cell whose sites are searched (lattice mode).
    descriptor : an ``ACEDescriptor`` (default: the paper's basis over the elements).
    candidates : ``"packing"`` (default without ``cell``), ``"lattice"`` (random HNF
        supercells of ``parent``), or a callable ``f(n_atoms, rng) -> Atoms``.
    parent : parent lattice for ``"lattice"`` candidates.
    composition : counts, fractions or a formula of the members (default: the
        target's; on a given ``cell`` without a composition, its own occupation is the
        start and swaps keep it), or ``{element: (min, max)}`` count bounds for flips.
    density : atoms per cubic Angstrom of packings (default: the target's).
    weights, scale, rank_weights, smoothing : the potential, as for
        :class:`~ase_crystalgen.calculators.GRSCalculator` (same defaults).
    w_inter, w_intra : weights of the member's own term and of the joint term.
    anneal_steps : simulated-annealing steps per member (default 2000 on a lattice,
        0 off it); the temperature is set automatically.
    restarts : independent anneals per member, each from a new random start; the one of
        lowest energy is kept (default 2 on a lattice, 1 off it). On a lattice the
        landscape has funnels that one anneal finds only some of the time, and a second
        anneal helps more than a longer one (docs/grs-search.md, "Funnels").
    moves : annealing moves (default: swaps on a lattice, or flips inside the bounds;
        ``{"swap": 0.5, "displace": 0.5}`` off it).
    relax_steps, fmax, relax_cell, optimizer : the relaxation after annealing (default
        200 steps off the lattice, none on it). ``optimizer`` is an ``ase.optimize``
        class or its name.
    rattle : Gaussian displacement (A) of lattice candidates before relaxation.
    rng : ``numpy.random.Generator`` or seed.
    progress : show a tqdm bar.
    existing : members made earlier (e.g. read back after an interruption); they count
        towards ``n_structures`` and form the context of the joint term.
    on_member : called as ``on_member(members)`` after each new member.

    Returns
    -------
    The members; each ``atoms.info`` holds ``grs_score`` (its own inter score),
    ``grs_ensemble_score`` (the joint score of the set up to and including it),
    ``grs_index`` and ``grs_history`` (effective energy along annealing and relaxation).

    Examples
    --------
    >>> from ase.build import bulk
    >>> big = bulk("Cu", "fcc", a=3.73, cubic=True).repeat(8)           # doctest: +SKIP
    >>> big.numbers[np.random.default_rng(0).permutation(len(big))[:512]] = 79
    >>> sqs = generate_representative_structures(big, cell=bulk("Cu", "fcc", a=3.73,
    ...     cubic=True).repeat(2), composition={"Au": 8, "Cu": 24}, rng=0)[0]
    """
    from ..build import random_lattice_candidate, random_packing
    from ..calculators import GRSCalculator
    from ..descriptors import ACEDescriptor
    from ..grs.objective import DescriptorTarget, GRSObjective
    from ..grs.potential import DEFAULTS

    rng = _validate_rng(rng)
    params = {k: DEFAULTS[k] if v is _UNSET else v for k, v in (
        ("weights", weights), ("scale", scale), ("rank_weights", rank_weights),
        ("smoothing", smoothing))}
    w = params["weights"]
    wvals = list(w.values()) if isinstance(w, dict) else list(np.atleast_1d(w))
    if any(not np.isfinite(float(v)) or float(v) < 0 for v in wvals):
        raise ValueError(f"weights must be finite and >= 0 for representative structures, got "
                         f"{w} (negative weights, reverse GRS, are GRSCalculator's)")
    if n_structures < 1:
        raise ValueError("n_structures must be >= 1")
    lattice = cell is not None or candidates == "lattice"
    if restarts is None:
        restarts = 2 if lattice else 1
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be a whole number >= 1, got {restarts}")
    if cell is not None and candidates not in (None, "lattice"):
        raise ValueError("give either cell= or candidates=, not both")
    if candidates is None:
        candidates = "lattice" if lattice else "packing"
    if isinstance(target, DescriptorTarget):
        structures = None
        if descriptor is None:
            raise ValueError("a DescriptorTarget needs the descriptor it was made with "
                             "(descriptor=)")
        target_composition = None
    else:
        structures = _target_structures(target)
        if not any(len(a) for a in structures):
            raise ValueError("the target structure has no atoms")
        target_composition = _composition(structures)
    if cell is not None:
        if len(cell) == 0:
            raise ValueError("the cell has no sites")
        if n_atoms is not None and int(n_atoms) != len(cell):
            raise ValueError(f"n_atoms={n_atoms} but the cell has {len(cell)} sites")
        n_atoms = len(cell)
    if n_atoms is None:
        raise ValueError("give n_atoms (or a cell= whose sites are searched)")
    sizes = [int(n_atoms)] * n_structures if np.isscalar(n_atoms) else [int(n) for n in n_atoms]
    if len(sizes) != n_structures or min(sizes) < 1:
        raise ValueError("n_atoms must be a positive number or one per structure")
    if composition is None and cell is None:
        if target_composition is None:
            raise ValueError("a DescriptorTarget holds no composition: pass composition=")
        composition = target_composition
    member_elements = set()
    if isinstance(composition, dict):
        member_elements = {e for e, v in composition.items()
                           if (max(v) if isinstance(v, (tuple, list)) else v) > 0}
    elif isinstance(composition, str):
        from ..build import composition_counts

        member_elements = set(composition_counts(composition))
    if cell is not None and composition is None:
        member_elements = set(cell.get_chemical_symbols())
    if target_composition is not None:
        absent = sorted(set(target_composition) - member_elements)
        if absent:
            raise ValueError(f"the target contains {', '.join(absent)}, which the members' "
                             "composition lacks: they could never match it")
        extra = sorted(member_elements - set(target_composition))
        if extra:
            raise ValueError(f"the members would contain {', '.join(extra)}, absent from the "
                             f"target ({', '.join(target_composition)}): nothing to match")
    if descriptor is None:
        descriptor = ACEDescriptor(list(target_composition))
    missing = sorted(member_elements - set(descriptor.elements))
    if missing:
        raise ValueError(f"the members would contain {', '.join(missing)}, which the "
                         f"descriptor does not know ({descriptor.elements})")
    if candidates == "packing" and density is None:
        if structures is None:
            raise ValueError("a DescriptorTarget holds no density: pass density= "
                             "(atoms per cubic Angstrom) or a cell=")
        density = _number_density(structures)
    if candidates == "lattice" and cell is None and parent is None:
        raise ValueError("candidates='lattice' needs a parent lattice (parent=Atoms) or cell=")
    if anneal_steps is None:
        anneal_steps = 2000 if lattice else 0
    if relax_steps is None:
        relax_steps = 0 if lattice else 200

    bounds = None

    def make_candidate(n):
        nonlocal bounds
        if cell is not None:
            atoms, bounds = _lattice_start(cell, composition, rng)
            return atoms
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
    calc = GRSCalculator(target if structures is None else structures, descriptor=descriptor,
                         w_inter=w_inter, w_intra=w_intra, **params)
    # the member's own score (eq. 13) and the joint score of the set (eq. 14)
    single = GRSObjective(calc.target, weights=params["weights"], smoothing=params["smoothing"],
                          rank_weights=params["rank_weights"])
    members: list[Atoms] = [a.copy() for a in existing]
    member_B: list[np.ndarray] = [descriptor.compute(a) for a in members]
    if len(members) > n_structures:
        raise ValueError(f"{len(members)} existing members but n_structures={n_structures}")
    it = range(len(members), n_structures)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="representative structures", unit="structure")
    for k in it:
        calc.set_context(member_B)
        best = None
        for _ in range(int(restarts) if anneal_steps > 0 else 1):
            atoms = make_candidate(sizes[k])
            atoms.calc = calc
            history = [calc.get_potential_energy(atoms)]
            energy = history[0]
            if anneal_steps > 0:
                from .moves import Flip

                if moves is not None:
                    mv = moves
                elif lattice:
                    mv = Flip(bounds=bounds) if bounds else "swap"
                else:
                    mv = {"swap": 0.5, "displace": 0.5}
                sa = SimulatedAnnealing(atoms, moves=mv, rng=rng, n_steps=anneal_steps)
                sa.attach(lambda h=history, s=sa: h.append(float(s.ev.energy)), interval=10)
                sa.run()
                atoms, energy = sa.best_atoms.copy(), float(sa.best_energy)
            if best is None or energy < best[1]:
                best = (atoms, energy, history)
        atoms, _, history = best
        atoms.calc = calc
        if relax_steps > 0:
            import warnings

            from ase.filters import FrechetCellFilter

            if rattle > 0 and cell is not None:
                atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
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
        atoms.info["grs_score"] = float(single.score(B))
        atoms.info["grs_ensemble_score"] = float(single.ensemble_score(member_B, grad=False)[0])
        atoms.info["grs_history"] = history
        members.append(atoms)
        if on_member is not None:
            on_member(members)
    return members
