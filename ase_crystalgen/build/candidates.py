"""Starting cells for GRS searches: lattice supercells, random occupations, random packings.

Section III.3 of the GRS paper proposes three kinds of initial candidate:

* random chemical occupations of supercells of a known parent lattice;
* supercells of arbitrary parent lattices from Hermite normal form (HNF) transformations
  (the first step of Hart & Forcade's derivative-structure enumeration [1]_), reduced to
  compact cells (Nguyen & Stehlé's lattice reduction [2]_);
* random dense or amorphous periodic cells at a density close to the target's, with minimum
  distances of a fraction of the covalent-radius sums (0.5 in the paper's code, placed by the
  ``ase-ga`` start generator).

Chemical occupations are assigned at random under a fixed global composition.

Conventions
-----------
Cells are ASE row vectors. An HNF ``H`` is lower triangular with ``0 <= H[i, j] < H[i, i]``
for ``j < i``; its *columns* give the superlattice vectors in the parent basis, so the
supercell is ``ase.build.make_supercell(parent, H.T)`` (``new_cell = H.T @ parent.cell``).
Distinct HNFs of one determinant give distinct superlattices, and there are
``sum_{a c f = det} c f^2`` of them (OEIS A001001: 1, 7, 13, 35, 31, 91, 57, 155, ...).

References
----------
.. [1] G. L. W. Hart and R. W. Forcade, "Algorithm for generating derivative structures",
   Phys. Rev. B 77, 224115 (2008).
.. [2] P. Q. Nguyen and D. Stehlé, "Low-dimensional lattice basis reduction revisited",
   ACM Trans. Algorithms 5, 46 (2009).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence
from math import gcd

import numpy as np
from ase import Atoms
from ase.build import bulk, make_supercell
from ase.build.supercells import eval_shape_deviation
from ase.data import atomic_numbers, chemical_symbols
from ase.geometry import minkowski_reduce

from ..structures import composition_amounts

Composition = Mapping[str, float] | str

LATTICES = ("bcc", "diamond", "fcc", "hcp", "sc")

#: Random close packing of equal hard spheres: no disordered packing is denser.
RANDOM_CLOSE_PACKING = 0.64

__all__ = [
    "LATTICES",
    "RANDOM_CLOSE_PACKING",
    "composition_counts",
    "hermite_normal_forms",
    "parent_lattice",
    "random_lattice_candidate",
    "random_occupation",
    "random_packing",
    "supercell",
]


# --------------------------------------------------------------------------------------------
# Parent lattices and Hermite normal forms
# --------------------------------------------------------------------------------------------


def parent_lattice(name: str, a: float, *, c: float | None = None, symbol: str = "X") -> Atoms:
    """Primitive cell of a common parent lattice.

    Parameters
    ----------
    name : {"fcc", "bcc", "hcp", "diamond", "sc"}
        Lattice type.
    a : float
        Lattice constant in Å (the conventional cubic edge for the cubic lattices).
    c : float, optional
        hcp only: the c axis in Å; the ideal ``sqrt(8/3) a`` by default.
    symbol : str
        Species put on every site. The default ``"X"`` (ASE's dummy atom) marks empty sites
        that :func:`random_occupation` fills.

    Returns
    -------
    ase.Atoms
        The primitive cell (1 site; 2 for hcp and diamond), periodic in 3D.
    """
    _validate_lattice(name, a, c)
    if symbol != "X":
        _validate_elements([symbol])
    if name == "hcp":
        c = float(np.sqrt(8 / 3) * a) if c is None else float(c)
        return bulk(symbol, "hcp", a=float(a), c=c)
    return bulk(symbol, name, a=float(a))


@functools.lru_cache(maxsize=64)
def _hnf_stack(det: int) -> np.ndarray:
    blocks = []
    for a in range(1, det + 1):
        if det % a:
            continue
        for c in range(1, det // a + 1):
            if (det // a) % c:
                continue
            f = det // (a * c)
            b, d, e = np.meshgrid(np.arange(c), np.arange(f), np.arange(f), indexing="ij")
            block = np.zeros((b.size, 3, 3), dtype=int)
            block[:, 0, 0], block[:, 1, 1], block[:, 2, 2] = a, c, f
            block[:, 1, 0], block[:, 2, 0], block[:, 2, 1] = b.ravel(), d.ravel(), e.ravel()
            blocks.append(block)
    stack = np.concatenate(blocks)
    stack.flags.writeable = False
    return stack


def hermite_normal_forms(det: int) -> list[np.ndarray]:
    """All 3x3 lower-triangular Hermite normal forms of a given determinant.

    Parameters
    ----------
    det : int
        Determinant, i.e. the supercell volume in parent cells.

    Returns
    -------
    list of (3, 3) int ndarray
        Matrices ``[[a, 0, 0], [b, c, 0], [d, e, f]]`` with ``a c f = det``,
        ``0 <= b < c`` and ``0 <= d, e < f``; one per distinct superlattice (see the module
        docstring for how they act on a parent cell).
    """
    _validate_positive_int(det, "det")
    return [h.copy() for h in _hnf_stack(int(det))]


def _reduce_cells(cells: np.ndarray, max_iter: int = 1000) -> np.ndarray:
    """Minkowski-reduce a stack of 3D bases (m, 3, 3) at once (greedy algorithm of [2]).

    ``ase.geometry.minkowski_reduce`` takes about a millisecond per cell; scoring all ~10^4
    HNFs of a 64-site supercell needs the whole stack reduced in one go. Each sweep sorts
    the vectors by length, Gauss-reduces the second against the first and replaces the third
    by its distance to the closest point of the plane lattice of the first two; a change is
    only taken when it shortens a vector, so the sweeps end, and in 3D the fixed point is
    Minkowski-reduced.
    """
    B = np.array(cells, dtype=float)
    scale = np.cbrt(np.abs(np.linalg.det(B)))[:, None, None]
    B = B / scale  # unit volume, so one tolerance fits every cell
    tol = 1e-10
    offsets = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)])
    for _ in range(max_iter):
        norms2 = np.einsum("mij,mij->mi", B, B)
        B = np.take_along_axis(B, np.argsort(norms2, axis=1)[:, :, None], axis=1)
        b1, b2, b3 = B[:, 0], B[:, 1], B[:, 2]
        n11 = np.einsum("mi,mi->m", b1, b1)
        n22 = np.einsum("mi,mi->m", b2, b2)
        k = np.rint(np.einsum("mi,mi->m", b1, b2) / n11)
        new2 = b2 - k[:, None] * b1
        take2 = np.einsum("mi,mi->m", new2, new2) < n22 - tol
        b2 = np.where(take2[:, None], new2, b2)
        # closest point of the lattice (b1, b2) to b3: round the projection, try neighbours
        gram = np.stack(
            [
                np.stack([n11, np.einsum("mi,mi->m", b1, b2)], -1),
                np.stack([np.einsum("mi,mi->m", b1, b2), np.einsum("mi,mi->m", b2, b2)], -1),
            ],
            -2,
        )
        rhs = np.stack([np.einsum("mi,mi->m", b1, b3), np.einsum("mi,mi->m", b2, b3)], -1)
        x = np.rint(np.linalg.solve(gram, rhs[..., None])[..., 0])
        coeff = x[:, None, :] + offsets[None]  # (m, 9, 2)
        trial = b3[:, None] - coeff[..., :1] * b1[:, None] - coeff[..., 1:] * b2[:, None]
        trial_n = np.einsum("mki,mki->mk", trial, trial)
        best = np.argmin(trial_n, axis=1)
        rows = np.arange(len(B))
        take3 = trial_n[rows, best] < np.einsum("mi,mi->m", b3, b3) - tol
        b3 = np.where(take3[:, None], trial[rows, best], b3)
        B = np.stack([b1, b2, b3], axis=1)
        if not (take2 | take3).any():
            break
    else:  # pragma: no cover - the greedy sweeps end long before this on real cells
        raise RuntimeError("lattice reduction did not converge")
    norms2 = np.einsum("mij,mij->mi", B, B)
    B = np.take_along_axis(B, np.argsort(norms2, axis=1)[:, :, None], axis=1)
    return B * scale


def _shape_deviation(parent_cell: np.ndarray, hnfs: np.ndarray) -> np.ndarray:
    """Deviation from a cube of each HNF supercell, after reduction (0 for a cube)."""
    cells = np.einsum("mji,jk->mik", hnfs, parent_cell)  # H.T @ parent_cell
    return eval_shape_deviation(_reduce_cells(cells), "sc")


# --------------------------------------------------------------------------------------------
# Supercells
# --------------------------------------------------------------------------------------------


def supercell(
    parent: Atoms,
    matrix: int | Sequence[int] | np.ndarray | None = None,
    *,
    n_atoms: int | None = None,
    rng: np.random.Generator | None = None,
    shape_tolerance: float | None = 0.5,
) -> Atoms:
    """A supercell of ``parent``, by an explicit matrix or a random HNF of a given size.

    Parameters
    ----------
    parent : ase.Atoms
        Any 3D periodic cell, e.g. from :func:`parent_lattice`.
    matrix : int, (3,) or (3, 3) int array, optional
        Explicit transformation in ASE's convention (``new_cell = matrix @ parent.cell``): an
        integer repeats along all three axes, three integers repeat along each. Give either
        ``matrix`` or ``n_atoms``.
    n_atoms : int, optional
        Size of a random HNF supercell; a multiple of ``len(parent)``.
    rng : numpy.random.Generator, optional
        Chooses among the HNFs of the requested size. Without it the most cube-like one is
        returned (the first in :func:`hermite_normal_forms` order when several tie).
    shape_tolerance : float or None
        HNF ``H`` is drawn with probability proportional to ``exp(-(s_H - s_min) / tol)``,
        where ``s_H`` is ASE's deviation-from-cube measure of the reduced supercell
        (``eval_shape_deviation(..., "sc")``: 0 for a cube, 1.05 for a 1x2x2 block of cubes,
        2.6 for 1x1x2) and ``s_min`` the smallest over all HNFs of that size. 0 keeps only
        the most cube-like shape (in any of its orientations); None draws uniformly over all
        superlattices, needles included.

    Returns
    -------
    ase.Atoms
        The supercell with its cell Minkowski-reduced (same lattice, shortest vectors),
        positions wrapped, and ``info["supercell_matrix"]``: the integer ``M`` with
        ``atoms.cell == M @ parent.cell``.
    """
    _validate_parent(parent)
    if (matrix is None) == (n_atoms is None):
        raise ValueError("give exactly one of matrix and n_atoms")
    if matrix is not None:
        P = _validate_matrix(matrix)
    else:
        _validate_positive_int(n_atoms, "n_atoms")
        if n_atoms % len(parent):
            raise ValueError(
                f"n_atoms={n_atoms} is not a multiple of the {len(parent)} atoms in the parent"
            )
        if shape_tolerance is not None and shape_tolerance < 0:
            raise ValueError(f"shape_tolerance must be non-negative, got {shape_tolerance}")
        hnfs = _hnf_stack(n_atoms // len(parent))
        index = _choose_hnf(parent.cell.array, hnfs, rng, shape_tolerance)
        P = hnfs[index].T
    atoms = make_supercell(parent, P, wrap=False)
    reduced, op = minkowski_reduce(atoms.cell.array)
    atoms.set_cell(reduced, scale_atoms=False)
    atoms.set_pbc(True)
    atoms.wrap()
    atoms.info["supercell_matrix"] = op @ P
    return atoms


def _choose_hnf(
    parent_cell: np.ndarray,
    hnfs: np.ndarray,
    rng: np.random.Generator | None,
    shape_tolerance: float | None,
) -> int:
    if len(hnfs) == 1:
        return 0
    if shape_tolerance is None:
        if rng is None:
            raise ValueError("shape_tolerance=None draws at random and needs an rng")
        return int(rng.integers(len(hnfs)))
    dev = _shape_deviation(parent_cell, hnfs)
    excess = dev - dev.min()
    if rng is None:
        return int(np.argmin(dev))
    if shape_tolerance == 0:
        # ties of the best shape are the same shape in other orientations
        best = np.flatnonzero(excess <= 1e-9)
        return int(rng.choice(best))
    weights = np.exp(-excess / shape_tolerance)
    return int(rng.choice(len(hnfs), p=weights / weights.sum()))


# --------------------------------------------------------------------------------------------
# Compositions and occupations
# --------------------------------------------------------------------------------------------


def composition_counts(composition: Composition, n_atoms: int | None = None) -> dict[str, int]:
    """Whole-number atom counts for a composition.

    Parameters
    ----------
    composition : dict or str
        * counts, ``{"Au": 8, "Cu": 24}`` (all values integers): taken as they are and must
          sum to ``n_atoms`` when that is given;
        * fractions, ``{"Au": 0.25, "Cu": 0.75}`` (summing to 1): rounded to counts summing
          to ``n_atoms`` by the largest-remainder method (ties go to the species listed
          first);
        * a formula, ``"AuCu3"``: its reduced formula unit repeated ``n_atoms / unit`` times
          (or once without ``n_atoms``).
    n_atoms : int, optional
        Number of atoms (sites) to fill. Required for fractions.

    Returns
    -------
    dict
        Counts by symbol, in the order given, zero counts dropped.
    """
    if n_atoms is not None:
        _validate_positive_int(n_atoms, "n_atoms")
    if isinstance(composition, str):
        return _formula_counts(composition, n_atoms)
    amounts = composition_amounts(composition, whole=False, zeros=True)
    if all(isinstance(v, numbers.Integral) for v in composition.values()):
        counts = {s: int(v) for s, v in amounts.items()}
        total = sum(counts.values())
        if n_atoms is not None and total != n_atoms:
            raise ValueError(f"composition has {total} atoms, but {n_atoms} are needed")
    else:
        total = float(sum(amounts.values()))
        if abs(total - 1) > 1e-6:
            raise ValueError(f"composition fractions sum to {total:g}, not 1")
        if n_atoms is None:
            raise ValueError("composition given as fractions needs n_atoms")
        counts = _largest_remainder(amounts, n_atoms)
    return {s: n for s, n in counts.items() if n > 0}


def _largest_remainder(fractions: Mapping[str, float], n: int) -> dict[str, int]:
    exact = np.array([float(v) for v in fractions.values()]) * n
    near = np.rint(exact)
    exact = np.where(np.abs(exact - near) < 1e-9, near, exact)  # 0.1 * 30 is 3.0000000000000004
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return dict(zip(fractions, counts.tolist(), strict=True))


def _formula_counts(formula: str, n_atoms: int | None) -> dict[str, int]:
    unit = composition_amounts(formula, zeros=True)
    divisor = functools.reduce(gcd, unit.values())
    unit = {s: n // divisor for s, n in unit.items() if n > 0}
    size = sum(unit.values())
    if n_atoms is None:
        return unit
    if n_atoms % size:
        reduced = "".join(f"{s}{n if n > 1 else ''}" for s, n in unit.items())
        raise ValueError(
            f"formula unit {reduced} has {size} atoms, which does not divide {n_atoms}"
        )
    return {s: n * (n_atoms // size) for s, n in unit.items()}


def random_occupation(
    atoms: Atoms,
    composition: Composition,
    rng: np.random.Generator,
    *,
    sites: Sequence[int] | None = None,
) -> Atoms:
    """Assign species at random to the sites of a cell, with exact counts.

    Parameters
    ----------
    atoms : ase.Atoms
        The cell whose sites are filled; it is not modified.
    composition : dict or str
        Counts, fractions or a formula; see :func:`composition_counts`. The counts must
        add up to the number of sites filled.
    rng : numpy.random.Generator
        Draws the arrangement (a uniform random permutation of the species list).
    sites : sequence of int, optional
        Indices of the sites to fill (a sublattice); the others keep their species.
        All sites by default.

    Returns
    -------
    ase.Atoms
        A copy with the new species, positions and cell untouched.
    """
    if len(atoms) == 0:
        raise ValueError("the cell has no sites")
    if sites is None:
        index = np.arange(len(atoms))
    else:
        index = np.asarray(sites, dtype=int).ravel()
        n = len(atoms)
        if index.size == 0 or index.min() < -n or index.max() >= n:
            raise ValueError("sites must be distinct indices of atoms in the cell")
        index %= n
        if len(np.unique(index)) != index.size:
            raise ValueError("sites must be distinct indices of atoms in the cell")
    counts = composition_counts(composition, len(index))
    numbers_ = np.repeat([atomic_numbers[s] for s in counts], list(counts.values()))
    out = atoms.copy()
    new = out.numbers.copy()
    new[index] = rng.permutation(numbers_)
    out.numbers = new
    return out


def random_lattice_candidate(
    parent: Atoms,
    n_atoms: int,
    composition: Composition,
    rng: np.random.Generator,
    *,
    rattle: float = 0.0,
    shape_tolerance: float | None = 0.5,
) -> Atoms:
    """Random HNF supercell of ``parent`` with a random occupation and optional rattle.

    Parameters
    ----------
    parent : ase.Atoms
        Parent lattice, e.g. ``parent_lattice("fcc", 3.8)``.
    n_atoms : int
        Supercell size, a multiple of ``len(parent)``.
    composition : dict or str
        Counts, fractions or formula for all sites (see :func:`composition_counts`).
    rng : numpy.random.Generator
        Drives the supercell choice, the occupation and the rattle.
    rattle : float
        Standard deviation in Å of Gaussian displacements of every Cartesian coordinate
        ("random atomic positions close to those of the parent lattice").
    shape_tolerance : float or None
        See :func:`supercell`.

    Returns
    -------
    ase.Atoms
    """
    if not rattle >= 0:
        raise ValueError(f"rattle must be non-negative, got {rattle}")
    # checked before any work: a bad composition should not cost a supercell search
    composition_counts(composition, n_atoms)
    cell = supercell(parent, n_atoms=n_atoms, rng=rng, shape_tolerance=shape_tolerance)
    atoms = random_occupation(cell, composition, rng)
    if rattle > 0:
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
        atoms.wrap()
    return atoms


# --------------------------------------------------------------------------------------------
# Random packings
# --------------------------------------------------------------------------------------------


def random_packing(
    composition: Composition,
    *,
    rng: np.random.Generator,
    n_atoms: int | None = None,
    density: float | None = None,
    volume_per_atom: float | None = None,
    cell: np.ndarray | Sequence[float] | None = None,
    min_distance_factor: float = 0.5,
    blmin: Mapping[tuple[str | int, str | int], float] | None = None,
    max_attempts: int = 10,
) -> Atoms:
    """A random dense (amorphous/liquid-like) periodic cell with minimum distances.

    Atoms are inserted one by one at uniformly random positions and a position is rejected
    when it comes closer to an atom already placed than the minimum distance of the pair,
    using ``ase_ga.startgenerator.StartGenerator`` (as the GRS code does). A whole placement
    that stalls is started again, up to ``max_attempts`` times.

    Parameters
    ----------
    composition : dict or str
        Counts, fractions or formula (see :func:`composition_counts`).
    rng : numpy.random.Generator
        Source of randomness (a ``RandomState`` for ``ase-ga`` is seeded from it).
    n_atoms : int, optional
        Number of atoms; taken from the counts or the formula unit when not given.
    density : float, optional
        Number density in atoms/Å^3 (not g/cm^3; for a mass density ``rho`` in g/cm^3 use
        ``rho * 0.6022140762 / mean_atomic_mass``). Give at most one of ``density`` and
        ``volume_per_atom``.
    volume_per_atom : float, optional
        Volume per atom in Å^3, ``1 / density``.
    cell : (3, 3) array or 3 or 6 cell parameters, optional
        Cell shape. Scaled to the requested volume when a density is given, otherwise used as
        it is. A cube by default.
    min_distance_factor : float
        Minimum distance of a pair as a fraction of the sum of covalent radii.
    blmin : dict, optional
        Minimum distances per pair of species, ``{("Au", "Cu"): 2.1, ...}`` (symbols or
        atomic numbers; one order suffices); replaces ``min_distance_factor``.
    max_attempts : int
        Number of fresh placements tried before giving up.

    Returns
    -------
    ase.Atoms
        Atoms grouped by species in the order of ``composition``, tags cleared.

    Raises
    ------
    ValueError
        When the hard spheres of diameter equal to the like-pair minimum distances fill
        more than :data:`RANDOM_CLOSE_PACKING` of the volume, or a cell vector is shorter
        than a like-pair minimum distance (an atom would touch its own image).
    RuntimeError
        When every attempt stalls. Random sequential insertion jams near a packing
        fraction of 0.38, so expect this between 0.38 and 0.64.
    """
    counts = composition_counts(composition, n_atoms)
    n = sum(counts.values())
    volume = _validate_volume(n, density, volume_per_atom, cell)
    _validate_positive_int(max_attempts, "max_attempts")
    Z = [atomic_numbers[s] for s in counts]
    try:
        from ase_ga.startgenerator import StartGenerator
        from ase_ga.utilities import closest_distances_generator
    except ImportError:
        raise ImportError("random_packing needs ase-ga: pip install 'ase_crystalgen[ga]'") from None
    if blmin is None:
        if not min_distance_factor >= 0:
            raise ValueError(f"min_distance_factor must be non-negative, got {min_distance_factor}")
        pair_min = closest_distances_generator(Z, min_distance_factor)
    else:
        pair_min = _validate_blmin(Z, blmin)

    if cell is None:
        full_cell = np.eye(3) * np.cbrt(volume)
    else:
        full_cell = Atoms(cell=cell).cell.array
        full_cell *= np.cbrt(volume / abs(np.linalg.det(full_cell)))

    diameters = np.array([pair_min[(z, z)] for z in Z])
    fraction = float(np.pi / 6 * np.dot(list(counts.values()), diameters**3) / volume)
    if fraction > RANDOM_CLOSE_PACKING:
        raise ValueError(
            f"hard-sphere packing fraction {fraction:.2f} is above random close packing "
            f"({RANDOM_CLOSE_PACKING}): lower the density or the minimum distances"
        )
    reduced, _ = minkowski_reduce(full_cell)
    shortest = float(np.linalg.norm(reduced[0]))
    if shortest < diameters.max():
        raise ValueError(
            f"cell too small: its shortest period {shortest:.2f} Å is below the minimum "
            f"distance {diameters.max():.2f} Å between like atoms"
        )

    # ase-ga draws with the legacy RandomState interface
    legacy = np.random.RandomState(rng.integers(2**32 - 1))
    generator = StartGenerator(
        Atoms(cell=reduced, pbc=True),
        [(s, k) for s, k in counts.items()],
        pair_min,
        test_too_far=False,  # isolated atoms are fine in a liquid
        rng=legacy,
    )
    bound = np.array([[pair_min[(a, b)] for b in Z] for a in Z])
    for _ in range(max_attempts):
        atoms = generator.get_new_candidate(maxiter=100 * n)
        if atoms is None:
            continue
        # ase-ga only looks at neighbouring images; check with the true minimum image
        kind = np.array([Z.index(z) for z in atoms.numbers])
        limits = bound[np.ix_(kind, kind)]
        dist = atoms.get_all_distances(mic=True) + np.diag(np.full(n, np.inf))
        if np.all(dist >= limits - 1e-9):
            break
    else:
        raise RuntimeError(
            f"could not place {n} atoms at the minimum distances in {max_attempts} attempts "
            f"(hard-sphere packing fraction {fraction:.2f}): lower the density or the "
            "minimum distances, or raise max_attempts"
        )
    atoms.set_cell(full_cell, scale_atoms=False)
    atoms.wrap()
    atoms.set_tags(0)
    return atoms


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _validate_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _validate_elements(symbols) -> None:
    for symbol in symbols:
        if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
            raise ValueError(f"unknown element {symbol!r}")


def _validate_lattice(name: str, a: float, c: float | None) -> None:
    if name not in LATTICES:
        raise ValueError(f"unknown lattice {name!r}; choose from {', '.join(LATTICES)}")
    if not a > 0:
        raise ValueError(f"lattice constant a must be positive, got {a}")
    if c is not None and (name != "hcp" or not c > 0):
        raise ValueError("c must be positive and is only used for hcp")


def _validate_parent(parent: Atoms) -> None:
    if not isinstance(parent, Atoms):
        raise TypeError(f"parent must be an ase.Atoms, got {type(parent).__name__}")
    if len(parent) == 0:
        raise ValueError("parent has no atoms")
    if parent.cell.rank < 3 or abs(parent.cell.volume) < 1e-9:
        raise ValueError("parent cell has zero volume; a 3D periodic cell is needed")


def _validate_matrix(matrix) -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim == 0:
        m = np.eye(3) * m
    elif m.shape == (3,):
        m = np.diag(m)
    if m.shape != (3, 3) or not np.all(np.equal(np.mod(m, 1), 0)):
        raise ValueError("supercell matrix must be an integer, 3 integers or a 3x3 integer matrix")
    m = m.astype(int)
    det = round(np.linalg.det(m))
    if det <= 0:
        raise ValueError(f"supercell matrix must have a positive determinant, got {det}")
    return m


def _validate_volume(n: int, density, volume_per_atom, cell) -> float:
    if density is not None and volume_per_atom is not None:
        raise ValueError("give at most one of density and volume_per_atom")
    if cell is not None:
        cell_volume = abs(Atoms(cell=cell).cell.volume)
        if cell_volume < 1e-9:
            raise ValueError("cell has zero volume")
    if density is not None:
        if not density > 0:
            raise ValueError(f"density must be positive, got {density}")
        return n / float(density)
    if volume_per_atom is not None:
        if not volume_per_atom > 0:
            raise ValueError(f"volume_per_atom must be positive, got {volume_per_atom}")
        return n * float(volume_per_atom)
    if cell is None:
        raise ValueError("give density, volume_per_atom or cell")
    return cell_volume


def _validate_blmin(Z: list[int], blmin) -> dict[tuple[int, int], float]:
    given = {}
    for (a, b), d in blmin.items():
        za, zb = _atomic_number(a), _atomic_number(b)
        if za == 0 or zb == 0:
            raise ValueError(f"unknown element in blmin key {(a, b)!r}")
        if not d >= 0:
            raise ValueError(f"blmin distances must be non-negative, got {d} for {(a, b)!r}")
        given[(za, zb)] = given[(zb, za)] = float(d)
    out = {}
    for a in Z:
        for b in Z:
            if (a, b) not in given:
                pair = (chemical_symbols[a], chemical_symbols[b])
                raise ValueError(f"blmin has no entry for the pair {pair}")
            out[(a, b)] = given[(a, b)]
    return out


def _atomic_number(x) -> int:
    """Atomic number of a symbol or number; 0 when it names no element."""
    if isinstance(x, str):
        return atomic_numbers.get(x, 0)
    if isinstance(x, numbers.Integral) and 0 < x < len(chemical_symbols):
        return int(x)
    return 0
