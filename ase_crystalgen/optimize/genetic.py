"""A genetic algorithm over the GRS score, with the GRS paper's operators.

Operators follow the ``ase-ga`` contract (``OffspringCreator.get_new_individual(parents)
-> (atoms | None, description)``), so ase-ga's own mutations (``RattleMutation``,
``StrainMutation``, ...) can be mixed in. The two crossovers are the paper's
(section III.2): a slice of one parent spliced into the other's cell with overlaps
removed, and chemistry mixing on one parent's positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from ase.optimize.optimize import Dynamics
from ase_ga.offspring_creator import OffspringCreator

from .montecarlo import _validate_rng


def _random_state(rng: np.random.Generator) -> np.random.RandomState:
    # ase-ga operators want the legacy RandomState API
    return np.random.RandomState(int(rng.integers(2**32 - 1)))


class _Operator(OffspringCreator):
    """An ase-ga operator drawing from a ``numpy.random.Generator``."""

    def __init__(self, rng=None, n_inputs=1):
        super().__init__(rng=None)
        self.generator = _validate_rng(rng)
        self.min_inputs = n_inputs
        self.descriptor = type(self).__name__

    def _child(self, parent: Atoms, atoms: Atoms, parents) -> Atoms:
        child = self.initialize_individual(parent, atoms)
        child.info["data"]["parents"] = [p.info.get("confid") for p in parents]
        return self.finalize_individual(child)


class SliceCrossover(_Operator):
    """Atoms of parent A on one side of a random plane plus atoms of parent B on the
    other side, in A's cell (fractional coordinates are kept); where two atoms come
    closer than ``overlap`` times the sum of their covalent radii, B's atom is removed.
    On a shared parent lattice this is a site-wise cross over a plane."""

    def __init__(self, overlap: float = 0.5, rng=None):
        super().__init__(rng, n_inputs=2)
        self.overlap = float(overlap)

    def get_new_individual(self, parents):
        a, b = parents[0], parents[1]
        normal = self.generator.normal(size=3)
        normal /= np.linalg.norm(normal)
        offset = self.generator.uniform()
        fa = a.get_scaled_positions() @ normal % 1.0
        fb = b.get_scaled_positions() @ normal % 1.0
        keep_a = fa < offset
        keep_b = fb >= offset
        child = a[keep_a].copy()
        part = b[keep_b].copy()
        part.set_cell(a.cell, scale_atoms=True)
        child.extend(part)
        child = _remove_overlaps(child, np.arange(keep_a.sum(), len(child)), self.overlap)
        if len(child) == 0:
            return None, "slice crossover: empty child"
        return self._child(a, child, parents), f"slice crossover: {keep_a.sum()} from A"


class ChemistryMixing(_Operator):
    """Positions and cell of parent A; each site takes the element of A or, with
    probability ``p_b``, of the nearest site of B (in fractional coordinates)."""

    def __init__(self, p_b: float = 0.5, rng=None):
        super().__init__(rng, n_inputs=2)
        self.p_b = float(p_b)

    def get_new_individual(self, parents):
        a, b = parents[0], parents[1]
        fa, fb = a.get_scaled_positions(), b.get_scaled_positions()
        d = fa[:, None, :] - fb[None, :, :]
        d -= np.round(d)
        nearest = np.argmin(np.einsum("ijk,ijk->ij", d, d), axis=1)
        take = self.generator.random(len(a)) < self.p_b
        child = a.copy()
        child.numbers[take] = b.numbers[nearest[take]]
        return self._child(a, child, parents), f"chemistry mixing: {take.sum()} sites from B"


class FlipMutation(_Operator):
    """Change the element of ``n_sites`` random atoms to another of ``elements``."""

    def __init__(self, elements: Sequence[str], n_sites: int = 1, rng=None):
        super().__init__(rng)
        self.Z = np.array([atomic_numbers[e] for e in elements])
        self.n_sites = int(n_sites)

    def get_new_individual(self, parents):
        child = parents[0].copy()
        idx = self.generator.choice(len(child), min(self.n_sites, len(child)), replace=False)
        for k in idx:
            child.numbers[k] = self.generator.choice(self.Z[self.Z != child.numbers[k]])
        return self._child(parents[0], child, parents), f"flip {len(idx)}"


class SwapMutation(_Operator):
    """Exchange the elements of ``n_swaps`` pairs of atoms of different species."""

    def __init__(self, n_swaps: int = 1, rng=None):
        super().__init__(rng)
        self.n_swaps = int(n_swaps)

    def get_new_individual(self, parents):
        child = parents[0].copy()
        z = child.numbers
        if len(np.unique(z)) < 2:
            return None, "swap: one species only"
        for _ in range(self.n_swaps):
            i = self.generator.integers(len(z))
            j = self.generator.choice(np.flatnonzero(z != z[i]))
            z[i], z[j] = z[j], z[i]
        child.numbers = z
        return self._child(parents[0], child, parents), f"swap {self.n_swaps}"


class RattleMutation(_Operator):
    """Gaussian displacement of a fraction of the atoms (``stddev`` in Angstrom)."""

    def __init__(self, stddev: float = 0.1, fraction: float = 0.3, rng=None):
        super().__init__(rng)
        self.stddev, self.fraction = float(stddev), float(fraction)

    def get_new_individual(self, parents):
        child = parents[0].copy()
        sel = self.generator.random(len(child)) < self.fraction
        child.positions[sel] += self.generator.normal(scale=self.stddev, size=(sel.sum(), 3))
        return self._child(parents[0], child, parents), f"rattle {sel.sum()}"


class StrainMutation(_Operator):
    """Random symmetric strain of the cell (entries of width ``stddev``)."""

    def __init__(self, stddev: float = 0.03, rng=None):
        super().__init__(rng)
        self.stddev = float(stddev)

    def get_new_individual(self, parents):
        child = parents[0].copy()
        e = self.generator.normal(scale=self.stddev, size=(3, 3))
        child.set_cell(child.cell.array @ (np.eye(3) + 0.5 * (e + e.T)).T, scale_atoms=True)
        return self._child(parents[0], child, parents), "strain"


def _remove_overlaps(atoms: Atoms, removable: np.ndarray, factor: float) -> Atoms:
    """Drop atoms among ``removable`` that sit closer than ``factor`` times the sum of
    covalent radii to an atom kept before them."""
    if len(atoms) < 2:
        return atoms
    D = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    r = covalent_radii[atoms.numbers]
    limit = factor * (r[:, None] + r[None, :])
    removable = set(int(k) for k in removable)
    keep = np.ones(len(atoms), bool)
    for k in range(len(atoms)):
        if k in removable and np.any((D[k] < limit[k]) & keep & (np.arange(len(atoms)) != k)):
            keep[k] = False
    return atoms[keep]


class GeneticAlgorithm(Dynamics):
    """Steady-generation genetic algorithm with the GRS score as fitness, as an ASE
    ``Dynamics``: one generation is one step (``run(steps)``, ``irun``,
    ``attach(fn, interval)``, ``logfile=``, ``trajectory=`` of the best structure).

    Parameters
    ----------
    population : starting structures (copied); they may differ in size and cell.
    calc : the :class:`~ase_crystalgen.calculators.GRSCalculator` (or its
        :class:`~ase_crystalgen.grs.GRSPotential`) whose score plus core repulsion is
        minimised.
    crossovers, mutations : lists of ase-ga-style operators (``get_new_individual``).
        Defaults: :class:`SliceCrossover` and :class:`ChemistryMixing`;
        :class:`FlipMutation` (over the descriptor's elements) and :class:`SwapMutation`.
        Add :class:`RattleMutation` / :class:`StrainMutation` (or ase-ga's) for
        off-lattice searches.
    crossover_probability : chance that an offspring comes from a crossover (else a
        mutation); the paper's fixed-lattice run used 0.4.
    tournament_size : k of the tournament selection.
    n_elite : best structures copied unchanged into the next generation.
    relax : ``None`` or ``{"fmax": ..., "steps": ...}`` for a FIRE relaxation of
        positions of each offspring.
    rng : ``numpy.random.Generator``.
    tolerance : stop when the best score is at or below this.
    reject_duplicates : discard offspring with the energy and composition of a structure
        already in the next generation (up to 20 tries), so the population keeps its
        diversity.

    After :meth:`run`: :attr:`best_atoms` (the best structure ever seen, a copy; also
    ``self.atoms``), :attr:`best_score`, :attr:`best_generation`, :attr:`history` (per
    generation: best-ever and median score of the population), :attr:`population`.
    """

    def __init__(self, population: Sequence[Atoms], calc, crossovers=None, mutations=None,
                 crossover_probability: float = 0.4, tournament_size: int = 3,
                 n_elite: int = 2, relax: dict | None = None, rng=None,
                 tolerance: float = 1e-10, logfile=None, trajectory=None,
                 progress: bool = False, reject_duplicates: bool = True):
        if len(population) < 2:
            raise ValueError("a genetic algorithm needs a population of at least 2")
        if not 0 <= crossover_probability <= 1:
            raise ValueError("crossover_probability must be within [0, 1]")
        if tournament_size < 1 or n_elite < 0 or n_elite >= len(population):
            raise ValueError("need tournament_size >= 1 and 0 <= n_elite < population size")
        self.calc = calc
        self.potential = getattr(calc, "potential", calc)
        self.rng = _validate_rng(rng)
        elements = self.potential.descriptor.elements
        self.crossovers = list(crossovers) if crossovers is not None else [
            SliceCrossover(rng=self.rng), ChemistryMixing(rng=self.rng)]
        self.mutations = list(mutations) if mutations is not None else [
            FlipMutation(elements, rng=self.rng), SwapMutation(rng=self.rng)]
        for op in self.crossovers + self.mutations:
            if getattr(op, "rng", None) is np.random:  # an ase-ga operator with global state
                op.rng = _random_state(self.rng)
        self.p_cross = float(crossover_probability)
        self.k = int(tournament_size)
        self.n_elite = int(n_elite)
        self.relax = dict(relax) if relax else None
        self.tolerance = float(tolerance)
        self.reject_duplicates = bool(reject_duplicates)
        self.progress = progress
        self._next_id = 0
        self.population = [self._evaluate(self._tag(a.copy())) for a in population]
        self.n_evaluations = len(self.population)
        self.history: list[tuple[int, float, float]] = []
        best = min(self.population, key=lambda a: a.info["grs_energy"])
        self.best_atoms = best.copy()
        self.best_atoms.info = dict(best.info)
        self.best_score = float(best.info["grs_score"])
        self.best_energy = float(best.info["grs_energy"])
        self.best_generation = 0
        super().__init__(self.best_atoms.copy(), logfile=logfile, trajectory=trajectory)
        self._record()

    @property
    def generation(self) -> int:
        return self.nsteps

    # ----------------------------------------------------------------- helpers
    def _tag(self, atoms: Atoms) -> Atoms:
        atoms.info["confid"] = self._next_id
        self._next_id += 1
        return atoms

    def _evaluate(self, atoms: Atoms) -> Atoms:
        if self.relax:
            from ase.optimize import FIRE

            from ..calculators import GRSCalculator

            atoms.calc = self.calc if isinstance(self.calc, GRSCalculator) else None
            if atoms.calc is None:
                raise TypeError("relax= needs a GRSCalculator as calc")
            FIRE(atoms, logfile=None, maxstep=self.relax.get("maxstep", 0.1)).run(
                fmax=self.relax.get("fmax", 0.05), steps=self.relax.get("steps", 20))
            atoms.calc = None
        energy, score = self.potential.energy_and_score(atoms)
        atoms.info["grs_energy"] = float(energy)
        atoms.info["grs_score"] = float(score)
        return atoms

    def _select(self) -> Atoms:
        idx = self.rng.choice(len(self.population), min(self.k, len(self.population)),
                              replace=False)
        return min((self.population[i] for i in idx), key=lambda a: a.info["grs_energy"])

    def _is_duplicate(self, child: Atoms, members) -> bool:
        """Same energy (to 1e-12 relative) and composition as a member: for descriptor
        scores this is, in practice, the same structure."""
        e = child.info["grs_energy"]
        formula = child.get_chemical_formula()
        return any(abs(m.info["grs_energy"] - e) <= 1e-12 * max(1.0, abs(e))
                   and m.get_chemical_formula() == formula for m in members)

    def _offspring(self, members=()) -> Atoms:
        child = None
        for _ in range(20):
            if self.rng.random() < self.p_cross and self.crossovers:
                op = self.crossovers[self.rng.integers(len(self.crossovers))]
                a, b = self._select(), self._select()
                child, _ = op.get_new_individual([a, b])
            else:
                op = self.mutations[self.rng.integers(len(self.mutations))]
                child, _ = op.get_new_individual([self._select()])
            if child is not None and len(child) > 0:
                child.info.pop("key_value_pairs", None)
                child.info.pop("data", None)
                child = self._evaluate(self._tag(child))
                self.n_evaluations += 1
                # duplicates collapse the population onto one structure
                if not (self.reject_duplicates and self._is_duplicate(child, members)):
                    return child
        if child is not None:
            return child  # 20 duplicates in a row: keep the last rather than stall
        raise RuntimeError("no valid offspring in 20 attempts: check the operators")

    def _record(self) -> None:
        """Keep the best structure ever seen (the population may lose it without elites)."""
        best = min(self.population, key=lambda a: a.info["grs_energy"])
        if best.info["grs_energy"] < self.best_energy:
            self.best_atoms = best.copy()
            self.best_atoms.info = dict(best.info)
            self.best_score = float(best.info["grs_score"])
            self.best_energy = float(best.info["grs_energy"])
            self.best_generation = self.nsteps
            a = self.atoms
            if len(a) != len(best):
                del a[:]
                a.extend(best.copy())
            a.set_cell(best.cell)
            a.numbers = best.numbers
            a.positions = best.positions
            a.info = dict(best.info)
        scores = np.array([m.info["grs_score"] for m in self.population])
        self.history.append((self.nsteps, self.best_score, float(np.median(scores))))

    # ----------------------------------------------------------------- Dynamics
    def converged(self, *args) -> bool:
        return self.best_score <= self.tolerance

    def step(self) -> None:
        """One generation: elites survive, the rest are offspring."""
        ranked = sorted(self.population, key=lambda a: a.info["grs_energy"])
        new = [a.copy() for a in ranked[: self.n_elite]]
        for a, old in zip(new, ranked[: self.n_elite]):
            a.info.update(old.info)
        while len(new) < len(self.population):
            new.append(self._offspring(new))
        self.population = new

    def irun(self, steps: int = 50):
        """Run as a generator of ``converged`` after each generation."""
        self.max_steps = self.nsteps + steps
        if self.nsteps == 0:
            self.log()
            self.call_observers()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc="GRS genetic algorithm", unit="generation")
        try:
            is_converged = self.converged()
            yield is_converged
            while not is_converged and self.nsteps < self.max_steps:
                self.step()
                self.nsteps += 1
                self._record()
                self.log()
                self.call_observers()
                if bar is not None:
                    bar.update()
                    bar.set_postfix(best=f"{self.best_score:.3g}")
                is_converged = self.converged()
                yield is_converged
        finally:
            if bar is not None:
                bar.close()

    def run(self, steps: int = 50) -> bool:
        """Run ``steps`` generations (or until the best score reaches ``tolerance``)."""
        converged = False
        for converged in self.irun(steps):
            pass
        return converged

    def log(self, *args) -> None:
        if self.logfile is None:
            return
        median = self.history[-1][2] if self.history else float("nan")
        self.logfile.write(f"GA generation {self.nsteps:5d}  best {self.best_score:.6e}"
                           f"  median {median:.6e}\n")

    def todict(self) -> dict:
        return {"type": "genetic-algorithm", "optimizer": "GeneticAlgorithm",
                "population": len(self.population), "crossover_probability": self.p_cross,
                "tournament_size": self.k, "n_elite": self.n_elite, "relax": self.relax,
                "tolerance": self.tolerance}
