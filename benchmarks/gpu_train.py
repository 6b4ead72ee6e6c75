"""Train several configs side by side on one GPU, each sized to end before a deadline.

Used by ``benchmarks/gpu_train.sh`` on a lent GPU (a fixed number of minutes in all). The
steps a run can afford are unknown until it runs beside the others, so every run goes
through two phases:

1. **warm-up**: all configs start at once with ``max_steps`` = ``--probe`` (inside the
   learning-rate warm-up, which does not depend on ``max_steps``) and a checkpoint every
   ``--probe // 4`` steps. Each run's speed is read from the times its ``history.json`` is
   rewritten, so process start-up is not counted.
2. **the run**: each is resumed from its checkpoint (exact resumption; ``max_steps`` and
   ``checkpoint_every`` may change on resume) with ``max_steps`` set so that it ends about
   ``--margin`` seconds before ``--budget`` seconds have passed since ``--start``. Up to the
   step where the warm-up ends, the learning rate is the same as for a run given that
   ``max_steps`` from the start, so the result is the run the config describes.

A run still going at the deadline is stopped (its last checkpoint stays). Each finished run's
model directory is re-saved with float16 weights (as the shipped models are) and packed with
its ``history.json`` into ``OUT/NAME.tar``; ``OUT/gpu-train.json`` has the speeds, steps,
wall times and last validation losses.

    python benchmarks/gpu_train.py CONFIG.yaml ... --start EPOCH_SECONDS --budget 480 --out OUT
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml


def _launch(path: Path, sets: dict, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ase_crystalgen", "train", str(path), "--no-progress"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return subprocess.Popen(cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT)


def _watch(procs: dict, outs: dict, seen: dict, deadline: float) -> None:
    """Wait for the processes, noting (mtime, last step) of each run's history.json."""
    while any(p.poll() is None for p in procs.values()):
        if time.time() > deadline:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
            break
        for name in procs:
            history = outs[name] / "history.json"
            try:
                mtime = os.stat(history).st_mtime
                if not seen[name] or seen[name][-1][0] != mtime:
                    steps = [e["step"] for e in json.loads(history.read_text())]
                    seen[name].append((mtime, max(steps)))
            except (OSError, ValueError):
                pass  # not written yet, or caught mid-replace
        time.sleep(0.05)


def _rate(points: list[tuple[float, int]]) -> float | None:
    if len(points) < 2 or points[-1][0] <= points[0][0] or points[-1][1] <= points[0][1]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def _pack(name: str, run: Path, out: Path, finished: bool) -> str | None:
    """The run's EMA model in float16 (loadable like the shipped ones) and its history, as a tar.

    A run stopped at the deadline has no model directory of its last steps: its last
    checkpoint's EMA weights are packed instead.
    """
    import torch

    from ase_crystalgen.inference.pipeline import load_model
    from ase_crystalgen.models.io import save_pretrained

    source = run / "model" if finished else run / "checkpoint.pt"
    if not source.exists():
        return None
    loaded = load_model(source)
    meta = loaded.meta
    half = save_pretrained(
        run / "model-fp16", loaded.model.cpu(), objective=meta["objective"], scaler=meta["scaler"],
        data_schema=meta["data_schema"], card=meta.get("card", {}), weights_dtype=torch.float16,
    )  # fmt: skip
    target = out / f"{name}.tar"
    with tarfile.open(target, "w") as tar:
        tar.add(half, arcname=f"{name}/model")
        tar.add(run / "history.json", arcname=f"{name}/history.json")
        if (run / "loss.png").exists():
            tar.add(run / "loss.png", arcname=f"{name}/loss.png")
    return target.name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="training configs (YAML), trained side by side")
    parser.add_argument("--start", type=float, default=None,
                        help="the job's start, epoch seconds (default: now)")
    parser.add_argument("--budget", type=float, default=480, help="seconds from --start (default 480)")
    parser.add_argument("--margin", type=float, default=50,
                        help="seconds kept for export and packing after the runs (default 50)")
    parser.add_argument("--probe", type=int, default=200,
                        help="warm-up steps that time each run (default 200)")
    parser.add_argument("--max-steps", type=int, default=200000,
                        help="upper bound on any run (default 200000)")
    parser.add_argument("--out", required=True, help="folder for the tars, gpu-train.json and logs")
    args = parser.parse_args(argv)
    start = args.start or time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = {Path(c).stem: Path(c) for c in args.configs}
    outs = {n: Path(yaml.safe_load(p.read_text())["out"]) for n, p in names.items()}
    logs = {n: out / f"train-{n}.log" for n in names}
    seen: dict[str, list] = {n: [] for n in names}
    deadline = start + args.budget - args.margin

    # 1. warm-up, all at once
    t0 = time.time()
    procs = {
        n: _launch(p, {"max_steps": args.probe, "checkpoint_every": max(1, args.probe // 4)}, logs[n])
        for n, p in names.items()
    }
    _watch(procs, outs, seen, deadline)
    report = {"probe_steps": args.probe, "probe_wall_s": time.time() - t0, "runs": {}}
    left = deadline - time.time()

    # 2. the runs, each sized to the time left
    procs = {}
    for n, p in names.items():
        rate = _rate(seen[n])
        steps = args.probe
        if rate is not None:
            steps = int(min(args.max_steps, max(args.probe, args.probe + 0.92 * rate * left)))
            steps = max(args.probe, steps // 100 * 100)
        report["runs"][n] = {"config": str(p), "probe_rate_steps_per_s": rate, "planned_steps": steps}
        if steps > args.probe:
            procs[n] = _launch(p, {"max_steps": steps}, logs[n])
    seen = {n: [] for n in names}
    t1 = time.time()
    _watch(procs, outs, seen, start + args.budget - 25)
    report["run_wall_s"] = time.time() - t1

    for n, run in outs.items():
        entry = report["runs"][n]
        history = json.loads((run / "history.json").read_text()) if (run / "history.json").exists() else []
        losses = [h for h in history if "val_loss" in h]
        entry["steps_done"] = max((h["step"] for h in history), default=0)
        entry["rate_steps_per_s"] = _rate(seen[n])
        entry["val_loss_last"] = losses[-1]["val_loss"] if losses else None
        entry["val_loss_min"] = min(h["val_loss"] for h in losses) if losses else None
        entry["exit"] = procs[n].returncode if n in procs else None
        try:
            entry["packed"] = _pack(n, run, out, finished=entry["exit"] == 0)
        except Exception as exc:  # one run's packing failure leaves the others
            entry["packed"] = f"failed: {type(exc).__name__}: {exc}"
    with open(out / "train.log", "w") as merged:  # one log file: the device returns at most 8 files
        for n, log in logs.items():
            merged.write(f"== {n}\n{log.read_text() if log.exists() else ''}\n")
            log.unlink(missing_ok=True)
    report["total_wall_s"] = time.time() - start
    (out / "gpu-train.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
