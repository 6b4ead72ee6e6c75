"""Element one-hot vectors and the elemental-property table (paper section 2.1).

Each atom is described by a one-hot vector over the 103 elements H-Lr (index ``Z - 1``) and
by 22 elemental properties. The properties were taken from the ``mendeleev`` package at
development time by ``scripts/build_elemental_properties.py`` and are shipped as
``ase_crystalgen/data/elemental_properties.csv`` (raw values) with
``elemental_properties.json`` (units, sources, the mean and standard deviation used for
standardisation, and every imputed entry); this module needs only numpy. Details, coverage
and imputation rules: ``docs/elemental-properties.md``.

The 22 properties, in column order (units of the raw values):

======================  ================  ==================================================
name                    unit              meaning
======================  ================  ==================================================
atomic_number                             Z
period                                    period
group                                     group 1-18; f-block Ce-Lu, Th-Lr in group 3
mendeleev_number                          Mendeleev number (chemical-similarity ordering)
atomic_weight           Da                standard atomic weight
atomic_radius           pm                atomic radius of Rahm et al.
covalent_radius         pm                single-bond covalent radius of Pyykko
vdw_radius              pm                van der Waals radius
log10_atomic_volume     log10(cm^3/mol)   molar volume at 295 K
log10_density           log10(g/cm^3)     density at 295 K
en_pauling                                Pauling electronegativity
ionization_energy       eV                first ionisation energy
electron_affinity       eV                electron affinity, 0 for unbound anions
dipole_polarizability   bohr^3            static dipole polarisability
melting_point           K                 melting point
boiling_point           K                 boiling (or sublimation) point
heat_of_formation       kJ/mol            atomisation enthalpy
n_s_valence                               valence s electrons
n_p_valence                               valence p electrons
n_d_valence                               valence d electrons
n_f_valence                               valence f electrons
n_unfilled                                empty states in partly filled valence subshells
======================  ================  ==================================================

Standardised values are ``(raw - mean) / std`` with the mean and population standard
deviation of each column over the 103 elements, as recorded in the json.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import numpy as np

N_ELEMENTS = 103
N_PROPERTIES = 22

# fmt: off
ELEMENT_SYMBOLS: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne",
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr",
    "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn",
    "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
    "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
    "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm",
    "Md", "No", "Lr",
)
# only so that an error can say which element was asked for
_HEAVIER_SYMBOLS = ("Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og")
# fmt: on

PROPERTY_NAMES: tuple[str, ...] = (
    "atomic_number", "period", "group", "mendeleev_number", "atomic_weight", "atomic_radius",
    "covalent_radius", "vdw_radius", "log10_atomic_volume", "log10_density", "en_pauling",
    "ionization_energy", "electron_affinity", "dipole_polarizability", "melting_point",
    "boiling_point", "heat_of_formation", "n_s_valence", "n_p_valence", "n_d_valence",
    "n_f_valence", "n_unfilled",
)

_Z_OF_SYMBOL = {s: z for z, s in enumerate(ELEMENT_SYMBOLS + _HEAVIER_SYMBOLS, start=1)}
_CSV_NAME = "elemental_properties.csv"
_JSON_NAME = "elemental_properties.json"


def _read_data(name: str) -> str:
    return resources.files("ase_crystalgen").joinpath("data", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """The raw and the standardised (103, 22) tables, read-only, read once."""
    rows = list(csv.reader(io.StringIO(_read_data(_CSV_NAME))))
    meta = json.loads(_read_data(_JSON_NAME))
    header, body = rows[0], rows[1:]
    # a table that disagrees with this module's constants would silently shift every feature
    if (
        header[2 : 2 + N_PROPERTIES] != list(PROPERTY_NAMES)
        or [f["name"] for f in meta["features"]] != list(PROPERTY_NAMES)
        or tuple(r[0] for r in body) != ELEMENT_SYMBOLS
    ):
        raise RuntimeError(f"{_CSV_NAME} does not match ase_crystalgen.representation.elements")
    raw = np.array([[float(v) for v in r[2 : 2 + N_PROPERTIES]] for r in body], dtype=np.float64)
    mean = np.array([f["mean"] for f in meta["features"]], dtype=np.float64)
    std = np.array([f["std"] for f in meta["features"]], dtype=np.float64)
    standard = (raw - mean) / std
    raw.flags.writeable = False
    standard.flags.writeable = False
    return raw, standard


def property_table(standardised: bool = True) -> np.ndarray:
    """Return the elemental-property table of the 103 elements H-Lr.

    Parameters
    ----------
    standardised : bool, optional
        If True (default), each column is ``(raw - mean) / std`` with the mean and the
        population standard deviation over the 103 elements; otherwise the raw values in the
        units listed in the module docstring.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(103, 22)`` and dtype float64; row ``Z - 1`` is element ``Z``, columns
        follow :data:`PROPERTY_NAMES`. A fresh copy, free to modify.
    """
    raw, standard = _tables()
    return (standard if standardised else raw).copy()


def atomic_numbers_of(symbols_or_numbers: Iterable[str | int] | np.ndarray) -> np.ndarray:
    """Return the atomic numbers of a sequence of element symbols or atomic numbers.

    Parameters
    ----------
    symbols_or_numbers : iterable of str or int, or numpy.ndarray
        Element symbols (``"Fe"``, case-sensitive) or atomic numbers, possibly mixed.

    Returns
    -------
    numpy.ndarray
        1-D int64 array of atomic numbers in 1-103.

    Raises
    ------
    ValueError
        For an unknown symbol, an element beyond Lr, an atomic number outside 1-103, or an
        array that is not 1-D.
    TypeError
        For a bare string or an entry that is neither a str nor an integer.
    """
    if isinstance(symbols_or_numbers, str):
        raise TypeError("expected a sequence of element symbols or atomic numbers, not a str")
    if isinstance(symbols_or_numbers, np.ndarray) and symbols_or_numbers.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {symbols_or_numbers.shape}")
    if isinstance(symbols_or_numbers, np.ndarray) and symbols_or_numbers.dtype.kind in "iu":
        # whole-array check: dataset caches pass long integer arrays
        numbers = symbols_or_numbers.astype(np.int64)
        bad = numbers[(numbers < 1) | (numbers > N_ELEMENTS)]
        if bad.size:
            raise ValueError(f"atomic number {bad[0]} is outside the supported range 1-{N_ELEMENTS}")
        return numbers
    return np.array([_atomic_number(item) for item in symbols_or_numbers], dtype=np.int64)


def _atomic_number(item: object) -> int:
    if isinstance(item, (str, np.str_)):
        z = _Z_OF_SYMBOL.get(str(item))
        if z is None:
            raise ValueError(f"unknown element {str(item)!r}")
        if z > N_ELEMENTS:
            raise ValueError(
                f"element {item} (Z={z}) is outside the supported range H-Lr (Z=1-{N_ELEMENTS})"
            )
        return z
    if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
        raise TypeError(f"expected an element symbol or an atomic number, got {item!r}")
    if not 1 <= item <= N_ELEMENTS:
        raise ValueError(f"atomic number {item} is outside the supported range 1-{N_ELEMENTS}")
    return int(item)


def _rows(numbers: Iterable[str | int] | np.ndarray, length: int | None) -> tuple[np.ndarray, int]:
    z = atomic_numbers_of(numbers)
    rows = len(z) if length is None else int(length)
    if rows < 0:
        raise ValueError(f"length must be non-negative, got {rows}")
    if len(z) > rows:
        raise ValueError(f"{len(z)} atoms do not fit in {rows} rows")
    return z, rows


def one_hot(numbers: Iterable[str | int] | np.ndarray, length: int | None = None) -> np.ndarray:
    """Return the one-hot element matrix of a list of atoms, zero-padded.

    Parameters
    ----------
    numbers : iterable of int or str, or numpy.ndarray
        Atomic numbers or element symbols of the atoms (see :func:`atomic_numbers_of`).
    length : int, optional
        Number of rows; defaults to the number of atoms. Rows past the atoms are zero.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(length, 103)``; row ``i`` has a 1 in column ``Z_i - 1``.

    Raises
    ------
    ValueError
        For invalid elements, or more atoms than ``length`` rows.
    """
    z, rows = _rows(numbers, length)
    out = np.zeros((rows, N_ELEMENTS), dtype=np.float32)
    out[np.arange(len(z)), z - 1] = 1.0
    return out


def element_properties(
    numbers: Iterable[str | int] | np.ndarray, length: int | None = None, standardised: bool = True
) -> np.ndarray:
    """Return the elemental-property matrix of a list of atoms, zero-padded.

    Parameters
    ----------
    numbers : iterable of int or str, or numpy.ndarray
        Atomic numbers or element symbols of the atoms (see :func:`atomic_numbers_of`).
    length : int, optional
        Number of rows; defaults to the number of atoms. Rows past the atoms are zero.
    standardised : bool, optional
        Standardised (default) or raw properties, as in :func:`property_table`.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(length, 22)``; row ``i`` is the property row of atom ``i``.

    Raises
    ------
    ValueError
        For invalid elements, or more atoms than ``length`` rows.
    """
    z, rows = _rows(numbers, length)
    raw, standard = _tables()
    out = np.zeros((rows, N_PROPERTIES), dtype=np.float32)
    out[: len(z)] = (standard if standardised else raw)[z - 1]
    return out


__all__ = [
    "ELEMENT_SYMBOLS",
    "N_ELEMENTS",
    "N_PROPERTIES",
    "PROPERTY_NAMES",
    "atomic_numbers_of",
    "element_properties",
    "one_hot",
    "property_table",
]
