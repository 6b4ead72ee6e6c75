"""Benchmark: training and sampling throughput of the small and the paper-size model on a GPU.

Measured in one run on one CUDA device (issue 14, item 7):

* **training**: structures per second of one optimizer step (flow-matching loss, forward,
  backward, AdamW) at batch 128 and 256, in float32 and under bfloat16 autocast (the
  trainer's ``precision: auto`` on CUDA);
* **sampling**: structures per second of flow matching, 100 Euler steps, at batch 256, 1024
  and 4096 (small model) and 256 (paper size), float32 and bfloat16 autocast;
* a **reference in the same run**: the small model sampling on the same machine's CPU with the
  package's default torch threads; every GPU sampling row is also given as a ratio to it.

The small model is sized as the shipped ``perov5-flow`` (16 rows, 2.2 M parameters); the
paper-size one is :meth:`UNetConfig.paper` at the paper's 64 rows (306 M parameters), fed the
same Perov-5 conditions padded to 64 rows. Timings synchronise the device, follow warm-up
steps, and are the median of ``--rounds`` rounds. The weights are random: speed does not
depend on them.

Usage (on the GPU machine; ``benchmarks/gpu_run.sh`` calls it)::

    python benchmarks/bench_gpu.py --data data/perov5-val-m12 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, usable_cores  # noqa: E402

from ase_crystalgen._threads import default_threads  # noqa: E402
from ase_crystalgen.datasets import load_dataset  # noqa: E402
from ase_crystalgen.datasets.torch_datasets import CrystalDataset  # noqa: E402
from ase_crystalgen.generative import StructureScaler, make_method  # noqa: E402
from ase_crystalgen.inference.pipeline import LoadedModel, sample_tensors  # noqa: E402
from ase_crystalgen.models import CrystalUNet, UNetConfig  # noqa: E402


def _batch(data, n: int, rows: int) -> dict[str, torch.Tensor]:
    """``n`` training items stacked; row-indexed tensors zero-padded (masked out) to ``rows``."""
    ds = CrystalDataset(data, "all")
    items = [ds[i % len(ds)] for i in range(n)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    pad = rows - batch["x"].shape[1]
    if pad > 0:
        for key in ("x", "mask", "elements", "properties"):
            v = batch[key]
            batch[key] = torch.cat([v, torch.zeros((v.shape[0], pad, *v.shape[2:]), dtype=v.dtype)], 1)
    return batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _median_rate(fn, n_items: int, rounds: int, device: torch.device) -> float:
    times = []
    for _ in range(rounds):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return n_items / statistics.median(times)


def training_rate(config, scaler, batch, device, precision, steps, rounds) -> float:
    torch.manual_seed(0)
    model = CrystalUNet(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    method = make_method("flow-uniform")
    b = {k: v.to(device) for k, v in batch.items() if k != "index"}
    b["x"] = scaler.to_model(b["x"], b["mask"])
    gen = torch.Generator(device=device).manual_seed(0)

    def run(n=steps):
        for _ in range(n):
            with _autocast(device, precision):
                loss, _ = method.loss(model, b, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(3)  # warm-up: kernels chosen, memory allocated
    return _median_rate(run, steps * len(batch["x"]), rounds, device)


def sampling_rate(config, scaler, batch, device, precision, steps, rounds) -> float:
    torch.manual_seed(0)
    model = CrystalUNet(config).to(device).eval()
    meta = {"model_config": config.to_dict()}
    loaded = LoadedModel(model, make_method("flow-uniform"), scaler, meta, device)
    cond = {k: v.to(device) for k, v in batch.items() if k not in ("x", "index")}
    gen = torch.Generator().manual_seed(0)

    def run(n=steps):
        with _autocast(device, precision):
            out = sample_tensors(loaded, cond, steps=n, generator=gen)
        if not torch.isfinite(out).all():
            raise FloatingPointError("non-finite samples")

    run(2)
    return _median_rate(run, len(batch["x"]), rounds, device)


def _try(fn, *args):
    try:
        return fn(*args), None
    except Exception as exc:  # a failed configuration is reported, the others still run
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"


def render(report: dict) -> str:
    """The Markdown tables of docs/benchmarks/generation.md ("GPU") from a ``--json`` report."""
    hw, params, cpu = report["hardware"], report["parameters"], report["cpu_sampling_rate"]
    lines = [
        f"Machine: {hw.get('gpu', 'no GPU')} ({hw.get('gpu_memory_gib', '?')} GiB, "
        f"CUDA {hw.get('cuda', '?')}), "
        f"{hw['cpu']} with {hw['cpu_cores']} cores; torch {hw['torch']}, Python {hw['python']}. "
        f"Small model {params['small'] / 1e6:.2f} M parameters (16 rows), paper size "
        f"{params['paper'] / 1e6:.1f} M (64 rows).",
        "",
        "| what | model | batch | precision | structures / s | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    fp32 = {(r["kind"], r["model"], r["batch"]): r["rate"] for r in report["rows"]
            if r["precision"] == "fp32"}
    for r in report["rows"]:
        what = "training step" if r["kind"] == "training" else f"sampling, {r['steps']} Euler steps"
        if r["precision"] == "cpu":
            rate = f"{r['rate']:.1f}" if r["rate"] else f"failed: {r['error']}"
            lines.append(f"| {what} | {r['model']} | {r['batch']} | CPU, {hw['cpu_torch_threads']} threads "
                         f"(reference) | {rate} | 1.00 |")
            continue
        head = f"| {what} | {r['model']} | {r['batch']} | {r['precision']} |"
        if r["rate"] is None:
            lines.append(f"{head} failed: {r['error']} | |")
            continue
        if r["kind"] == "sampling" and cpu:
            ratio = f"{r['rate'] / cpu:.1f} x CPU"
        else:
            base = fp32.get((r["kind"], r["model"], r["batch"]))
            ratio = f"{r['rate'] / base:.2f} x fp32" if base else ""
        lines.append(f"{head} {r['rate']:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", metavar="JSON", help="print the Markdown tables of a report, run nothing")
    parser.add_argument("--data", help="a processed data set (Perov-5)")
    parser.add_argument("--json", default="gpu.json", help="where the figures go (default gpu.json)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per row (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script on a CPU")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(Path(args.render).read_text())), end="")
        return 0
    if not args.data:
        parser.error("--data is required to measure")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.quick:
        parser.error("no CUDA device: this benchmark is for a GPU (use --quick to check it on a CPU)")
    data = load_dataset(args.data)
    scaler = StructureScaler.fit(data.arrays["x"])
    rows_small = data.arrays["x"].shape[1]
    small = UNetConfig.small(rows=rows_small)
    paper = UNetConfig.paper(rows=64)
    if args.quick:
        paper = UNetConfig.small(rows=64)  # the script's paths, not the paper's size
    params = {name: sum(p.numel() for p in CrystalUNet(cfg).parameters()) for name, cfg in
              (("small", small), ("paper", paper))}
    train_steps = 2 if args.quick else 20
    sample_steps = 2 if args.quick else 100
    big = (8, 16) if args.quick else (256, 1024, 4096)
    rows = []

    def add(kind, model, batch_size, precision, rate, error, steps):
        rows.append(
            dict(kind=kind, model=model, batch=batch_size, precision=precision, rate=rate, error=error,
                 steps=steps)
        )
        shown = f"{rate:10.1f} structures/s" if rate is not None else f"failed ({error})"
        print(f"{kind:9s} {model:6s} batch {batch_size:5d} {precision:5s} {shown}", flush=True)

    # the CPU reference of this machine: small model, batch 256, 100 Euler steps, default threads
    cpu = torch.device("cpu")
    threads = default_threads()
    torch.set_num_threads(threads)
    cpu_batch = _batch(data, 8 if args.quick else 256, rows_small)
    rate, err = _try(sampling_rate, small, scaler, cpu_batch, cpu, "fp32", sample_steps, 1)
    add("sampling", "small", len(cpu_batch["x"]), "cpu", rate, err, sample_steps)
    cpu_rate = rate

    for name, cfg, sizes in (("small", small, (128, 256)), ("paper", paper, (128, 256))):
        for bs in sizes:
            batch = _batch(data, 4 if args.quick else bs, cfg.rows)
            for precision in ("fp32", "bf16"):
                rate, err = _try(training_rate, cfg, scaler, batch, device, precision, train_steps,
                                 args.rounds)
                add("training", name, len(batch["x"]), precision, rate, err, train_steps)
    for name, cfg, sizes in (("small", small, big), ("paper", paper, big[:1])):
        if device.type == "cuda":
            torch.cuda.empty_cache()
        for bs in sizes:
            batch = _batch(data, bs, cfg.rows)
            for precision in ("fp32", "bf16"):
                rate, err = _try(sampling_rate, cfg, scaler, batch, device, precision, sample_steps,
                                 args.rounds)
                add("sampling", name, bs, precision, rate, err, sample_steps)

    hardware = {
        "cpu": cpu_model(),
        "cpu_cores": usable_cores(),
        "cpu_torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        hardware.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            multiprocessors=props.multi_processor_count,
        )
    report = dict(hardware=hardware, parameters=params, cpu_sampling_rate=cpu_rate, rows=rows)
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(hardware))
    return 0


if __name__ == "__main__":
    sys.exit(main())
