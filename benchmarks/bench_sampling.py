"""Benchmark: fast sampling. Match rate and throughput against sampler and number of steps.

Measured in one run, for every (sampler, steps) of ``--configs``:

* **match rate** (k = 1, field and paper tolerances) and RMSE on a fixed random subset of the
  test split (``--limit``, the same structures and the same seed for every row, so the rows
  differ only in how the noise is integrated);
* **throughput**: structures per second sampling a batch of 256 test conditions, measured in
  ``--rounds`` interleaved rounds (each round times every configuration once) and reported as
  the median and as a ratio to the 100-step Euler reference of the same round. Torch threads:
  the package's default (``OMP_NUM_THREADS``, else the free cores), printed in the table.

``--diffusion-model`` adds DDIM rows of a diffusion model trained on the same data.

Usage (Perov-5)::

    python benchmarks/bench_sampling.py ase_crystalgen/data/models/perov5-flow \\
        --test-data data/perov5-test-m12 --limit 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir

from ase_crystalgen._threads import torch_threads
from ase_crystalgen.datasets import load_dataset
from ase_crystalgen.datasets.torch_datasets import CrystalDataset
from ase_crystalgen.evaluation import evaluate_model
from ase_crystalgen.inference.pipeline import load_model, sample_tensors

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
FLOW_CONFIGS = "flow:100,flow:50,flow:20,flow:10,heun:50,heun:20,heun:10,heun:5,midpoint:20,midpoint:10,midpoint:5"
DIFFUSION_CONFIGS = "ddim:100,ddim:50,ddim:20,ddim:10"


def _configs(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        sampler, steps = item.split(":")
        out.append((sampler.strip(), int(steps)))
    return out


def _batch(data, n: int) -> dict[str, torch.Tensor]:
    ds = CrystalDataset(data, "all")
    items = [ds[i % len(ds)] for i in range(n)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    return {k: v for k, v in batch.items() if k not in ("x", "index")}


def _rate(loaded, cond, sampler: str, steps: int) -> float:
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    sample_tensors(loaded, cond, sampler=sampler, steps=steps, generator=generator)
    return len(cond["mask"]) / (time.perf_counter() - t0)


def throughput(models: dict[str, object], rows: list[tuple[str, str, int]], cond, rounds: int) -> dict:
    """Median structures/s of each row and its median ratio to the first row, interleaved."""
    rates: dict[tuple, list[float]] = {row: [] for row in rows}
    for name, loaded in models.items():  # warm-up of every model
        sample_tensors(loaded, cond, steps=2, generator=torch.Generator().manual_seed(0))
    for _ in range(rounds):
        for row in rows:
            name, sampler, steps = row
            rates[row].append(_rate(models[name], cond, sampler, steps))
    ref = rates[rows[0]]
    return {
        row: {
            "rate": statistics.median(r),
            "ratio": statistics.median([a / b for a, b in zip(r, ref)]),
        }
        for row, r in rates.items()
    }


def end_to_end(model: str, data, configs: list[tuple[str, int]], rounds: int) -> dict:
    """Structures/s of ``CrystalGenerator.sample_batch`` (conditions checked, sampling, decoding to
    Atoms, close-contact flags) on 256 test conditions, default threads, interleaved rounds."""
    from ase_crystalgen import CrystalGenerator

    gen = CrystalGenerator.from_pretrained(model)
    conditions = []
    for i in range(256):
        j = i % len(data)
        atoms = data.atoms(j)
        conditions.append((atoms, int(data.arrays["spacegroup"][j]), float(data.arrays["energy"][j])))
    gen.sample_batch(conditions[:4], steps=2)  # warm-up
    rates: dict[tuple, list[float]] = {c: [] for c in configs}
    for _ in range(rounds):
        for sampler, steps in configs:
            t0 = time.perf_counter()
            gen.sample_batch(conditions, method=sampler, steps=steps)
            rates[(sampler, steps)].append(len(conditions) / (time.perf_counter() - t0))
    return {c: statistics.median(r) for c, r in rates.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="flow-matching model directory")
    parser.add_argument("--test-data", required=True)
    parser.add_argument("--split", default="test", help="split of --test-data to match against")
    parser.add_argument("-k", type=int, default=1, help="samples per structure (k=1 and k=K reported)")
    parser.add_argument("--limit", type=int, default=1000, help="test structures for the match rates")
    parser.add_argument("--configs", default=FLOW_CONFIGS, help="SAMPLER:STEPS,... of the flow model")
    parser.add_argument("--diffusion-model", help="diffusion model directory (adds DDIM rows)")
    parser.add_argument("--diffusion-configs", default=DIFFUSION_CONFIGS)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--jobs", type=int, default=2, help="processes for matching")
    parser.add_argument("--eval-out", default="bench-output/sampling", help="per-row evaluations")
    parser.add_argument("--skip-eval", action="store_true",
                        help="only reuse EVAL_OUT/*/evaluation.json (rows already there are always reused)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--name", default="sampling", help="docs/benchmarks/NAME.md and NAME.json")
    args = parser.parse_args(argv)

    models = {"flow": args.model}
    rows = [("flow", s, n) for s, n in _configs(args.configs)]
    if args.diffusion_model:
        models["diffusion"] = args.diffusion_model
        rows += [("diffusion", s, n) for s, n in _configs(args.diffusion_configs)]
    eval_out = Path(args.eval_out)
    results = []
    for name, sampler, steps in rows:
        where = eval_out / f"{name}-{sampler}-{steps}"
        if not args.skip_eval and (where / "evaluation.json").exists():
            print(f"reusing {where / 'evaluation.json'} (delete it to measure again)", flush=True)
        elif not args.skip_eval:
            print(f"evaluating {name} {sampler} {steps}", flush=True)
            with torch_threads():
                evaluate_model(
                    models[name], args.test_data, split=args.split, k=args.k, method=sampler, steps=steps,
                    limit=args.limit, n_jobs=args.jobs, out=where, progress=False,
                )  # fmt: skip
        summary = json.loads((where / "evaluation.json").read_text())
        results.append({
            "model": name, "sampler": sampler, "steps": steps,
            "evaluations": steps * (2 if sampler in ("heun", "midpoint") else 1),
            "field": summary["metrics"]["field"]["k=1"], "paper": summary["metrics"]["paper"]["k=1"],
            "validity": summary["validity"]["rate"], "n": summary["run"]["n_targets"],
            "field_k": summary["metrics"]["field"].get(f"k={args.k}"),
        })  # fmt: skip

    threads = None
    if not args.skip_throughput:
        loaded = {name: load_model(path) for name, path in models.items()}
        cond = _batch(load_dataset(args.test_data), 256)
        with torch_threads() as threads:
            speed = throughput(loaded, rows, cond, args.rounds)
        for r, row in zip(results, rows):
            r.update(speed[row])
        default = load_model(args.model).method
        pair = [rows[0][1:], (default.default_sampler, int(default.inference_steps))]
        whole = end_to_end(args.model, load_dataset(args.test_data), pair, args.rounds)

    def pct(m):
        return f"{100 * m['match_rate']:.2f} %"

    ref = results[0]
    lines = [
        "# Fast sampling: match rate and throughput against sampler and steps",
        "",
        f"Models: `{args.model}`" + (f", `{args.diffusion_model}`" if args.diffusion_model else "") + ". "
        f"Test data: `{args.test_data}` (split {args.split}), a fixed random subset of {ref['n']} "
        "structures (seed 0), k = 1; every row draws the same noise.",
        f"Machine: {cpu_model()}, {usable_cores()} usable cores"
        + (f", torch threads {threads} (the package default)" if threads else "") + ".",
        "",
        "| model | sampler | steps | network evaluations | field | paper | RMSE (field) | valid | "
        + (f"field, k = {args.k} | " if args.k > 1 else "") + "structures / s | ratio to first row |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if args.k > 1 else "") + "---:|---:|",
    ]
    for r in results:
        rmse = f"{r['field']['rmse']:.4f}" if r["field"]["rmse"] is not None else "-"
        speed = f"{r['rate']:.1f} | {r['ratio']:.2f}" if "rate" in r else "- | -"
        lines.append(
            f"| {r['model']} | {r['sampler']} | {r['steps']} | {r['evaluations']} | {pct(r['field'])} | "
            f"{pct(r['paper'])} | {rmse} | {100 * r['validity']:.1f} % | "
            + (f"{pct(r['field_k'])} | " if args.k > 1 else "") + f"{speed} |"
        )
    if not args.skip_throughput:
        lines += [
            "",
            "End to end, `CrystalGenerator.sample_batch` on the same 256 conditions (conditions checked, "
            "sampling, decoding to `ase.Atoms`, close-contact flags), default threads:",
            "",
            "| sampler | steps | structures / s |",
            "|---|---:|---:|",
            *[f"| {sampler} | {steps} | {rate:.1f} |" for (sampler, steps), rate in whole.items()],
        ]
    lines += [
        "",
        "Throughput: batch of 256 test conditions, median of "
        f"{args.rounds} interleaved rounds; the ratio is to the first row of the same round.",
        "",
        f"Reproduce: `python benchmarks/bench_sampling.py {args.model} --test-data {args.test_data} "
        f"--split {args.split} -k {args.k} --limit {args.limit}" + (f" --diffusion-model {args.diffusion_model}" if args.diffusion_model else "")
        + "`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (DOCS / f"{args.name}.md").write_text(text)
    (DOCS / f"{args.name}.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
