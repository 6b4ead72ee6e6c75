"""Benchmark: exact recovery of L1_2 AuCu3 on a fixed lattice (GRS paper, section IV.1, Fig. 3).

The target is the L1_2 AuCu3 crystal in the 2x2x2 conventional fcc cell (32 sites). Each search
starts from a random occupation of the same 32 sites and stops when the GRS score (mean-only,
per-rank descriptor scales) is at or below 1e-10, which happens exactly at the four
translation variants of L1_2. For each seed and method we record whether the exact structure
was reached, the steps (GA: generations and score evaluations) to reach it and the wall time.

Methods (settings in ``METHODS``): simulated annealing (SA) and a random walk (RW) with
composition-conserving swaps from a random Au8Cu24 start, or with flips (composition free)
from a random 50/50 occupation; a genetic algorithm (GA, population 50) with flips. As the
reference, icet's ``generate_target_structure_from_supercells`` (cluster space on the fcc
primitive cell, cutoffs [7, 5]) solves the same problem by matching the L1_2 cluster vector.

How icet's steps are counted: ``generate_target_structure_from_supercells`` only returns the
best structure, so we build the same objects it builds (``occupy_structure_randomly``,
``TargetVectorCalculator``, ``TargetClusterVectorAnnealing`` with the same seed and the same
``n_steps`` for its cooling schedule) and call the ensemble's own trial step
(``_do_trial_step``, the body of ``generate_structure``'s loop) until its best score equals
the score of the L1_2 cell itself. We then also run the public function for the full
``n_steps`` with the same seed, check that its result has the L1_2 cluster vector, and
report its wall time.

Usage::

    python benchmarks/bench_l12.py                       # 20 seeds, writes docs/benchmarks/l12.*
    python benchmarks/bench_l12.py --quick               # 2 seeds, short caps (smoke test)
    python benchmarks/bench_l12.py --resume              # keep finished runs of the JSON

icet is a benchmark-only dependency: ``pip install icet``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir
from ase import Atoms
from ase.build import bulk

from ase_crystalgen import GRSCalculator
from ase_crystalgen.optimize import (
    ChemistryMixing,
    Flip,
    FlipMutation,
    GeneticAlgorithm,
    RandomWalk,
    SimulatedAnnealing,
    SliceCrossover,
)

A_FCC = 3.75
TOLERANCE = 1e-10
AU, CU = 79, 29
POPULATION = 50

#: the paper's numbers for Fig. 3 (one run each)
PAPER = {"sa": "120 steps", "ga": "35 generations (of 50)", "rw": "2518 steps"}

#: Every GRS search. ``start``: "Au8Cu24" (random permutation of 8 Au and 24 Cu, needed by
#: swaps) or "random" (each site Au or Cu with probability 1/2). Temperatures are absolute
#: (score units) unless ``relative`` (multiples of the initial energy, the package default).
#: the calculator the package used before hierarchical rank weights and automatic
#: temperatures (docs/grs-search.md's former recommendation for lattice searches)
OLD_SETTINGS = dict(weights=(1.0,), scale="group", rank_weights=None, smoothing=1e-4)

METHODS: dict[str, dict] = {
    "sa_default": dict(
        kind="sa", label="SA, swaps, package defaults", start="Au8Cu24", moves="swap"),
    "sa_flipswap_default": dict(
        kind="sa", label="SA, moves='flip-swap' (flips 0.2, swaps 0.8; composition free), "
        "package defaults", start="random", moves="flip-swap"),
    "sa_flip12_default": dict(
        kind="sa", label="SA, 1-site / 2-site flips 50:50, package defaults", start="random",
        moves="flip12"),
    "sa_flip_default": dict(
        kind="sa", label="SA, 1-site flips, package defaults", start="random", moves="flip"),
    "rw_swap": dict(kind="rw", label="RW, swaps", start="Au8Cu24", moves="swap"),
    "rw_flip": dict(kind="rw", label="RW, flips", start="random", moves="flip"),
    "ga_flip": dict(
        kind="ga", label="GA, flips (paper: mutation 0.6, crossover 0.4)", start="random",
        mutations=(1,)),
    "ga_flip12": dict(
        kind="ga", label="GA, 1-site and 2-site flips, crossover 0.4", start="random",
        mutations=(1, 2)),
    "sa_swap_old": dict(
        kind="sa", label="SA, swaps, former settings (weights (1,), scale 'group', features "
        "alike, smoothing 1e-4, T = (0.03 -> 3e-4) x E0)", start="Au8Cu24", moves="swap",
        temperature=(0.03, 3e-4), relative=True, calculator=OLD_SETTINGS),
}


# --------------------------------------------------------------------------- the problem
def l12_target() -> Atoms:
    """L1_2 AuCu3 in the 2x2x2 conventional fcc cell: Au on one simple-cubic sublattice."""
    atoms = bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(2)
    atoms.symbols[::4] = "Au"
    return atoms


def make_calculator(target: Atoms, settings: dict | None = None) -> GRSCalculator:
    """The package defaults unless a method names other settings."""
    return GRSCalculator(target=target, **(settings or {}))


def random_start(target: Atoms, rng: np.random.Generator, kind: str) -> Atoms:
    atoms = target.copy()
    if kind == "Au8Cu24":
        numbers = np.full(len(atoms), CU)
        numbers[rng.choice(len(atoms), len(atoms) // 4, replace=False)] = AU
    elif kind == "random":
        numbers = rng.choice([CU, AU], size=len(atoms))
    else:
        raise ValueError(f"unknown start {kind!r}")
    atoms.numbers = numbers
    return atoms


def is_l12(atoms: Atoms) -> bool:
    """Whether Au fills exactly one of the four simple-cubic sublattices of the fcc cell
    (judged from positions, so the order of the atoms does not matter)."""
    parity = np.mod(np.rint(2 * atoms.positions / A_FCC).astype(int), 2)
    label = parity @ np.array([4, 2, 1])
    au = atoms.numbers == AU
    return bool(au.sum() * 4 == len(atoms) and len(np.unique(label[au])) == 1)


def seeds_of(seed: int, method_index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Start and dynamics generators. Starts depend on the seed and the start kind only, so
    all swap methods (and all flip methods) of a seed begin from the same occupation."""
    return np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2, method_index])


# --------------------------------------------------------------------------- GRS searches
def make_moves(name: str):
    if name == "flip12":
        return {Flip(): 0.5, Flip(n_sites=2): 0.5}
    return name


def run_montecarlo(name: str, cfg: dict, seed: int, target: Atoms, calc, max_steps: int) -> dict:
    rng_start, rng = seeds_of(seed, list(METHODS).index(name))
    atoms = random_start(target, rng_start, cfg["start"])
    atoms.calc = calc
    t0 = time.perf_counter()
    if cfg["kind"] == "sa":
        schedule = {k: cfg[k] for k in ("temperature", "relative") if k in cfg}
        dyn = SimulatedAnnealing(atoms, moves=make_moves(cfg["moves"]), rng=rng,
                                 n_steps=max_steps, tolerance=TOLERANCE, **schedule)
    else:
        dyn = RandomWalk(atoms, moves=make_moves(cfg["moves"]), rng=rng, tolerance=TOLERANCE)
    initial = dyn.ev.score
    dyn.run(max_steps)
    wall = time.perf_counter() - t0
    exact = bool(dyn.converged())
    return dict(exact=exact, steps=int(dyn.nsteps) if exact else None, evaluations=int(dyn.nsteps),
                steps_run=int(dyn.nsteps), wall_s=wall, initial_score=float(initial),
                best_score=float(dyn.best_score), l12=is_l12(dyn.best_atoms) if exact else None)


def run_genetic(name: str, cfg: dict, seed: int, target: Atoms, calc, generations: int) -> dict:
    rng_start, rng = seeds_of(seed, list(METHODS).index(name))
    population = [random_start(target, rng_start, cfg["start"]) for _ in range(POPULATION)]
    t0 = time.perf_counter()
    mutations = [FlipMutation(["Cu", "Au"], n_sites=k, rng=rng) for k in cfg["mutations"]]
    ga = GeneticAlgorithm(population, calc, rng=rng, mutations=mutations,
                          crossovers=[SliceCrossover(rng=rng), ChemistryMixing(rng=rng)],
                          crossover_probability=0.4, tournament_size=3, n_elite=2,
                          tolerance=TOLERANCE)
    ga.run(generations)
    wall = time.perf_counter() - t0
    exact = bool(ga.converged())
    return dict(exact=exact, steps=int(ga.generation) if exact else None,
                evaluations=int(ga.n_evaluations), steps_run=int(ga.generation), wall_s=wall,
                best_score=float(ga.best_score), l12=is_l12(ga.best_atoms) if exact else None)


def landscape(target: Atoms, calc) -> dict:
    """Scores one move away from L1_2: the gap the searches must resolve and the cost of
    a composition change, the barrier a flip-only path between two Au8Cu24 arrangements
    has to cross."""
    def score(numbers):
        atoms = target.copy()
        atoms.numbers = numbers
        return calc.energy_and_score(atoms)[1]

    z = target.numbers
    au, cu = np.flatnonzero(z == AU), np.flatnonzero(z == CU)
    swaps = []
    for j in cu:  # by symmetry, moving the first Au covers every distinct swap
        w = z.copy()
        w[[au[0], j]] = [CU, AU]
        swaps.append(score(w))
    flips = [score(np.where(np.arange(len(z)) == k, AU + CU - z, z)) for k in (au[0], cu[0])]
    n_au = len(au)
    return dict(swap_min=min(swaps), swap_max=max(swaps), flip_min=min(flips),
                flip_max=max(flips), n_swap_states=math.comb(len(z), n_au),
                n_flip_states=2 ** len(z))


# --------------------------------------------------------------------------- icet
class IcetProblem:
    """The same 32-site problem as an icet cluster-vector target."""

    def __init__(self, target: Atoms):
        from icet import ClusterSpace
        from mchammer.calculators import TargetVectorCalculator

        self.target = target
        self.cs = ClusterSpace(bulk("Au", "fcc", a=A_FCC), cutoffs=[7.0, 5.0],
                               chemical_symbols=[["Au", "Cu"]])
        self.cv = self.cs.get_cluster_vector(target)
        self.concentrations = {"Au": 0.25, "Cu": 0.75}
        # the best score any structure can have: that of L1_2 itself (negative, because of
        # icet's optimality term)
        ref = TargetVectorCalculator(target.copy(), self.cs, self.cv)
        self.exact_score = float(ref.calculate_total(target.numbers.copy()))

    def supercell(self) -> Atoms:
        return bulk("Cu", "fcc", a=A_FCC, cubic=True).repeat(2)

    def matches(self, atoms: Atoms) -> bool:
        return bool(np.allclose(self.cs.get_cluster_vector(atoms), self.cv, atol=1e-8))

    def steps_to_exact(self, seed: int, n_steps: int) -> dict:
        """Replays ``generate_target_structure_from_supercells`` step by step."""
        from icet.tools.structure_generation import (
            TargetClusterVectorAnnealing,
            _validate_concentrations,
            occupy_structure_randomly,
        )
        from mchammer.calculators import TargetVectorCalculator

        t0 = time.perf_counter()
        cell = self.supercell()
        occupy_structure_randomly(cell, self.cs, _validate_concentrations(self.concentrations,
                                                                          self.cs), seed)
        calc = TargetVectorCalculator(cell, self.cs, self.cv)
        ens = TargetClusterVectorAnnealing([cell], [calc], random_seed=seed)
        ens._n_steps = n_steps  # what generate_structure(n_steps) sets: the cooling length
        hit = None
        while ens.total_trials < n_steps:
            ens._do_trial_step()
            if ens.best_score <= self.exact_score + 1e-9:
                hit = ens.total_trials
                break
        wall = time.perf_counter() - t0
        exact = hit is not None and self.matches(ens.best_structure)
        return dict(exact=exact, steps=hit if exact else None, evaluations=ens.total_trials,
                    steps_run=ens.total_trials, wall_s=wall, l12=is_l12(ens.best_structure)
                    if exact else None)

    def public_call(self, seed: int, n_steps: int) -> dict:
        from icet.tools.structure_generation import generate_target_structure_from_supercells

        t0 = time.perf_counter()
        best = generate_target_structure_from_supercells(
            self.cs, [self.supercell()], self.concentrations, self.cv, n_steps=n_steps,
            random_seed=seed)
        return dict(public_exact=self.matches(best), public_wall_s=time.perf_counter() - t0)


# --------------------------------------------------------------------------- bookkeeping
def load_records(path: Path, resume: bool) -> tuple[list[dict], dict]:
    if resume and path.exists():
        data = json.loads(path.read_text())
        return data["records"], data.get("meta", {})
    return [], {}


def save_records(path: Path, meta: dict, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    os.replace(tmp, path)


def censored_quantiles(values: list[float | None], qs=(0.25, 0.5, 0.75)) -> list[float]:
    """Quantiles with failed runs counted as longer than any success (``inf``)."""
    x = np.array([np.inf if v is None else v for v in values], float)
    return [float(np.quantile(x, q, method="inverted_cdf")) for q in qs]


def fmt_q(v: float, cap: int | str) -> str:
    if not np.isfinite(v):
        return f"> {cap}"
    return f"{v:.0f}"


def fmt_s(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> list[tuple[str, str]]:
    cpu = cpu_model()
    usable = usable_cores()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        ("CPU", cpu),
        ("cores (usable / total)", f"{usable} / {os.cpu_count()}"),
        ("load average at start (1/5/15 min)", load),
        ("BLAS threads", "1 (threadpoolctl)"),
        ("Python", platform.python_version()),
        ("numpy", np.__version__),
        ("ase", version("ase")),
        ("ase_crystalgen", version("ase_crystalgen")),
        ("icet", version("icet")),
    ]


# --------------------------------------------------------------------------- report
def summarize(records: list[dict], methods: list[str], icet_steps: list[int], max_steps: int,
              generations: int) -> list[dict]:
    rows = []
    names = methods + [f"icet_{n}" for n in icet_steps]
    for name in names:
        recs = [r for r in records if r["method"] == name]
        if not recs:
            continue
        if name.startswith("icet_"):
            n = int(name.split("_")[1])
            label = f"icet `generate_target_structure_from_supercells`, n_steps = {n}"
            cap, unit, family = n, "steps", "icet"
        else:
            cfg = METHODS[name]
            label, family = cfg["label"], cfg["kind"]
            cap, unit = (generations, "generations") if family == "ga" else (max_steps, "steps")
        q1, med, q3 = censored_quantiles([r["steps"] for r in recs])
        ev = censored_quantiles([r["evaluations"] if r["exact"] else None for r in recs])[1]
        wall = censored_quantiles([r["wall_s"] if r["exact"] else None for r in recs])[1]
        per_eval = sum(r["wall_s"] for r in recs) / max(sum(r["evaluations"] for r in recs), 1)
        n_ok = sum(r["exact"] for r in recs)
        n_l12 = sum(bool(r.get("l12")) for r in recs)
        row = dict(method=name, label=label, family=family, unit=unit, cap=cap, n=len(recs),
                   n_exact=n_ok, n_l12=n_l12, q1=q1, median=med, q3=q3, median_evals=ev,
                   median_wall=wall, ms_per_eval=1e3 * per_eval)
        if family == "icet":
            row["public_exact"] = sum(bool(r.get("public_exact")) for r in recs)
            row["public_wall"] = float(np.median([r["public_wall_s"] for r in recs]))
        rows.append(row)
    return rows


def e0_ranges(records: list[dict]) -> str:
    """The range of initial scores per start kind, from the SA/RW records."""
    parts = []
    for kind in ("Au8Cu24", "random"):
        e0 = [r["initial_score"] for r in records if "initial_score" in r
              and METHODS[r["method"]]["start"] == kind]
        if e0:
            parts.append(f"E0 of the {kind} starts: {min(e0):.3f}-{max(e0):.3f}, "
                         f"median {np.median(e0):.3f}")
    return "; ".join(parts) or "no SA/RW runs"


def write_markdown(path: Path, rows: list[dict], meta: dict, machine: list[tuple[str, str]],
                   plot: Path | None, icet_error: str, records: list[dict], land: dict) -> None:
    cmd = meta["command"]
    lines = [
        "# L1_2 AuCu3 recovered exactly on a fixed lattice (GRS paper IV.1, Fig. 3)", "",
        f"Generated by `{cmd}` on {meta['date']} ({meta['elapsed_min']:.1f} min).", "",
        "## Machine", "", "| | |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine], "",
        "## Problem", "",
        "Target: L1_2 AuCu3, 2x2x2 conventional fcc cell (32 sites, a = 3.75 A). GRS score: "
        "`GRSCalculator(target)` with the package defaults (mean and variance at weights "
        "(1, 0.01), the paper's ACE basis, ranks 1-4 weighted 1 : 1e-2 : 1e-4 : 1e-6, "
        "pseudo-Huber smoothing 0.01), core repulsion on (zero on this lattice), except where "
        "a row names other settings. SA rows without a temperature use the default "
        "`temperature='auto'` and `n_steps` = the cap. "
        f"'Exact' = score <= {TOLERANCE:g}; every exact structure was also checked to put all Au "
        "on one simple-cubic sublattice (column *L1_2*). Swap methods start from a random "
        "Au8Cu24 permutation; flip methods (composition free, the paper's setting) from a "
        "random 50/50 occupation; a seed gives every swap method (every flip method) the "
        f"same start. SA/RW stop at {meta['max_steps']} steps, the GA (population {POPULATION}, "
        f"tournament 3, 2 elites, slice crossover + chemistry mixing) at {meta['generations']} "
        "generations. Temperatures given as 'x E0' are relative to the initial energy "
        f"({e0_ranges(records)}).", "",
        "icet: `ClusterSpace(fcc primitive, cutoffs=[7, 5], [['Au', 'Cu']])` (15 "
        "correlations), target = the cluster vector of the same L1_2 cell, target "
        "concentrations Au 0.25 / Cu 0.75, supercells = [the 2x2x2 conventional cell], "
        "default T_start = 5, T_stop = 0.001, `random_seed` = seed. Steps to exact are "
        "counted by replaying the function's own objects step by step "
        "(`TargetClusterVectorAnnealing._do_trial_step`, same seed, same cooling length "
        "`n_steps`) until the best score equals that of L1_2, confirmed by comparing cluster "
        "vectors; the public function was also run for the full `n_steps` with the same seed "
        "(column *public*: exact results / runs, median wall time).", "",
        "Steps to exact: median and quartiles over all seeds, failed runs counted as longer "
        "than the cap (so '> cap' where more than that quantile failed). Wall time to exact: "
        "median over all seeds in the same way (failures as infinite). *ms/eval*: total wall "
        "time / total score evaluations (SA/RW steps, GA individuals, icet trial steps).", "",
    ]
    if icet_error:
        lines += [f"**icet could not be run:** {icet_error}", ""]
    lines += [
        "## Results", "",
        "| key | method | exact | L1_2 | steps to exact: median [q1, q3] | evaluations to exact "
        "(median) | wall s to exact (median) | ms/eval | public icet | paper |",
        "|---|---|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        unit = "gen." if r["unit"] == "generations" else ""
        steps = (f"{fmt_q(r['median'], r['cap'])} [{fmt_q(r['q1'], r['cap'])}, "
                 f"{fmt_q(r['q3'], r['cap'])}] {unit}").strip()
        evals = fmt_q(r["median_evals"], "cap")
        public = (f"{r['public_exact']}/{r['n']}, {r['public_wall']:.2f} s"
                  if r["family"] == "icet" else "")
        paper = PAPER.get(r["family"], "") if r["method"] in ("sa_flip", "ga_flip", "rw_flip") else ""
        lines.append(f"| {r['method']} | {r['label']} | {r['n_exact']}/{r['n']} | {r['n_l12']} "
                     f"| {steps} | {evals} | {fmt_s(r['median_wall'])} | {r['ms_per_eval']:.2f} "
                     f"| {public} | {paper} |")
    by = {r["method"]: r for r in rows}
    sa = by.get("sa_default")
    for ic in (r for r in rows if r["family"] == "icet"):
        if sa is None:
            break
        ratio = sa["median_wall"] / ic["median_wall"]
        public = [r["public_wall_s"] for r in records
                  if r["method"] == f"icet_{ic['cap']}" and "public_wall_s" in r]
        pub = float(np.median(public)) if public else float("nan")
        lines += [
            "", f"Median wall time to exact, GRS SA with swaps at the package defaults "
            f"(`sa_default`, set-up included) / icet's steps to exact with n_steps = "
            f"{ic['cap']}: {fmt_s(sa['median_wall'])} s / {fmt_s(ic['median_wall'])} s = "
            f"{ratio:.2f}x; / icet's public `generate_target_structure_from_supercells` call "
            f"(median {fmt_s(pub)} s): {sa['median_wall'] / pub:.2f}x. Cost per evaluation: "
            f"{sa['ms_per_eval']:.2f} ms (GRS, fixed-lattice update) vs "
            f"{ic['ms_per_eval']:.2f} ms (icet, cluster vector), "
            f"{sa['ms_per_eval'] / ic['ms_per_eval']:.2f}x.",
        ]
    lines += [
        "", "## The landscape", "",
        f"One swap away from L1_2 the score is {land['swap_min']:.4f}-{land['swap_max']:.4f} (the "
        f"gap the searches must resolve); one flip away (Au8Cu24 -> Au7Cu25 or Au9Cu23) it is "
        f"{land['flip_min']:.4f}-{land['flip_max']:.4f}. A path of single flips between two "
        "Au8Cu24 arrangements has to pass through a composition change of roughly that cost, so "
        "a temperature low enough to keep L1_2 once found also freezes the arrangement once "
        "the composition is right. Two-site flips include swaps (when the two sites differ), "
        "which is why `sa_flip12` works. A uniform random walk hits one of the 4 L1_2 "
        f"variants among {land['n_swap_states']:,} Au8Cu24 occupations (swaps) or "
        f"{land['n_flip_states']:,} occupations (flips) after about "
        f"{land['n_swap_states'] / 4:.1e} or {land['n_flip_states'] / 4:.1e} steps on average.",
    ]
    if plot is not None:
        lines += ["", f"![steps to exact per seed]({plot.name})"]
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def write_plot(path: Path, records: list[dict], rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {"sa": ("+", "tab:green"), "rw": ("D", "black"), "ga": ("o", "tab:blue"),
             "icet": ("s", "tab:orange")}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=False)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for ax, key, ylabel in (
        (axes[0], "steps", "iterations to exact (SA/RW/icet: steps; GA: generations)"),
        (axes[1], "evaluations", "score evaluations to exact"),
    ):
        for x, r in enumerate(rows):
            recs = [q for q in records if q["method"] == r["method"]]
            marker, color = style[r["family"]]
            if key == "steps":
                cap = r["cap"]
            else:
                cap = max(q["evaluations"] for q in recs)
            ok = [q[key] for q in recs if q["exact"]]
            jit = rng.uniform(-0.18, 0.18, len(recs))
            ax.scatter(x + jit[:len(ok)], ok, marker=marker, color=color, s=40,
                       facecolors=color if marker != "+" else None, linewidths=1.4, zorder=3)
            n_fail = len(recs) - len(ok)
            if n_fail:
                ax.scatter(x + jit[len(ok):], [cap] * n_fail, marker="x", color="tab:red", s=30,
                           linewidths=1.0, zorder=2)
            ax.text(x, 1.01, f"{len(ok)}/{len(recs)}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7)
            if np.isfinite(r["median"]) and key == "steps":
                ax.hlines(r["median"], x - 0.3, x + 0.3, color=color, lw=1)
        if key == "steps":  # the paper's single runs (its flip setting)
            for x, r in enumerate(rows):
                y = {"sa_flip": 120, "ga_flip": 35, "rw_flip": 2518}.get(r["method"])
                if y is not None:
                    ax.scatter([x], [y], marker="*", s=110, color="0.5", zorder=4,
                               label="paper (one run)" if r["method"] == "sa_flip" else None)
            ax.legend(loc="lower left", fontsize=8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["method"] for r in rows], rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0].set_title("L1_2 AuCu3, 32 sites, one point per seed; red x: not exact (drawn at the "
                      "cap)\nabove the axes: exact / runs", fontsize=9, pad=16)
    axes[1].set_title("the same runs counted in score evaluations\n(GA: 50 per generation)",
                      fontsize=9, pad=16)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20, help="seeds 0..n-1 (default 20)")
    p.add_argument("--max-steps", type=int, default=2000, help="SA/RW step cap (default 2000)")
    p.add_argument("--generations", type=int, default=80, help="GA generation cap (default 80)")
    p.add_argument("--icet-steps", default="2000,max",
                   help="icet n_steps values, comma separated; 'max' = --max-steps")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"GRS methods to run (default all: {','.join(METHODS)})")
    p.add_argument("--no-icet", action="store_true", help="skip icet")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 2 seeds, 600 steps, 5 generations")
    p.add_argument("--resume", action="store_true", help="keep the finished runs in the JSON")
    p.add_argument("--out", default="docs/benchmarks/l12.md", help="markdown output")
    p.add_argument("--plot", default="docs/benchmarks/l12.png", help="figure output")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.max_steps, args.generations = 2, 600, 5

    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    threadpool_limits(1)  # the per-step linear algebra is tiny; BLAS threads only cost
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    icet_steps = [] if args.no_icet else sorted({args.max_steps if s.strip() == "max" else int(s)
                                                 for s in args.icet_steps.split(",")})
    out = Path(args.out)
    plot = Path(args.plot) if args.plot else None
    json_path = out.with_suffix(".json")
    command = "python benchmarks/bench_l12.py " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = dict(command=command.strip(), max_steps=args.max_steps, generations=args.generations,
                seeds=args.seeds, date=time.strftime("%Y-%m-%d %H:%M"), elapsed_min=0.0,
                machine=machine_info())
    records, old_meta = load_records(json_path, args.resume)
    done = {(r["method"], r["seed"]) for r in records
            if r.get("max_steps") == args.max_steps and r.get("generations") == args.generations}
    records = [r for r in records if (r["method"], r["seed"]) in done]

    target = l12_target()
    calc = make_calculator(target)
    calcs = {m: make_calculator(target, METHODS[m].get("calculator")) if METHODS[m].get(
        "calculator") else calc for m in METHODS}
    icet_error, icet = "", None
    if icet_steps:
        try:
            icet = IcetProblem(target)
        except Exception as exc:  # not installed, or an API change: say so in the table
            icet_error = f"{type(exc).__name__}: {exc}"

    tasks = [(s, m) for s in range(args.seeds) for m in methods]
    if icet is not None:
        tasks += [(s, f"icet_{n}") for s in range(args.seeds) for n in icet_steps]
    todo = [(seed, name) for seed, name in tasks if (name, seed) not in done]
    if not todo and old_meta:
        meta = old_meta  # nothing new: redraw the report of the run that made the records
        meta.setdefault("machine", machine_info())
    t_start = time.perf_counter()
    for seed, name in tqdm(todo, desc="L1_2 searches", unit="run"):
        if name.startswith("icet_"):
            n = int(name.split("_")[1])
            rec = icet.steps_to_exact(seed, n)
            rec.update(icet.public_call(seed, n))
        elif METHODS[name]["kind"] == "ga":
            rec = run_genetic(name, METHODS[name], seed, target, calcs[name], args.generations)
        else:
            rec = run_montecarlo(name, METHODS[name], seed, target, calcs[name], args.max_steps)
        rec.update(method=name, seed=seed, max_steps=args.max_steps, generations=args.generations)
        records.append(rec)
        meta["elapsed_min"] = (time.perf_counter() - t_start) / 60
        save_records(json_path, meta, records)

    rows = summarize(records, methods, icet_steps, args.max_steps, args.generations)
    if todo:
        meta["elapsed_min"] = (time.perf_counter() - t_start) / 60
    save_records(json_path, meta, records)
    if plot is not None:
        write_plot(plot, records, rows)
    write_markdown(out, rows, meta, meta["machine"], plot, icet_error, records,
                   landscape(target, calc))
    for r in rows:
        print(f"{r['method']:14s} exact {r['n_exact']:2d}/{r['n']}  median {fmt_q(r['median'], r['cap'])}"
              f"  wall {fmt_s(r['median_wall'])} s")
    return rows


if __name__ == "__main__":
    main()
