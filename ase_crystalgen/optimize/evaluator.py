"""Energy of the GRS effective potential with local updates after Monte Carlo moves.

A move changes the species or the position of a few atoms. Only atoms within the cutoff
of what moved see a different environment, so only their descriptor rows are recomputed;
the pair list is a Verlet list (cutoff plus a skin) that is rebuilt only when an atom has
moved further than half the skin since it was built, or when the cell changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..descriptors.neighbors import neighbor_pairs


@dataclass
class Trial:
    """A proposed change, evaluated but not yet accepted."""

    indices: np.ndarray  # atoms whose species or position changed
    numbers: np.ndarray  # (N,) atomic numbers after the move
    positions: np.ndarray  # (N, 3) positions after the move
    affected: np.ndarray  # atoms whose descriptor rows were recomputed
    rows: np.ndarray  # (len(affected), F) their new descriptor rows
    score: float
    core_energy: float
    cell: np.ndarray | None = None  # new cell, for moves that change it

    @property
    def energy(self) -> float:
        return self.score + self.core_energy


class IncrementalGRS:
    """The GRS energy ``Q + V_core`` of one structure, updated locally after moves.

    Parameters
    ----------
    atoms : the structure (copied).
    calc : a :class:`~ase_crystalgen.calculators.GRSCalculator` whose descriptor,
        objective and core repulsion define the energy (the same objects the calculator
        uses, so the two agree to round-off).
    skin : Verlet skin in Angstrom.
    """

    def __init__(self, atoms: Atoms, calc, skin: float = 0.5):
        self.descriptor = calc.descriptor
        # descriptors without local evaluation (e.g. LAMMPS SNAP) are recomputed whole
        self.local = hasattr(self.descriptor, "local_descriptors")
        self.objective = calc.objective
        self.core = calc.core
        self.skin = float(skin)
        self.n_full = 0  # full evaluations (list rebuilds), for diagnostics
        self.n_local = 0
        self.reset(atoms)

    # ------------------------------------------------------------------ state
    def reset(self, atoms: Atoms) -> None:
        """Recompute everything for ``atoms`` (after cell changes or local relaxation)."""
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self.B = self.descriptor.compute(self.atoms)
        self.species = self.descriptor.species_of(self.atoms)
        self._build_list()
        self.score = float(self.objective.score(self.B))
        self.core_energy = float(self.core(self.atoms)[0]) if self.core is not None else 0.0
        self.n_full += 1

    @property
    def energy(self) -> float:
        return self.score + self.core_energy

    def _build_list(self) -> None:
        cutoff = self.descriptor.max_cutoff + self.skin
        i, j, vec = neighbor_pairs(self.atoms, cutoff)
        pos, cell = self.atoms.positions, self.atoms.cell.array
        shift_cart = vec - (pos[j] - pos[i])
        if np.any(self.atoms.pbc):
            self._shifts = np.rint(np.linalg.lstsq(cell.T, shift_cart.T, rcond=None)[0].T)
        else:
            self._shifts = np.zeros((len(i), 3))
        order = np.lexsort((j, i))
        self._i, self._j, self._shifts = i[order], j[order], self._shifts[order]
        self._start = np.searchsorted(self._i, np.arange(len(self.atoms) + 1))
        self._ref_positions = pos.copy()
        self._build_cache()

    #: largest pair-function cache (floats) kept for chemical moves
    CACHE_LIMIT = 20_000_000

    def _build_cache(self) -> None:
        """Pair functions of every pair for every (centre, neighbour) species pair at the
        current positions: chemical moves then need no radial or angular evaluation."""
        d = self.descriptor
        self._phi = None
        if not self.local:
            return
        ns, na, P = len(d.elements), d.basis.n_a, len(self._i)
        if P == 0 or ns * ns * P * na > self.CACHE_LIMIT:
            return
        from ..descriptors.angular import real_sph_harm
        from ..descriptors.radial import cheb_exp_cos

        pos, cell = self.atoms.positions, self.atoms.cell.array
        vec = pos[self._j] + self._shifts @ cell - pos[self._i]
        r = np.linalg.norm(vec, axis=1)
        Y = real_sph_harm(vec / r[:, None], d.basis.lmax_all)[:, d._a_lm]
        phi = np.empty((ns * ns, P, na))
        for a in range(ns):
            for b in range(ns):
                rc = np.full(P, d.rcut[a, b])
                g, _ = cheb_exp_cos(r, rc, d.lambda_fraction * rc, d.basis.nmax_all)
                phi[a * ns + b] = g[:, d.basis.a_n] * Y
        self._phi = phi

    def _pairs_of(self, centres: np.ndarray) -> np.ndarray:
        """Indices into the pair list of all pairs whose centre is in ``centres``."""
        if len(centres) == 0:
            return np.zeros(0, dtype=np.intp)
        return np.concatenate([np.arange(self._start[c], self._start[c + 1]) for c in centres])

    # ------------------------------------------------------------------ moves
    def propose(self, indices, numbers=None, positions=None) -> Trial:
        """Evaluate a move of atoms ``indices`` to new atomic ``numbers`` and/or new
        ``positions`` (arrays for those atoms only), without accepting it."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.intp))
        new_numbers = self.atoms.numbers.copy()
        new_pos = self.atoms.positions.copy()
        if numbers is not None:
            new_numbers[idx] = numbers
        if positions is not None:
            new_pos[idx] = positions
        if not self.local or (positions is not None and np.max(
                np.linalg.norm(new_pos - self._ref_positions, axis=1)) > 0.5 * self.skin):
            return self._full_trial(idx, new_numbers, new_pos)
        from ase.data import chemical_symbols

        try:
            species = self.species.copy()
            species[idx] = [self.descriptor._index[chemical_symbols[z]] for z in new_numbers[idx]]
        except KeyError as exc:
            raise ValueError(f"element {exc.args[0]} not in the descriptor's elements "
                             f"{self.descriptor.elements}") from None
        # neighbours of the moved atoms (the list is full, so j of i's pairs)
        near = self._j[self._pairs_of(idx)]
        affected = np.unique(np.concatenate([idx, near]))
        pairs = self._pairs_of(affected)
        ci, cj = self._i[pairs], self._j[pairs]
        local = np.searchsorted(affected, ci)
        ns = len(self.descriptor.elements)
        if positions is None and self._phi is not None:
            # chemical move at the cached geometry: gather pair functions
            phi = self._phi[species[ci] * ns + species[cj], pairs]
            A = self.descriptor._sum_pairs(phi, local * ns + species[cj], len(affected))
            rows = self.descriptor.expand(self.descriptor.basis.evaluate(A), species[affected])
        else:
            vec = new_pos[cj] + self._shifts[pairs] @ self.atoms.cell.array - new_pos[ci]
            rows = self.descriptor.local_descriptors(
                species[affected], local * ns + species[cj], vec, len(affected))
        B = self.B.copy()
        B[affected] = rows
        score = float(self.objective.score(B))
        core = self.core_energy
        if self.core is not None:
            core += self._core_delta(idx, new_numbers, new_pos)
        self.n_local += 1
        return Trial(idx, new_numbers, new_pos, affected, rows, score, core)

    def _core_delta(self, idx, new_numbers, new_pos) -> float:
        moved = np.zeros(len(self.atoms), bool)
        moved[idx] = True
        pairs = self._pairs_of(idx)
        ci, cj = self._i[pairs], self._j[pairs]
        weight = np.where(moved[cj], 0.5, 1.0)  # pairs inside the moved set appear twice
        shift = self._shifts[pairs] @ self.atoms.cell.array

        def energy(numbers, pos):
            vec = pos[cj] + shift - pos[ci]
            return float(np.sum(weight * self.core.pair_energy(numbers[ci], numbers[cj], vec)))

        return energy(new_numbers, new_pos) - energy(self.atoms.numbers, self.atoms.positions)

    def _full_trial(self, idx, new_numbers, new_pos, cell=None) -> Trial:
        atoms = self.atoms.copy()
        if cell is not None:
            atoms.set_cell(cell)
        atoms.numbers = new_numbers
        atoms.positions = new_pos
        B = self.descriptor.compute(atoms)
        core = float(self.core(atoms)[0]) if self.core is not None else 0.0
        affected = np.arange(len(atoms))
        self.n_full += 1
        score = float(self.objective.score(B))
        return Trial(idx, new_numbers, new_pos, affected, B, score, core, cell)

    def propose_structure(self, atoms: Atoms) -> Trial:
        """Evaluate a whole new structure with the same number of atoms (a cell change,
        or the result of a local relaxation), without accepting it."""
        if len(atoms) != len(self.atoms):
            raise ValueError("propose_structure keeps the number of atoms")
        cell = atoms.cell.array.copy() if not np.allclose(atoms.cell.array,
                                                          self.atoms.cell.array) else None
        return self._full_trial(np.arange(len(atoms)), atoms.numbers.copy(),
                                atoms.positions.copy(), cell)

    def accept(self, trial: Trial) -> None:
        """Make ``trial`` the current state."""
        if trial.cell is not None:
            self.atoms.set_cell(trial.cell)
        self.atoms.numbers = trial.numbers
        self.atoms.positions = trial.positions
        self.B[trial.affected] = trial.rows
        self.species = self.descriptor.species_of(self.atoms)
        self.score, self.core_energy = trial.score, trial.core_energy
        moved = np.max(np.linalg.norm(self.atoms.positions - self._ref_positions, axis=1))
        if trial.cell is not None or moved > 0.5 * self.skin:
            self._build_list()
        elif moved > 0:
            self._build_cache()  # the pair list holds, the cached pair functions do not
