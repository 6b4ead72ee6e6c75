"""Benchmark: the paper's method tables (Tables 1 and 2) under one training budget.

Generation on Perov-5 (paper Table 1): one DDPM model sampled with DDPM and with DDIM, flow
matching from normal noise (``flow-normal``) and from uniform noise (``flow-uniform``), each
trained with ``benchmarks/configs/methods-perov5-*.yaml``; k = 1 on a fixed random subset of
the test set (``--k1-limit``) and k = 20 on a smaller one (``--k20-limit``), paper and field
tolerances, the methods' default 100 sampling steps. The DDPM model is also sampled with
diffusers' ``leading`` timestep spacing (a copy of its model directory with that one entry
changed, the weights linked): the configured ``trailing`` spacing starts at t = 999, where
the cosine schedule's abar is 2.4e-9, and multiplies the first step's noise error by ~316.
The package has no generation regression method (regression is a modification method
only: it needs a starting structure); the paper's Table 1 has no regression column either.

Modification on the synthetic EMT polymorph pairs (paper Table 2): regression, Palette
diffusion and modification flow matching, trained with
``benchmarks/configs/methods-alloys-*.yaml``; each starts from the initial structure of every
lowest-energy validation pair and is matched against its target (k = 1), next to the
no-model baseline (the initial structure itself); Palette is also sampled with ``leading``
spacing.

Every evaluation is ``evaluate_model`` (what ``crystalgen evaluate`` runs) with the same
seed, so every method sees the same test structures. Usage, from the directory that holds
``runs/`` and ``data/``::

    python benchmarks/bench_methods.py --runs runs --eval-out eval \\
        --perov-test data/perov5-test-m12 --perov-train data/perov5-val-m12 \\
        --alloys data/synthetic-alloys-m8

``--only generation`` / ``--only modification`` evaluates one table; ``--skip-eval`` rebuilds
the tables from ``EVAL_OUT/*/evaluation.json``. An evaluation whose ``evaluation.json``
exists is never rerun, so an interrupted run continues where it stopped. Writes
``EVAL_OUT/methods.md`` and ``EVAL_OUT/methods.json`` (or ``--out-md`` / ``--out-json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir

from ase_crystalgen.datasets.cache import ProcessedDataset
from ase_crystalgen.datasets.torch_datasets import ModificationDataset
from ase_crystalgen.evaluation import evaluate_model
from ase_crystalgen.evaluation.metrics import match_samples

TOLERANCES = ("paper", "field")

#: (row label, run directory name, sampler, timestep spacing, the paper's Table 1 value);
#: spacing None is the model's own (``trailing``), ``leading`` is diffusers' default
GENERATION = (
    ("DDPM", "methods-perov5-ddpm", "ddpm", None, 0.8074),
    ("DDIM", "methods-perov5-ddpm", "ddim", None, 0.82),
    ("CFM N(0,1)", "methods-perov5-flow-normal", None, None, 0.482),
    ("CFM U(0,1)", "methods-perov5-flow-uniform", None, None, 0.8097),
    ("DDPM, leading spacing", "methods-perov5-ddpm", "ddpm", "leading", 0.8074),
    ("DDIM, leading spacing", "methods-perov5-ddpm", "ddim", "leading", 0.82),
)
#: (row label, run directory name, timestep spacing, the paper's Table 2 value)
MODIFICATION = (
    ('regression ("ordinary model")', "methods-alloys-regression", None, 0.4148),
    ("diffusion (Palette), DDPM", "methods-alloys-palette", None, 0.3653),
    ("CFM", "methods-alloys-modification-flow", None, 0.2059),
    ("diffusion (Palette), DDPM, leading spacing", "methods-alloys-palette", "leading", 0.3653),
)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


def _model(run_dir: Path, spacing: str | None, eval_out: Path) -> Path:
    """The run's model, or a copy whose diffusion sampler uses another timestep spacing.

    Spacing only places the inference steps on the training schedule; the weights are the
    same (linked, not copied).
    """
    model = run_dir / "model"
    if spacing is None:
        return model
    copy = eval_out / "models" / f"{run_dir.name}-{spacing}"
    copy.mkdir(parents=True, exist_ok=True)
    meta = json.loads((model / "model.json").read_text())
    meta["objective"]["timestep_spacing"] = spacing
    (copy / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    weights = copy / "weights.pt"
    if not weights.exists():
        weights.symlink_to((model / "weights.pt").resolve())
    return copy


def _run_facts(run: Path) -> dict:
    """Steps trained and the last validation loss, from the run's history."""
    history = json.loads((run / "history.json").read_text())
    steps = max((h["step"] for h in history), default=0)
    val = [h["val_loss"] for h in history if "val_loss" in h]
    return {"steps": steps, "final_val_loss": val[-1] if val else None}


def _metric(summary: dict, tol: str, k: int) -> dict:
    return summary["metrics"][tol][f"k={k}"]


def _evaluate(model, data, out, *, skip, **kwargs) -> dict | None:
    path = Path(out) / "evaluation.json"
    if path.exists():  # evaluated before: reruns only add what is missing
        return json.loads(path.read_text())
    if skip:
        return None
    t0 = time.perf_counter()
    evaluate_model(model, data, out=out, progress=False, **kwargs)
    print(f"  {out}: {time.perf_counter() - t0:.0f} s", flush=True)
    return json.loads(path.read_text())


def generation_table(args, skip: bool) -> list[dict]:
    rows = []
    for label, run, sampler, spacing, paper in GENERATION:
        run_dir = Path(args.runs) / run
        if not (run_dir / "model").exists():
            print(f"skipping {label}: no model in {run_dir}", flush=True)
            continue
        out = Path(args.eval_out) / f"perov5-{_slug(label)}"
        common = dict(
            split="test",
            method=sampler,
            seed=args.seed,
            n_jobs=args.jobs,
            train_data=args.perov_train,
            tolerances=TOLERANCES,
        )
        model = _model(run_dir, spacing, Path(args.eval_out))
        k1 = _evaluate(model, args.perov_test, out / "k1", skip=skip, k=1, limit=args.k1_limit, **common)
        k20 = _evaluate(model, args.perov_test, out / "k20", skip=skip, k=20, limit=args.k20_limit, **common)
        if k1 is None or k20 is None:
            continue
        rows.append(
            dict(
                label=label,
                run=run,
                sampler=(sampler or "flow (Euler)") + (f", {spacing} spacing" if spacing else ""),
                paper=paper,
                training=_run_facts(run_dir),
                k1=k1,
                k20=k20,
            )
        )
    return rows


def baseline(data_path: str, split: str = "val") -> dict:
    """The initial structure of each lowest-energy pair, matched against its target."""
    data = ProcessedDataset.load(data_path)
    pairs = ModificationDataset(data, split, resample=False).pairs
    samples = [[data.atoms(int(i))] for i in pairs[:, 0]]
    targets = [data.atoms(int(t)) for t in pairs[:, 1]]
    return match_samples(samples, targets, tolerances=TOLERANCES, ks=(1,), progress=False).summary()


def modification_table(args, skip: bool) -> list[dict]:
    rows = []
    for label, run, spacing, paper in MODIFICATION:
        run_dir = Path(args.runs) / run
        if not (run_dir / "model").exists():
            print(f"skipping {label}: no model in {run_dir}", flush=True)
            continue
        out = Path(args.eval_out) / f"alloys-{_slug(label)}"
        k1 = _evaluate(
            _model(run_dir, spacing, Path(args.eval_out)),
            args.alloys,
            out,
            skip=skip,
            split="val",
            k=1,
            seed=args.seed,
            n_jobs=args.jobs,
            tolerances=TOLERANCES,
        )
        if k1 is None:
            continue
        rows.append(dict(label=label, run=run, paper=paper, training=_run_facts(run_dir), k1=k1))
    base_path = Path(args.eval_out) / "alloys-baseline" / "evaluation.json"
    if not skip:
        base_path.parent.mkdir(parents=True, exist_ok=True)
        base_path.write_text(json.dumps(baseline(args.alloys), indent=2, default=float) + "\n")
    if base_path.exists():
        rows.append(
            dict(
                label="the initial structure itself (no model)",
                run=None,
                paper=None,
                training=None,
                k1=json.loads(base_path.read_text()),
            )
        )
    return rows


def _cell(m: dict) -> str:
    rmse = f"{m['rmse']:.3f}" if m["rmse"] is not None else "-"
    return f"{100 * m['match_rate']:.1f} % ({rmse})"


def markdown(gen: list[dict], mod: list[dict]) -> str:
    lines = [
        f"Machine: {cpu_model()}, {usable_cores()} usable cores, torch threads {torch.get_num_threads()}.",
        "",
    ]
    if gen:
        n1, n20 = gen[0]["k1"]["n_targets"], gen[0]["k20"]["n_targets"]
        lines += [
            f"Generation, Perov-5 test set: k = 1 on {n1} structures, k = 20 on {n20} "
            "(fixed random subsets, the same for every method). Match rate (RMSE).",
            "",
            "| method | sampler | steps trained | val loss | k = 1 paper | k = 1 field | "
            "k = 20 paper | k = 20 field | valid (k = 1) | paper (AFLOW, Table 1) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in gen:
            tr = r["training"]
            val = f"{tr['final_val_loss']:.4f}" if tr["final_val_loss"] is not None else "-"
            lines.append(
                f"| {r['label']} | {r['sampler']} | {tr['steps']} | {val} | "
                + " | ".join(
                    _cell(_metric(r[k], tol, int(k[1:]))) for k in ("k1", "k20") for tol in TOLERANCES
                )
                + f" | {100 * r['k1']['validity']['rate']:.1f} % | {100 * r['paper']:.1f} % |"
            )
        lines.append("")
    if mod:
        lines += [
            f"Modification, synthetic EMT polymorph pairs: {mod[0]['k1']['n_targets']} lowest-energy "
            "validation pairs, k = 1. Match rate (RMSE).",
            "",
            "| method | steps trained | val loss | paper tolerances | field tolerances | "
            "paper (AFLOW, Table 2) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in mod:
            tr = r["training"] or {}
            val = f"{tr['final_val_loss']:.4f}" if tr.get("final_val_loss") is not None else "-"
            paper = f"{100 * r['paper']:.1f} %" if r["paper"] is not None else "-"
            lines.append(
                f"| {r['label']} | {tr.get('steps', '-')} | {val} | "
                + " | ".join(_cell(_metric(r["k1"], tol, 1)) for tol in TOLERANCES)
                + f" | {paper} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="directory holding the methods-* runs")
    parser.add_argument("--eval-out", default="eval")
    parser.add_argument("--perov-test", default="data/perov5-test-m12")
    parser.add_argument("--perov-train", default="data/perov5-val-m12")
    parser.add_argument("--alloys", default="data/synthetic-alloys-m8")
    parser.add_argument("--k1-limit", type=int, default=500)
    parser.add_argument("--k20-limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="sampler seed and test subset")
    parser.add_argument("--jobs", type=int, default=1, help="processes for matching")
    parser.add_argument("--only", choices=("generation", "modification"))
    parser.add_argument("--skip-eval", action="store_true", help="reuse EVAL_OUT/*/evaluation.json")
    parser.add_argument("--out-md")
    parser.add_argument("--out-json")
    args = parser.parse_args(argv)
    # the table --only leaves out is rebuilt from its earlier evaluations, where there are any
    gen = generation_table(args, args.skip_eval or args.only == "modification")
    mod = modification_table(args, args.skip_eval or args.only == "generation")
    text = markdown(gen, mod)
    print(text)
    eval_out = Path(args.eval_out)
    eval_out.mkdir(parents=True, exist_ok=True)
    Path(args.out_md or eval_out / "methods.md").write_text(text)
    record = {
        "machine": {"cpu": cpu_model(), "cores": usable_cores(), "torch_threads": torch.get_num_threads()},
        "generation": [{k: v for k, v in r.items()} for r in gen],
        "modification": mod,
    }
    for r in record["generation"]:  # per-space-group tables are in the evaluation.json files
        for k in ("k1", "k20"):
            r[k] = {
                key: r[k][key]
                for key in ("n_targets", "metrics", "validity", "subsets", "run")
                if key in r[k]
            }
    for r in record["modification"]:
        r["k1"] = {key: r["k1"][key] for key in ("n_targets", "metrics", "validity", "run") if key in r["k1"]}
    Path(args.out_json or eval_out / "methods.json").write_text(
        json.dumps(record, indent=1, default=float) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
