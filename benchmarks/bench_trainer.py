"""Benchmark: wall time of the training loop against a reference checkout of the package.

Trains the same small flow-matching run (``--steps`` steps at batch 128, one torch thread,
no validation) on Perov-5 and on Carbon-24 with this checkout's trainer and with the one in
``--reference`` (another revision, e.g. ``git worktree add /tmp/ref REV``), each in its own
process, in interleaved rounds, and prints the median time of ``train()`` (data set and
network set-up and the export included) and the ratio reference / this checkout.

    python benchmarks/bench_trainer.py --reference /tmp/ref --perov5 data/perov5-val-m12 \\
        --carbon24 data/carbon24-val-m24
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CONFIG = """data: {data}
out: {out}
objective: flow-uniform
model: small
batch_size: 128
epochs: 100000
max_steps: {steps}
lr: 5.0e-4
warmup_steps: 50
checkpoint_every: 250
val_every: 100000
seed: 1
progress: false
"""

CODE = """
import time
from ase_crystalgen.training import load_config, train
config = load_config({path!r})
t = time.perf_counter()
result = train(config)
print(result.step, time.perf_counter() - t)
"""


def time_run(root: Path, data: str, steps: int, workdir: Path) -> float:
    out = workdir / "run"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    path = workdir / "config.yaml"
    path.write_text(CONFIG.format(data=Path(data).resolve(), out=out, steps=steps))
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(path=str(path))], cwd=root, env=env, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    step, seconds = done.stdout.split()[-2:]
    if int(step) != steps:
        raise RuntimeError(f"{root}: trained {step} steps, not {steps}")
    return float(seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a checkout of the revision to compare with")
    parser.add_argument("--perov5", required=True, help="processed Perov-5 data set")
    parser.add_argument("--carbon24", required=True, help="processed Carbon-24 data set")
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (default 150)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    args = parser.parse_args(argv)
    roots = {"reference": Path(args.reference).resolve(), "this checkout": HERE}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, data in (("Perov-5", args.perov5), ("Carbon-24", args.carbon24)):
                for which, root in roots.items():
                    times.setdefault((name, which), []).append(time_run(root, data, args.steps, Path(tmp)))
    print(f"{args.steps} steps at batch 128, one torch thread, median of {args.rounds} interleaved rounds")
    print()
    print("| data set | reference (s) | this checkout (s) | reference / this checkout |")
    print("|---|---:|---:|---:|")
    for name in ("Perov-5", "Carbon-24"):
        ref = statistics.median(times[(name, "reference")])
        new = statistics.median(times[(name, "this checkout")])
        print(f"| {name} | {ref:.1f} | {new:.1f} | {ref / new:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
