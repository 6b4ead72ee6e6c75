"""Training-time augmentation of the structure matrix: other rows for the same crystal.

The fixed-size matrix of :mod:`ase_crystalgen.representation.tensors` writes one crystal in
many equally valid ways, and a data set shows each crystal in only one of them. Three
transformations give other writings of the *same* crystal (same cell matrix, same atoms, an
isometric image of the same structure), so a network trained on them cannot learn an
accident of how the file listed the atoms:

``permute``
    Atoms of one element in another row order. Rows of different elements keep their order
    (the element rows of the conditions then stay as they are).
``shift``
    A uniform random origin: every fractional coordinate moves by the same vector, wrapped
    to [0, 1).
``lattice``
    An operation of the lattice's point group (holohedry). An integer matrix ``W`` with
    ``W^T G W = G`` for the metric ``G = A A^T`` of the cell rows ``A`` maps the lattice onto
    itself; the crystal rotated (or inverted) by the matching Cartesian operation has the
    same cell rows and the fractional coordinates ``x W^T``. spglib finds ``W`` on the bare
    lattice; inversion is always one.

Each item gets its own draw from ``numpy.random.default_rng([seed, epoch, index])``, so an
interrupted run resumed from a checkpoint sees the same augmented batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

AUGMENTATIONS = ("permute", "shift", "lattice")

#: spglib tolerance (Å) for the point group of a bare lattice: cells of relaxed crystals
#: hold their symmetry to far better than this, and an operation found at this tolerance
#: changes interatomic distances by at most about this much
LATTICE_SYMPREC = 1e-2

__all__ = ["AUGMENTATIONS", "augment_structure", "lattice_operations", "parse_augment"]


def parse_augment(value) -> tuple[str, ...]:
    """Normalise an ``augment`` option: False/None/[] -> (), True or ``"all"`` -> all three,
    a name or a list of names -> those names (in the order of :data:`AUGMENTATIONS`)."""
    if value is None or value is False:
        return ()
    if value is True or value == "all":
        return AUGMENTATIONS
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Iterable):
        raise ValueError(
            f"augment must be true, false or a list of {', '.join(AUGMENTATIONS)}; got {value!r}"
        )
    names = list(names)
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"unknown augmentation(s) {', '.join(map(repr, unknown))}; choose from {', '.join(AUGMENTATIONS)}"
        )
    return tuple(n for n in AUGMENTATIONS if n in names)


def lattice_operations(lattice: np.ndarray, symprec: float = LATTICE_SYMPREC) -> np.ndarray:
    """Integer matrices ``W`` (k, 3, 3) of the point group of the lattice with cell rows ``lattice``.

    ``W`` acts on fractional coordinates as column vectors (``x' = W x``, rows: ``x W^T``). The
    identity is first. Returns the identity alone when spglib finds nothing (a degenerate cell).
    """
    import spglib

    from ..representation.spacegroups import _quiet_spglib

    lattice = np.asarray(lattice, dtype=float)
    with _quiet_spglib():
        try:
            sym = spglib.get_symmetry((lattice, [[0.0, 0.0, 0.0]], [1]), symprec=symprec)
        except Exception:  # spglib >= 2.5 raises where older versions returned None
            sym = None
    if not sym:
        return np.eye(3, dtype=np.int64)[None]
    rotations = np.unique(np.asarray(sym["rotations"], dtype=np.int64), axis=0)
    identity = np.all(rotations == np.eye(3, dtype=np.int64), axis=(1, 2))
    return np.concatenate([np.eye(3, dtype=np.int64)[None], rotations[~identity]])


def augment_structure(
    x: np.ndarray,
    numbers: np.ndarray,
    rng: np.random.Generator,
    kinds: Iterable[str] = AUGMENTATIONS,
    operations: np.ndarray | None = None,
) -> np.ndarray:
    """Another writing of the crystal in structure matrix ``x`` (a new array; ``x`` is unchanged).

    Parameters
    ----------
    x : numpy.ndarray
        (M + 4, 3) structure matrix; rows ``0 .. n-1`` hold the fractional coordinates.
    numbers : numpy.ndarray
        Atomic numbers of the ``n`` atom rows (padding zeros after them are ignored).
    rng : numpy.random.Generator
        The draw.
    kinds : iterable of str
        Which of :data:`AUGMENTATIONS` to apply (lattice operation, then origin shift, then
        row permutation).
    operations : numpy.ndarray, optional
        Point-group matrices of the lattice (:func:`lattice_operations`); computed when
        ``"lattice"`` is asked for and none are given.
    """
    kinds = parse_augment(list(kinds))
    numbers = np.asarray(numbers)
    n = int(np.count_nonzero(numbers))
    out = np.array(x, dtype=np.float64, copy=True)
    frac = out[:n]
    if "lattice" in kinds:
        from ..representation.tensors import lattice_rows

        ops = lattice_operations(out[lattice_rows(out.shape[0] - 4)]) if operations is None else operations
        w = ops[rng.integers(len(ops))]
        frac = frac @ w.T
    if "shift" in kinds:
        frac = frac + rng.random(3)
    frac = frac % 1.0
    frac[frac >= 1.0] = 0.0  # x % 1 can round up to 1.0 for tiny negative x
    if "permute" in kinds:
        order = np.arange(n)
        for z in np.unique(numbers[:n]):
            rows = np.flatnonzero(numbers[:n] == z)
            order[rows] = rows[rng.permutation(len(rows))]
        frac = frac[order]
    out[:n] = frac
    return out
