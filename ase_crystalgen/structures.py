"""Small utilities on structures that the rest of the package shares, one of each.

* :func:`read_frames`: all frames of a file ASE can read, with one set of error messages;
* :func:`element_order` and :func:`element_counts`: the elements of structures in order of
  first appearance, and how many atoms of each;
* :func:`composition_amounts`: the one composition parser, a formula or a mapping to amounts
  of each element, with errors that name the bad part;
* :func:`check_structure` and :func:`min_distance`: sanity checks before a calculator sees a
  structure (no atoms, non-finite numbers, a degenerate cell, overlapping atoms);
* :func:`as_rng`: a ``numpy.random.Generator`` from ``None``, a seed or a generator;
* :func:`radial_distribution`: a smooth ``g(r)`` that works for small periodic cells.

Only NumPy and ASE are imported here.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping

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


def composition_amounts(
    composition: str | Mapping[str | int, float], *, whole: bool = True, zeros: bool = False
) -> dict[str, int] | dict[str, float]:
    """Amount of each element in a composition, by symbol, in the order written.

    Parameters
    ----------
    composition : str or mapping
        A formula (``"Cu3Au"``, ``"Sr(TiO3)2"``, ``"Ta0.5W0.5B6"``; brackets ``()``, ``[]``,
        ``{}`` nest and may carry a count, white space is ignored) or a mapping of element
        symbols or atomic numbers to amounts (``{"Cu": 3, 79: 1}``). An element written twice
        counts twice.
    whole : bool
        The amounts are numbers of atoms: they must be whole and come back as ``int``.
        Otherwise they come back as ``float`` (fractions, for instance).
    zeros : bool
        Allow amounts of zero (they are kept); the composition must still hold some atoms.

    Returns
    -------
    dict
        ``{symbol: amount}`` in order of first appearance.

    Raises
    ------
    TypeError
        For anything but a string or a mapping.
    ValueError
        With a message naming the bad part: formula text that cannot be read (the character and
        its position), an unknown element, amounts that are not numbers, negative, zero (unless
        ``zeros``), not finite or, with ``whole``, not whole, or no atoms at all.
    """
    if isinstance(composition, str):
        label = repr(composition)
        amounts = _formula_amounts(composition)
    elif isinstance(composition, Mapping):
        label = repr(dict(composition))
        amounts, not_numbers = {}, {}
        for key, value in composition.items():
            symbol = _element_symbol(key, label)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                not_numbers[symbol] = value
            else:
                amounts[symbol] = amounts.get(symbol, 0.0) + float(value)
        if not_numbers:
            raise ValueError(f"composition {label} has amounts that are not numbers {not_numbers}")
    else:
        raise TypeError(f"composition must be a dict or a formula string, got {type(composition).__name__}")
    bad = {s: a for s, a in amounts.items() if not math.isfinite(a) or a < 0 or (a == 0 and not zeros)}
    if bad:
        kind = "negative" if zeros else "non-positive"
        raise ValueError(f"composition {label} has {kind} or non-finite amounts {bad}")
    if not any(amounts.values()):
        raise ValueError(f"composition {label} has no atoms")
    if not whole:
        return amounts
    fractional = {s: a for s, a in amounts.items() if abs(a - round(a)) > 1e-8}
    if fractional:
        raise ValueError(
            f"composition {label} has non-integer amounts {fractional}: give the atoms of one cell "
            "(for instance Ta1W1B6, not Ta0.125W0.125B0.75)"
        )
    return {s: int(round(a)) for s, a in amounts.items()}


_FORMULA_TOKEN = re.compile(
    r"(?P<element>[A-Z][a-z]*)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<count>\d+(?:\.\d*)?|\.\d+)"
)
_CLOSES = {"(": ")", "[": "]", "{": "}"}


def _formula_amounts(text: str) -> dict[str, float]:
    """Element amounts of formula text (symbols checked, amounts not)."""

    def unreadable(why: str) -> ValueError:
        return ValueError(f"cannot read the formula {text!r}: {why}")

    amounts: dict[str, float] = {}
    # brackets still open: (bracket, its position, the amounts outside it)
    open_brackets: list[tuple[str, int, dict[str, float]]] = []
    counted = None  # what a count just read multiplies: an element or a closed group
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _FORMULA_TOKEN.match(text, pos)
        if match is None:
            hint = " (element symbols start with a capital letter)" if text[pos].isalpha() else ""
            raise unreadable(f"unexpected {text[pos]!r} at position {pos}{hint}")
        token = match.group()
        if match.lastgroup == "element":
            symbol = _element_symbol(token, repr(text))
            amounts[symbol] = amounts.get(symbol, 0.0) + 1.0
            counted = {symbol: 1.0}
        elif match.lastgroup == "open":
            open_brackets.append((token, pos, amounts))
            amounts, counted = {}, None
        elif match.lastgroup == "close":
            if not open_brackets or _CLOSES[open_brackets[-1][0]] != token:
                raise unreadable(f"{token!r} at position {pos} closes no bracket")
            _, start, outside = open_brackets.pop()
            if not amounts:
                raise unreadable(f"the brackets at position {start} hold nothing")
            counted = amounts
            for symbol, amount in counted.items():
                outside[symbol] = outside.get(symbol, 0.0) + amount
            amounts = outside
        else:
            if counted is None:
                raise unreadable(f"the count {token!r} at position {pos} follows no element or bracket")
            for symbol, amount in counted.items():
                amounts[symbol] += amount * (float(token) - 1.0)
            counted = None
        pos = match.end()
    if open_brackets:
        bracket, start, _ = open_brackets[-1]
        raise unreadable(f"the bracket {bracket!r} at position {start} is not closed")
    return amounts


def _element_symbol(key, label: str) -> str:
    """The chemical symbol of a symbol or an atomic number, or a ValueError naming ``key``."""
    from ase.data import atomic_numbers, chemical_symbols

    if isinstance(key, str) and atomic_numbers.get(key, 0) > 0:
        return key
    if isinstance(key, numbers.Integral) and not isinstance(key, bool) and 0 < key < len(chemical_symbols):
        return chemical_symbols[int(key)]
    raise ValueError(f"composition {label}: unknown element {key!r}")


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
    "composition_amounts",
    "element_counts",
    "element_order",
    "min_distance",
    "radial_distribution",
    "read_frames",
]
