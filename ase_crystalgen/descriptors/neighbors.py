"""Neighbour lists.

``vesin`` (a compiled cell list, linear scaling, general triclinic and mixed periodic
cells) when it is installed; otherwise a dense all-images search for small cells (exact
when the cutoff sphere spans many periodic images) and ASE's list for large ones."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

_VESIN: list = []  # [module or None], filled on first use


def _vesin():
    """vesin, imported on first use: it imports torch when torch is installed, which
    would make ``import ase_crystalgen`` (and ``crystalgen --version``) take seconds."""
    if not _VESIN:
        try:
            import vesin
        except ImportError:  # pragma: no cover - vesin is a dependency, the fallback is kept
            vesin = None
        _VESIN.append(vesin)
    return _VESIN[0]

#: above this many candidate distances the dense search hands over to ASE's cell list
DENSE_LIMIT = 400_000


def image_ranges(cell: np.ndarray, pbc, cutoff: float) -> np.ndarray:
    """Largest image index along each cell vector that can hold a neighbour within
    ``cutoff`` of an atom whose fractional coordinates lie in [0, 1)."""
    n = np.zeros(3, dtype=int)
    if np.any(pbc):
        recip = np.linalg.inv(cell).T  # rows: reciprocal vectors (no 2 pi)
        for k in range(3):
            if pbc[k]:
                n[k] = int(np.ceil(cutoff * np.linalg.norm(recip[k])))
    return n


def neighbor_pairs(atoms: Atoms, cutoff: float):
    """All pairs ``(i, j)`` with ``|r_j + S - r_i| < cutoff`` over periodic images ``S``.

    Returns ``i, j, vec`` with ``vec = r_j + S - r_i``. Self-pairs with ``S = 0`` excluded.
    """
    N = len(atoms)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    if N == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3))
    vesin = _vesin()
    if vesin is not None:
        box = cell if np.any(pbc) else np.zeros((3, 3))
        nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
        i, j, vec = nl.compute(points=atoms.positions, box=box, periodic=pbc.tolist()
                               if np.any(pbc) else False, quantities="ijD")
        return i.astype(np.intp), j.astype(np.intp), vec
    return dense_neighbor_pairs(atoms, cutoff)


def dense_neighbor_pairs(atoms: Atoms, cutoff: float):
    """:func:`neighbor_pairs` without vesin: all images densely, or ASE for big cells."""
    N = len(atoms)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    if np.any(pbc):
        nrep = image_ranges(cell, pbc, cutoff)
        n_shifts = int(np.prod(2 * nrep + 1))
    else:
        nrep, n_shifts = np.zeros(3, int), 1
    if N * N * n_shifts > DENSE_LIMIT:
        i, j, vec = neighbor_list("ijD", atoms, cutoff, self_interaction=False)
        return i, j, vec
    pos = atoms.positions
    if np.any(pbc):
        frac = np.linalg.solve(cell.T, pos.T).T
        frac[:, pbc] -= np.floor(frac[:, pbc])
        pos = frac @ cell
    grids = [np.arange(-n, n + 1) for n in nrep]
    shifts = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3) @ cell
    # vec[s, i, j] = pos[j] + shift[s] - pos[i]
    diff = pos[None, :, :] - pos[:, None, :]  # (i, j, 3)
    vec = diff[None, :, :, :] + shifts[:, None, None, :]
    d2 = np.einsum("sijc,sijc->sij", vec, vec)
    mask = d2 < cutoff * cutoff
    zero = np.flatnonzero(np.all(shifts == 0, axis=1))
    if len(zero):
        np.fill_diagonal(mask[zero[0]], False)
    s, i, j = np.nonzero(mask)
    order = np.lexsort((j, i))
    return i[order], j[order], vec[s[order], i[order], j[order]]
