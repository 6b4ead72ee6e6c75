"""Processed-data cache: read a source once, keep the encoded crystals on disk.

A processed data set is a directory::

    DIR/data.npz      arrays (no pickles): x, numbers, n_sites, spacegroup, energy, formula,
                      ids, group, split, rank, source_index
    DIR/meta.json     schema version, package version, settings, source fingerprint, cache key,
                      SHA-256 of data.npz, counts, what was filtered and why
    DIR/summary.*     counts per split / space group / element / size, and a histogram PNG

``build_dataset`` is resumable and atomic. Rows are parsed and encoded in chunks, each chunk
written to ``DIR/.partial-<key>/`` with a rename; an interrupted build continues from the
first missing chunk. The final files are written to temporary names and renamed, ``data.npz``
before ``meta.json``, so a reader sees either the old data set or the new one. The cache is
rebuilt when the source bytes, the settings or the schema change; a cache whose data file does
not match the checksum in its metadata is reported as corrupt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from .._atomic import atomic_path, atomic_write_text
from ..representation.elements import ELEMENT_SYMBOLS
from ..representation.spacegroups import get_spacegroup
from ..representation.tensors import (
    CrystalTensors,
    _formula_rank,
    atoms_to_tensors,
    n_rows,
    tensors_to_atoms,
)
from .processing import (
    SPLIT_NAMES,
    duplicate_mask,
    frequency_mask,
    modification_pairs,
    polymorph_groups,
    split_by_formula,
)
from .readers import DataFormatError, open_source

SCHEMA_VERSION = 1
DATA_FILE = "data.npz"
META_FILE = "meta.json"


class CacheError(RuntimeError):
    """A processed data set on disk is missing, corrupt or from an incompatible schema."""


@dataclass
class BuildSettings:
    """Everything that decides the content of a processed data set (part of the cache key).

    ``max_sites`` defaults to ``max_atoms``; ``energy_range`` (eV/atom, open interval) drops
    structures outside it (the paper kept (-5, 5)); ``split`` are the train/val/test fractions
    of structures, assigned by reduced formula.
    """

    max_atoms: int = 60
    min_sites: int = 4
    max_sites: int | None = None
    min_fraction: float = 0.01
    symprec: float = 0.1
    order: str = "formula"
    niggli: bool = True
    min_distance: float = 0.5
    split: tuple[float, float, float] = (0.9, 0.05, 0.05)
    seed: int = 0
    energy_range: tuple[float, float] | None = None
    deduplicate: bool = False
    split_by: str = "formula"
    format: str = "auto"
    energy_column: str | None = None
    chunk_size: int = 1000

    def __post_init__(self) -> None:
        if self.split_by not in ("formula", "structure"):
            raise ValueError(f"unknown split_by {self.split_by!r}; choose formula or structure")
        if self.max_sites is not None and self.max_sites > self.max_atoms:
            raise ValueError(f"max_sites={self.max_sites} exceeds max_atoms={self.max_atoms}")
        self.split = tuple(float(s) for s in self.split)
        if self.energy_range is not None:
            self.energy_range = tuple(float(e) for e in self.energy_range)
        if self.min_sites > self.site_limit:
            raise ValueError(f"min_sites={self.min_sites} is larger than max_sites={self.site_limit}")

    @property
    def site_limit(self) -> int:
        return self.max_atoms if self.max_sites is None else self.max_sites

    def key_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_sites"] = self.site_limit
        d.pop("chunk_size")  # how the work is cut does not change the result
        return d


def reduced_formula(numbers: np.ndarray) -> str:
    """Reduced formula in pymatgen's order (electronegativity), e.g. ``Cu3Au``, ``SrTiO3``."""
    counts = Counter(int(z) for z in numbers)
    divisor = 0
    for c in counts.values():
        divisor = gcd(divisor, c)
    parts = []
    for z in sorted(counts, key=_formula_rank):
        n = counts[z] // divisor
        parts.append(ELEMENT_SYMBOLS[z - 1] + (str(n) if n > 1 else ""))
    return "".join(parts)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


class ProcessedDataset:
    """An encoded data set in memory: arrays plus metadata (see module docstring)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Path | None = None):
        self.arrays = arrays
        self.meta = meta
        self.path = path

    def __len__(self) -> int:
        return len(self.arrays["energy"])

    @property
    def max_atoms(self) -> int:
        return self.arrays["x"].shape[1] - 4

    def indices(self, split: str | None = None) -> np.ndarray:
        """Structure indices of a split (``"train"``, ``"val"``, ``"test"``) or of all."""
        if split is None or split == "all":
            return np.arange(len(self))
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; choose from all, {', '.join(SPLIT_NAMES)}")
        return np.flatnonzero(self.arrays["split"] == SPLIT_NAMES.index(split))

    def tensors(self, i: int) -> CrystalTensors:
        a = self.arrays
        n = int(a["n_sites"][i])
        return CrystalTensors(
            x=a["x"][i].astype(float),
            numbers=a["numbers"][i, :n].astype(int),
            spacegroup=int(a["spacegroup"][i]),
            formation_energy=float(a["energy"][i]),
        )

    def atoms(self, i: int) -> Atoms:
        """Structure ``i`` as ``ase.Atoms`` (info: formation_energy, spacegroup, id, formula)."""
        t = self.tensors(i)
        atoms = tensors_to_atoms(t.x, t.numbers, spacegroup=t.spacegroup, formation_energy=t.formation_energy)
        atoms.info["id"] = str(self.arrays["ids"][i])
        atoms.info["formula"] = str(self.arrays["formula"][i])
        return atoms

    def groups(self, split: str | None = None) -> dict[str, np.ndarray]:
        """Polymorph groups (reduced formula -> indices sorted by energy) within a split."""
        idx = self.indices(split)
        groups = polymorph_groups(self.arrays["formula"][idx], self.arrays["energy"][idx])
        return {f: idx[m] for f, m in groups.items()}

    def pairs(self, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Modification pairs (lowest, non-lowest) within a split; see ``modification_pairs``."""
        return modification_pairs(self.groups(split))

    @classmethod
    def load(cls, directory: str | Path) -> ProcessedDataset:
        """Load a processed data set, checking schema and checksum."""
        directory = Path(directory)
        meta_path, data_path = directory / META_FILE, directory / DATA_FILE
        if not meta_path.exists() or not data_path.exists():
            raise CacheError(f"{directory} is not a processed data set (no {META_FILE} / {DATA_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise CacheError(f"{meta_path} is corrupt: {exc}") from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise CacheError(
                f"{directory} has schema version {meta.get('schema_version')}, this version of "
                f"ase_crystalgen reads {SCHEMA_VERSION}; rebuild it with `crystalgen dataset build`"
            )
        digest = file_sha256(data_path)
        if digest != meta.get("data_sha256"):
            raise CacheError(f"{data_path} is corrupt: its checksum does not match {META_FILE}; rebuild it")
        try:
            with np.load(data_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:
            raise CacheError(f"{data_path} is corrupt: {exc}") from None
        return cls(arrays, meta, directory)


def _encode_chunk(reader, rows, settings: BuildSettings) -> dict[str, np.ndarray]:
    max_atoms = settings.max_atoms
    x, numbers, n_sites, sgs, energies, formulas, ids, index = [], [], [], [], [], [], [], []
    skipped: list[tuple[int, str, str]] = []  # (row, category, reason)
    for row in rows:
        try:
            atoms = reader.parse(row)
        except (DataFormatError, ValueError) as exc:
            skipped.append((row.index, "unreadable", str(exc)))
            continue
        n = len(atoms)
        if not settings.min_sites <= n <= settings.site_limit:
            skipped.append((row.index, "size", f"{n} sites"))
            continue
        energy = atoms.info["formation_energy"]
        if (
            settings.energy_range is not None
            and not settings.energy_range[0] < energy < settings.energy_range[1]
        ):
            skipped.append((row.index, "energy", f"{energy} eV/atom"))
            continue
        try:
            if "spacegroup" not in atoms.info:
                atoms.info["spacegroup"] = get_spacegroup(atoms, settings.symprec)
            t = atoms_to_tensors(
                atoms,
                max_atoms=max_atoms,
                order=settings.order,
                niggli=settings.niggli,
                min_distance=settings.min_distance,
            )
        except ValueError as exc:
            skipped.append((row.index, "invalid", str(exc)))
            continue
        padded = np.zeros(max_atoms, dtype=np.int16)
        padded[: t.n_sites] = t.numbers
        x.append(t.x)
        numbers.append(padded)
        n_sites.append(t.n_sites)
        sgs.append(t.spacegroup)
        energies.append(t.formation_energy)
        formulas.append(reduced_formula(t.numbers))
        ids.append(str(atoms.info.get("id", row.index)))
        index.append(row.index)
    return {
        "x": np.array(x, dtype=float).reshape(-1, n_rows(max_atoms), 3),
        "numbers": np.array(numbers, dtype=np.int16).reshape(-1, max_atoms),
        "n_sites": np.array(n_sites, dtype=np.int16),
        "spacegroup": np.array(sgs, dtype=np.int16),
        "energy": np.array(energies, dtype=float),
        "formula": np.array(formulas, dtype=str),
        "ids": np.array(ids, dtype=str),
        "source_index": np.array(index, dtype=np.int64),
        "skipped_index": np.array([s[0] for s in skipped], dtype=np.int64),
        "skipped_kind": np.array([s[1] for s in skipped], dtype=str),
        "skipped_reason": np.array([s[2] for s in skipped], dtype=str),
    }


def _chunks(iterator, size: int):
    chunk = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _load_chunk(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception:
        return None


def cache_key(source_sha: str, settings: BuildSettings) -> str:
    payload = json.dumps(
        {"schema": SCHEMA_VERSION, "source": source_sha, "settings": settings.key_dict()}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def build_dataset(
    source: str | Path,
    out: str | Path,
    settings: BuildSettings | None = None,
    progress: bool = True,
    force: bool = False,
    **overrides: Any,
) -> ProcessedDataset:
    """Read ``source``, encode, filter, group and split it, and store it under ``out``.

    Returns the cached data set unchanged when source and settings match an existing build
    (unless ``force``). Keyword overrides set fields of :class:`BuildSettings`.
    """
    from tqdm.auto import tqdm

    from .. import __version__

    settings = settings or BuildSettings()
    if overrides:
        settings = BuildSettings(**{**asdict(settings), **overrides})
    source, out = Path(source), Path(out)
    reader = open_source(source, settings.format, settings.energy_column)
    source_sha = file_sha256(source) if source.is_file() else ""
    key = cache_key(source_sha, settings)

    if not force and (out / META_FILE).exists():
        try:
            existing = ProcessedDataset.load(out)
        except CacheError as exc:
            warnings.warn(f"rebuilding {out}: {exc}", stacklevel=2)
        else:
            if existing.meta.get("key") == key:
                return existing

    partial = out / f".partial-{key[:16]}"
    partial.mkdir(parents=True, exist_ok=True)
    parts: list[dict[str, np.ndarray]] = []
    bar = tqdm(desc=f"encoding {source.name}", unit="rows", disable=not progress)
    for k, rows in enumerate(_chunks(reader.rows(), settings.chunk_size)):
        path = partial / f"chunk-{k:06d}.npz"
        chunk = _load_chunk(path) if path.exists() else None
        if chunk is None:
            chunk = _encode_chunk(reader, rows, settings)
            atomic_save_npz(path, **chunk)
        parts.append(chunk)
        bar.update(len(rows))
    bar.close()

    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if not merged or len(merged["energy"]) == 0:
        reasons = merged.get("skipped_reason", np.array([], dtype=str))
        hint = f"; first problem: {reasons[0]}" if len(reasons) else ""
        raise ValueError(f"no usable structures in {source}{hint}")
    dataset = _finalise(merged, settings, key, source, source_sha, reader.energy_column, __version__)
    _write(dataset, out)
    shutil.rmtree(partial, ignore_errors=True)
    dataset.path = out
    try:
        from .summary import write_summary

        write_summary(dataset, out)
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        pass
    return dataset


def _finalise(merged, settings, key, source, source_sha, energy_column, version) -> ProcessedDataset:
    skipped = Counter(merged["skipped_kind"].tolist())
    elements = [[ELEMENT_SYMBOLS[z - 1] for z in row[row > 0]] for row in merged["numbers"]]
    keep, rare_el, rare_sg = frequency_mask(elements, merged["spacegroup"], settings.min_fraction)
    n_read = len(merged["energy"]) + len(merged["skipped_index"])
    arrays = {
        k: merged[k][keep] for k in ("x", "numbers", "n_sites", "spacegroup", "energy", "formula", "ids")
    }
    arrays["source_index"] = merged["source_index"][keep]
    if len(arrays["energy"]) == 0:
        raise ValueError(
            f"the frequency filter (min_fraction={settings.min_fraction}) removed every structure; lower it"
        )
    n_duplicates = 0
    if settings.deduplicate:
        structures = [
            tensors_to_atoms(arrays["x"][i], arrays["numbers"][i, : arrays["n_sites"][i]])
            for i in range(len(arrays["energy"]))
        ]
        unique, _ = duplicate_mask(structures, arrays["formula"], arrays["energy"])
        n_duplicates = int((~unique).sum())
        arrays = {k: v[unique] for k, v in arrays.items()}
    # a split by structure is for sets where every structure shares one formula (Carbon-24);
    # after deduplication no crystal can sit in two splits
    keys = (
        arrays["formula"] if settings.split_by == "formula" else np.arange(len(arrays["energy"])).astype(str)
    )
    split = split_by_formula(keys, settings.split, np.random.default_rng(settings.seed))
    groups = polymorph_groups(arrays["formula"], arrays["energy"])
    names = sorted(groups)
    group = np.zeros(len(split), dtype=np.int32)
    rank = np.zeros(len(split), dtype=np.int32)
    for g, name in enumerate(names):
        group[groups[name]] = g
        rank[groups[name]] = np.arange(len(groups[name]))
    arrays.update(split=split, group=group, rank=rank)
    first_problems = [
        {"row": int(i) + 1, "kind": str(k), "reason": str(r)}
        for i, k, r in zip(
            merged["skipped_index"][:20], merged["skipped_kind"][:20], merged["skipped_reason"][:20]
        )
        if k != "size"
    ][:10]
    meta = {
        "schema_version": SCHEMA_VERSION,
        "ase_crystalgen_version": version,
        "key": key,
        "source": {"path": str(source), "sha256": source_sha, "energy_column": energy_column},
        "settings": settings.key_dict(),
        "counts": {
            "rows_read": int(n_read),
            "structures": int(len(split)),
            "polymorph_groups": len(names),
            "skipped": dict(skipped),
            "removed_by_frequency": int((~keep).sum()),
            "duplicates": n_duplicates,
            **{name: int((split == s).sum()) for s, name in enumerate(SPLIT_NAMES)},
        },
        "rare_elements": rare_el,
        "rare_spacegroups": rare_sg,
        "first_problems": first_problems,
    }
    return ProcessedDataset(arrays, meta)


def _write(dataset: ProcessedDataset, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_npz(out / DATA_FILE, **dataset.arrays)
    dataset.meta["data_sha256"] = file_sha256(out / DATA_FILE)
    atomic_write_text(out / META_FILE, json.dumps(dataset.meta, indent=2) + "\n")


def load_dataset(directory: str | Path) -> ProcessedDataset:
    """Load a processed data set written by :func:`build_dataset`."""
    return ProcessedDataset.load(directory)


__all__ = [
    "BuildSettings",
    "CacheError",
    "ProcessedDataset",
    "atomic_save_npz",
    "atomic_write_text",
    "build_dataset",
    "load_dataset",
    "reduced_formula",
]
