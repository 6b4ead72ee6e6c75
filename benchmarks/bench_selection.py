"""How far can best-of-m selection go? Selection rules compared on the same cached candidates.

``crystalgen evaluate --candidates m`` draws m samples per test structure and keeps the one
the model's energy ranker puts closest to the requested energy. This script draws exactly
those candidates (same seed, batches and order as ``evaluate --candidates m``), matches
*every* candidate against its target (field and paper tolerances, the package's matcher),
and computes the energy features once: CHGNet's energy per atom, CHGNet's 64 crystal
features and the ranker's environment fingerprint. Then it scores selection rules offline,
each on the same draws, so the rows differ only in the rule:

* ``first candidate``: no selection (the plain k = 1 rate of these draws);
* ``baseline ranker``: ``--ranker`` (default: the model's ``ranker.npz``), by the rule
  ``evaluate --candidates`` uses (it reproduces that command's match rate exactly);
* ``refit``: the ranker's model (linear + kernel ridge) refitted on the training split, then
  with CHGNet's crystal features added to the kernel's inputs, with two noisy copies of
  every training structure (Gaussian displacements of 0.1 A, 1.5 % random strain) so that
  it has seen unrelaxed geometry, and with both;
* ``on-policy`` (``--on-policy n``): the refit with crystal features, trained as well on
  the generator's own samples for the training split (n per structure) that match their
  training structure, labelled with its energy;
* ``training lookup`` (``--lookup``): the baseline ranker, but a candidate that matches a
  training structure of the same formula gets that structure's energy instead of a prediction;
* ``oracle``: a candidate matches whenever any does (the k = m match rate).

Every row also gives, against the baseline ranker, the test structures it wins and loses.
Everything is cached under ``--out`` (written atomically) and reused on a rerun, so an
interrupted run resumes. The table goes to ``docs/benchmarks/<name>.md``.

    git show 86e44b6:ase_crystalgen/data/models/perov5-flow/ranker.npz \\
        > runs/selection/perov5-ranker-format1.npz
    python benchmarks/bench_selection.py ase_crystalgen/data/models/perov5-flow --data data/perov5-test-m12 \\
        --train-data data/perov5-val-m12 --candidates 8 --on-policy 4 --lookup \\
        --ranker runs/selection/perov5-ranker-format1.npz --out runs/selection/perov5
    python benchmarks/bench_selection.py ase_crystalgen/data/models/carbon24-flow \\
        --data data/carbon24-val-m24 --split val --train-data data/carbon24-val-m24 \\
        --candidates 20 --steps 100 --out runs/selection/carbon24

Needs CHGNet (installed with the package).
"""

from __future__ import annotations

import argparse
import collections
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _save(path: Path, obj) -> None:
    from ase_crystalgen._atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh)


def _cached(path: Path, make):
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    obj = make()
    _save(path, obj)
    return obj


def draw(model: str, data, split: str, m: int, steps: int | None, limit: int | None = None) -> dict:
    """m candidates per structure of ``split``, drawn as ``evaluate --candidates m`` draws them,
    and the match of every candidate against its target."""
    import torch
    from tqdm.auto import tqdm

    from ase_crystalgen.datasets.torch_datasets import CrystalDataset
    from ase_crystalgen.evaluation.evaluate import _conditions
    from ase_crystalgen.evaluation.metrics import match_samples
    from ase_crystalgen.inference.pipeline import decode, load_model, sample_tensors

    loaded = load_model(model, "cpu")
    ds = CrystalDataset(data, split)
    order = np.random.default_rng(0).permutation(len(ds.index))[:limit]
    targets_idx = [int(ds.index[o]) for o in order]
    generator = torch.Generator()
    generator.manual_seed(0)
    jobs = [t for t in range(len(targets_idx)) for _ in range(m)]
    samples: list[list] = [[] for _ in targets_idx]
    for start in tqdm(range(0, len(jobs), 256), desc=f"sampling {split}"):
        chunk = jobs[start : start + 256]
        idx = [targets_idx[t] for t in chunk]
        x = sample_tensors(loaded, _conditions(ds, idx), steps=steps, generator=generator)
        numbers = [data.arrays["numbers"][i, : data.arrays["n_sites"][i]] for i in idx]
        for t, atoms in zip(chunk, decode(x, numbers)):
            samples[t].append(atoms)
    result = match_samples(samples, [data.atoms(i) for i in targets_idx], ks=(1, m), n_jobs=2)
    return dict(samples=samples, targets_idx=targets_idx,
                matched={tol: np.array([[r is not None for r in row] for row in result.rms[tol]])
                         for tol in result.tolerances})


def features(structures: list) -> dict:
    """CHGNet energy per atom and crystal features, and the ranker's fingerprint."""
    from ase_crystalgen.inference.ranking import calculator_energies, environment_fingerprint

    ok = np.array([np.isfinite(a.positions).all() and np.isfinite(a.cell.array).all()
                   and abs(a.cell.volume) > 1e-3 for a in structures])
    good = [structures[i] for i in np.flatnonzero(ok)]
    e_good, cf_good = calculator_energies(good, "chgnet", progress=True, crystal_features=True)
    fp_good = np.array([environment_fingerprint(a) for a in good])
    e = np.full(len(structures), np.nan)
    cf = np.full((len(structures), cf_good.shape[1]), np.nan)
    fp = np.full((len(structures), fp_good.shape[1]), np.nan)
    e[ok], cf[ok], fp[ok] = e_good, cf_good, fp_good
    return dict(e=e, cf=cf, fp=fp, ok=ok)


def choose(pred: np.ndarray, requested: np.ndarray, excluded: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The rule of ``EnergyRanker.choose``: closest predicted energy; excluded candidates never,
    close contacts only when the group has nothing else."""
    d = np.abs(pred - requested[:, None])
    d = np.where(excluded | ~np.isfinite(d), np.inf, d)
    clean_any = (~excluded & ~close).any(1)
    d = np.where(close & clean_any[:, None], np.inf, d)
    return np.argmin(d, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--train-data", required=True, help="data set whose train split the model was trained on")
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--on-policy", type=int, default=0,
                   help="samples per training structure (0: skip the row)")
    p.add_argument("--lookup", action="store_true",
                   help="add the training-lookup row (matches every candidate against the training "
                        "structures of its formula: slow where a formula has many)")
    p.add_argument("--ranker", default=None,
                   help="the baseline ranker the other rows are compared with (default: MODEL/ranker.npz)")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default=None,
                   help="docs/benchmarks/<name>.md (default: selection-<out dir name>)")
    args = p.parse_args(argv)

    from ase_crystalgen.datasets.cache import ProcessedDataset
    from ase_crystalgen.evaluation.metrics import MATCHER_OPTIONS, TOLERANCES, _to_structure
    from ase_crystalgen.inference.ranking import EnergyRanker, _fractions, _kernel_features, _rattled
    from ase_crystalgen.structures import CONTACT_FRACTION, flag_close_contacts

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = args.candidates
    data = ProcessedDataset.load(args.data)
    train = ProcessedDataset.load(args.train_data)
    cand = _cached(out / "candidates.pkl",
                   lambda: draw(args.model, data, args.split, m, args.steps, args.limit))
    n = len(cand["samples"])
    flat = [a for g in cand["samples"] for a in g]
    feats = _cached(out / "candidate_features.pkl", lambda: features(flat))
    tidx = train.indices("train")
    tatoms = [train.atoms(i) for i in tidx]
    ty = np.asarray(train.arrays["energy"][tidx], dtype=float)
    tfeats = _cached(out / "train_features.pkl",
                     lambda: [features(tatoms)]
                     + [features(_rattled(tatoms, np.random.default_rng(seed))) for seed in (1, 2)])

    flag_close_contacts(flat, CONTACT_FRACTION)
    excluded = np.array(["invalid" in a.info for a in flat]) | ~feats["ok"]
    excluded = excluded.reshape(n, m)
    close = np.array([bool(a.info.get("close_contact", False)) for a in flat]).reshape(n, m)
    requested = np.asarray(data.arrays["energy"][cand["targets_idx"]], dtype=float)
    comp = _fractions(flat)
    tcomp = _fractions(tatoms)
    matched = cand["matched"]
    rows: list[tuple[str, np.ndarray]] = [("first candidate", np.zeros(n, dtype=int))]

    def predict(ranker, with_cf: bool) -> np.ndarray:
        ok = feats["ok"]
        x = _kernel_features(feats["fp"], feats["cf"] if with_cf else None)
        pred = np.full(len(flat), np.nan)
        pred[ok] = ranker._predict(x[ok], comp[ok], feats["e"][ok])
        return pred.reshape(n, m)

    baseline = Path(args.ranker) if args.ranker else Path(args.model) / "ranker.npz"
    ranker = EnergyRanker.load(baseline)
    base = predict(ranker, bool(ranker.card.get("crystal_features")))
    rows.append((f"baseline ranker ({baseline.name}, format {ranker.card['format']})",
                 choose(base, requested, excluded, close)))

    def refit(with_cf: bool, copies: int, extra=None) -> EnergyRanker:
        parts = tfeats[: 1 + copies]
        fp = np.concatenate([_kernel_features(f["fp"], f["cf"] if with_cf else None) for f in parts])
        e = np.concatenate([f["e"] for f in parts])
        comps = np.concatenate([tcomp] * len(parts))
        y = np.concatenate([ty] * len(parts))
        if extra is not None:
            fp, e, comps, y = (np.concatenate([a, b]) for a, b in zip((fp, e, comps, y), extra))
        return EnergyRanker._solve(fp, comps, e, y, 128, 0.01)

    for label, with_cf, copies in [("refit", False, 0), ("refit + crystal features", True, 0),
                                   ("refit + noisy copies", False, 2),
                                   ("refit + crystal features + noisy copies", True, 2)]:
        rows.append((label, choose(predict(refit(with_cf, copies), with_cf), requested, excluded, close)))

    if args.on_policy:
        own = _cached(out / "train_candidates.pkl",
                      lambda: draw(args.model, train, "train", args.on_policy, args.steps))
        own_flat = [a for g in own["samples"] for a in g]
        own_feats = _cached(out / "train_candidate_features.pkl", lambda: features(own_flat))
        keep = (own["matched"]["field"].ravel() & own_feats["ok"]
                & np.array(["invalid" not in a.info for a in own_flat]))
        own_y = np.repeat(np.asarray(train.arrays["energy"][own["targets_idx"]], dtype=float), args.on_policy)
        extra = (_kernel_features(own_feats["fp"], own_feats["cf"])[keep],
                 own_feats["e"][keep],
                 _fractions(own_flat)[keep], own_y[keep])
        rows.append((f"on-policy ({int(keep.sum())} matched own samples) + crystal features",
                     choose(predict(refit(True, 0, extra), True), requested, excluded, close)))

    def lookup() -> np.ndarray:
        from pymatgen.analysis.structure_matcher import StructureMatcher
        from tqdm.auto import tqdm

        by_formula = collections.defaultdict(list)
        for i in tidx:
            by_formula[str(train.arrays["formula"][i])].append(i)
        matcher = StructureMatcher(**TOLERANCES["field"], **MATCHER_OPTIONS)
        pred = base.copy()
        for t in tqdm(range(n), desc="training lookup"):
            known = [(float(train.arrays["energy"][i]), _to_structure(train.atoms(i)))
                     for i in by_formula.get(str(data.arrays["formula"][cand["targets_idx"][t]]), [])]
            for r, atoms in enumerate(cand["samples"][t]):
                if excluded[t, r] or not known:
                    continue
                s = _to_structure(atoms)
                for energy, ref in known:
                    try:
                        if matcher.get_rms_dist(s, ref) is not None:
                            pred[t, r] = energy
                            break
                    except Exception:  # a degenerate sample the matcher cannot reduce
                        pass
        return pred

    if args.lookup:
        rows.append(("training lookup, else baseline ranker",
                     choose(_cached(out / "lookup.pkl", lookup), requested, excluded, close)))

    ref = rows[1][1]
    lines = [f"{Path(args.model).name} on {n} structures of the {args.split} split of "
             f"{Path(args.data).name}, {m} candidates each, "
             f"{'default' if args.steps is None else args.steps} steps, seed 0.", "",
             "| selection | field | paper | field wins / losses vs baseline | paper wins / losses |",
             "|---|---:|---:|---:|---:|"]
    for label, pick in rows:
        cells = []
        for tol in ("field", "paper"):
            hit = matched[tol][np.arange(n), pick]
            cells.append(f"{100 * hit.mean():.2f} % ({int(hit.sum())})")
        wl = []
        for tol in ("field", "paper"):
            hit = matched[tol][np.arange(n), pick]
            h0 = matched[tol][np.arange(n), ref]
            wl.append(f"+{int((hit & ~h0).sum())} / -{int((h0 & ~hit).sum())}")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {wl[0]} | {wl[1]} |")
    oracle = [f"{100 * matched[tol].any(1).mean():.2f} % ({int(matched[tol].any(1).sum())})"
              for tol in ("field", "paper")]
    lines.append(f"| oracle: any of the {m} matches (k = {m}) | {oracle[0]} | {oracle[1]} | | |")
    counts = collections.Counter(matched["field"].sum(1).tolist())
    lines += ["", "Candidates matching their target (field), structures per count: "
              + ", ".join(f"{c}: {counts[c]}" for c in sorted(counts)), ""]
    text = "\n".join(lines)
    print(text)
    name = args.name or f"selection-{out.name}"
    from ase_crystalgen._atomic import atomic_write_text

    doc = ROOT / "docs" / "benchmarks" / f"{name}.md"
    atomic_write_text(doc, f"# Best-of-m selection rules: {name}\n\n"
                      f"Made by `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`."
                      "\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
