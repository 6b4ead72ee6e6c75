"""Paired comparison of generation models on the same test structures (field tolerances, k = 1).

Reads the ``samples.extxyz`` that ``crystalgen evaluate --out DIR`` writes, for several models
and sampler seeds laid out as ``EVAL/<model>-s<seed>/``, matches every sample against its
target with the package's matcher (:func:`ase_crystalgen.evaluation.metrics.match_samples`,
the same as ``crystalgen evaluate``), and reports per model the mean match rate over seeds,
and against a base model the mean difference with a 95 % bootstrap interval over test
structures (pairs of models on the same structure, so the variation between structures
cancels). Usage::

    python benchmarks/paired_matches.py EVAL DATA --base continue

With 86 Carbon-24 structures one seed has a standard error of about 4 points, so single
k = 1 runs cannot tell models apart that differ by 2-3 points; several seeds and the paired
interval can.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np


def per_target_matches(eval_dir: Path, data) -> dict[str, dict[str, bool]]:
    """``{run name: {target id: matched}}`` for every ``<model>-s<seed>`` run in ``eval_dir``."""
    import ase.io

    from ase_crystalgen.evaluation.metrics import match_samples

    position = {str(i): n for n, i in enumerate(data.arrays["ids"])}
    out = {}
    for run in sorted(p for p in eval_dir.glob("*-s*") if (p / "samples.extxyz").exists()):
        samples = ase.io.read(run / "samples.extxyz", index=":")
        keys = [str(a.info["target"]) for a in samples]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{run} holds several samples per target; evaluate with -k 1")
        targets = [data.atoms(position[k]) for k in keys]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = match_samples([[s] for s in samples], targets, tolerances=("field",), ks=(1,),
                                   progress=False)
        out[run.name] = dict(zip(keys, map(bool, result.matched("field", 1))))
    if not out:
        raise ValueError(f"no <model>-s<seed>/samples.extxyz under {eval_dir}")
    return out


def main() -> None:
    from ase_crystalgen.datasets.cache import ProcessedDataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir", type=Path, help="directory of <model>-s<seed>/ evaluations")
    parser.add_argument("data", help="processed data set the evaluations used")
    parser.add_argument("--base", default=None, help="model the others are compared with (default: first)")
    parser.add_argument("--boot", type=int, default=4000, help="bootstrap resamples (default: 4000)")
    args = parser.parse_args()

    matches = per_target_matches(args.eval_dir, ProcessedDataset.load(args.data))
    models = sorted({name.rsplit("-s", 1)[0] for name in matches})
    targets = sorted(set.intersection(*(set(m) for m in matches.values())))
    rate = {
        model: np.array([np.mean([matches[run][t] for run in matches if run.rsplit("-s", 1)[0] == model])
                         for t in targets])
        for model in models
    }
    seeds = {model: sum(run.rsplit("-s", 1)[0] == model for run in matches) for model in models}
    base = args.base or models[0]
    if base not in rate:
        raise SystemExit(f"--base {base!r} is not one of {', '.join(models)}")
    rng = np.random.default_rng(0)
    lines = [f"{len(targets)} test structures, field tolerances, k = 1; against {base}", "",
             "| model | seeds | mean match rate | matched by any seed | difference (95 % interval) |",
             "|---|---:|---:|---:|---|"]
    for model in models:
        diff = rate[model] - rate[base]
        boot = [diff[rng.integers(len(diff), size=len(diff))].mean() for _ in range(args.boot)]
        low, high = np.percentile(boot, [2.5, 97.5]) * 100
        interval = "" if model == base else f"{diff.mean() * 100:+.2f} ({low:+.2f}, {high:+.2f})"
        lines.append(f"| {model} | {seeds[model]} | {rate[model].mean() * 100:.2f} % | "
                     f"{int(np.sum(rate[model] > 0))} | {interval} |")
    print("\n".join(lines))
    (args.eval_dir / "paired.json").write_text(json.dumps(matches) + "\n")


if __name__ == "__main__":
    main()
