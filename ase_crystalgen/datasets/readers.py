"""Readers that turn crystal data files into ``ase.Atoms`` with their conditions in ``info``.

Every reader returns structures whose ``info`` holds

* ``"formation_energy"``: the energy condition in eV/atom (the formation energy where the
  source has one; for Carbon-24 the DFT energy per atom stands in, and the column used is
  recorded by the data-set builder),
* ``"spacegroup"``: the space-group number when the source gives one (computed later with
  spglib otherwise),
* ``"id"``: the source's identifier (``material_id``, ``auid``, database id or row number),
* any other numeric columns of the source under their own names.

Formats: CDVAE-style CSV (a ``cif`` column: Perov-5, Carbon-24, MP-20), the AFLOW export CSV
of the conditional-generation paper, any file ``ase.io.read`` understands, ASE databases and
pymatgen structures. A reader is a pair: ``_rows`` (cheap: yields raw rows) and ``_parse``
(expensive: makes ``Atoms``), so that the data-set builder can resume after an interruption
without parsing finished rows again.
"""

from __future__ import annotations

import csv
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry import cellpar_to_cell

FORMATS = ("cdvae", "aflow", "ase", "db")
# columns that hold the energy condition, in order of preference
CDVAE_ENERGY_COLUMNS = ("formation_energy_per_atom", "heat_ref", "energy_per_atom", "formation_energy")
ASE_ENERGY_KEYS = ("formation_energy", "formation_energy_per_atom", "enthalpy_formation_atom", "heat_ref")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_FORMULA_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)")


class DataFormatError(ValueError):
    """A data file, or one row of it, cannot be read; the message names the file and row."""


@dataclass
class RawRow:
    """One unparsed entry of a source: its position, identifier and raw payload."""

    index: int
    payload: Any


@dataclass
class Reader:
    """A source file opened for reading: ``rows()`` is cheap, ``parse(row)`` makes Atoms."""

    path: Path
    format: str
    energy_column: str | None
    rows: Callable[[], Iterator[RawRow]]
    parse: Callable[[RawRow], Atoms]

    def read(self, errors: str = "raise") -> list[Atoms]:
        """All structures; ``errors="skip"`` drops unreadable rows with a warning."""
        out, bad = [], []
        for row in self.rows():
            try:
                out.append(self.parse(row))
            except (DataFormatError, ValueError) as exc:
                if errors == "raise":
                    raise
                bad.append(str(exc))
        if bad:
            warnings.warn(f"{self.path}: skipped {len(bad)} unreadable rows; first: {bad[0]}", stacklevel=2)
        return out


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its extension and, for CSV, its header."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data source {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".db", ".json") and _is_ase_db(path):
        return "db"
    if suffix == ".csv":
        header = _csv_header(path)
        if "cif" in header:
            return "cdvae"
        if all(c in header for c in ("geometry", "positions_fractional")):
            return "aflow"
        raise DataFormatError(
            f"{path}: CSV has neither a 'cif' column (CDVAE layout) nor 'geometry' and "
            f"'positions_fractional' columns (AFLOW layout); columns are {', '.join(header)}"
        )
    return "ase"


def _is_ase_db(path: Path) -> bool:
    if path.suffix.lower() == ".db":
        return True
    try:
        head = path.open().read(200)
    except (OSError, UnicodeDecodeError):
        return False
    return '"ids"' in head or '"nextid"' in head


def _not_text(path: Path, exc: UnicodeDecodeError, where: str = "") -> DataFormatError:
    return DataFormatError(
        f"{path}: not a UTF-8 text CSV file ({exc.reason} at byte {exc.start}{where}); is it the right file?"
    )


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        try:
            return next(csv.reader(fh))
        except StopIteration:
            raise DataFormatError(f"{path}: the CSV file is empty") from None
        except UnicodeDecodeError as exc:
            raise _not_text(path, exc) from None


def open_source(
    path: str | Path,
    format: str = "auto",
    energy_column: str | None = None,
    id_column: str | None = None,
) -> Reader:
    """Open a data file of any supported format as a :class:`Reader`."""
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {format!r}; choose from auto, {', '.join(FORMATS)}")
    if not path.exists():
        raise FileNotFoundError(f"data source {path} does not exist")
    if fmt == "cdvae":
        return _cdvae_reader(path, energy_column, id_column or "material_id")
    if fmt == "aflow":
        return _aflow_reader(path, energy_column or "enthalpy_formation_atom", id_column or "auid")
    if fmt == "db":
        return _db_reader(path, energy_column)
    return _ase_reader(path, energy_column)


# --- CSV helpers -------------------------------------------------------------------------


def _csv_rows(path: Path) -> Iterator[RawRow]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a whole CIF sits in one field
    with path.open(newline="", encoding="utf-8") as fh:
        i = -1
        try:
            for i, row in enumerate(csv.DictReader(fh)):
                yield RawRow(i, row)
        except UnicodeDecodeError as exc:
            raise _not_text(path, exc, f" of the text after row {i + 1}") from None


def _numeric_info(row: dict[str, str], skip: Iterable[str]) -> dict[str, float]:
    info = {}
    skip = set(skip)
    for key, value in row.items():
        if not key or key in skip or value is None:
            continue
        try:
            info[key] = float(value)
        except ValueError:
            continue
    return info


def _energy(value: str | float | None, where: str, column: str) -> float:
    if value is None or value == "":
        raise DataFormatError(f"{where}: no value in energy column {column!r}")
    try:
        energy = float(value)
    except ValueError:
        raise DataFormatError(f"{where}: energy {value!r} in column {column!r} is not a number") from None
    if not np.isfinite(energy):
        raise DataFormatError(f"{where}: energy in column {column!r} is {energy}")
    return energy


# --- CDVAE CSV ---------------------------------------------------------------------------


def _cdvae_reader(path: Path, energy_column: str | None, id_column: str) -> Reader:
    header = _csv_header(path)
    if "cif" not in header:
        raise DataFormatError(f"{path}: no 'cif' column; columns are {', '.join(header)}")
    if energy_column is None:
        energy_column = next((c for c in CDVAE_ENERGY_COLUMNS if c in header), None)
        if energy_column is None:
            raise DataFormatError(
                f"{path}: no energy column found (looked for {', '.join(CDVAE_ENERGY_COLUMNS)}); "
                "name one with energy_column="
            )
    elif energy_column not in header:
        raise DataFormatError(f"{path}: no column {energy_column!r}; columns are {', '.join(header)}")

    def parse(raw: RawRow) -> Atoms:
        row = raw.payload
        where = f"{path.name} row {raw.index + 1}"
        atoms = atoms_from_cif(row.get("cif") or "", where)
        atoms.info.update(_numeric_info(row, ("cif", id_column, "")))
        atoms.info["formation_energy"] = _energy(row.get(energy_column), where, energy_column)
        atoms.info["id"] = row.get(id_column) or str(raw.index)
        return atoms

    return Reader(path, "cdvae", energy_column, lambda: _csv_rows(path), parse)


def atoms_from_cif(text: str, where: str = "CIF") -> Atoms:
    """One ordered structure from CIF text (pymatgen's parser); errors name ``where``."""
    from pymatgen.core import Structure

    if not text.strip():
        raise DataFormatError(f"{where}: empty CIF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(text, fmt="cif")
    except Exception as exc:  # pymatgen raises many types for bad CIF text
        raise DataFormatError(f"{where}: cannot parse CIF ({type(exc).__name__}: {exc})") from None
    return atoms_from_structure(structure, where)


def atoms_from_structure(structure: Any, where: str = "structure") -> Atoms:
    """A pymatgen ``Structure`` as ``ase.Atoms``; disordered sites are refused."""
    from pymatgen.io.ase import AseAtomsAdaptor

    if not structure.is_ordered:
        raise DataFormatError(f"{where}: structure has partially occupied sites; only ordered crystals work")
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info = {k: v for k, v in atoms.info.items() if isinstance(v, (int, float, str))}
    atoms.set_tags(0)
    for key in list(atoms.arrays):
        if key not in ("numbers", "positions"):
            del atoms.arrays[key]
    return atoms


# --- AFLOW CSV ---------------------------------------------------------------------------


def _aflow_reader(path: Path, energy_column: str, id_column: str) -> Reader:
    header = _csv_header(path)
    missing = [c for c in ("geometry", "positions_fractional") if c not in header]
    if missing:
        raise DataFormatError(f"{path}: AFLOW layout needs columns {', '.join(missing)}")
    if energy_column not in header:
        raise DataFormatError(f"{path}: no column {energy_column!r}; columns are {', '.join(header)}")

    def parse(raw: RawRow) -> Atoms:
        row = raw.payload
        where = f"{path.name} row {raw.index + 1}"
        atoms = atoms_from_aflow_row(row, where)
        atoms.info["formation_energy"] = _energy(row.get(energy_column), where, energy_column)
        atoms.info["id"] = row.get(id_column) or str(raw.index)
        spg = row.get("spacegroup_relax")
        if spg not in (None, ""):
            atoms.info["spacegroup"] = int(float(spg))
        return atoms

    return Reader(path, "aflow", energy_column, lambda: _csv_rows(path), parse)


def atoms_from_aflow_row(row: dict[str, str], where: str = "AFLOW row") -> Atoms:
    """Build Atoms from the AFLOW export columns.

    ``geometry`` holds a, b, c, alpha, beta, gamma; ``positions_fractional`` the fractional
    coordinates in any bracket or separator style. Species come from ``species`` +
    ``composition`` (AFLUX fields, cell order) or else from ``pretty_formula`` (element-count
    tokens in cell order, scaled up to ``nsites`` when the formula is reduced).
    """
    geometry = [float(v) for v in _FLOAT.findall(row.get("geometry") or "")]
    if len(geometry) != 6:
        raise DataFormatError(
            f"{where}: geometry needs 6 numbers (a,b,c,alpha,beta,gamma), got {len(geometry)}"
        )
    coords = [float(v) for v in _FLOAT.findall(row.get("positions_fractional") or "")]
    if len(coords) % 3 or not coords:
        raise DataFormatError(f"{where}: positions_fractional does not hold x,y,z triples")
    frac = np.array(coords).reshape(-1, 3)
    symbols = _aflow_species(row, len(frac), where)
    try:
        cell = cellpar_to_cell(geometry)
    except Exception as exc:
        raise DataFormatError(f"{where}: impossible cell parameters {geometry}: {exc}") from None
    if not np.all(np.isfinite(cell)) or not np.all(np.isfinite(frac)):
        raise DataFormatError(f"{where}: cell or positions contain NaN")
    try:
        return Atoms(symbols, cell=cell, scaled_positions=frac, pbc=True)
    except (KeyError, ValueError) as exc:
        raise DataFormatError(f"{where}: {exc}") from None


def _aflow_species(row: dict[str, str], n: int, where: str) -> list[str]:
    species = [s.strip() for s in (row.get("species") or "").split(",") if s.strip()]
    counts = [int(float(c)) for c in _FLOAT.findall(row.get("composition") or "")]
    if not species or len(species) != len(counts):
        tokens = _FORMULA_TOKEN.findall(row.get("pretty_formula") or row.get("compound") or "")
        if not tokens:
            raise DataFormatError(f"{where}: no species (need species+composition or pretty_formula)")
        species = [t[0] for t in tokens]
        counts = [float(t[1]) if t[1] else 1.0 for t in tokens]
        total = sum(counts)
        scale = n / total
        if abs(scale - round(scale)) > 1e-6:
            raise DataFormatError(f"{where}: formula {row.get('pretty_formula')!r} does not fit {n} sites")
        counts = [int(round(c * scale)) for c in counts]
    if sum(counts) != n:
        raise DataFormatError(f"{where}: {n} positions but the composition has {sum(counts)} atoms")
    nsites = row.get("nsites")
    if nsites not in (None, "") and int(float(nsites)) != n:
        raise DataFormatError(f"{where}: nsites={nsites} but {n} positions")
    return [s for s, c in zip(species, counts) for _ in range(c)]


# --- ASE files and databases -------------------------------------------------------------


def _ase_energy(info: dict, energy_column: str | None, where: str) -> float:
    keys = (energy_column,) if energy_column else ASE_ENERGY_KEYS
    for key in keys:
        if key in info:
            return _energy(info[key], where, key)
    raise DataFormatError(
        f"{where}: no energy condition; set one of {', '.join(keys)} in atoms.info (eV/atom)"
    )


def _ase_reader(path: Path, energy_column: str | None) -> Reader:
    import ase.io

    def rows() -> Iterator[RawRow]:
        try:
            images = ase.io.read(path, index=":")
        except Exception as exc:
            raise DataFormatError(f"{path}: ASE cannot read it ({type(exc).__name__}: {exc})") from None
        for i, atoms in enumerate(images if isinstance(images, list) else [images]):
            yield RawRow(i, atoms)

    def parse(raw: RawRow) -> Atoms:
        atoms = raw.payload.copy()
        atoms.calc = None
        where = f"{path.name} structure {raw.index + 1}"
        atoms.info["formation_energy"] = _ase_energy(atoms.info, energy_column, where)
        atoms.info.setdefault("id", str(raw.index))
        return atoms

    return Reader(path, "ase", energy_column, rows, parse)


def _db_reader(path: Path, energy_column: str | None) -> Reader:
    import ase.db

    def rows() -> Iterator[RawRow]:
        try:
            db = ase.db.connect(str(path))
            selected = list(db.select())
        except Exception as exc:
            raise DataFormatError(
                f"{path}: not a readable ASE database ({type(exc).__name__}: {exc})"
            ) from None
        for i, row in enumerate(selected):
            yield RawRow(i, row)

    def parse(raw: RawRow) -> Atoms:
        row = raw.payload
        atoms = row.toatoms()
        info = dict(row.key_value_pairs)
        where = f"{path.name} id {row.id}"
        atoms.info.update(info)
        atoms.info["formation_energy"] = _ase_energy(info, energy_column, where)
        atoms.info.setdefault("id", str(row.id))
        return atoms

    return Reader(path, "db", energy_column, rows, parse)


# --- public one-call readers -------------------------------------------------------------


def read_cdvae_csv(path: str | Path, energy_column: str | None = None, errors: str = "raise") -> list[Atoms]:
    """Read a CDVAE-style CSV (Perov-5, Carbon-24, MP-20): a ``cif`` column plus properties.

    The energy condition comes from ``energy_column`` or the first of
    ``formation_energy_per_atom``, ``heat_ref``, ``energy_per_atom``, ``formation_energy``.
    """
    return open_source(path, "cdvae", energy_column).read(errors)


def read_aflow_csv(path: str | Path, energy_column: str = "enthalpy_formation_atom", errors: str = "raise"):
    """Read the AFLOW export layout (``geometry``, ``positions_fractional``, ...)."""
    return open_source(path, "aflow", energy_column).read(errors)


def read_ase(path: str | Path, energy_column: str | None = None, errors: str = "raise") -> list[Atoms]:
    """Read any ASE-readable file or ASE database; energies from ``info`` / key-value pairs."""
    return open_source(path, "auto" if Path(path).suffix.lower() != ".csv" else "ase", energy_column).read(
        errors
    )


def from_pymatgen(
    structures: Sequence[Any],
    formation_energies: Sequence[float] | None = None,
    ids: Sequence[str] | None = None,
) -> list[Atoms]:
    """pymatgen structures (or ``ComputedStructureEntry``-like objects) as Atoms with conditions.

    Energies come from ``formation_energies`` or each structure's
    ``properties["formation_energy"]``.
    """
    out = []
    for i, s in enumerate(structures):
        structure = getattr(s, "structure", s)
        where = f"structure {i}"
        atoms = atoms_from_structure(structure, where)
        if formation_energies is not None:
            energy = formation_energies[i]
        else:
            energy = (getattr(structure, "properties", None) or {}).get("formation_energy")
        if energy is not None:
            atoms.info["formation_energy"] = _energy(energy, where, "formation_energy")
        atoms.info["id"] = str(ids[i]) if ids is not None else str(i)
        out.append(atoms)
    return out
