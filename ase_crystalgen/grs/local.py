"""The GRS energy of one structure, updated locally after Monte Carlo moves.

A move changes the species or the position of a few atoms. Only atoms within the cutoff
of what moved see a different environment, so only their descriptor rows are recomputed,
and the moments enter the score through power sums updated by those rows alone.

* **Species changes at fixed positions** (flips, swaps) take the fixed-lattice path:
  the descriptor's :meth:`~ase_crystalgen.descriptors.ACEDescriptor.lattice_bases`
  updates the neighbours' atomic bases linearly, with no neighbour search, no pair
  functions and no core repulsion (when no pair of the lattice is inside its range).
* **Displacements** use a Verlet list (cutoff plus a skin), rebuilt only when an atom has
  moved further than half the skin since it was built; cell changes are evaluated whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..descriptors import _kernels
from ..descriptors.neighbors import neighbor_pairs


@dataclass
class Trial:
    """A proposed change, evaluated but not yet accepted."""

    indices: np.ndarray  # atoms whose species or position changed
    numbers: np.ndarray  # (N,) atomic numbers after the move
    positions: np.ndarray  # (N, 3) positions after the move
    affected: np.ndarray  # atoms whose descriptor rows were recomputed
    rows: np.ndarray  # (len(affected), K) their new per-centre descriptor rows
    score: float
    core_energy: float
    cell: np.ndarray | None = None  # new cell, for moves that change it
    species: np.ndarray | None = None  # (N,) species indices after the move
    sums: tuple | None = None  # power sums and species counts after the move
    token: object = None  # what the lattice bases need to accept

    @property
    def energy(self) -> float:
        return self.score + self.core_energy


class LocalGRS:
    """The GRS energy ``Q + V_core`` of one structure with local updates.

    Parameters
    ----------
    atoms : the structure (copied).
    potential : a :class:`~ase_crystalgen.grs.potential.GRSPotential` (or a
        ``GRSCalculator``, whose potential is used).
    skin : Verlet skin in Angstrom.
    """

    #: accepted moves between two recomputations of the power sums from the rows
    RESYNC_EVERY = 1000

    def __init__(self, atoms: Atoms, potential, skin: float = 0.5):
        potential = getattr(potential, "potential", potential)
        self.potential = potential
        self.descriptor = potential.descriptor
        self.objective = potential.objective
        self.core = potential.core
        # descriptors without local evaluation (e.g. LAMMPS SNAP) are recomputed whole
        self.local = hasattr(self.descriptor, "local_descriptors")
        self.skin = float(skin)
        self.n_full = 0  # full evaluations (list rebuilds), for diagnostics
        self.n_local = 0
        self.reset(atoms)

    # ------------------------------------------------------------------ state
    def reset(self, atoms: Atoms) -> None:
        """Recompute everything for ``atoms`` (after cell changes or local relaxation)."""
        if len(atoms) == 0:
            raise ValueError("the structure has no atoms")
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self.species = self.descriptor.species_of(self.atoms)
        # per-centre rows stored transposed (features, atoms): each feature contiguous
        self._BT = np.ascontiguousarray(
            self._local_rows(self.descriptor.compute(self.atoms), self.species).T)
        self._lattice = None
        self._core_free = None
        self._empty_powers = None
        self._n_accepted = 0
        self._build_list()
        self._sums = self._own_sums(self.B_local, self.species)
        self._counts = np.bincount(self.species, minlength=self._ns)
        self.score = float(self.objective.score(self.B))
        self.core_energy = float(self.core(self.atoms)[0]) if self.core is not None else 0.0
        self.n_full += 1

    @property
    def _ns(self) -> int:
        return len(self.descriptor.elements)

    @property
    def B_local(self) -> np.ndarray:
        """Per-centre descriptor rows (N, K) of the current structure (a view)."""
        return self._BT.T

    @property
    def B(self) -> np.ndarray:
        """Descriptor rows (N, F) in the block layout of ``descriptor.compute``."""
        return self.descriptor.expand(self.B_local, self.species)

    @property
    def energy(self) -> float:
        return self.score + self.core_energy

    def _local_rows(self, B, species):
        K = self.descriptor.n_per_species
        return B.reshape(len(B), self._ns, K)[np.arange(len(B)), species]

    # ------------------------------------------------------------------ power sums
    def _own_sums(self, rows, species, minus=None):
        """``T[p - 1, c] = sum_{i of species c} (B_i - shift_c)^p`` (P, ns, K); with
        ``minus = (rows0, species0)`` the same of those rows is subtracted."""
        K, ns = self.descriptor.n_per_species, self._ns
        shift = self.objective.shift.reshape(ns, K)
        if _kernels.enabled() and self.objective.max_order <= 4:
            out = np.zeros((self.objective.max_order, ns, K))
            _kernels.add_power_sums_t(np.ascontiguousarray(rows.T), species, shift, 1.0, out)
            if minus is not None:
                _kernels.add_power_sums_t(np.ascontiguousarray(minus[0].T), minus[1], shift,
                                          -1.0, out)
            return out
        if minus is not None:
            return self._own_sums(rows, species) - self._own_sums(*minus)
        y = rows - shift[species]
        onehot = (species[:, None] == np.arange(ns)).astype(float)
        out = np.empty((self.objective.max_order, ns, K))
        yp = y
        for p in range(self.objective.max_order):
            if p:
                yp = yp * y
            out[p] = onehot.T @ yp
        return out

    def _replace_rows(self, rows, species, affected) -> np.ndarray:
        """The power sums after the rows of ``affected`` become ``rows`` (m, K) of new
        centre ``species`` (m,)."""
        old = self.species[affected]
        if not _kernels.enabled() or self.objective.max_order > 4:
            return self._sums + self._own_sums(rows, species,
                                               minus=(self.B_local[affected], old))
        rowsT = rows.T
        if not rowsT.flags.c_contiguous:
            rowsT = np.ascontiguousarray(rowsT)
        N = len(self.atoms)
        if 2 * len(affected) > N:  # most rows replaced: sum the new ones and the others
            out = np.zeros_like(self._sums)
            if len(affected) < N:
                keep = np.ones(N, bool)
                keep[affected] = False
                rest = np.flatnonzero(keep)
                _kernels.add_power_sums_t(self._BT, self.species[rest], self._shift, 1.0, out,
                                          sites=rest)
        else:  # a few rows replaced: take the old ones out
            out = self._sums.copy()
            _kernels.add_power_sums_t(self._BT, old, self._shift, -1.0, out, sites=affected)
        _kernels.add_power_sums_t(rowsT, species, self._shift, 1.0, out)
        return out

    @property
    def _shift(self) -> np.ndarray:
        ns, K = self._ns, self.descriptor.n_per_species
        return self.objective.shift.reshape(ns, K)

    def _score(self, sums, counts) -> float:
        # atoms of other species hold zeros in a species block: (0 - shift)^p each
        N = len(self.atoms)
        if self._empty_powers is None:
            self._empty_powers = np.stack([(-self._shift) ** (p + 1)
                                           for p in range(self.objective.max_order)])
            self._S = np.empty_like(self._empty_powers)
        S = self._S  # reused: the objective reads it and keeps nothing
        np.multiply((N - counts)[None, :, None], self._empty_powers, out=S)
        S += sums
        return float(self.objective.score_from_sums(S.reshape(S.shape[0], -1), N))

    # ------------------------------------------------------------------ pair lists
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
        self._pair_r = np.linalg.norm(vec[order], axis=1)

    def _pairs_of(self, centres: np.ndarray) -> np.ndarray:
        """Indices into the pair list of all pairs whose centre is in ``centres``."""
        if len(centres) == 0:
            return np.zeros(0, dtype=np.intp)
        return np.concatenate([np.arange(self._start[c], self._start[c + 1]) for c in centres])

    def _core_is_zero_for_any_species(self) -> bool:
        """Whether no pair at the current positions is within the core range of any
        pair of the descriptor's elements (then chemical moves leave it at zero)."""
        if self._core_free is None:
            from ase.data import atomic_numbers

            if self.core is None:
                self._core_free = True
            else:
                z = [atomic_numbers[e] for e in self.descriptor.elements]
                rmin = self._pair_r.min() if len(self._pair_r) else np.inf
                self._core_free = bool(rmin >= self.core.max_cutoff(z))
        return self._core_free

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
        species = self.species.copy()
        species[idx] = self.descriptor.species_of_numbers(new_numbers[idx])
        if positions is None and hasattr(self.descriptor, "lattice_bases"):
            return self._lattice_trial(idx, new_numbers, species)
        if not self.local or (positions is not None and np.max(
                np.linalg.norm(new_pos - self._ref_positions, axis=1)) > 0.5 * self.skin):
            return self._full_trial(idx, new_numbers, new_pos)
        near = self._j[self._pairs_of(idx)]
        affected = np.unique(np.concatenate([idx, near]))
        pairs = self._pairs_of(affected)
        ci, cj = self._i[pairs], self._j[pairs]
        local = np.searchsorted(affected, ci)
        vec = new_pos[cj] + self._shifts[pairs] @ self.atoms.cell.array - new_pos[ci]
        rows = self.descriptor.local_descriptors(
            species[affected], local * self._ns + species[cj], vec, len(affected),
            expand=False)
        trial = self._trial(idx, new_numbers, new_pos, affected, rows, species)
        if self.core is not None:
            trial.core_energy += self._core_delta(idx, new_numbers, new_pos)
        return trial

    def _trial(self, idx, numbers, positions, affected, rows, species, token=None) -> Trial:
        sums = self._replace_rows(rows, species[affected], affected)
        counts = np.bincount(species, minlength=self._ns)
        self.n_local += 1
        return Trial(idx, numbers, positions, affected, rows, self._score(sums, counts),
                     self.core_energy, species=species, sums=(sums, counts), token=token)

    def _lattice_trial(self, idx, new_numbers, species) -> Trial:
        if self._lattice is None:
            self._lattice = self.descriptor.lattice_bases(self.atoms)
        affected, rows, token = self._lattice.propose(idx, species[idx])
        trial = self._trial(idx, new_numbers, self.atoms.positions, affected, rows, species,
                            token)
        if self.core is not None and not self._core_is_zero_for_any_species():
            trial.core_energy += self._core_delta(idx, new_numbers, self.atoms.positions)
        return trial

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
        species = self.descriptor.species_of(atoms)
        core = float(self.core(atoms)[0]) if self.core is not None else 0.0
        self.n_full += 1
        rows = self._local_rows(B, species)
        counts = np.bincount(species, minlength=self._ns)
        return Trial(idx, new_numbers, new_pos, np.arange(len(atoms)), rows,
                     float(self.objective.score(B)), core, cell, species,
                     (self._own_sums(rows, species), counts))

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
        moved_any = trial.cell is not None or not np.array_equal(trial.positions,
                                                                 self.atoms.positions)
        if trial.cell is not None:
            self.atoms.set_cell(trial.cell)
        self.atoms.numbers = trial.numbers
        self.atoms.positions = trial.positions
        self._BT[:, trial.affected] = trial.rows.T
        self.species = trial.species
        self._sums, self._counts = trial.sums
        self.score, self.core_energy = trial.score, trial.core_energy
        self._n_accepted += 1
        if self._n_accepted % self.RESYNC_EVERY == 0:
            self._sums = self._own_sums(self.B_local, self.species)
        if trial.token is not None and self._lattice is not None:
            self._lattice.accept(trial.token)
        else:  # moved atoms or a full trial: rebuild the lattice bases lazily
            self._lattice = None
            if moved_any:
                self._core_free = None
        moved = np.max(np.linalg.norm(self.atoms.positions - self._ref_positions, axis=1))
        if trial.cell is not None or moved > 0.5 * self.skin:
            self._build_list()
        elif moved > 0:
            self._pair_r = np.linalg.norm(
                self.atoms.positions[self._j] + self._shifts @ self.atoms.cell.array
                - self.atoms.positions[self._i], axis=1)


#: the name this class had before it moved here from ``ase_crystalgen.optimize``
IncrementalGRS = LocalGRS
