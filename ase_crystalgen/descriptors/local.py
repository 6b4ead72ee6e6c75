"""Descriptors of a fixed lattice under changes of species only.

When atoms keep their positions and only their elements change (flips and swaps of a
search for orderings or SQS), every pair vector is fixed. The atomic base of site ``i``
for centre species ``c`` is then a sum over neighbours ``j`` of pair functions that
depend on the pair, ``c`` and the neighbour's species ``s_j`` only::

    A_i^c[s, :] = sum_{j : s_j = s} phi^{c s}_{ij},    phi^{cs}_{ij} = sum_images g^{cs}(r) Y(r^)

so a site that changes from species ``a`` to ``b`` moves ``phi^{c a}_{ij}`` from block
``a`` to block ``b`` of every neighbour's base, for every ``c``: an exact linear update.
The pair functions are computed once; a trial costs the update of the neighbours' bases
and the polynomial of the affected rows (compiled, see :mod:`._kernels`).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from . import _kernels
from .neighbors import neighbor_pairs


class LatticeBases:
    """Atomic bases of every site for every centre species at fixed positions.

    Made by :meth:`ACEDescriptor.lattice_bases`. ``propose`` evaluates a change of
    species without keeping it; ``accept`` keeps a proposal.

    Attributes
    ----------
    species : (N,) current species index of each site.
    """

    #: accepted changes between two recomputations from scratch (bounds round-off drift)
    REFRESH_EVERY = 2000

    def __init__(self, descriptor, atoms, species: np.ndarray):
        self.descriptor = descriptor
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self.species = np.array(species, dtype=np.intp)
        self.n_sites = len(atoms)
        self._build()

    def _build(self) -> None:
        d, N = self.descriptor, self.n_sites
        ns, na = len(d.elements), d.basis.n_a
        i, j, vec = neighbor_pairs(self.atoms, d.max_cutoff)
        r = np.linalg.norm(vec, axis=1)
        if np.any(r < 1e-8):
            k = int(np.argmin(r))
            raise ValueError(f"atoms {i[k]} and {j[k]} overlap (distance {r[k]:.2e} A)")
        key = i * N + j
        uniq, inv = np.unique(key, return_inverse=True)
        ui, uj = uniq // N, uniq % N
        U = len(uniq)
        phi = np.zeros((ns, ns, U, na))
        for c in range(ns):
            for b in range(ns):
                keep = r < d.rcut[c, b]
                if not np.any(keep):
                    continue
                vals = d.pair_functions(vec[keep], c, b)
                M = csr_matrix((np.ones(keep.sum()), (inv[keep], np.arange(keep.sum()))),
                               shape=(U, int(keep.sum())))
                phi[c, b] = M @ vals
        # column access: all pairs (i, j) of one neighbour j are contiguous
        order = np.argsort(uj, kind="stable")
        self._centre, self._neighbour = ui[order], uj[order]
        self._phi = np.ascontiguousarray(phi[:, :, order])
        self._col = np.searchsorted(self._neighbour, np.arange(N + 1))
        self.A = self._bases_from_scratch()
        self._n_accepted = 0

    def _bases_from_scratch(self) -> np.ndarray:
        """(n_species, N, n_species * n_a): the base of every site as every centre species."""
        d, N = self.descriptor, self.n_sites
        ns, na = len(d.elements), d.basis.n_a
        A = np.zeros((ns, N, ns * na))
        sj = self.species[self._neighbour]
        for b in range(ns):
            sel = sj == b
            if not np.any(sel):
                continue
            M = csr_matrix((np.ones(sel.sum()), (self._centre[sel], np.arange(sel.sum()))),
                           shape=(N, int(sel.sum())))
            for c in range(ns):
                A[c, :, b * na:(b + 1) * na] = M @ self._phi[c, b][sel]
        return A

    def neighbours(self, site: int) -> np.ndarray:
        """Sites whose descriptors depend on the species of ``site``."""
        return self._centre[self._col[site]:self._col[site + 1]]

    def current(self) -> np.ndarray:
        """Per-centre descriptors (N, K) of the current occupation."""
        return self.descriptor.basis.evaluate(self.A[self.species, np.arange(self.n_sites)])

    def propose(self, sites, new_species):
        """Descriptors after setting ``sites`` to ``new_species`` (species indices).

        Returns ``(affected, rows, token)``: the sites whose descriptors change (ordered
        by their new species), their new per-centre rows (len(affected), K) and what
        :meth:`accept` needs. Only the bases of the affected sites as their (new) centre
        species are formed here; the bases for every centre species are updated on
        :meth:`accept`.
        """
        sites = np.atleast_1d(np.asarray(sites, dtype=np.intp))
        new_species = np.atleast_1d(np.asarray(new_species, dtype=np.intp))
        old_species = self.species[sites]
        changed = old_species != new_species
        sites, old_species, new_species = sites[changed], old_species[changed], new_species[changed]
        na = self.descriptor.basis.n_a
        if len(sites) == 1:
            affected = np.union1d(sites, self.neighbours(sites[0]))
        else:
            affected = np.unique(np.concatenate([sites] + [self.neighbours(s) for s in sites]))
        species = self.species.copy()
        species[sites] = new_species
        # grouped by new species: each species' rows are contiguous for the power sums
        affected = affected[np.argsort(species[affected], kind="stable")]
        token = (sites, old_species, new_species)
        basis = self.descriptor.basis
        if _kernels.enabled():
            AT = _kernels.lattice_bases(self.A, species, affected, sites, old_species,
                                        new_species, self._col, self._centre, self._phi)
            return affected, basis.evaluate_t(AT).T, token
        local = np.empty(self.n_sites, dtype=np.intp)
        local[affected] = np.arange(len(affected))
        A = self.A[species[affected], affected]  # (m, width): each site as its new species
        for s, a, b in zip(sites, old_species, new_species):
            lo, hi = self._col[s], self._col[s + 1]
            centres = self._centre[lo:hi]
            li, cc = local[centres], species[centres]
            q = np.arange(lo, hi)
            A[li, a * na:(a + 1) * na] -= self._phi[cc, a, q]
            A[li, b * na:(b + 1) * na] += self._phi[cc, b, q]
        return affected, basis.evaluate(A), token

    def accept(self, token) -> None:
        sites, old_species, new_species = token
        na = self.descriptor.basis.n_a
        for s, a, b in zip(sites, old_species, new_species):
            lo, hi = self._col[s], self._col[s + 1]
            centres = self._centre[lo:hi]
            self.A[:, centres, a * na:(a + 1) * na] -= self._phi[:, a, lo:hi]
            self.A[:, centres, b * na:(b + 1) * na] += self._phi[:, b, lo:hi]
        self.species[sites] = new_species
        self._n_accepted += 1
        if self._n_accepted % self.REFRESH_EVERY == 0:
            self.A = self._bases_from_scratch()
