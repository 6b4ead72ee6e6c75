"""Benchmark: training-set templates against a generator's own samples (issue 14, item 3).

Reads the samples that ``crystalgen evaluate ... --out RUN`` wrote (``RUN/samples.extxyz``,
``RUN/evaluation.json``) and matches two replacements for them against the same targets:

* **retrieval by conditions** (no model): for each target, the ``k`` training structures
  with the same space group and the same element counts whose energies are closest to the
  target's;
* **sample-guided template**: each sample is replaced by the training structure of the same
  space group and element counts that is closest to it (smallest StructureMatcher RMS at the
  ``looser`` tolerances; a sample with no such neighbour is kept). This is the
  "Wyckoff sites from the closest training structure of that space group" mode, taken to
  its simplest form: the template's geometry replaces the sample's.

Both can only return structures already in the training split, so they measure how close the
held-out structures are to training ones, not a generator. Usage::

    crystalgen evaluate carbon24-flow --data data/carbon24-val-m24 --split val -k 1 --out RUN
    python benchmarks/bench_templates.py RUN --data data/carbon24-val-m24 --split val
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def main(argv=None) -> int:
    import ase.io
    import numpy as np
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from ase_crystalgen.datasets.cache import ProcessedDataset
    from ase_crystalgen.datasets.torch_datasets import CrystalDataset
    from ase_crystalgen.evaluation.metrics import MATCHER_OPTIONS, TOLERANCES, _to_structure, match_samples

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="output directory of crystalgen evaluate --out")
    p.add_argument("--data", required=True, help="the processed data set the run evaluated")
    p.add_argument("--split", default="test", help="the split the run evaluated (default: test)")
    p.add_argument("--train-split", default="train", help="where templates come from (default: train)")
    p.add_argument("--jobs", type=int, default=1, help="processes for matching (default: 1)")
    args = p.parse_args(argv)

    run = Path(args.run)
    summary = json.loads((run / "evaluation.json").read_text())
    k, n_targets = summary["run"]["k"], summary["run"]["n_targets"]
    data = ProcessedDataset.load(args.data)
    a = data.arrays
    index = {str(i): n for n, i in enumerate(a["ids"])}
    train = list(CrystalDataset(data, args.train_split).index)

    def counts(i: int) -> tuple:
        return tuple(sorted(Counter(a["numbers"][i, : a["n_sites"][i]].tolist()).items()))

    pool: dict[tuple, list[int]] = {}
    for j in train:
        pool.setdefault((int(a["spacegroup"][j]), counts(j)), []).append(j)

    samples: dict[str, list] = {}
    for atoms in ase.io.read(run / "samples.extxyz", index=":"):
        samples.setdefault(str(atoms.info["target"]), []).append(atoms)
    targets_idx = [index[t] for t in samples]
    groups = [sorted(samples[t], key=lambda s: int(s.info["sample"])) for t in samples]
    candidates = [pool.get((int(a["spacegroup"][i]), counts(i)), []) for i in targets_idx]

    looser = StructureMatcher(**TOLERANCES["looser"], **MATCHER_OPTIONS)
    cache: dict[int, object] = {}

    def structure(j: int):
        if j not in cache:
            cache[j] = _to_structure(data.atoms(j))
        return cache[j]

    by_conditions, guided = [], []
    for i, group, cands in zip(targets_idx, groups, candidates):
        by_energy = sorted(cands, key=lambda j: abs(float(a["energy"][j]) - float(a["energy"][i])))
        by_conditions.append([data.atoms(j) for j in by_energy[:k]])
        row = []
        for s in group:
            best = None
            if "invalid" not in s.info and cands:
                st = _to_structure(s)
                for j in cands:
                    rms = looser.get_rms_dist(st, structure(j))
                    if rms is not None and (best is None or rms[0] < best[0]):
                        best = (rms[0], j)
            row.append(s if best is None else data.atoms(best[1]))
        guided.append(row)

    targets = [data.atoms(i) for i in targets_idx]
    ks = tuple(sorted({1, k}))
    rows = []
    for name, sets in (
        ("generator's samples", groups),
        ("retrieval by conditions", by_conditions),
        ("sample-guided template", guided),
    ):
        result = match_samples(
            sets, targets, tolerances=("paper", "field"), ks=ks, n_jobs=args.jobs, progress=False
        )
        metrics = result.summary()["metrics"]
        for tol in ("field", "paper"):
            for kk in ks:
                m = metrics[tol][f"k={kk}"]
                rmse = "-" if m["rmse"] is None else f"{m['rmse']:.3f}"
                # the run's targets without a decodable sample count as missed
                rows.append(
                    f"| {name} | {tol} | {kk} | {100 * m['n_matched'] / n_targets:.2f} % | {rmse} | "
                    f"{m['n_matched']} / {n_targets} |"
                )
    n_none = sum(not c for c in candidates)
    print(
        f"{len(targets_idx)} targets; median {int(np.median([len(c) for c in candidates]))} training "
        f"structures share a target's space group and element counts; none for {n_none}"
    )
    print("| samples | tolerances | k | match rate | RMSE | matched |\n|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
