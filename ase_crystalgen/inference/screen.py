"""``crystalgen screen``: the paper's inference pipeline (section 7.1) as one resumable job.

conditions grid (space groups x formation energies) -> generate -> pre-relax with a universal
potential (or any ASE calculator) -> deduplicate (StructureMatcher) -> energy above the
convex hull -> an ASE database, a CSV / markdown summary and a plot.

Everything lives in one output directory:

* ``settings.json``: what was asked (a resumed screen must ask the same);
* ``candidates.extxyz``: the generated structures, written once, atomically;
* ``screen.db``: ASE database, one row per relaxed (or failed) candidate, keyed by ``cid``;
  each row is committed as its relaxation finishes, so an interrupted screen (Ctrl-C, a
  killed process) loses at most the relaxations in flight;
* ``references.db``: the reference relaxations, committed one by one in the same way;
* ``references.extxyz``: the hull's reference structures and energies (computed once);
* ``summary.csv``, ``summary.md``, ``screen.png``.

Inputs (the references and known-phase files, the calculator name, the model, the conditions)
are checked before any work; ``settings.json`` is written only once they pass.

Relaxations run in this process (``workers=1``), on a Dask ``LocalCluster`` of local
processes (``workers>1``) or on an existing Dask cluster (``scheduler="tcp://host:port"``).
"""

from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from .._atomic import atomic_path, atomic_write_text
from .._runrecord import RunMismatch, check_settings, read_settings, write_settings

SETTINGS = "settings.json"
CANDIDATES = "candidates.extxyz"
DATABASE = "screen.db"
REFERENCES = "references.extxyz"
REFERENCE_STORE = "references.db"


@dataclass
class ScreenSettings:
    """What a screen asks for. Serialised to ``settings.json``; a resume must match it."""

    model: str
    composition: str
    energies: list[float]
    spacegroups: list[int] | None = None
    n: int = 1
    method: str | None = None
    steps: int | None = None
    seed: int = 0
    calculator: str = "chgnet"
    fmax: float = 0.05
    relax_steps: int = 300
    cell_filter: bool = True
    symprec: float = 0.1
    known_phases: str | None = None
    references: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScreenError(RunMismatch):
    """An output directory that holds a different screen, or a corrupt one."""


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ScreenError(f"screen output {out} is a file; give a directory (new or of this screen)")


def _check_settings(out: Path, settings: ScreenSettings, force: bool) -> bool:
    """Compare with the recorded settings (nothing is written here); True when there are none."""
    if force:
        return True
    try:
        found = read_settings(out / SETTINGS)
        check_settings(found, settings.to_dict(), str(out), "use --overwrite (force=True) to start over",
                       what="a screen")
    except RunMismatch as exc:
        raise ScreenError(str(exc)) from None
    return found is None


def _start(out: Path, settings: ScreenSettings, force: bool) -> None:
    """Record the settings of a valid screen; ``force`` first removes an earlier screen's results."""
    out.mkdir(parents=True, exist_ok=True)
    if force:
        for name in (CANDIDATES, DATABASE, REFERENCES, REFERENCE_STORE):
            (out / name).unlink(missing_ok=True)
    write_settings(out / SETTINGS, settings.to_dict())


def _read_structures(path: str, what: str) -> list[Atoms]:
    """All frames of a user's file, or a ValueError naming the file (and the frame)."""
    from ..structures import read_frames

    return read_frames(path, what)


def _read_inputs(settings: ScreenSettings) -> tuple[list[Atoms], list[Atoms]]:
    """The given references (each with an energy) and known phases, checked before any work."""
    from ..relaxation import to_entry
    from ..structures import check_structure

    given = _read_structures(settings.references, "references") if settings.references else []
    for k, atoms in enumerate(given):
        try:
            to_entry(atoms)
        except ValueError as exc:
            raise ValueError(f"references file {settings.references}, frame {k}: {exc}") from None
    known = _read_structures(settings.known_phases, "known phases") if settings.known_phases else []
    for k, atoms in enumerate(known):
        problem = check_structure(atoms)
        if problem is not None:
            raise ValueError(f"known phases file {settings.known_phases}, frame {k} "
                             f"({atoms.get_chemical_formula()}): {problem}")
    return given, known


def _read_candidates(out: Path) -> list[Atoms] | None:
    import ase.io

    path = out / CANDIDATES
    if not path.exists():
        return None
    try:
        return ase.io.read(path, ":")
    except Exception as exc:
        raise ScreenError(f"{path} is corrupt ({exc}); delete it to generate again") from None


def _generate(settings: ScreenSettings, out: Path, device: str, progress: bool, force: bool) -> list[Atoms]:
    import ase.io

    from .generator import CrystalGenerator

    path = out / CANDIDATES
    generator = CrystalGenerator.from_pretrained(settings.model, device=device)
    spacegroups = settings.spacegroups or default_spacegroups(generator, settings.composition)
    _start(out, settings, force)
    try:
        structures = generator.sample(
            settings.composition,
            spacegroup=spacegroups,
            formation_energy=settings.energies,
            n=settings.n,
            method=settings.method,
            steps=settings.steps,
            seed=settings.seed,
            # one torch thread: sums in another order under another thread count move the
            # samples by about 1e-6 A, and the default count follows the machine's load, so a
            # screen would otherwise not give the same candidates twice
            threads=1,
            progress=progress,
        )
    except BaseException:
        # nothing was made: a rerun with corrected conditions must not meet this record
        (out / SETTINGS).unlink(missing_ok=True)
        raise
    for cid, atoms in enumerate(structures):
        atoms.info["cid"] = cid
    with atomic_path(path) as tmp:
        ase.io.write(tmp, structures, format="extxyz")
    # relax what the file holds (extxyz rounds), so that a resumed screen starts from the same numbers
    return ase.io.read(path, ":")


def default_spacegroups(generator, composition: Any) -> list[int]:
    """The model's training space groups whose Wyckoff positions can hold ``composition``."""
    from .conditions import _compatible, parse_composition

    seen = sorted(generator.domain.spacegroups)
    if not seen:
        raise ValueError(f"{generator.name} records no training space groups; give spacegroups")
    counts = tuple(parse_composition(composition).values())
    fitting = [sg for sg in seen if _compatible(counts, sg) is not False]
    if not fitting:
        raise ValueError(
            f"none of the space groups {generator.name} saw in training ({seen}) can hold "
            f"{composition}; give spacegroups"
        )
    return fitting


def _done(db) -> set[int]:
    return {row.cid for row in db.select("cid>=0", columns=["key_value_pairs"])}


def _row_from(atoms: Atoms) -> tuple[Atoms, dict[str, Any]]:
    """A relaxed (or failed) candidate as an ASE-db row: atoms + scalar key-value pairs."""
    from ase.db.core import reserved_keys

    keys: dict[str, Any] = {}
    for key, value in atoms.info.items():
        if key in reserved_keys or not key.isidentifier():
            continue
        if isinstance(value, (bool, np.bool_)):
            keys[key] = bool(value)
        elif isinstance(value, (int, np.integer)):
            keys[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            if math.isfinite(float(value)):
                keys[key] = float(value)
        elif isinstance(value, str):
            keys[key] = value
    if "fmax" in atoms.info:  # a reserved ASE-db key
        keys["max_force"] = float(atoms.info["fmax"])
    keys["status"] = "failed" if "relax_error" in atoms.info or "invalid" in atoms.info else "relaxed"
    row_atoms = atoms
    if not np.all(np.isfinite(atoms.positions)):
        row_atoms = Atoms(atoms.numbers, pbc=True)  # the db cannot hold NaN positions
    return row_atoms, keys


def _relax_all(
    todo: list[Atoms],
    settings: ScreenSettings,
    db,
    workers: int,
    scheduler: str | None,
    calculator: Any,
    progress: bool,
) -> None:
    from tqdm.auto import tqdm

    from ..relaxation import relax_one

    kwargs = dict(
        fmax=settings.fmax,
        steps=settings.relax_steps,
        cell_filter=settings.cell_filter,
        symprec=settings.symprec,
    )
    label = calculator if isinstance(calculator, str) else type(calculator).__name__
    bar = tqdm(total=len(todo), desc=f"relax candidates ({label})", unit="structure", disable=not progress)
    counts = {"unconverged": 0, "failed": 0}

    def record(result: Atoms) -> None:
        row_atoms, keys = _row_from(result)
        db.write(row_atoms, **keys)  # outside a `with db:` block: one committed transaction each
        if keys["status"] == "failed":
            counts["failed"] += 1
        elif not keys.get("converged"):
            counts["unconverged"] += 1
        bar.set_postfix(counts, refresh=False)
        bar.update(1)

    invalid = [a for a in todo if "invalid" in a.info]
    for atoms in invalid:
        atoms.info["relax_error"] = f"sampler output is not a crystal: {atoms.info['invalid']}"
        record(atoms)
    todo = [a for a in todo if "invalid" not in a.info]
    if scheduler is None and workers <= 1:
        try:
            for atoms in todo:
                record(relax_one(atoms, calculator, **kwargs))
        finally:
            bar.close()
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError(
            "parallel relaxations need Dask: pip install 'ase_crystalgen[dask]' (or use workers=1)"
        ) from None
    if not isinstance(calculator, str):
        raise ValueError("with Dask workers the calculator must be a name ('chgnet', 'm3gnet', 'emt', ...)")
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = {client.submit(relax_one, atoms, calculator, pure=False, **kwargs): atoms for atoms in todo}
        for future in as_completed(futures):
            atoms = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a worker died or the task could not run
                result = atoms.copy()
                result.info["relax_error"] = f"{type(exc).__name__}: {exc}"
                result.info["converged"] = False
            record(result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        bar.close()


def _references(
    settings: ScreenSettings,
    out: Path,
    elements: list[str],
    calculator: Any,
    progress: bool,
    given: list[Atoms],
    known: list[Atoms],
):
    from ..relaxation import PhaseDiagramReference, RelaxationStore

    path = out / REFERENCES
    if path.exists():
        return PhaseDiagramReference.load(path)
    covered = {s for a in given for s in a.get_chemical_symbols() if len(set(a.get_chemical_symbols())) == 1}
    missing = [e for e in elements if e not in covered]
    computed: list = []
    if missing or known:
        # each reference relaxation is committed as it finishes, as the candidates are
        store = RelaxationStore(
            out / REFERENCE_STORE,
            {"calculator": settings.calculator, "fmax": settings.fmax, "steps": settings.relax_steps},
        )
        computed = PhaseDiagramReference.from_calculator(
            missing, calculator, known_phases=known, fmax=settings.fmax, steps=settings.relax_steps,
            progress=progress, store=store,
        ).structures
    reference = PhaseDiagramReference(list(computed) + list(given))
    reference.save(path)
    return reference


def _deduplicate(rows: list) -> dict[int, int]:
    """cid -> cid of the lowest-energy structure it matches (itself when it is unique)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    ordered = sorted(rows, key=lambda r: r.energy_per_atom)
    structures = [AseAtomsAdaptor.get_structure(r.toatoms()) for r in ordered]
    matcher = StructureMatcher()  # the paper's tolerances: ltol 0.2, stol 0.3, angle 5
    representative: dict[int, int] = {}
    kept: list[int] = []
    for i, row in enumerate(ordered):
        match = next((k for k in kept if matcher.fit(structures[k], structures[i])), None)
        if match is None:
            kept.append(i)
            representative[row.cid] = row.cid
        else:
            representative[row.cid] = ordered[match].cid
    return representative


def screen(
    settings: ScreenSettings,
    out: str | Path,
    workers: int = 1,
    scheduler: str | None = None,
    device: str = "cpu",
    calculator: Any = None,
    force: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run (or resume) a screen in ``out``; returns the summary rows (one per candidate).

    ``calculator`` overrides ``settings.calculator`` with an ASE calculator object (in-process
    relaxations only); ``settings.calculator`` is still recorded.
    """
    from ase.db import connect

    from ..relaxation.calculators import check_calculator

    out = Path(out)
    # everything that can be checked is checked before any work and before anything is written
    _check_out(out)
    given, known = _read_inputs(settings)
    _check_settings(out, settings, force)
    if calculator is None:
        check_calculator(settings.calculator)
    calc = calculator if calculator is not None else settings.calculator
    candidates = None if force else _read_candidates(out)
    if candidates is None:
        candidates = _generate(settings, out, device, progress, force)
    # no `with db:` around the run: ASE would make it one transaction, committed only at the
    # end and rolled back by Ctrl-C; outside it every write is committed on its own.
    # No ASE lock file: a run killed while it held one left it behind, and the resumed run
    # waited for it for ever (ASE's lock has no timeout); SQLite locks and journals itself
    db = connect(out / DATABASE, use_lock_file=False)
    done = _done(db)
    todo = [a for a in candidates if int(a.info["cid"]) not in done]
    if done:
        print(f"resuming: {len(done)} of {len(candidates)} candidates already relaxed in {out / DATABASE}",
              file=sys.stderr)
    if todo:
        _relax_all(todo, settings, db, workers, scheduler, calc, progress)
    elements = sorted({s for a in candidates for s in a.get_chemical_symbols()})
    reference = _references(settings, out, elements, calc, progress, given, known)
    relaxed = list(db.select(status="relaxed"))
    duplicates = _deduplicate(relaxed) if relaxed else {}
    with db:  # derived columns, recomputed by every run: one transaction is fine
        for row in relaxed:
            atoms = row.toatoms()
            db.update(
                row.id,
                e_above_hull=float(reference.e_above_hull(atoms)),
                formation_energy_per_atom=float(reference.formation_energy_per_atom(atoms)),
                unique=duplicates[row.cid] == row.cid,
                duplicate_of=int(duplicates[row.cid]),
            )
    rows = [_summary_row(r) for r in db.select("cid>=0", sort="cid")]
    write_summary(rows, out, settings)
    return rows


SUMMARY_COLUMNS = (
    "cid",
    "spacegroup_condition",
    "formation_energy_condition",
    "status",
    "converged",
    "energy_per_atom",
    "formation_energy_per_atom",
    "e_above_hull",
    "spacegroup_relaxed",
    "unique",
    "duplicate_of",
    "relax_error",
)


def _summary_row(row) -> dict[str, Any]:
    kv = row.key_value_pairs
    out = {c: kv.get(c) for c in SUMMARY_COLUMNS}
    out["formula"] = row.formula
    out["db_id"] = row.id
    return out


def write_summary(rows: list[dict[str, Any]], out: Path, settings: ScreenSettings) -> None:
    """``summary.csv`` (every candidate), ``summary.md`` (the paper's table 3 and the best
    candidates) and ``screen.png``."""
    buffer = io.StringIO()
    columns = ("cid", "formula", *SUMMARY_COLUMNS[1:])
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "summary.csv", buffer.getvalue())
    atomic_write_text(out / "summary.md", _markdown(rows, settings))
    _plot(rows, out / "screen.png", settings)


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _markdown(rows: list[dict[str, Any]], settings: ScreenSettings) -> str:
    relaxed = [r for r in rows if r["status"] == "relaxed" and r["e_above_hull"] is not None]
    failed = [r for r in rows if r["status"] == "failed"]
    unique = [r for r in relaxed if r["unique"]]
    lines = [
        f"# Screen of {settings.composition} with {settings.model}",
        "",
        f"{len(rows)} candidates: {len(relaxed)} relaxed with {settings.calculator} "
        f"({sum(bool(r['converged']) for r in relaxed)} converged to fmax {settings.fmax} eV/Å), "
        f"{len(failed)} failed, {len(unique)} unique (StructureMatcher 0.2/0.3/5).",
        "",
        "## Lowest energy above the hull (eV/atom) per space group and energy condition",
        "",
    ]
    sgs = sorted({r["spacegroup_condition"] for r in rows})
    energies = sorted({r["formation_energy_condition"] for r in rows}, reverse=True)
    lines.append("| E condition | " + " | ".join(str(s) for s in sgs) + " |")
    lines.append("|---:|" + "---:|" * len(sgs))
    for e in energies:
        cells = []
        for s in sgs:
            vals = [
                r["e_above_hull"]
                for r in relaxed
                if r["spacegroup_condition"] == s and r["formation_energy_condition"] == e
            ]
            cells.append(_fmt(min(vals)) if vals else "-")
        lines.append(f"| {e:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "## The most stable unique candidates", ""]
    lines.append("| cid | formula | SG asked | SG relaxed | E asked | E_form | E above hull |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|")
    for r in sorted(unique, key=lambda r: r["e_above_hull"])[:10]:
        lines.append(
            f"| {r['cid']} | {r['formula']} | {r['spacegroup_condition']} | "
            f"{r['spacegroup_relaxed'] or '-'} | "
            f"{r['formation_energy_condition']:.3f} | {_fmt(r['formation_energy_per_atom'])} | "
            f"{r['e_above_hull']:.3f} |"
        )
    if failed:
        lines += ["", "## Failures", ""]
        lines += [f"- cid {r['cid']}: {r['relax_error']}" for r in failed]
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict[str, Any]], path: Path, settings: ScreenSettings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    relaxed = [r for r in rows if r["status"] == "relaxed" and r["e_above_hull"] is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for sg in sorted({r["spacegroup_condition"] for r in relaxed}):
        sel = [r for r in relaxed if r["spacegroup_condition"] == sg]
        x = [r["formation_energy_condition"] for r in sel]
        axes[0].scatter(x, [r["formation_energy_per_atom"] for r in sel], s=14, label=f"SG {sg}")
        axes[1].scatter(x, [r["e_above_hull"] for r in sel], s=14, label=f"SG {sg}")
    if relaxed:
        lo = min(r["formation_energy_condition"] for r in relaxed)
        hi = max(r["formation_energy_condition"] for r in relaxed)
        axes[0].plot([lo, hi], [lo, hi], "k--", lw=0.8, label="asked = found")
    axes[0].set_xlabel("formation energy asked (eV/atom)")
    axes[0].set_ylabel(f"formation energy after relaxation, {settings.calculator} (eV/atom)")
    axes[1].axhline(0.0, color="k", lw=0.8)
    axes[1].set_xlabel("formation energy asked (eV/atom)")
    axes[1].set_ylabel("energy above hull (eV/atom)")
    if relaxed:  # an empty legend is a matplotlib warning
        axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{settings.composition}: {len(relaxed)} relaxed candidates ({settings.model})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


__all__ = ["ScreenError", "ScreenSettings", "default_spacegroups", "screen", "write_summary"]
