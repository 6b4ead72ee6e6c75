"""Simulated annealing and random walks over the GRS effective potential.

Both are ASE ``Dynamics``: ``run``, ``irun``, ``attach(fn, interval)``, ``trajectory=``,
``logfile=`` and the context manager work as for ASE's optimizers. One step proposes one
move (chosen with the given probabilities), evaluates it with local descriptor updates
(:class:`~ase_crystalgen.grs.local.LocalGRS`) and accepts it by the Metropolis rule
``min(1, exp(-(E_new - E_old) / T))`` (GRS paper eq. 17 with ``beta = 1 / T``) or, for the
random walk, always. ``E`` is the GRS score plus the core repulsion, in the units of the
score (the calculator's eV).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.optimize.optimize import Dynamics

from .moves import make_moves


def _exponential(step, start, stop, n_steps):
    if n_steps <= 1:
        return stop
    return start * (stop / start) ** (min(step, n_steps - 1) / (n_steps - 1))


def _linear(step, start, stop, n_steps):
    if n_steps <= 1:
        return stop
    return start + (stop - start) * min(step, n_steps - 1) / (n_steps - 1)


def _constant(step, start, stop, n_steps):
    return start


#: temperature schedules ``f(step, start, stop, n_steps) -> T``
SCHEDULES: dict[str, Callable] = {
    "exponential": _exponential,
    "linear": _linear,
    "constant": _constant,
}


def _validate_rng(rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator or an integer seed")
    return rng


class MonteCarlo(Dynamics):
    """Common machinery of :class:`SimulatedAnnealing` and :class:`RandomWalk`.

    Parameters
    ----------
    atoms : the structure; ``atoms.calc`` must be a
        :class:`~ase_crystalgen.calculators.GRSCalculator`. It is updated in place to the
        current state after each step; :attr:`best_atoms` holds a copy of the best.
    moves : ``{"flip": 0.95, "displace": 0.05}``, ``{Flip(bounds=...): 1.0}``, a list of
        ``(move, weight)``, one move or one name. Probabilities are normalised.
    rng : ``numpy.random.Generator`` (or an integer seed).
    tolerance : stop when the score (without core repulsion) is at or below this; a
        negative value never stops early.
    relax : ``None`` or ``{"probability": p, "fmax": ..., "steps": ...}``: with
        probability ``p`` a proposed move is followed by a local FIRE relaxation of the
        positions before the acceptance test (the paper's "local minimisation wrapped by
        the chemical sampling").
    skin : Verlet skin of the local updates (Angstrom).
    """

    def __init__(self, atoms: Atoms, moves="flip", rng=None, tolerance: float = 1e-10,
                 relax: dict | None = None, skin: float = 0.5, logfile=None,
                 trajectory=None, loginterval: int = 1, **kwargs):
        from ..calculators import GRSCalculator

        if not isinstance(atoms.calc, GRSCalculator):
            raise TypeError("attach a GRSCalculator to atoms before annealing (atoms.calc)")
        super().__init__(atoms, logfile=logfile, trajectory=trajectory,
                         loginterval=loginterval, **kwargs)
        self.calc = atoms.calc
        self.potential = atoms.calc.potential
        self.moves, self.probabilities = make_moves(moves)
        self.rng = _validate_rng(rng)
        self.tolerance = float(tolerance)
        self.relax = dict(relax) if relax else None
        self.ev = self.potential.local(atoms, skin=skin)
        self.n_accepted = 0
        self.n_proposed = 0
        self.accepted_by_move = {m.name: 0 for m in self.moves}
        self.proposed_by_move = {m.name: 0 for m in self.moves}
        self.best_score = self.ev.score
        self.best_energy = self.ev.energy
        self.best_step = 0
        self.best_atoms = self._snapshot()
        self.history: list[tuple[int, float, float]] = [(0, self.ev.energy, self.ev.score)]

    # ------------------------------------------------------------------ hooks
    def temperature(self) -> float:  # pragma: no cover - subclasses
        raise NotImplementedError

    def accept_probability(self, delta: float) -> float:
        T = self.temperature()
        if delta <= 0:
            return 1.0
        if T <= 0:  # zero-temperature limit: only downhill moves
            return 0.0
        return float(np.exp(-delta / T))

    # ------------------------------------------------------------------ Dynamics
    @property
    def score(self) -> float:
        return self.ev.score

    def converged(self, *args) -> bool:
        return self.ev.score <= self.tolerance

    def irun(self, steps: int | None = None):
        """Run as a generator, yielding ``converged`` after each step (as ASE's)."""
        steps = self.default_steps() if steps is None else steps
        self.max_steps = self.nsteps + steps
        if self.nsteps == 0:
            self.log()
            self.call_observers()
        is_converged = self.converged()
        yield is_converged
        while not is_converged and self.nsteps < self.max_steps:
            self.step()
            self.nsteps += 1
            self.log()
            self.call_observers()
            is_converged = self.converged()
            yield is_converged

    def run(self, steps: int | None = None) -> bool:
        converged = False
        for converged in self.irun(steps):
            pass
        return converged

    def default_steps(self) -> int:
        return 1000

    def step(self) -> None:
        k = self.rng.choice(len(self.moves), p=self.probabilities)
        move = self.moves[k]
        trial = move.propose(self.ev, self.rng)
        self.proposed_by_move[move.name] += 1
        self.n_proposed += 1
        if trial is None:
            return
        if self.relax and self.rng.random() < self.relax.get("probability", 1.0):
            trial = self._relaxed(trial)
        delta = trial.energy - self.ev.energy
        if self.rng.random() < self.accept_probability(delta):
            self.ev.accept(trial)
            self.n_accepted += 1
            self.accepted_by_move[move.name] += 1
            self._sync_atoms()
            if self.ev.score < self.best_score:
                self.best_score = self.ev.score
                self.best_energy = self.ev.energy
                self.best_step = self.nsteps + 1
                self.best_atoms = self._snapshot()
        self.history.append((self.nsteps + 1, self.ev.energy, self.ev.score))

    def _relaxed(self, trial):
        from ase.optimize import FIRE

        atoms = self.ev.atoms.copy()
        if trial.cell is not None:
            atoms.set_cell(trial.cell)
        atoms.numbers = trial.numbers
        atoms.positions = trial.positions
        atoms.calc = self.calc
        FIRE(atoms, logfile=None, maxstep=self.relax.get("maxstep", 0.1)).run(
            fmax=self.relax.get("fmax", 0.05), steps=self.relax.get("steps", 20))
        return self.ev.propose_structure(atoms)

    def _sync_atoms(self) -> None:
        a = self.atoms
        if not np.array_equal(a.cell.array, self.ev.atoms.cell.array):
            a.set_cell(self.ev.atoms.cell)
        if not np.array_equal(a.numbers, self.ev.atoms.numbers):
            a.numbers = self.ev.atoms.numbers
        a.positions = self.ev.atoms.positions

    def _snapshot(self) -> Atoms:
        out = self.ev.atoms.copy()
        out.info["grs_score"] = self.ev.score
        out.info["grs_energy"] = self.ev.energy
        return out

    def log(self, *args) -> None:
        if self.logfile is None:
            return
        if self.nsteps == 0:
            self.logfile.write(f"{'':12s}{'Step':>8s}{'T':>12s}{'Energy':>14s}{'Score':>14s}"
                               f"{'Best':>14s}{'Accept':>8s}\n")
        T = self.temperature()
        rate = self.n_accepted / max(self.n_proposed, 1)
        self.logfile.write(f"{type(self).__name__[:12]:12s}{self.nsteps:8d}{T:12.4e}"
                           f"{self.ev.energy:14.6e}{self.ev.score:14.6e}"
                           f"{self.best_score:14.6e}{rate:8.3f}\n")

    def todict(self) -> dict:
        return {
            "type": "montecarlo",
            "optimizer": type(self).__name__,
            "moves": {repr(m): float(p) for m, p in zip(self.moves, self.probabilities)},
            "tolerance": self.tolerance,
            "relax": self.relax,
        }


class SimulatedAnnealing(MonteCarlo):
    """Simulated annealing of the GRS score with Metropolis acceptance.

    Parameters
    ----------
    atoms, moves, rng, tolerance, relax, skin : see :class:`MonteCarlo`.
    temperature : ``"auto"`` (default): set from the median energy change of random
        moves at the start (:meth:`auto_temperature`), so that it does not depend on how
        far the start happens to be from the target. Or ``(start, stop)`` in energy
        units, or one number for a constant temperature. With ``relative=True`` numbers
        are multiples of the initial energy ``E0`` (the GRS code uses
        ``beta = (1/Q0) x [1e-2, 1e1, 1e2]``).
    n_steps : length of the schedule (and the default of :meth:`run`).
    schedule : ``"exponential"``, ``"linear"``, ``"constant"`` or a callable
        ``f(step, start, stop, n_steps) -> T``.

    After :meth:`run`: :attr:`best_atoms` (a copy, with ``info["grs_score"]``),
    :attr:`best_score`, :attr:`best_step`, :attr:`history` of ``(step, energy, score)``.

    Examples
    --------
    >>> atoms.calc = GRSCalculator(target=target)                     # doctest: +SKIP
    >>> sa = SimulatedAnnealing(atoms, moves={"swap": 1.0}, rng=np.random.default_rng(0),
    ...                         temperature=(0.1, 1e-3), n_steps=500)  # doctest: +SKIP
    >>> sa.run(); sa.best_score, sa.best_step                         # doctest: +SKIP
    """

    def __init__(self, atoms: Atoms, moves="flip", temperature="auto",
                 n_steps: int = 2000, schedule="exponential", relative: bool = False,
                 rng=None, **kwargs):
        super().__init__(atoms, moves=moves, rng=rng, **kwargs)
        if isinstance(temperature, str):
            if temperature != "auto":
                raise ValueError(f"unknown temperature {temperature!r}: 'auto', a number or "
                                 "(start, stop)")
            start, stop = self.auto_temperature()
        else:
            if np.isscalar(temperature):
                temperature = (float(temperature), float(temperature))
                schedule = "constant" if schedule == "exponential" else schedule
            start, stop = (float(t) for t in temperature)
            if not (np.isfinite(start) and np.isfinite(stop)) or start < 0 or stop < 0:
                raise ValueError("temperatures must be finite and >= 0")
            if relative:
                e0 = abs(self.ev.energy) or 1.0
                start, stop = start * e0, stop * e0
        if isinstance(schedule, str):
            if schedule not in SCHEDULES:
                raise ValueError(f"unknown schedule {schedule!r}; choose from {sorted(SCHEDULES)}"
                                 " or pass a callable")
            if schedule == "exponential" and (start == 0 or stop == 0):
                raise ValueError("an exponential schedule needs start and stop > 0")
            schedule = SCHEDULES[schedule]
        self.schedule, self.t_start, self.t_stop = schedule, start, stop
        self.n_steps = int(n_steps)

    #: ``temperature="auto"``: start and stop as multiples of the median energy change of
    #: random moves from the starting structure
    AUTO_FACTORS = (0.5, 0.01)
    AUTO_SAMPLES = 64

    def auto_temperature(self) -> tuple[float, float]:
        """``(start, stop)`` from the landscape rather than from the luck of the start:
        the median ``|dE|`` of random moves proposed (not accepted) from the starting
        structure, times :attr:`AUTO_FACTORS`. The draws use their own generator, so the
        run's random sequence does not depend on them."""
        rng = np.random.default_rng(int(self.rng.integers(2**63)))
        deltas = []
        for _ in range(self.AUTO_SAMPLES):
            move = self.moves[rng.choice(len(self.moves), p=self.probabilities)]
            trial = move.propose(self.ev, rng)
            if trial is not None:
                d = abs(trial.energy - self.ev.energy)
                if d > 0 and np.isfinite(d):
                    deltas.append(d)
        scale = float(np.median(deltas)) if deltas else (abs(self.ev.energy) or 1.0)
        return self.AUTO_FACTORS[0] * scale, self.AUTO_FACTORS[1] * scale

    def temperature(self) -> float:
        return float(self.schedule(self.nsteps, self.t_start, self.t_stop, self.n_steps))

    def default_steps(self) -> int:
        return self.n_steps

    def todict(self) -> dict:
        d = super().todict()
        d.update(type="simulated-annealing", t_start=self.t_start, t_stop=self.t_stop,
                 n_steps=self.n_steps)
        return d


class RandomWalk(MonteCarlo):
    """Every proposed move is accepted: the baseline the GRS paper compares against
    (and the infinite-temperature limit of :class:`SimulatedAnnealing`). The best
    structure seen is kept."""

    def temperature(self) -> float:
        return float("inf")

    def accept_probability(self, delta: float) -> float:
        return 1.0

    def todict(self) -> dict:
        d = super().todict()
        d["type"] = "random-walk"
        return d
