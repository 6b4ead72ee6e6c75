"""Relax structures with any ASE calculator, recording what happened in ``atoms.info``.

:func:`relax` is the batch call (one calculator, a progress bar); :func:`relax_one` the
per-structure call that a distributed screen sends to worker processes with a calculator *spec*
(a name such as ``"chgnet"`` or a picklable factory) that each process resolves once through the
cache of :func:`~ase_crystalgen.relaxation.calculators.get_calculator`.

A failure never stops a batch: a structure whose atoms overlap, whose cell or positions are not
finite, whose calculator raises, or whose energy or forces turn NaN, comes back as an unrelaxed
copy of the input with ``info["relax_error"]`` saying why and ``info["converged"] = False``.

Relaxations are deterministic and leave numpy's global random state as they found it: ASE's
cell filter takes matrix logarithms with :func:`scipy.linalg.logm`, whose norm estimate draws
random vectors from that global state, so each relaxation runs with it seeded to a fixed value
and puts the caller's state back afterwards (:func:`_fixed_global_random_state`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS, BFGSLineSearch
from ase.optimize.optimize import Optimizer

from .._atomic import atomic_path
from .._threads import single_threaded_blas
from ..structures import check_structure
from .calculators import CalculatorSpec, calculator_name, get_calculator
from .store import RelaxationStore

#: Optimisers accepted by name; any ``ase.optimize.optimize.Optimizer`` subclass works too.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "FIRE": FIRE,
    "BFGS": BFGS,
    "LBFGS": LBFGS,
    "BFGSLineSearch": BFGSLineSearch,
}

#: The ``atoms.info`` keys :func:`relax_one` writes (stale ones from an earlier run are removed).
RELAX_INFO_KEYS = (
    "energy_per_atom",
    "fmax",
    "converged",
    "relax_steps",
    "calculator",
    "spacegroup_relaxed",
    "spacegroup_symbol_relaxed",
    "volume_change",
    "relax_error",
)

#: Default shortest allowed interatomic distance (Å): closer atoms mean a broken structure, on
#: which a machine-learned potential returns nonsense rather than an error.
MIN_DISTANCE = 0.5

__all__ = ["MIN_DISTANCE", "OPTIMIZERS", "RELAX_INFO_KEYS", "relax", "relax_one"]


class _RelaxFailure(Exception):
    """A relaxation went wrong in a way that the calculator did not report by raising."""


def relax(
    structures: Atoms | Iterable[Atoms],
    calculator: CalculatorSpec = "chgnet",
    *,
    fmax: float = 0.05,
    steps: int = 500,
    cell_filter: bool = True,
    optimizer: str | type[Optimizer] = "FIRE",
    symprec: float = 0.1,
    fix_symmetry: bool = False,
    max_force: float | None = None,
    min_distance: float = MIN_DISTANCE,
    device: str = "cpu",
    progress: bool = True,
    trajectory_dir: str | os.PathLike | None = None,
    store: str | os.PathLike | RelaxationStore | None = None,
    keys: Sequence[str] | None = None,
    record: dict | None = None,
    desc: str | None = None,
) -> Atoms | list[Atoms]:
    """Relax structures (positions, and the cell unless ``cell_filter=False``) with one calculator.

    Parameters
    ----------
    structures : Atoms or iterable of Atoms
        The inputs, never modified: each is copied first.
    calculator : ASE calculator, zero-argument factory or name
        See :func:`~ase_crystalgen.relaxation.calculators.get_calculator`: ``"chgnet"``,
        ``"m3gnet"``, ``"m3gnet:PATH"``, ``"emt"``, or e.g. ``ase.calculators.vasp.Vasp(...)``.
        Resolved once; the same object relaxes every structure.
    fmax : float
        Convergence threshold (eV/Å) on the largest force and, with the cell filter, on the rows
        of the stress tensor times the volume per atom (``FrechetCellFilter``'s generalised
        cell force, in eV).
    steps : int
        Most optimiser steps per structure.
    cell_filter : bool
        Relax the cell too, with ``ase.filters.FrechetCellFilter``. Off for molecules in a box.
    optimizer : {"FIRE", "BFGS", "LBFGS", "BFGSLineSearch"} or Optimizer subclass
        The ASE optimiser.
    symprec : float
        spglib tolerance (Å) of the space group recorded after relaxation, and of
        ``FixSymmetry`` when ``fix_symmetry``.
    fix_symmetry : bool
        Keep the starting space group (``ase.constraints.FixSymmetry``) during the relaxation.
        A cell step too long for ``FixSymmetry`` to symmetrise is taken again with half the
        optimiser's ``maxstep`` (up to four times; then the result is not converged).
    max_force : float, optional
        Treat a relaxation as failed when any atom feels a force above this (eV/Å) at any step:
        a machine-learned potential far outside its training data tends to blow structures up.
    min_distance : float
        Structures with two atoms closer than this (Å, periodic images included) are not relaxed,
        and a relaxation that ends with atoms this close is a failure.
    device : str
        Torch device for the named machine-learned potentials.
    progress : bool
        Show a tqdm progress bar over the structures.
    trajectory_dir : path, optional
        Write the trajectory of structure ``i`` to ``trajectory_dir/{i:06d}.traj``.
    store : path or RelaxationStore, optional
        Keep each finished relaxation in this :class:`~.store.RelaxationStore` (an ASE SQLite
        database, one committed row per structure) and take the ones already there from it: an
        interrupted call, repeated, relaxes only what was left and returns what an uninterrupted
        call returns. A path makes a store that records the settings above (calculator
        included) and ``record``, and refuses to resume with others; a store object is used
        as it was made. A stored result of another input structure raises ``RunMismatch``.
    keys : sequence of str, optional
        The structures' names in the store (default ``"0"``, ``"1"``, ...).
    record : dict, optional
        More settings to record beside those above in a new store made from a path (e.g. how
        the inputs were made), compared when resuming; its keys must differ from theirs.
    desc : str, optional
        Label of the progress bar (default ``"relax (NAME)"``).

    Returns
    -------
    Atoms or list of Atoms
        One result per input (one Atoms when one Atoms was given), each carrying a
        ``SinglePointCalculator`` with the final energy, forces and stress, so
        ``get_potential_energy()`` works after pickling or a round trip through extxyz or an ASE
        database, and the ``info`` keys described in :func:`relax_one`.

    Raises
    ------
    ValueError
        For invalid settings (these stop the batch; problems of one structure do not).
    RunMismatch
        When ``store`` holds relaxations made with other settings or of other inputs.
    """
    single = isinstance(structures, Atoms)
    items = [structures] if single else list(structures)
    keys = [str(i) for i in range(len(items))] if keys is None else [str(k) for k in keys]
    if len(keys) != len(items) or len(set(keys)) != len(keys):
        raise ValueError(f"keys must name each of the {len(items)} structures once, got {len(keys)} keys")
    settings = dict(
        fmax=fmax,
        steps=steps,
        cell_filter=cell_filter,
        optimizer=optimizer,
        symprec=symprec,
        fix_symmetry=fix_symmetry,
        max_force=max_force,
        min_distance=min_distance,
    )
    _validate_settings(**settings)
    calc = get_calculator(calculator, device)
    label = calculator_name(calculator, calc)
    if store is not None and not isinstance(store, RelaxationStore):
        recorded = {**settings, "calculator": label}
        clash = sorted(set(record or {}) & set(recorded))
        if clash:
            raise ValueError(f"record repeats relaxation settings {', '.join(clash)}: give them other names")
        recorded.update(record or {})
        if not isinstance(optimizer, str):
            recorded["optimizer"] = f"{optimizer.__module__}.{optimizer.__qualname__}"
        store = RelaxationStore(store, recorded)

    from tqdm.auto import tqdm

    results = []
    counts = {"unconverged": 0, "failed": 0}
    bar = tqdm(total=len(items), desc=desc or f"relax ({label})", unit="structure", disable=not progress)
    try:
        for i, (key, atoms) in enumerate(zip(keys, items)):
            result = store.get(key, atoms) if store is not None else None
            if result is None:
                trajectory = None if trajectory_dir is None else Path(trajectory_dir) / f"{i:06d}.traj"
                result = relax_one(atoms, calc, label=label, trajectory=trajectory, **settings)
                if store is not None:
                    store.put(key, atoms, result)
            results.append(result)
            if "relax_error" in result.info:
                counts["failed"] += 1
            elif not result.info.get("converged"):
                counts["unconverged"] += 1
            bar.set_postfix(counts, refresh=False)
            bar.update(1)
    finally:
        bar.close()
    return results[0] if single else results


def relax_one(
    atoms: Atoms,
    calculator: CalculatorSpec = "chgnet",
    *,
    fmax: float = 0.05,
    steps: int = 500,
    cell_filter: bool = True,
    optimizer: str | type[Optimizer] = "FIRE",
    symprec: float = 0.1,
    fix_symmetry: bool = False,
    max_force: float | None = None,
    min_distance: float = MIN_DISTANCE,
    device: str = "cpu",
    label: str | None = None,
    trajectory: str | os.PathLike | None = None,
) -> Atoms:
    """Relax one structure; the parameters are those of :func:`relax`.

    ``calculator`` may be a spec (a name or a factory), resolved through the per-process cache,
    which is how worker processes of a distributed screen use it. ``label`` overrides the
    recorded calculator name, and ``trajectory`` is a file for the optimiser's trajectory
    (written atomically, also when the relaxation fails).

    Returns
    -------
    Atoms
        A copy of ``atoms``, relaxed, whose ``info`` gains

        - ``energy_per_atom``: final potential energy / number of atoms (eV); the total energy is
          ``get_potential_energy()`` of the attached ``SinglePointCalculator``;
        - ``fmax``: largest final force on an atom (eV/Å, after the input's own constraints);
        - ``converged``: whether the optimiser met ``fmax`` (on forces and, with the cell filter,
          stress) within ``steps``;
        - ``relax_steps``: optimiser steps taken;
        - ``calculator``: the calculator's name;
        - ``spacegroup_relaxed`` and ``spacegroup_symbol_relaxed``: spglib's space group at
          ``symprec`` (absent when spglib finds none);
        - ``volume_change``: relative change of the cell volume (periodic structures only).

        On failure (the input's problems, or atoms closer than ``min_distance`` after the
        relaxation) it is the unrelaxed copy with ``relax_error`` (a message naming the problem),
        ``converged = False`` and ``calculator``, and no calculator attached.
    """
    _validate_settings(
        fmax=fmax,
        steps=steps,
        cell_filter=cell_filter,
        optimizer=optimizer,
        symprec=symprec,
        fix_symmetry=fix_symmetry,
        max_force=max_force,
        min_distance=min_distance,
    )
    if not isinstance(atoms, Atoms):
        raise TypeError(f"relax_one needs an ase.Atoms, got {type(atoms).__name__}")
    calc = get_calculator(calculator, device)
    label = label if label is not None else calculator_name(calculator, calc)

    start = atoms.copy()  # drops the input's calculator; kept unrelaxed for failures
    for key in RELAX_INFO_KEYS:
        start.info.pop(key, None)
    start.info["calculator"] = label

    problem = check_structure(start, min_distance)
    if problem is not None:
        return _failed(start, problem)

    work = start.copy()
    # ASE's cell filters do 3x3 matrix functions every step, ten times slower with BLAS threads
    # on a busy machine; torch keeps its own threads
    with (
        single_threaded_blas(),
        _fixed_global_random_state(),
        _trajectory_file(trajectory, start) as traj_path,
    ):
        try:
            n_steps, converged = _optimise(
                work, calc, fmax, steps, cell_filter, optimizer, symprec, fix_symmetry, max_force, traj_path
            )
            results = _final_results(work)
        except _RelaxFailure as exc:
            return _failed(start, str(exc))
        except Exception as exc:  # a batch outlives any one calculator error
            return _failed(start, f"relaxation with {label} raised {type(exc).__name__}: {exc}")
    # a potential with a spurious attractive hole can pull atoms together; its energy is then
    # meaningless, however low
    problem = check_structure(work, min_distance)
    if problem is not None:
        return _failed(start, f"after relaxation: {problem}")

    work.calc = SinglePointCalculator(work, **results)
    info = work.info
    n = len(work)
    info["energy_per_atom"] = float(results["energy"]) / n
    info["fmax"] = float(np.linalg.norm(work.get_forces(), axis=1).max())
    info["converged"] = bool(converged)
    info["relax_steps"] = int(n_steps)
    _record_spacegroup(work, symprec)
    if work.pbc.all():
        v0 = start.get_volume()
        info["volume_change"] = float(work.get_volume() / v0 - 1.0)
    return work


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _validate_settings(
    *,
    fmax: float,
    steps: int,
    cell_filter: bool,
    optimizer: str | type[Optimizer],
    symprec: float,
    fix_symmetry: bool,
    max_force: float | None,
    min_distance: float,
) -> None:
    if not (np.isfinite(fmax) and fmax > 0):
        raise ValueError(f"fmax must be a positive number, got {fmax}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps}")
    if not symprec > 0:
        raise ValueError(f"symprec must be positive, got {symprec}")
    if max_force is not None and not max_force > 0:
        raise ValueError(f"max_force must be positive or None, got {max_force}")
    if not min_distance >= 0:
        raise ValueError(f"min_distance must be non-negative, got {min_distance}")
    _optimizer_class(optimizer)


def _optimizer_class(optimizer: str | type[Optimizer]) -> type[Optimizer]:
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]
    raise ValueError(
        f"unknown optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)} or an ase Optimizer subclass"
    )


def _failed(atoms: Atoms, message: str) -> Atoms:
    atoms.info["relax_error"] = message
    atoms.info["converged"] = False
    return atoms


@contextlib.contextmanager
def _trajectory_file(trajectory: str | os.PathLike | None, start: Atoms) -> Iterator[Path | None]:
    if trajectory is None:
        yield None
        return
    with atomic_path(trajectory) as tmp:
        yield tmp
        if not tmp.exists():
            # the calculator failed before the first frame: keep the start for the post-mortem
            import ase.io

            ase.io.write(tmp, start, format="traj")


@contextlib.contextmanager
def _fixed_global_random_state(seed: int = 0) -> Iterator[None]:
    """Seed numpy's global random state for the block, then give the caller's state back.

    :func:`scipy.linalg.logm`, which ASE's cell filters call at every step, chooses its
    algorithm with a randomised norm estimate drawn from the global state: without this, every
    relaxation would advance the caller's random stream and its last bits would depend on it.
    Not thread-safe: threads relaxing at the same time share the one global state.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


class _CachedFrechetCellFilter(FrechetCellFilter):
    """``FrechetCellFilter`` that remembers its last positions and forces.

    ASE's optimisers ask the filter for forces and positions several times per step; each call
    takes a matrix logarithm and, for the forces, nine Frechet derivatives of the exponential,
    which for small cells with a cheap potential cost more than the potential itself.
    """

    def __init__(self, atoms: Atoms) -> None:
        super().__init__(atoms)
        self._cache: dict[str, tuple[bytes, np.ndarray]] = {}

    def _cached(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        key = self.atoms.positions.tobytes() + self.atoms.cell.array.tobytes()
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = (key, compute())
            self._cache[name] = hit
        return hit[1].copy()

    def get_positions(self, *args, **kwargs) -> np.ndarray:
        if args or kwargs:
            return super().get_positions(*args, **kwargs)
        return self._cached("positions", super().get_positions)

    def get_forces(self, *args, **kwargs) -> np.ndarray:
        if args or kwargs:
            return super().get_forces(*args, **kwargs)
        return self._cached("forces", super().get_forces)


def _optimise(
    atoms: Atoms,
    calc: BaseCalculator,
    fmax: float,
    steps: int,
    cell_filter: bool,
    optimizer: str | type[Optimizer],
    symprec: float,
    fix_symmetry: bool,
    max_force: float | None,
    trajectory: Path | None,
) -> tuple[int, bool]:
    """Run the optimiser in place; returns (steps taken, converged).

    Under ``fix_symmetry`` a long step on a small or sheared cell can ask for a deformation
    that ``FixSymmetry`` refuses to symmetrise. The refused step leaves the atoms untouched, so
    the optimiser starts again from there with half the largest step; after four halvings the
    relaxation stops, not converged.
    """
    own_constraints = list(atoms.constraints)
    if fix_symmetry:
        from ase.constraints import FixSymmetry

        atoms.set_constraint([*own_constraints, FixSymmetry(atoms, symprec=symprec)])
    atoms.calc = calc
    target = _CachedFrechetCellFilter(atoms) if cell_filter else atoms
    optimizer_class = _optimizer_class(optimizer)
    n_steps, converged, halvings, shorter = 0, False, 0, {}
    try:
        with warnings.catch_warnings():
            # FixSymmetry warns about cell steps above 0.15 and refuses those above 0.25; the
            # refusal is handled below
            warnings.filterwarnings("ignore", message="FixSymmetry adjust_cell may be ill behaved")
            while True:
                traj = None if trajectory is None else str(trajectory)
                with optimizer_class(
                    target, logfile=None, trajectory=traj, append_trajectory=halvings > 0, **shorter
                ) as opt:
                    try:
                        converged = _run(opt, atoms, fmax, steps - n_steps, max_force)
                    except RuntimeError as exc:
                        if not (fix_symmetry and "large deformation gradient" in str(exc)):
                            raise
                        if halvings == 4 or not hasattr(opt, "maxstep") or n_steps + opt.nsteps >= steps:
                            break
                        halvings += 1
                        shorter = {"maxstep": opt.maxstep / 2}
                        continue
                    finally:
                        n_steps += opt.nsteps
                break
    finally:
        if fix_symmetry:
            atoms.set_constraint(own_constraints)
    return n_steps, bool(converged)


def _run(opt: Optimizer, atoms: Atoms, fmax: float, steps: int, max_force: float | None) -> bool:
    """``opt.irun`` with a check of the forces at every step; returns converged."""
    converged = False
    for converged in opt.irun(fmax=fmax, steps=steps):
        # the optimiser has just evaluated these, so reading them costs nothing
        forces = atoms.get_forces()
        if not np.isfinite(forces).all():
            raise _RelaxFailure(f"non-finite forces (NaN or inf) at step {opt.nsteps}")
        if max_force is not None:
            worst = float(np.linalg.norm(forces, axis=1).max())
            if worst > max_force:
                raise _RelaxFailure(
                    f"max force {worst:.3g} eV/Å exceeds max_force={max_force:g} eV/Å at step {opt.nsteps}"
                )
    return bool(converged)


def _final_results(atoms: Atoms) -> dict:
    """Energy, forces and (periodic cells) stress of the relaxed structure; all finite."""
    energy = float(atoms.get_potential_energy())
    forces = np.array(atoms.get_forces(apply_constraint=False), dtype=float)
    results: dict = {"energy": energy, "forces": forces}
    if atoms.pbc.all():
        with contextlib.suppress(PropertyNotImplementedError):
            results["stress"] = np.array(atoms.get_stress(voigt=True, apply_constraint=False), dtype=float)
    calc_results = getattr(atoms.calc, "results", {})
    if "free_energy" in calc_results:
        results["free_energy"] = float(calc_results["free_energy"])
    if "magmoms" in calc_results:
        results["magmoms"] = np.array(calc_results["magmoms"], dtype=float).reshape(-1)
    for key, value in results.items():
        if not np.isfinite(value).all():
            raise _RelaxFailure(f"non-finite {key} (NaN or inf) after relaxation")
    return results


def _record_spacegroup(atoms: Atoms, symprec: float) -> None:
    from ..representation.spacegroups import get_spacegroup

    try:
        number = get_spacegroup(atoms, symprec=symprec)
    except ValueError:
        return
    atoms.info["spacegroup_relaxed"] = number
    atoms.info["spacegroup_symbol_relaxed"] = _spacegroup_symbol(number)


def _spacegroup_symbol(number: int) -> str:
    import spglib

    from ..representation.spacegroups import _quiet_spglib, default_hall_numbers

    with _quiet_spglib():
        return str(spglib.get_spacegroup_type(int(default_hall_numbers()[number - 1])).international_short)
