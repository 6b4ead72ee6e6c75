"""What every per-atom descriptor backend shares: the species-block layout."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms


class SpeciesBlockDescriptor:
    """Per-atom descriptors laid out in one block of ``n_per_species`` columns per centre
    species. Subclasses set ``elements``, ``_index`` (symbol -> species index),
    ``n_per_species`` and ``n_features`` and implement ``compute(atoms)``."""

    #: shown in progress bars
    progress_label = "descriptors"

    def species_of(self, atoms: Atoms) -> np.ndarray:
        """Species index of each atom; a clear error for elements the descriptor lacks."""
        return self.species_of_numbers(atoms.numbers)

    def species_of_numbers(self, numbers) -> np.ndarray:
        """Species index of each atomic number; a clear error for elements the descriptor
        lacks."""
        from ase.data import chemical_symbols

        syms = [chemical_symbols[int(z)] for z in np.atleast_1d(numbers)]
        unknown = sorted(set(syms) - set(self.elements))
        if unknown:
            raise ValueError(
                f"element(s) {', '.join(unknown)} not in the descriptor's elements "
                f"{self.elements}"
            )
        return np.array([self._index[s] for s in syms], dtype=np.intp)

    def expand(self, B_local: np.ndarray, species: np.ndarray) -> np.ndarray:
        """Place per-centre descriptors (n, K) into the species-block layout (n, F)."""
        K = self.n_per_species
        out = np.zeros((len(B_local), len(self.elements) * K))
        for s in range(len(self.elements)):
            sel = species == s
            out[sel, s * K:(s + 1) * K] = B_local[sel]
        return out

    def compute_many(self, structures: Iterable[Atoms], progress: bool = False) -> list:
        """Descriptors of many structures (a list of arrays), with an optional progress bar."""
        structures = list(structures)
        it = structures
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(structures, desc=self.progress_label, unit="structure")
        return [self.compute(a) for a in it]
