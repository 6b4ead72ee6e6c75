"""Space groups as stacks of affine symmetry operations, and space-group detection.

Each of the 230 space groups is encoded, as in PGCGM and the conditional-generation paper, by
its symmetry operations written as 4x4 affine matrices ``[[R, t], [0, 0, 0, 1]]`` (R integer
rotation in fractional coordinates, t the translation in [0, 1)), stacked and zero-padded to
192 operations, the order of Fm-3m and the largest of any group in a conventional (centred)
setting. Centring translations are included, so the stack of a centred group lists every
operation of its conventional cell.

Setting: the operations come from spglib's database for the *default Hall setting* of each
group, the smallest Hall number of that group, which is the setting spglib standardises to:
unique axis b and cell choice 1 for monoclinic groups, origin choice 1 where the
International Tables give two, and hexagonal axes for the rhombohedral groups. Operations keep
spglib's order, identity first.

The encoding is a *label* for the network, not an operation applied to coordinates, so one
fixed setting per group is what matters.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
from ase import Atoms

N_SPACEGROUPS = 230


@contextmanager
def _quiet_spglib():
    """Silence spglib's DeprecationWarning about its error handling (raised on every call)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


MAX_OPERATIONS = 192


def validate_spacegroup(spacegroup: object) -> int:
    """Return ``spacegroup`` as an int in 1-230 or raise a ValueError that says why not.

    Accepts an integer (or an integral float / numpy integer) or a Hermann-Mauguin symbol
    such as ``"Fm-3m"`` or ``"P6_3/mmc"``.
    """
    if isinstance(spacegroup, str):
        return _number_from_symbol(spacegroup)
    if isinstance(spacegroup, bool) or spacegroup is None:
        raise ValueError(f"space group {spacegroup!r} is not a number 1-230 or a symbol")
    try:
        value = float(spacegroup)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"space group {spacegroup!r} is not a number 1-230 or a symbol") from None
    if not np.isfinite(value):
        raise ValueError(f"space group {spacegroup!r} is not a number 1-230")
    if value != int(value):
        raise ValueError(f"space group {spacegroup!r} is not an integer")
    number = int(value)
    if not 1 <= number <= N_SPACEGROUPS:
        raise ValueError(f"space group {number} is outside 1-230")
    return number


@lru_cache(maxsize=1)
def _symbol_table() -> dict[str, int]:
    import spglib

    table: dict[str, int] = {}
    with _quiet_spglib():
        types = [spglib.get_spacegroup_type(hall) for hall in range(1, 531)]
    for sg in types:
        for key in (sg.international_short, sg.international_full, sg.international):
            table.setdefault(_normalise_symbol(key), sg.number)
    return table


def _normalise_symbol(symbol: str) -> str:
    return symbol.replace(" ", "").replace("_", "").lower()


def _number_from_symbol(symbol: str) -> int:
    key = _normalise_symbol(symbol.strip())
    if key.isdigit():
        return validate_spacegroup(int(key))
    try:
        return _symbol_table()[key]
    except KeyError:
        raise ValueError(f"unknown space-group symbol {symbol!r}") from None


@lru_cache(maxsize=1)
def default_hall_numbers() -> np.ndarray:
    """Hall number of the default setting of each group; entry ``n - 1`` is group ``n``."""
    import spglib

    halls = np.zeros(N_SPACEGROUPS, dtype=int)
    with _quiet_spglib():
        for hall in range(530, 0, -1):  # downwards so that the smallest Hall number wins
            halls[spglib.get_spacegroup_type(hall).number - 1] = hall
    return halls


@lru_cache(maxsize=1)
def _operation_table() -> tuple[np.ndarray, np.ndarray]:
    import spglib

    table = np.zeros((N_SPACEGROUPS + 1, MAX_OPERATIONS, 4, 4), dtype=np.float32)
    counts = np.zeros(N_SPACEGROUPS + 1, dtype=int)
    for number, hall in enumerate(default_hall_numbers(), start=1):
        with _quiet_spglib():
            sym = spglib.get_symmetry_from_database(int(hall))
        rot, trans = sym["rotations"], np.mod(sym["translations"], 1.0)
        n = len(rot)
        table[number, :n, :3, :3] = rot
        table[number, :n, :3, 3] = trans
        table[number, :n, 3, 3] = 1.0
        counts[number] = n
    table.setflags(write=False)
    counts.setflags(write=False)
    return table, counts


def operation_table() -> np.ndarray:
    """All encodings at once, shape (231, 192, 4, 4) float32; row 0 is all zeros (no group).

    Read-only and cached: data sets index it with their space-group numbers.
    """
    return _operation_table()[0]


def spacegroup_operations(spacegroup: int | str) -> np.ndarray:
    """The (192, 4, 4) zero-padded affine operations of one space group (a float32 copy)."""
    return operation_table()[validate_spacegroup(spacegroup)].copy()


def n_operations(spacegroup: int | str) -> int:
    """Number of operations (including centring translations) in the default setting."""
    return int(_operation_table()[1][validate_spacegroup(spacegroup)])


def get_spacegroup(atoms: Atoms, symprec: float = 0.1, angle_tolerance: float = -1.0) -> int:
    """Space-group number of ``atoms`` from spglib at tolerance ``symprec`` (Angstrom).

    Raises a ValueError when spglib finds no symmetry (for instance overlapping atoms).
    """
    import spglib

    if symprec <= 0:
        raise ValueError(f"symprec must be positive, got {symprec}")
    cell = (np.asarray(atoms.cell[:], dtype=float), atoms.get_scaled_positions(), atoms.numbers)
    with _quiet_spglib():
        try:
            dataset = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
        except Exception:  # spglib >= 2.5 with the new error handling raises instead
            dataset = None
    if dataset is None:
        raise ValueError(
            f"spglib found no space group for {atoms.get_chemical_formula()} at symprec={symprec}"
        )
    return int(dataset.number)
