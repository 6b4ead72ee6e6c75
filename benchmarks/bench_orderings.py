"""Benchmark: standard orderings on fcc, bcc and hcp recovered with the package defaults.

For each ordering the target is the ordered crystal in a supercell; the search starts from a
random permutation of the same species on the same sites and runs

    start.calc = GRSCalculator(target=ordered)
    SimulatedAnnealing(start, moves="swap", rng=seed).run()      # n_steps = 2000, T "auto"

with nothing else set. A run counts as exact when the GRS score reaches 1e-8 *and*
pymatgen's ``StructureMatcher`` (a judge the search does not use) matches the result to the
ordered crystal. Reported per ordering: exact runs / seeds, steps to exact (median), wall
time per run (set-up included) and per step.

Usage::

    python benchmarks/bench_orderings.py              # 20 seeds -> docs/benchmarks/orderings.md
    python benchmarks/bench_orderings.py --seeds 3    # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir
from ase import Atoms
from ase.build import bulk

from ase_crystalgen import GRSCalculator
from ase_crystalgen.optimize import SimulatedAnnealing

TOLERANCE = 1e-8


def _fcc(symbol, a, repeat=2):
    return bulk(symbol, "fcc", a=a, cubic=True).repeat(repeat)


def l12() -> Atoms:
    t = _fcc("Cu", 3.75)
    t.symbols[::4] = "Au"  # Au on one simple-cubic sublattice
    return t


def l10() -> Atoms:
    t = _fcc("Cu", 3.85)
    z = np.rint(2 * t.positions[:, 2] / 3.85).astype(int) % 2
    t.numbers[z == 1] = 79  # alternating (001) planes
    return t


def l11() -> Atoms:
    t = _fcc("Cu", 3.75)
    k = np.rint(2 * t.positions.sum(axis=1) / 3.75).astype(int) // 2 % 2
    t.numbers[k == 1] = 78  # alternating (111) planes: CuPt
    return t


def _bcc(a, repeat=2):
    return bulk("Fe", "bcc", a=a, cubic=True).repeat(repeat)


def b2() -> Atoms:
    t = _bcc(2.88)
    body = np.rint(2 * t.positions[:, 0] / 2.88).astype(int) % 2 == 1
    t.numbers = np.where(body, 13, 28)  # NiAl
    return t


def _heusler_sublattices(t, a):
    """Labels 0-3 of the four fcc sublattices of a bcc cell doubled along each axis."""
    n = np.rint(2 * t.positions / a).astype(int)  # half-lattice units
    body = n[:, 0] % 2
    # corner sites: parity of (x + y + z) / 2 in lattice units; body sites likewise
    parity = ((n[:, 0] + n[:, 1] + n[:, 2]) // 2) % 2
    return 2 * body + parity


def d03() -> Atoms:
    t = _bcc(2.9)
    lab = _heusler_sublattices(t, 2.9)
    t.numbers = np.where(lab == 0, 13, 26)  # Fe3Al: Al on one of the four sublattices
    return t


def l21() -> Atoms:
    t = _bcc(2.98)
    lab = _heusler_sublattices(t, 2.98)
    t.numbers = np.select([lab == 0, lab == 1], [13, 25], 29)  # Cu2MnAl (ternary)
    return t


def d019() -> Atoms:
    t = bulk("Mg", "hcp", a=3.2, c=5.2).repeat((2, 2, 1))
    # Ni3Sn type: in the 2x2 in-plane cell, Cd at (0, 0, 0) and (2/3, 1/3, 1/2)
    f = t.get_scaled_positions()
    on = np.all(np.isclose(f, [0, 0, 0], atol=1e-3), axis=1) | np.all(
        np.isclose(f, [2 / 3, 1 / 3, 0.5], atol=1e-3), axis=1)
    t.numbers[on] = 48
    t = t.repeat((1, 1, 2))
    return t


ORDERINGS = {
    "L1_2 AuCu3 (fcc)": l12,
    "L1_0 AuCu (fcc)": l10,
    "L1_1 CuPt (fcc)": l11,
    "B2 NiAl (bcc)": b2,
    "D0_3 Fe3Al (bcc)": d03,
    "L2_1 Cu2MnAl (bcc, ternary)": l21,
    "D0_19 Mg3Cd (hcp)": d019,
}


def matches(a: Atoms, b: Atoms) -> bool:
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    conv = AseAtomsAdaptor.get_structure
    return bool(StructureMatcher(primitive_cell=False, scale=False).fit(conv(a), conv(b)))


def run(name: str, seed: int, n_steps: int) -> dict:
    target = ORDERINGS[name]()
    start = target.copy()
    start.numbers = np.random.default_rng([seed, 7]).permutation(target.numbers)
    t0 = time.perf_counter()
    start.calc = GRSCalculator(target=target)
    sa = SimulatedAnnealing(start, moves="swap", rng=seed, n_steps=n_steps, tolerance=TOLERANCE)
    t1 = time.perf_counter()
    sa.run()
    wall = time.perf_counter() - t0
    exact = bool(sa.best_score <= TOLERANCE and matches(sa.best_atoms, target))
    return dict(ordering=name, seed=seed, sites=len(target), exact=exact,
                steps=int(sa.best_step) if exact else None, steps_run=int(sa.nsteps),
                wall_s=wall, setup_s=t1 - t0, ms_per_step=1e3 * (wall - (t1 - t0)) / max(sa.nsteps, 1),
                best_score=float(sa.best_score))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--steps", type=int, default=2000, help="n_steps of the anneal (default 2000)")
    p.add_argument("--out", default="docs/benchmarks/orderings.md")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    threadpool_limits(1)
    t0 = time.time()
    records = []
    tasks = [(s, n) for s in range(args.seeds) for n in ORDERINGS]
    for seed, name in tqdm(tasks, desc="orderings", unit="run"):
        records.append(run(name, seed, args.steps))
    elapsed = (time.time() - t0) / 60
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(records, indent=1))
    cmd = "python benchmarks/bench_orderings.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        "# Standard orderings recovered with the package defaults", "",
        f"Generated by `{cmd.strip()}` on {time.strftime('%Y-%m-%d %H:%M')} ({elapsed:.1f} min); "
        f"CPU {cpu_model()}, {usable_cores()} usable cores, load at the end {load}.", "",
        "Each run: the ordered crystal is the target, the start a random permutation of its "
        "species on its sites, and `SimulatedAnnealing(start, moves='swap', rng=seed)` with "
        f"`GRSCalculator(target=ordered)`, nothing else set (n_steps = {args.steps}, "
        "temperature 'auto'). Exact = GRS score <= 1e-8 and pymatgen's StructureMatcher "
        "(primitive_cell=False, scale=False) matches the result to the ordered crystal.", "",
        "| ordering | sites | exact | steps to exact: median [max] | wall s per run (median) "
        "| ms per step |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name in ORDERINGS:
        rs = [r for r in records if r["ordering"] == name]
        ok = [r for r in rs if r["exact"]]
        st = [r["steps"] for r in ok]
        lines.append(
            f"| {name} | {rs[0]['sites']} | {len(ok)}/{len(rs)} | "
            + (f"{np.median(st):.0f} [{max(st)}]" if st else "n/a")
            + f" | {np.median([r['wall_s'] for r in rs]):.2f} | "
            f"{np.median([r['ms_per_step'] for r in rs]):.2f} |")
    lines += ["", "A run stops at the first exact structure, so the wall time of a "
              "successful run is its time to exact."]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
