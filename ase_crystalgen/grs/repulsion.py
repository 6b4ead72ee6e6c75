"""Short-range core repulsion that keeps GRS candidates from collapsing."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from ..descriptors.neighbors import neighbor_pairs


class CoreRepulsion:
    """Cosine "soft" pair repulsion (LAMMPS ``pair_style soft``).

    ``E = sum_{i<j} A [1 + cos(pi r_ij / rc_ij)]`` for ``r_ij < rc_ij``, with
    ``rc_ij = scale * (r_cov(i) + r_cov(j))`` (covalent radii). Its derivative
    ``dE/dr = -A pi / rc sin(pi r / rc)`` vanishes at ``rc`` and at ``r = 0``; the energy is
    ``2A`` at full overlap, so ``A`` must dominate the score scale to hold atoms apart.

    Parameters
    ----------
    strength : ``A`` in eV.
    scale : cutoff as a fraction of the covalent-radius sum (0.8 as in the GRS code).
    """

    def __init__(self, strength: float = 1.0, scale: float = 0.8):
        if strength < 0 or scale <= 0:
            raise ValueError("core repulsion needs strength >= 0 and scale > 0")
        self.strength, self.scale = float(strength), float(scale)

    def cutoff(self, a: str, b: str) -> float:
        return self.scale * (covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])

    def pair_energy(self, zi, zj, vec) -> np.ndarray:
        """Energy of each (ordered) pair with atomic numbers ``zi``, ``zj`` and vectors
        ``vec``; the total over a full (both-ways) list is twice the energy."""
        rc = self.scale * (covalent_radii[zi] + covalent_radii[zj])
        r = np.linalg.norm(vec, axis=1)
        return np.where(r < rc, self.strength * (1 + np.cos(np.pi * np.minimum(r / rc, 1))), 0.0)

    def max_cutoff(self, numbers) -> float:
        return 2 * self.scale * float(np.max(covalent_radii[np.asarray(numbers)]))

    def __call__(self, atoms: Atoms, pairs=None):
        """Energy, ``dE/dR`` (N, 3) and ``W = sum_pairs dE/dr_ij (x) r_ij`` (3, 3).

        ``pairs = (i, j, vec)``: a full neighbour list with a cutoff of at least
        :meth:`max_cutoff` to reuse (e.g. the descriptor's); otherwise one is built.
        """
        N = len(atoms)
        z = atoms.numbers
        rc_atom = self.scale * covalent_radii[z]
        if N == 0 or self.strength == 0:
            return 0.0, np.zeros((N, 3)), np.zeros((3, 3))
        if pairs is None:
            pairs = neighbor_pairs(atoms, self.max_cutoff(z))
        i, j, vec = pairs
        rc = rc_atom[i] + rc_atom[j]
        r = np.linalg.norm(vec, axis=1)
        keep = r < rc
        i, j, vec, r, rc = i[keep], j[keep], vec[keep], r[keep], rc[keep]
        A = self.strength
        # full list: each pair twice, so halve
        energy = 0.5 * np.sum(A * (1 + np.cos(np.pi * r / rc)))
        dEdr = -0.5 * A * np.pi / rc * np.sin(np.pi * r / rc)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.where(r[:, None] > 0, vec / r[:, None], 0.0)
        dvec = dEdr[:, None] * u
        dR = np.zeros((N, 3))
        for c in range(3):
            dR[:, c] = np.bincount(j, dvec[:, c], N) - np.bincount(i, dvec[:, c], N)
        return float(energy), dR, dvec.T @ vec
