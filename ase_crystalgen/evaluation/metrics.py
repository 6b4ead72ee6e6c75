"""Match rate, RMSE and validity of generated crystals against their test structures.

For every test structure the generator drew samples with that structure's conditions; a test
structure counts as *matched at k* when any of its first ``k`` samples is structurally valid
and pymatgen's :class:`~pymatgen.analysis.structure_matcher.StructureMatcher` matches it to
the test structure; its RMSE at k is the lowest normalised RMS distance among those matching
samples. Conventions and their sources are in ``docs/evaluation.md``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from .._atomic import atomic_write_text

#: Named StructureMatcher tolerances: ``paper`` is the paper's (pymatgen's defaults), ``field``
#: the CDVAE/DiffCSP convention, ``loose``/``looser`` the paper's two extra levels.
TOLERANCES: dict[str, dict[str, float]] = {
    "paper": dict(ltol=0.2, stol=0.3, angle_tol=5.0),
    "field": dict(ltol=0.3, stol=0.5, angle_tol=10.0),
    "loose": dict(ltol=0.4, stol=0.6, angle_tol=10.0),
    "looser": dict(ltol=1.0, stol=1.5, angle_tol=25.0),
}

#: Everything except the tolerances stays at pymatgen's defaults, as in CDVAE and DiffCSP.
MATCHER_OPTIONS = dict(primitive_cell=True, scale=True, attempt_supercell=False)

_MAX_MESSAGES = 20


#: largest volume per atom (A^3) of a valid crystal; the most open elemental solids (Cs, He)
#: have about 120, and a diverged sampler makes cells of 1e6 and more
MAX_VOLUME_PER_ATOM = 1000.0


def structure_validity(
    atoms: Atoms, min_distance: float = 0.5, min_volume: float = 0.1, max_volume_per_atom: float = MAX_VOLUME_PER_ATOM
) -> tuple[bool, str]:
    """Whether ``atoms`` is a physically usable crystal, and why not.

    Parameters
    ----------
    atoms
        A structure periodic along all three cell vectors.
    min_distance
        Smallest allowed distance in Angstrom between two atoms, over all periodic images,
        including an atom and its own image.
    min_volume
        Smallest allowed cell volume in A^3.
    max_volume_per_atom
        Largest allowed volume per atom in A^3: a cell of thousands of Angstrom (a diverged
        sampler) is not a crystal, although StructureMatcher, which rescales volumes, can
        match it.

    Returns
    -------
    tuple[bool, str]
        ``(True, "")`` or ``(False, reason)``, e.g. ``"atoms 0 and 3 are 0.21 A apart"``.
    """
    from ase.geometry import minkowski_reduce

    from ..descriptors.neighbors import neighbor_pairs

    cell = np.asarray(atoms.cell.array, dtype=float)
    if not np.isfinite(atoms.positions).all():
        return False, "NaN coordinates" if np.isnan(atoms.positions).any() else "infinite coordinates"
    if not np.isfinite(cell).all():
        return False, "non-finite cell"
    if len(atoms) == 0:
        return False, "no atoms"
    if not np.all(atoms.pbc):
        return False, f"not periodic along all cell vectors (pbc={atoms.pbc.tolist()})"
    volume = abs(float(np.linalg.det(cell)))
    if volume < min_volume:
        return False, f"volume {volume:.3g} A^3 < {min_volume:g}"
    if volume / len(atoms) > max_volume_per_atom:
        return False, f"volume per atom {volume / len(atoms):.3g} A^3 > {max_volume_per_atom:g}"
    # the shortest lattice vector is the closest an atom comes to its own image; checking it on
    # the reduced cell first also keeps the neighbour search away from needle-like cells
    shortest = float(np.linalg.norm(minkowski_reduce(cell)[0], axis=1).min())
    if shortest < min_distance:
        return False, f"atom 0 is {shortest:.2f} A from its periodic image"
    i, j, vec = neighbor_pairs(atoms, min_distance)
    if len(i):
        d = np.linalg.norm(vec, axis=1)
        n = int(np.argmin(d))
        a, b = sorted((int(i[n]), int(j[n])))
        return False, f"atoms {a} and {b} are {d[n]:.2f} A apart"
    return True, ""


def _to_structure(atoms: Atoms):
    from pymatgen.io.ase import AseAtomsAdaptor

    # elements, cell and positions only: charges, magnetic moments or oxidation states carried
    # by the Atoms would become species properties and make SpeciesComparator refuse matches
    return AseAtomsAdaptor.get_structure(Atoms(atoms.numbers, atoms.positions, cell=atoms.cell[:], pbc=True))


def _match_target(job: tuple) -> tuple[dict, dict, list[str]]:
    """Worker: RMS of every sample (dict or None when skipped) against one target, per tolerance.

    Takes and returns plain data so that it pickles for :class:`ProcessPoolExecutor`.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

    index, target_dict, sample_dicts, tolerances, require_fit = job
    target = Structure.from_dict(target_dict)
    samples = [None if d is None else Structure.from_dict(d) for d in sample_dicts]
    rms: dict[str, list] = {name: [] for name in tolerances}
    errors, messages = dict.fromkeys(tolerances, 0), []
    for name, tol in tolerances.items():
        matcher = StructureMatcher(**tol, **MATCHER_OPTIONS)
        for s, sample in enumerate(samples):
            value = None
            if sample is not None:
                try:
                    # (sample, target) in this order, as CDVAE/DiffCSP: the matcher is not symmetric
                    out = matcher.get_rms_dist(sample, target)
                    if out is not None and (not require_fit or matcher.fit(sample, target)):
                        value = float(out[0])
                except Exception as exc:  # e.g. a failed Niggli reduction of a degenerate cell
                    errors[name] += 1
                    messages.append(f"{name}, target {index}, sample {s}: {type(exc).__name__}: {exc}")
            rms[name].append(value)
    return rms, errors, messages


def _target_spacegroup(atoms: Atoms, symprec: float = 0.1) -> int | None:
    from ..representation.spacegroups import get_spacegroup, validate_spacegroup

    try:
        given = atoms.info.get("spacegroup")
        return validate_spacegroup(given) if given is not None else get_spacegroup(atoms, symprec)
    except ValueError:
        return None


def _resolve_tolerances(tolerances) -> dict[str, dict[str, float]]:
    if isinstance(tolerances, str):
        tolerances = (tolerances,)
    if isinstance(tolerances, Mapping):
        return {str(k): {key: float(v[key]) for key in ("ltol", "stol", "angle_tol")}
                for k, v in tolerances.items()}
    unknown = [t for t in tolerances if t not in TOLERANCES]
    if unknown:
        raise ValueError(f"unknown tolerance set(s) {unknown}; known: {sorted(TOLERANCES)}")
    return {t: dict(TOLERANCES[t]) for t in tolerances}


@dataclass
class EvaluationResult:
    """Per-target outcome of :func:`match_samples`; :meth:`summary` turns it into metrics.

    ``rms[tol][i][s]`` is the normalised RMS distance of sample ``s`` of target ``i`` under
    tolerance set ``tol``, or None when it did not match or was invalid; it covers the first
    ``max(ks)`` samples, ``valid[i]`` and ``reasons[i]`` every sample given.
    """

    tolerances: dict[str, dict[str, float]]
    ks: tuple[int, ...]
    formulas: list[str]
    spacegroups: list[int | None]
    valid: list[list[bool]]
    reasons: list[list[str]]
    rms: dict[str, list[list[float | None]]]
    errors: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def n_targets(self) -> int:
        return len(self.formulas)

    def best_rms(self, tolerance: str, k: int) -> np.ndarray:
        """Lowest RMS among the first ``k`` samples of each target (NaN where none matched)."""
        out = np.full(self.n_targets, np.nan)
        for i, row in enumerate(self.rms[tolerance]):
            out[i] = min((r for r in row[:k] if r is not None), default=np.nan)
        return out

    def matched(self, tolerance: str, k: int) -> np.ndarray:
        """Whether any of the first ``k`` samples of each target matched."""
        return np.isfinite(self.best_rms(tolerance, k))

    def _metrics(self, idx: np.ndarray) -> dict:
        out: dict = {tol: {} for tol in self.tolerances}
        for tol in self.tolerances:
            for k in self.ks:
                best = self.best_rms(tol, k)[idx]
                hit = np.isfinite(best)
                out[tol][f"k={k}"] = dict(match_rate=float(hit.mean()) if len(idx) else None,
                                          rmse=float(best[hit].mean()) if hit.any() else None,
                                          n_matched=int(hit.sum()), n=int(len(idx)))
        return out

    def _validity(self, idx: np.ndarray) -> dict:
        flags = [v for i in idx for v in self.valid[i]]
        reasons = Counter(_reason_kind(r) for i in idx for r in self.reasons[i] if r)
        return dict(rate=float(np.mean(flags)) if flags else None, n_valid=int(sum(flags)),
                    n_samples=len(flags), reasons=dict(reasons))

    def summary(self, subsets: Mapping[str, Sequence[int]] | None = None) -> dict:
        """Match rate, RMSE and validity overall, per subset and per target space group.

        Parameters
        ----------
        subsets
            Named lists of target indices, e.g. ``{"seen": [...], "unseen": [...]}``.

        Returns
        -------
        dict
            JSON-ready. ``metrics[tol]["k=K"]`` holds ``match_rate`` (matched / targets),
            ``rmse`` (mean over matched targets of the best normalised RMS, None if none),
            ``n_matched`` and ``n``. ``spacegroups[sg][tol]["k=K"]`` is the match rate at
            k = 1 and the largest k; ``subsets[name]`` repeats metrics and validity.
        """
        everything = np.arange(self.n_targets)
        out = dict(n_targets=self.n_targets, ks=list(self.ks), tolerances=self.tolerances,
                   settings=self.settings, validity=self._validity(everything),
                   metrics=self._metrics(everything), errors=dict(self.errors))
        if subsets:
            out["subsets"] = {}
            for name, members in subsets.items():
                idx = np.asarray(list(members), dtype=int).reshape(-1)
                if len(idx) and (idx.min() < 0 or idx.max() >= self.n_targets):
                    raise IndexError(f"subset {name!r} has indices outside 0..{self.n_targets - 1}")
                out["subsets"][name] = dict(n_targets=int(len(idx)), validity=self._validity(idx),
                                            metrics=self._metrics(idx))
        k_sg = sorted({1, max(self.ks)})
        groups: dict[str, list[int]] = {}
        for i, sg in enumerate(self.spacegroups):
            groups.setdefault("unknown" if sg is None else str(sg), []).append(i)
        out["spacegroups"] = {}
        for sg in sorted(groups, key=lambda g: (g == "unknown", int(g) if g.isdigit() else 0)):
            idx = np.asarray(groups[sg])
            rates = {tol: {f"k={k}": float(self.matched(tol, k)[idx].mean()) for k in k_sg}
                     for tol in self.tolerances}
            out["spacegroups"][sg] = {"n": int(len(idx)), **rates}
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "ks": list(self.ks)}

    @classmethod
    def from_dict(cls, data: Mapping) -> EvaluationResult:
        return cls(**{**data, "ks": tuple(data["ks"])})

    def to_json(self, path: str | os.PathLike, subsets: Mapping[str, Sequence[int]] | None = None) -> None:
        """Write ``{"summary": ..., "result": ...}``; atomically, so a crash leaves no half file."""
        text = json.dumps(dict(summary=self.summary(subsets), result=self.to_dict()), indent=1)
        atomic_write_text(path, text)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> EvaluationResult:
        with open(path) as fh:
            return cls.from_dict(json.load(fh)["result"])

    def to_markdown(self, subsets: Mapping[str, Sequence[int]] | None = None) -> str:
        """Tables: overall, per subset (if given) and per target space group."""
        s = self.summary(subsets)
        lines = [f"{s['n_targets']} test structures; validity {_pct(s['validity']['rate'])} of "
                 f"{s['validity']['n_samples']} samples", ""]
        lines += ["| tolerance (ltol/stol/angle) | k | match rate | RMSE | matched / n |",
                  "|---|---|---|---|---|"]
        lines += _metric_rows(s["metrics"], self.tolerances)
        if "subsets" in s:
            lines += ["", "| subset | tolerance | k | match rate | RMSE | matched / n | validity |",
                      "|---|---|---|---|---|---|---|"]
            for name, sub in s["subsets"].items():
                lines += [f"| {name} " + row + f" {_pct(sub['validity']['rate'])} |"
                          for row in _metric_rows(sub["metrics"], self.tolerances)]
        k_sg = sorted({1, max(self.ks)})
        cols = [f"{tol} k={k}" for tol in self.tolerances for k in k_sg]
        lines += ["", "| space group | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
        for sg, entry in s["spacegroups"].items():
            rates = [_pct(entry[tol][f"k={k}"]) for tol in self.tolerances for k in k_sg]
            lines.append(f"| {sg} | {entry['n']} | " + " | ".join(rates) + " |")
        return "\n".join(lines) + "\n"


def _reason_kind(reason: str) -> str:
    """Group validity reasons for counting: the exact atoms and distances differ per sample."""
    if reason.endswith("apart") or reason.endswith("periodic image"):
        return "overlap"
    if reason.startswith("volume"):
        return "volume"
    if reason.endswith("coordinates") or reason == "non-finite cell":
        return "non-finite"
    return reason


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _metric_rows(metrics: Mapping, tolerances: Mapping) -> list[str]:
    rows = []
    for tol, by_k in metrics.items():
        t = tolerances[tol]
        label = f"{tol} ({t['ltol']:g}/{t['stol']:g}/{t['angle_tol']:g})"
        for k, m in by_k.items():
            rmse = "-" if m["rmse"] is None else f"{m['rmse']:.4f}"
            rate = _pct(m["match_rate"])
            rows.append(f"| {label} | {k[2:]} | {rate} | {rmse} | {m['n_matched']} / {m['n']} |")
    return rows


def match_samples(
    samples: Sequence[Sequence[Atoms]],
    targets: Sequence[Atoms],
    tolerances: Sequence[str] | Mapping[str, Mapping[str, float]] = ("paper", "field"),
    ks: Sequence[int] = (1, 20),
    n_jobs: int = 1,
    progress: bool = True,
    *,
    min_distance: float = 0.5,
    min_volume: float = 0.1,
    match_invalid: bool = False,
    require_fit: bool = False,
    symprec: float = 0.1,
) -> EvaluationResult:
    """Compare each target's samples, in order, with the target under every tolerance set.

    Parameters
    ----------
    samples
        ``samples[i]`` are the structures generated for ``targets[i]``, first drawn first
        (a single ``Atoms`` counts as one sample).
    targets
        The test structures. Space group from ``info["spacegroup"]``, else spglib at ``symprec``.
    tolerances
        Names in :data:`TOLERANCES`, or a mapping name -> ``dict(ltol, stol, angle_tol)``.
    ks
        Numbers of samples per target; a target with fewer samples uses all of them. Only the
        first ``max(ks)`` samples are matched; validity covers all.
    n_jobs
        Worker processes over targets (``-1``: all CPUs).
    progress
        Show a tqdm bar.
    min_distance, min_volume
        :func:`structure_validity` thresholds.
    match_invalid
        Also match invalid (but finite) samples. Off by default: CDVAE/DiffCSP skip them.
    require_fit
        Count a match only when ``StructureMatcher.fit`` agrees with ``get_rms_dist`` (fit
        bounds the largest site distance, get_rms_dist the RMS). Off: the field's convention.
    """
    if len(samples) != len(targets):
        raise ValueError(f"{len(samples)} sample lists for {len(targets)} targets")
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    tols = _resolve_tolerances(tolerances)
    samples = [[s] if isinstance(s, Atoms) else list(s) for s in samples]

    valid, reasons, jobs = [], [], []
    for target, group in zip(targets, samples):
        checks = [structure_validity(a, min_distance, min_volume) for a in group]
        valid.append([ok for ok, _ in checks])
        reasons.append([why for _, why in checks])
        compare = [ok or (match_invalid and np.isfinite(a.positions).all() and np.isfinite(a.cell.array).all()
                          and abs(a.cell.volume) > 0) for a, (ok, _) in zip(group, checks)]
        dicts = [_to_structure(a).as_dict() if c else None for a, c in zip(group[: ks[-1]], compare)]
        jobs.append((len(jobs), _to_structure(target).as_dict(), dicts, tols, require_fit))

    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    pool = ProcessPoolExecutor(min(n_jobs, len(jobs))) if n_jobs > 1 and len(jobs) > 1 else None
    try:
        runs = (map(_match_target, jobs) if pool is None
                else pool.map(_match_target, jobs, chunksize=max(1, len(jobs) // (8 * n_jobs))))
        outputs = list(tqdm(runs, total=len(jobs), desc="matching", unit="target", disable=not progress))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    rms = {tol: [out[0][tol] for out in outputs] for tol in tols}
    errors = {tol: sum(out[1][tol] for out in outputs) for tol in tols}
    messages = [m for out in outputs for m in out[2]][:_MAX_MESSAGES]
    settings = dict(min_distance=min_distance, min_volume=min_volume, match_invalid=match_invalid,
                    require_fit=require_fit, matcher=MATCHER_OPTIONS, rms_order="sample, target")
    return EvaluationResult(
        tolerances=tols, ks=ks, formulas=[t.get_chemical_formula(empirical=True) for t in targets],
        spacegroups=[_target_spacegroup(t, symprec) for t in targets], valid=valid, reasons=reasons,
        rms=rms, errors=errors, messages=messages, settings=settings)


def evaluate_structures(samples: Sequence[Sequence[Atoms]], targets: Sequence[Atoms],
                        tolerances: Sequence[str] | Mapping[str, Mapping[str, float]] = ("paper", "field"),
                        ks: Sequence[int] = (1, 20), subsets: Mapping[str, Sequence[int]] | None = None,
                        n_jobs: int = 1, progress: bool = True, **kwargs) -> dict:
    """``match_samples(...).summary(subsets)``; keyword arguments go to :func:`match_samples`."""
    result = match_samples(samples, targets, tolerances, ks, n_jobs=n_jobs, progress=progress, **kwargs)
    return result.summary(subsets)
