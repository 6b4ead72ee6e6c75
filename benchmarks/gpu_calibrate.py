"""Size the GPU warm restarts of ``benchmarks/gpu_run.sh`` to the time left.

Runs the Perov-5 and Carbon-24 continue configs (``benchmarks/configs/*-flow-continue.yaml``)
at once for ``--calib-steps`` steps with a checkpoint every 100, reads each run's speed from
the times its ``history.json`` is rewritten (so start-up is not counted), and writes the real
configs to ``--dir``: the same recipe with ``max_steps`` set so that both end about 45 s before
``--budget`` seconds have passed since ``--start``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

NAMES = ("perov5", "carbon24")


def config(name: str, steps: int, out: str, checkpoint_every: int) -> dict:
    cfg = yaml.safe_load(Path(f"benchmarks/configs/{name}-flow-continue.yaml").read_text())
    # loader workers for Perov-5 only: Carbon-24's 6-batch epochs would spend their time
    # starting worker processes
    cfg.update(
        out=out,
        max_steps=steps,
        num_workers=2 if name == "perov5" else 0,
        checkpoint_every=checkpoint_every,
        progress=False,
    )
    return cfg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=float, required=True, help="the script's start (epoch seconds)")
    parser.add_argument("--budget", type=float, required=True, help="seconds the whole script may take")
    parser.add_argument("--report", required=True)
    parser.add_argument("--dir", default="/tmp/gpu-runs")
    parser.add_argument("--calib-steps", type=int, default=500)
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    procs = {}
    for n in NAMES:
        path = folder / f"calib-{n}.yaml"
        path.write_text(yaml.safe_dump(config(n, args.calib_steps, str(folder / f"calib-{n}"), 100)))
        log = open(folder / f"calib-{n}.log", "w")
        procs[n] = subprocess.Popen(
            [sys.executable, "-m", "ase_crystalgen", "train", str(path)], stdout=log, stderr=subprocess.STDOUT
        )
    seen: dict[str, list[tuple[float, int]]] = {n: [] for n in NAMES}
    while any(p.poll() is None for p in procs.values()):
        for n in NAMES:
            history = folder / f"calib-{n}" / "history.json"
            try:
                mtime = os.stat(history).st_mtime
                if not seen[n] or seen[n][-1][0] != mtime:
                    seen[n].append((mtime, max(e["step"] for e in json.loads(history.read_text()))))
            except (OSError, ValueError):
                pass  # not written yet, or caught mid-replace
        time.sleep(0.05)
    left = args.budget - (time.time() - args.start) - 45
    lines = []
    for n in NAMES:
        s = seen[n]
        ok = len(s) >= 2 and s[-1][0] > s[0][0] and s[-1][1] > s[0][1]
        rate = (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0]) if ok else 5.0
        steps = max(1000, min(60000, int(0.85 * rate * left) // 500 * 500))
        cfg = config(n, steps, f"runs/{n}-flow-gpu", 1000)
        (folder / f"{n}.yaml").write_text(yaml.safe_dump(cfg))
        lines.append(
            f"{n}: {rate:.1f} steps/s with both runs at once (exit {procs[n].returncode}; "
            f"(time, step) points {[(round(t - s[0][0], 2), k) for t, k in s] if s else []}); "
            f"{left:.0f} s left -> {steps} steps"
        )
    text = "\n".join(lines) + "\n"
    Path(args.report).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
