"""Benchmark: GRS minimisation with the native ACE backend and the LAMMPS SNAP backend.

Both backends drive the same :class:`~ase_crystalgen.GRSCalculator` (moments 1-2, core
repulsion) and the same FIRE minimiser from the same start, in one run:

* **L1_2 relax**: target = L1_2 AuCu3 (2x2x2 conventional fcc cells, a = 3.75 A, Au on the
  cube corners, 32 atoms); start = the target rattled by 0.05 A. The score can reach 0.
* **random alloy**: target = a random fcc Cu3Au alloy (3x3x3 conventional cells, 108 atoms,
  27 Au, rattled 0.05 A); start = a 32-atom fcc cell with 8 random Au, rattled 0.05 A. The
  score has a positive minimum (a 32-atom cell cannot hold the target's distribution).

Per backend: the median time of a force call (``get_forces`` on new positions: descriptor
forward, objective, descriptor backward, core repulsion) and of its descriptor forward and
backward parts; FIRE steps to ``fmax`` (or the cap), the steps until the score first fell
below 1 % of its start, and the final score.

Usage::

    python benchmarks/bench_grs_backends.py                # writes docs/benchmarks/grs-backends.md
    python benchmarks/bench_grs_backends.py --quick        # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir
from ase import Atoms
from ase.build import bulk
from ase.optimize import FIRE

from ase_crystalgen import GRSCalculator
from ase_crystalgen.descriptors import ACEDescriptor

ELEMENTS = ["Cu", "Au"]
A_FCC = 3.75
JITTER = 0.01  # per-call position noise for the force-call timings (A)


# --------------------------------------------------------------------------- problems
def l12() -> Atoms:
    atoms = bulk("Cu", "fcc", a=A_FCC, cubic=True)
    atoms[0].symbol = "Au"
    return atoms.repeat(2)


def random_alloy(reps: int, seed: int) -> Atoms:
    atoms = bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(reps)
    rng = np.random.default_rng(seed)
    atoms.symbols[rng.choice(len(atoms), size=len(atoms) // 4, replace=False)] = "Au"
    atoms.rattle(0.05, seed=seed)
    return atoms


def problems() -> list[tuple[str, Atoms, Atoms]]:
    start1 = l12()
    start1.rattle(0.05, seed=4)
    return [("L1_2 relax", l12(), start1),
            ("random alloy", random_alloy(3, seed=11), random_alloy(2, seed=12))]


# --------------------------------------------------------------------------- backends
def backends(with_fresh: bool):
    out = [("native ACE (paper basis)", lambda: ACEDescriptor(ELEMENTS), True)]
    try:
        from ase_crystalgen.descriptors import SNAPDescriptor
        from ase_crystalgen.lammps.session import import_lammps

        import_lammps()
    except ImportError as err:
        return out, f"LAMMPS SNAP not run: {err}"
    out.append(("LAMMPS SNAP 2J=8", lambda: SNAPDescriptor(ELEMENTS, twojmax=8), True))
    if with_fresh:
        # timings only: its numbers are bit-for-bit those of the reusing backend
        out.append(("LAMMPS SNAP 2J=8, new instances every call",
                    lambda: SNAPDescriptor(ELEMENTS, twojmax=8, reuse=False), False))
    return out, ""


@dataclass
class Row:
    problem: str
    backend: str
    n_desc: int
    setup_s: float
    call_s: float
    forward_s: float
    backward_s: float
    steps: int | None = None
    converged: bool | None = None
    steps_1pct: int | None = None
    score0: float | None = None
    score: float | None = None
    fire_s: float | None = None
    disp: float | None = None
    note: str = ""


def time_calls(target, start, makers, repeats, warmup) -> list[Row]:
    """Force-call timings of all backends, interleaved call by call so that a varying load
    on a shared machine hits every backend alike."""
    rng = np.random.default_rng(0)
    frames = [start.positions + rng.normal(0, JITTER, start.positions.shape)
              for _ in range(repeats + warmup)]
    setups, runs = [], []
    for _, make, _ in makers:
        t0 = time.perf_counter()
        d = make()
        calc = GRSCalculator(target, descriptor=d)
        setups.append(time.perf_counter() - t0)
        atoms = start.copy()
        atoms.calc = calc
        runs.append((d, calc, atoms, [], [], []))
    for k, x in enumerate(frames):
        for d, calc, atoms, calls, fwd, bwd in runs:
            atoms.positions = x
            t0 = time.perf_counter()
            atoms.get_forces()
            t1 = time.perf_counter()
            B, backward = d.forward(atoms)
            t2 = time.perf_counter()
            _, G = calc.objective.score_and_gradient(B)
            t3 = time.perf_counter()
            backward(G)
            t4 = time.perf_counter()
            if k >= warmup:
                calls.append(t1 - t0)
                fwd.append(t2 - t1)
                bwd.append(t4 - t3)
    rows = []
    for (backend, _, _), setup, (d, _, _, calls, fwd, bwd) in zip(makers, setups, runs, strict=True):
        rows.append(Row("", backend, d.n_per_species, setup, statistics.median(calls),
                        statistics.median(fwd), statistics.median(bwd)))
    return rows


def relax(target, start, make, fmax, cap, row: Row) -> None:
    atoms = start.copy()
    atoms.calc = GRSCalculator(target, descriptor=make())
    scores = []
    opt = FIRE(atoms, logfile=None)
    opt.attach(lambda: scores.append(atoms.calc.results["score"]), interval=1)
    t0 = time.perf_counter()
    opt.run(fmax=fmax, steps=cap)
    row.fire_s = time.perf_counter() - t0
    row.steps, row.converged = opt.nsteps, bool(opt.converged())
    row.score0, row.score = scores[0], float(atoms.calc.results["score"])
    below = [k for k, s in enumerate(scores) if s < 0.01 * scores[0]]
    row.steps_1pct = below[0] if below else None
    if len(atoms) == len(target) and (atoms.numbers == target.numbers).all():
        d = atoms.positions - target.positions
        row.disp = float(np.abs(d - d.mean(0)).max())  # up to a rigid translation


# --------------------------------------------------------------------------- report
def machine_info() -> list[tuple[str, str]]:
    cpu = cpu_model()

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    usable = usable_cores()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [("CPU", cpu), ("cores (usable / total)", f"{usable} / {os.cpu_count()}"),
            ("load average at start (1/5/15 min)", load),
            ("Python", platform.python_version()), ("numpy", np.__version__),
            ("scipy", version("scipy")), ("ase", version("ase")),
            ("vesin", version("vesin")), ("ase_crystalgen", version("ase_crystalgen")),
            ("lammps", version("lammps"))]


def fmt(x, spec=".3g", none="n/a") -> str:
    return none if x is None else format(x, spec)


def render(rows, info, notes, cmd, repeats, warmup, fmax, cap) -> str:
    lines = ["# GRS backends: native ACE and LAMMPS SNAP", "",
             f"Generated by `{cmd}` on {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info]
    lines += ["", "## Results", "",
              f"*force call*: median wall time of `get_forces()` over {repeats} calls (after "
              f"{warmup} warm-up calls), each at new positions (the start plus {JITTER} A "
              "Gaussian noise), the backends taking turns call by call so that the load of "
              "a shared machine hits them alike; *forward* / *backward*: the descriptor's "
              "share of it "
              "(`descriptor.forward(atoms)` and `backward(G)`), timed separately on the same "
              f"positions. *FIRE steps*: ASE FIRE, defaults, until fmax < {fmax} eV/A or "
              f"{cap} steps; *steps to 1 %*: first step with a score below 1 % of the start; "
              "*max disp*: largest deviation of an atom from the target crystal after FIRE "
              "(up to a rigid translation; L1_2 only). Scores of different descriptors are "
              "not comparable with each other, steps and displacements are.",
              "",
              "| problem | backend | desc/atom | setup ms | force call ms | forward ms "
              "| backward ms | FIRE steps | converged | steps to 1 % | start score "
              "| final score | max disp A | FIRE s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r.problem} | {r.backend} | {r.n_desc} | {1e3 * r.setup_s:.0f} "
            f"| {1e3 * r.call_s:.1f} | {1e3 * r.forward_s:.1f} | {1e3 * r.backward_s:.1f} "
            f"| {fmt(r.steps, 'd', 'not run')} "
            f"| {'n/a' if r.converged is None else ('yes' if r.converged else 'no')} "
            f"| {fmt(r.steps_1pct, 'd', 'never' if r.steps is not None else 'n/a')} "
            f"| {fmt(r.score0)} | {fmt(r.score)} | {fmt(r.disp, '.2g')} | {fmt(r.fire_s, '.1f')} |")
    lines += ["", "## Method notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few repeats and a short FIRE cap")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--fmax", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=1000, help="FIRE step cap")
    p.add_argument("--out", default="docs/benchmarks/grs-backends.md")
    args = p.parse_args(argv)
    repeats, warmup = (3, 1) if args.quick else (args.repeats, args.warmup)
    cap = 50 if args.quick else args.steps
    info = machine_info()  # load average before the work starts
    try:  # LAMMPS is serial here; keep numpy's BLAS serial too, as on a shared 2-core box
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=1, user_api="blas")
        info.append(("BLAS threads", "1 (threadpoolctl)"))
    except ImportError:
        limiter = contextlib.nullcontext()
        info.append(("BLAS threads", "library default"))

    rows = []
    makers, why = backends(with_fresh=True)
    with limiter:
        for name, target, start in problems():
            print(f"[{name}] force-call timings ...", flush=True)
            timed = time_calls(target, start, makers, repeats, warmup)
            for row, (backend, make, run_fire) in zip(timed, makers, strict=True):
                row.problem = name
                if run_fire:
                    print(f"[{name}] {backend}: FIRE ...", flush=True)
                    relax(target, start, make, args.fmax, cap, row)
                rows.append(row)

    notes = [
        "Calculator: `GRSCalculator(target, descriptor=...)` with its defaults: weights "
        "(1, 1) on mean and variance, target scale `rms`, smoothing 1e-4, cosine core "
        "repulsion. Positions only (fixed cell), all cells periodic.",
        "Native ACE: `ACEDescriptor(['Cu', 'Au'])`, the GRS paper's basis nmax (8, 2, 2, 1), "
        "lmax (0, 2, 2, 1), cutoffs 5.60 / 6.12 / 6.64 A (Cu-Cu / Au-Cu / Au-Au).",
        "LAMMPS SNAP: `SNAPDescriptor(['Cu', 'Au'], twojmax=8)`: rcutfac 1, radelem = 2 r_vdw "
        "(2.80 / 3.32 A, so the same pair cutoffs as ACE), wj 1 / 1, rfac0 0.99363, rmin0 0, "
        "switchflag 1, bzeroflag 1, chemflag 0. Forward: `compute sna/atom` (one "
        "`run 0` in a reused instance, positions moved with `scatter_atoms`). Backward: "
        "`pair_style snap` in a second instance with one atom type per atom, coefficients "
        "beta_i = dQ/dB_i written to a file and re-read each call: forces = -dQ/dR and "
        "virial = -dQ/d(strain), exact (checked against finite differences in "
        "tests/test_snap.py).",
        "*new instances every call*: `reuse=False`, both LAMMPS instances built, run and "
        "closed in every forward / backward (timings only; results are identical).",
        "Setup: descriptor construction plus the target's descriptors and moments.",
        "Why not `compute snap ... bikflag 1 dgradflag 1` for the backward pass: its rows "
        "hold dB_i/dR_j summed over the periodic images of j (exact for forces, see "
        "`SNAPDescriptor.position_jacobian`), so the pair vectors that the stress needs are "
        "lost whenever several images of an atom are within the cutoff (every cell here), "
        "and the array has 3 N^2 rows; in this LAMMPS version a second `run 0` with that "
        "compute also fails (\"Reuse of compute ID '<id>_press'\"), so it needs a new "
        "instance per call.",
    ]
    if why:
        notes.append(why)
    cmd = "python benchmarks/bench_grs_backends.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    text = render(rows, info, notes, cmd.strip(), repeats, warmup, args.fmax, cap)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
