"""A store of finished relaxations, so that an interrupted batch resumes where it stopped.

:class:`RelaxationStore` is an ASE database (SQLite). Each finished relaxation is one row,
committed on its own as soon as it finishes, so Ctrl-C or a killed process loses only the
relaxation in flight. A row holds

* ``store_key``: which structure of the batch it is (a name the caller chooses);
* ``input_sha``: a fingerprint of the *input* structure, so that a resumed batch whose inputs
  changed is refused instead of mixed;
* the relaxed structure and its energy, forces and stress, for ``ase db`` and ``ase gui``;
* ``data["frame"]``: the result exactly (``Atoms.todict()``, ``info`` included, and the
  calculator's results), so a resumed batch returns what an uninterrupted one returns.

The store's metadata records the settings it was made with; opening it with other settings
raises :class:`~ase_crystalgen._runrecord.RunMismatch` naming the fields that differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .._runrecord import RunMismatch, check_settings

__all__ = ["RelaxationStore", "fingerprint"]


def fingerprint(atoms: Atoms) -> str:
    """SHA-256 (hex, 16 characters) of the numbers, positions, cell and pbc of ``atoms``."""
    h = hashlib.sha256()
    for array in (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc):
        a = np.ascontiguousarray(array)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _encodable(value: Any) -> bool:
    from ase.io.jsonio import encode

    try:
        encode(value)
    except (TypeError, ValueError):
        return False
    return True


def _frame(atoms: Atoms) -> str:
    """``atoms`` (with ``info``, arrays, constraints and calculator results) as JSON text."""
    from ase.io.jsonio import encode

    d = atoms.todict()
    d["info"] = {k: v for k, v in atoms.info.items() if _encodable(v)}
    results = dict(atoms.calc.results) if atoms.calc is not None else None
    return encode({"atoms": d, "results": results})


def _from_frame(text: str) -> Atoms:
    from ase.io.jsonio import decode

    d = decode(text)
    atoms = Atoms.fromdict(d["atoms"])
    if d["results"] is not None:
        atoms.calc = SinglePointCalculator(atoms, **d["results"])
    return atoms


class RelaxationStore:
    """Finished relaxations in an ASE SQLite database, one committed row each.

    Parameters
    ----------
    path : path
        The database file (created when missing); by convention ``*.db``.
    settings : dict, optional
        What the relaxations are run with (JSON-able). Recorded when the store is new; an
        existing store with other settings raises ``RunMismatch``.
    overwrite : bool
        Delete an existing store first.

    Examples
    --------
    >>> store = RelaxationStore("relaxed.progress.db", {"calculator": "emt", "fmax": 0.05})
    >>> relaxed = relax(structures, "emt", store=store)   # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, settings: dict[str, Any] | None = None,
                 overwrite: bool = False):
        from ase.db import connect

        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"relaxation store {self.path} is a directory, not a database file")
        if overwrite:
            self.path.unlink(missing_ok=True)
        existed = self.path.exists()
        try:
            # no `with db:` anywhere: outside such a block every write is its own transaction.
            # No ASE lock file: one left by a killed run made the next wait for ever; SQLite
            # locks and journals the file itself
            self._db = connect(self.path, type="db", use_lock_file=False)
            found = self._db.metadata.get("settings") if existed else None
        except sqlite3.DatabaseError as exc:  # a file that is not an ASE database
            raise RunMismatch(f"relaxation store {self.path} is not readable ({exc}); remove it") from None
        except sqlite3.Error as exc:
            raise OSError(f"cannot open relaxation store {self.path}: {exc}") from None
        self.settings = settings
        if settings is not None:
            check_settings(found, settings, str(self.path), "use --overwrite (overwrite=True) to start again")
            if found is None:
                try:
                    self._db.metadata = {"settings": json.loads(json.dumps(settings))}
                except sqlite3.Error as exc:
                    raise OSError(f"cannot write relaxation store {self.path}: {exc}") from None

    def __len__(self) -> int:
        return self._db.count("store_key")

    def keys(self) -> list[str]:
        """Keys of the finished relaxations, in the order they finished."""
        return [row.store_key[2:] for row in self._db.select("store_key", sort="id")]

    def get(self, key: str, start: Atoms | None = None) -> Atoms | None:
        """The finished relaxation of ``key``, or None.

        With ``start`` (the input structure), a stored result of another input raises
        ``RunMismatch``.
        """
        rows = list(self._db.select(store_key=f"k:{key}", limit=1))
        if not rows:
            return None
        row = rows[0]
        if start is not None and row.input_sha != fingerprint(start):
            raise RunMismatch(
                f"relaxation store {self.path} holds another input structure for {key!r}: the inputs "
                "changed since the run began; use --overwrite (overwrite=True) to start again"
            )
        return _from_frame(row.data["frame"])

    def put(self, key: str, start: Atoms, result: Atoms) -> None:
        """Commit the relaxation ``result`` of input ``start`` under ``key``."""
        row_atoms = result
        if not (np.isfinite(result.positions).all() and np.isfinite(result.cell.array).all()):
            row_atoms = Atoms(result.numbers, pbc=result.pbc)  # SQLite rows cannot hold NaN
        keys: dict[str, Any] = {"store_key": f"k:{key}", "input_sha": fingerprint(start)}
        for name in ("converged", "energy_per_atom", "relax_steps"):
            value = result.info.get(name)
            if isinstance(value, (bool, np.bool_)):
                keys[name] = bool(value)
            elif isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
                keys[name] = value.item() if hasattr(value, "item") else value
        keys["failed"] = "relax_error" in result.info
        self._db.write(row_atoms, data={"frame": _frame(result)}, **keys)
