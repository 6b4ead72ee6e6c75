"""Small utilities on structures that the rest of the package shares, one of each.

* :func:`read_frames`: all frames of a file ASE can read, with one set of error messages;
* :func:`element_order` and :func:`element_counts`: the elements of structures in order of
  first appearance, and how many atoms of each;
* :func:`formula_counts`: element counts of a chemical formula (ASE's reader);
* :func:`check_structure` and :func:`min_distance`: sanity checks before a calculator sees a
  structure (no atoms, non-finite numbers, a degenerate cell, overlapping atoms);
* :func:`as_rng`: a ``numpy.random.Generator`` from ``None``, a seed or a generator;
* :func:`radial_distribution`: a smooth ``g(r)`` that works for small periodic cells.

Only NumPy and ASE are imported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from ase import Atoms


def read_frames(
    path: str | os.PathLike,
    what: str = "structure",
    error: type[Exception] = ValueError,
    missing: type[Exception] = FileNotFoundError,
) -> list[Atoms]:
    """All frames of an ASE-readable file, or an error naming the file (and the frame).

    Parameters
    ----------
    path : the file.
    what : what the file holds, for the messages (``"target"``, ``"candidate"``, ...).
    error : exception raised for a file that cannot be read or holds no structures.
    missing : exception raised for a file that does not exist or is a directory.
    """
    import ase.io

    path = os.fspath(path)
    if not os.path.exists(path):
        raise missing(f"{what} file not found: {path}")
    if os.path.isdir(path):
        raise missing(f"{what} path is a directory, not a structure file: {path}")
    frames: list[Atoms] = []
    try:
        for atoms in ase.io.iread(path, index=":"):
            frames.append(atoms)
    except Exception as exc:  # ASE raises many kinds for unknown or corrupt files
        where = f"frame {len(frames)} of " if frames else ""
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise error(f"could not read {where}{what} file {path}: {msg}") from exc
    if not frames:
        raise error(f"{what} file {path} holds no structures")
    return frames


def element_order(structures: Atoms | Iterable[Atoms]) -> list[str]:
    """Chemical symbols of ``structures`` in order of first appearance."""
    if isinstance(structures, Atoms):
        structures = [structures]
    seen: dict[str, None] = {}
    for atoms in structures:
        seen.update(dict.fromkeys(atoms.get_chemical_symbols()))
    return list(seen)


def element_counts(structures: Atoms | Iterable[Atoms]) -> dict[str, int]:
    """Atoms of each element over ``structures``, in order of first appearance."""
    if isinstance(structures, Atoms):
        structures = [structures]
    counts: dict[str, int] = {}
    for atoms in structures:
        for symbol in atoms.get_chemical_symbols():
            counts[symbol] = counts.get(symbol, 0) + 1
    return counts


def formula_counts(formula: str) -> dict[str, int]:
    """Element counts of a formula (``"Cu3Au"``, ``"(CuAu)2"``), in the order written.

    ASE's formula reader; raises ValueError (``cannot read the formula ...``) for text it
    cannot read. The symbols are not checked against the periodic table: callers that need
    known (or EMT, or model) elements check them with their own message.
    """
    from ase.formula import Formula

    try:
        return dict(Formula(formula).count())
    except ValueError:
        raise ValueError(f"cannot read the formula {formula!r}") from None


def min_distance(atoms: Atoms, cutoff: float) -> float:
    """Shortest distance between two atoms, or an atom and a periodic image, below ``cutoff``
    (``inf`` when there is none)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, cutoff)
    return float(d.min()) if len(d) else float("inf")


def check_structure(atoms: Atoms, min_distance: float = 0.5) -> str | None:
    """Why a calculator should not see ``atoms``, or None when it may.

    Checks for no atoms, non-finite positions or cell, a degenerate periodic cell, and two atoms
    (or an atom and a periodic image) closer than ``min_distance`` Å.
    """
    if len(atoms) == 0:
        return "the structure has no atoms"
    if not np.isfinite(atoms.cell.array).all():
        return "the cell is not finite (NaN or inf)"
    if not np.isfinite(atoms.positions).all():
        bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
        return f"positions of atoms {bad[:5].tolist()} are not finite (NaN or inf)"
    if atoms.pbc.any():
        periodic = atoms.cell.array[atoms.pbc]
        if np.linalg.matrix_rank(periodic, tol=1e-6) < len(periodic):
            return "the periodic cell vectors are degenerate (zero volume)"
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff=min_distance)
    if len(d):
        k = int(np.argmin(d))
        a, b = int(i[k]), int(j[k])
        which = (
            f"atom {a} ({atoms[a].symbol}) and a periodic image of itself"
            if a == b
            else (f"atoms {a} ({atoms[a].symbol}) and {b} ({atoms[b].symbol})")
        )
        return (
            f"overlapping atoms: {which} are {d[k]:.3f} Å apart, closer than min_distance={min_distance:g} Å"
        )
    return None


#: closest approach, as a fraction of the sum of two atoms' covalent radii, below which a
#: generated structure is flagged (:func:`contact_ratio`); real crystals stay above about 0.75
CONTACT_FRACTION = 0.7


def contact_ratio(atoms: Atoms) -> float:
    """Smallest ``d_ij / (r_i + r_j)`` over pairs (and periodic images) of ``atoms``.

    ``r`` are ASE's covalent radii (Cordero et al.); the value is 1.0 when no pair is closer
    than the sum of its radii, and NaN for non-finite positions or cell.
    """
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
        return float("nan")
    radii = covalent_radii[atoms.numbers]
    i, j, d = neighbor_list("ijd", atoms, cutoff=radii)  # pairs closer than r_i + r_j
    if not len(d):
        return 1.0
    return float(min(1.0, (d / (radii[i] + radii[j])).min()))


def flag_close_contacts(structures: list[Atoms], fraction: float = CONTACT_FRACTION) -> list[Atoms]:
    """Write ``info["min_contact_ratio"]`` (:func:`contact_ratio`) and ``info["close_contact"]``
    (ratio below ``fraction``; False for a structure that is invalid anyway) into each of
    ``structures``, and return them."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"contact fraction must lie in (0, 1], got {fraction}")
    for atoms in structures:
        ratio = contact_ratio(atoms)
        atoms.info["min_contact_ratio"] = round(ratio, 4) if np.isfinite(ratio) else ratio
        atoms.info["close_contact"] = bool(np.isfinite(ratio) and ratio < fraction)
    return structures


def as_rng(rng: np.random.Generator | int | None, seeds: bool = True) -> np.random.Generator:
    """``rng`` as a ``numpy.random.Generator``: ``None`` gives a fresh one, an integer (when
    ``seeds``) seeds one, a generator is returned as it is. Nothing touches global state."""
    if rng is None:
        return np.random.default_rng()
    if seeds and isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        what = "a numpy.random.Generator or an integer seed" if seeds else "a numpy.random.Generator"
        raise TypeError(f"rng must be {what}, got {type(rng).__name__}")
    return rng


def radial_distribution(
    atoms: Atoms, rmax: float = 6.0, n_points: int = 300, sigma: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-broadened radial distribution function ``g(r)`` of a periodic structure.

    ``g(r) = V / (N^2 4 pi r^2) sum_{i != j} G_sigma(r - r_ij)`` over all periodic images,
    so it tends to 1 at large ``r`` and works for cells smaller than ``2 rmax`` (where
    histogram RDFs limited to half the cell do not).

    Parameters
    ----------
    atoms : periodic structure.
    rmax : largest distance in Angstrom.
    n_points : grid points in ``(0, rmax]``.
    sigma : Gaussian width in Angstrom (a few tens of atoms give spiky histograms otherwise).

    Returns
    -------
    r, g : (n_points,) arrays.
    """
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, rmax + 4 * sigma, self_interaction=False)
    r = np.linspace(rmax / n_points, rmax, n_points)
    # pairs in chunks: keeps the (pairs, grid) array small for large cells
    density = np.zeros_like(r)
    norm = 1.0 / (np.sqrt(2 * np.pi) * sigma)
    for start in range(0, len(d), 20_000):
        dd = d[start:start + 20_000, None]
        density += norm * np.exp(-0.5 * ((r[None, :] - dd) / sigma) ** 2).sum(axis=0)
    n = len(atoms)
    g = atoms.get_volume() / (n * n * 4 * np.pi * r**2) * density
    return r, g




__all__ = [
    "as_rng",
    "check_structure",
    "element_counts",
    "element_order",
    "formula_counts",
    "min_distance",
    "radial_distribution",
    "read_frames",
]
