"""Benchmark: special quasirandom structures (SQS) from GRS against icet and sqsgenerator.

Every method makes a small periodic cell whose occupation should look like a random alloy;
the results are judged by measures the GRS code does not optimise (``sqs_judges.py``):

- **icet objective**: icet's SQS score (cluster vector against the ideal random alloy's,
  ``compare_cluster_vectors``, optimality weight 1; lower is better). icet optimises it.
- **Warren-Cowley alpha**: ``1 - P_s(B | A) / c_B`` on the ideal-lattice shells (periodic
  images included); max |alpha| over shells 1-3 and all ordered pairs. sqsgenerator optimises
  WC directly (shells 1-3) and icet's pair clusters cover the same shells.
- **EMT energy error** (Cu-Au only): |E_EMT(cell) - E_EMT(large random cells)| per atom on
  the ideal lattice; a many-body energy that no method optimises.
- **GRS score**: the package's default ``GRSCalculator(target=big random alloy)`` score,
  for information (the ``grs`` method optimises it).
- **cost**: wall time per run and per trial step, methods interleaved seed by seed.

Cases: Cu(1-x)Au(x), x = 0.25 and 0.5, on 32 fcc sites (2x2x2 conventional cell, Vegard
lattice parameter); equiatomic NbMoTaW on 64 bcc sites (4x4x4 primitive bcc cell: its shortest
period, 11.2 A, is longer than the 6.5 A of the 4x4x2 conventional cell, so fewer neighbour
shells are images of each other). Methods
(``METHODS``): a random occupation with the exact composition (the GRS start, the baseline);
icet's ``generate_sqs_from_supercells``; sqsgenerator (if installed); GRS simulated annealing
with swaps against a large random alloy (``run_grs``, package defaults; the former settings as
``grs_doc``) and the package's one call ``generate_representative_structures``
(``grs_call``).

Off the lattice (``--offlattice``, "what icet cannot do"): the GRS target is a random Cu-Au
alloy relaxed with EMT, and the GRS cell relaxes its positions and cell under the GRS
potential alone; EMT (which no method sees) judges the cells as made and after relaxation,
next to icet's SQS and the GRS lattice SQS (``off_lattice_seed``).

Usage::

    python benchmarks/bench_sqs.py              # 5 seeds, 5000 steps, writes docs/benchmarks/sqs.*
    python benchmarks/bench_sqs.py --quick      # 2 seeds, 1000 steps (smoke test)
    python benchmarks/bench_sqs.py --resume     # keep the finished runs of the JSON
    python benchmarks/bench_sqs.py --offlattice # off-lattice study: sqs_offlattice.json, and
                                                # its section in sqs.md

icet and sqsgenerator are benchmark-only dependencies: ``pip install icet sqsgenerator``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir
from ase import Atoms
from ase.build import bulk
from sqs_judges import (
    IcetJudge,
    emt_energy,
    emt_relax,
    msd_from_sites,
    random_alloy_energy,
    random_occupation,
    site_displacements,
    warren_cowley,
)

#: lattice parameters of the pure metals for Vegard's law (A)
A_CU, A_AU = 3.61, 4.08
A_NBMOTAW = 3.24
ICET_CUTOFFS = [7.0, 5.0]
WC_SHELLS = 6  # reported; the headline uses shells 1-3
SQSGEN_SHELLS = {1: 1.0, 2: 0.5, 3: 1.0 / 3.0}  # sqsgenerator's default 1/s weighting
TARGET_SEED = 2024  # the GRS target alloy and the EMT reference cells (not the run seeds)

#: The cases. ``cell``: the SQS cell; ``big``: the GRS target lattice (random occupation);
#: ``emt_ref``: lattice of the EMT reference cells (None: EMT does not know the elements).
CASES: dict[str, dict] = {
    "CuAu_x0.25": dict(lattice="fcc", fractions={"Cu": 0.75, "Au": 0.25}),
    "CuAu_x0.50": dict(lattice="fcc", fractions={"Cu": 0.5, "Au": 0.5}),
    "NbMoTaW": dict(lattice="bcc", fractions={"Nb": 0.25, "Mo": 0.25, "Ta": 0.25, "W": 0.25}),
}

#: Every method. ``kind``: random / icet / sqsgen / grs / grs_call. GRS ``options`` go to
#: ``run_grs``: ``calculator`` holds GRSCalculator keywords, the rest SimulatedAnnealing
#: keywords (none: the package defaults, i.e. temperature "auto").
#: ``equal_time``: run GRS for as many steps as fit in icet's wall time of the same seed.
#: ``grs_call``: the one call ``generate_representative_structures`` with ``anneal_steps``
#: (default: two restarts on a lattice; ``grs_call1``: one).
OLD_GRS = dict(calculator=dict(weights=(1.0,), scale="group", rank_weights=None, smoothing=1e-4),
               temperature=(0.03, 3e-4), relative=True)
METHODS: dict[str, dict] = {
    "random": dict(kind="random", label="random occupation, exact composition (the GRS start)"),
    "icet": dict(kind="icet", label="icet generate_sqs_from_supercells, n_steps = --steps"),
    "sqsgen": dict(kind="sqsgen", iterations="steps",
                   label="sqsgenerator, WC shells 1-3, iterations = --steps"),
    "sqsgen_long": dict(kind="sqsgen", iterations="long",
                        label="sqsgenerator, WC shells 1-3, iterations = --sqsgen-iterations"),
    "grs": dict(kind="grs", options={},
                label="GRS SA, swaps, package defaults (GRSCalculator(target), T = 'auto')"),
    "grs_call": dict(kind="grs_call", options={},
                     label="the one call generate_representative_structures(target, cell=, "
                     "composition=, rng=seed, anneal_steps=--steps), package defaults (two "
                     "anneals of --steps from two random starts, the lower energy kept)"),
    "grs_call1": dict(kind="grs_call", options={"restarts": 1},
                      label="the one call with restarts=1: one anneal of --steps (half the "
                      "trials of the default)"),
    "grs_doc": dict(kind="grs", options=OLD_GRS,
                    label="GRS SA, swaps, the former settings: weights (1,), scale 'group', no "
                    "rank weights, smoothing 1e-4, T = (0.03 -> 3e-4) x E0"),
    "grs_eqt": dict(kind="grs", options={}, equal_time="icet",
                    label="GRS SA, package defaults, steps that take icet's wall time"),
}


# --------------------------------------------------------------------------- the problem
@dataclass
class Case:
    name: str
    label: str
    a: float
    primitive: Atoms  # icet's lattice
    cell: Atoms  # the SQS cell (all sites of the first species)
    big: Atoms  # the GRS target lattice
    emt_ref: Atoms | None
    fractions: dict[str, float]
    cell_text: str = ""
    big_text: str = ""
    counts: dict[str, int] = field(init=False)

    def __post_init__(self):
        n = len(self.cell)
        self.counts = {s: int(round(f * n)) for s, f in self.fractions.items()}
        if sum(self.counts.values()) != n or any(
                abs(c - f * n) > 1e-9 for c, f in zip(self.counts.values(), self.fractions.values())):
            raise ValueError(f"{self.name}: {self.fractions} does not fit {n} sites")

    @property
    def symbols(self) -> list[str]:
        return list(self.fractions)

    @property
    def formula(self) -> str:
        return "".join(f"{s}{c}" for s, c in self.counts.items())


def make_case(name: str) -> Case:
    spec = CASES[name]
    fr = spec["fractions"]
    first = next(iter(fr))
    if spec["lattice"] == "fcc":
        x = fr["Au"]
        a = (1 - x) * A_CU + x * A_AU
        conv = bulk(first, "fcc", a=a, cubic=True)
        return Case(name, f"Cu{fr['Cu']:g}Au{x:g} fcc, a = {a:.4f} A", a,
                    bulk(first, "fcc", a=a), conv.repeat(2), conv.repeat(10), conv.repeat(10), fr,
                    "2x2x2 conventional fcc", "10x10x10 conventional fcc")
    a = A_NBMOTAW
    conv = bulk(first, "bcc", a=a, cubic=True)
    return Case(name, f"NbMoTaW bcc, a = {a:.2f} A", a, bulk(first, "bcc", a=a),
                bulk(first, "bcc", a=a).repeat(4), conv.repeat(12), None, fr,
                "4x4x4 primitive bcc", "12x12x12 conventional bcc")


def start_of(case: Case, seed: int) -> Atoms:
    """The random start of a seed (also the ``random`` baseline)."""
    return random_occupation(case.cell, case.counts, np.random.default_rng([seed, 1]))


def target_of(case: Case) -> Atoms:
    """The large random alloy the GRS runs match (one per case, not per seed)."""
    n = len(case.big)
    counts = {s: int(round(f * n)) for s, f in case.fractions.items()}
    idx = list(CASES).index(case.name)
    return random_occupation(case.big, counts, np.random.default_rng([TARGET_SEED, idx]))


# --------------------------------------------------------------------------- methods
_GRS_CALCULATORS: dict = {}


def grs_calculator(case: Case, target: Atoms, **kwargs):
    """One GRSCalculator per case and keyword set (building it computes the target's
    descriptors; that one-off cost is reported as setup, not per run)."""
    from ase_crystalgen import GRSCalculator

    key = (case.name, id(target), repr(sorted(kwargs.items())))
    if key not in _GRS_CALCULATORS:
        t0 = time.perf_counter()
        calc = GRSCalculator(target=target, **kwargs)
        _GRS_CALCULATORS[key] = (calc, time.perf_counter() - t0)
    return _GRS_CALCULATORS[key]


def run_grs(case: Case, start: Atoms, target: Atoms, n_steps: int, seed: int,
            calculator: dict | None = None, **options) -> tuple[Atoms, dict]:
    """GRS simulated annealing with swaps from ``start`` against ``target``.

    ``calculator``: GRSCalculator keywords (default: the package defaults); other
    ``options`` go to SimulatedAnnealing. Returns the best structure and run facts.
    """
    from ase_crystalgen.optimize import SimulatedAnnealing

    calc, setup_s = grs_calculator(case, target, **(calculator or {}))
    atoms = start.copy()
    atoms.calc = calc
    t0 = time.perf_counter()
    sa = SimulatedAnnealing(atoms, moves="swap", n_steps=n_steps,
                            rng=np.random.default_rng([seed, 2]), **options)
    sa.run()
    wall = time.perf_counter() - t0
    best = sa.best_atoms.copy()
    best.calc = None
    return best, dict(wall_s=wall, steps_run=int(sa.nsteps), setup_s=setup_s,
                      own_score=float(sa.best_score), best_step=int(sa.best_step))


def run_grs_call(case: Case, target: Atoms, n_steps: int, seed: int,
                 **options) -> tuple[Atoms, dict]:
    """The package's one call on the SQS cell; its wall time includes building the
    potential of the target (``setup_s`` of the ``grs`` method, measured apart)."""
    from ase_crystalgen import generate_representative_structures

    t0 = time.perf_counter()
    (best,) = generate_representative_structures(target, cell=case.cell, composition=case.counts,
                                                 rng=seed, anneal_steps=n_steps, **options)
    wall = time.perf_counter() - t0
    own = float(best.info["grs_score"])
    best = best.copy()
    best.calc = None
    best.info = {}
    restarts = options.get("restarts", 2)  # the package default on a lattice
    return best, dict(wall_s=wall, steps_run=n_steps * restarts, own_score=own)


def run_icet(case: Case, n_steps: int, seed: int) -> tuple[Atoms, dict]:
    from icet import ClusterSpace
    from icet.tools.structure_generation import generate_sqs_from_supercells

    t0 = time.perf_counter()
    cs = ClusterSpace(case.primitive, cutoffs=ICET_CUTOFFS, chemical_symbols=case.symbols)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    best = generate_sqs_from_supercells(cs, supercells=[case.cell.copy()],
                                        target_concentrations=dict(case.fractions),
                                        n_steps=n_steps, random_seed=seed)
    wall = time.perf_counter() - t0
    return best, dict(wall_s=wall, steps_run=n_steps, setup_s=setup)


def run_sqsgen(case: Case, iterations: int, seed: int) -> tuple[Atoms, dict]:
    import sqsgenerator as sg

    cell = case.cell
    config = dict(
        structure=dict(lattice=cell.cell.array.tolist(),
                       coords=cell.get_scaled_positions().tolist(),
                       species=cell.get_chemical_symbols()),
        composition=dict(case.counts), shell_weights=dict(SQSGEN_SHELLS),
        iterations=int(iterations), seed=[int(seed)], thread_config=[1],
        max_results_per_objective=1)
    t0 = time.perf_counter()
    parsed = sg.parse_config(config)
    if not hasattr(parsed, "structure"):  # a ParseError comes back, not raised
        raise ValueError(f"sqsgenerator config: {parsed.key}: {parsed.msg}")
    pack = sg.optimize(parsed)
    wall = time.perf_counter() - t0
    result = pack.best()
    atoms = sg.to_ase(result.structure())
    # sqsgenerator keeps the site order; check, then put its species on our cell
    if not np.allclose(atoms.get_scaled_positions() % 1.0, cell.get_scaled_positions() % 1.0,
                       atol=1e-6):
        raise RuntimeError("sqsgenerator returned the sites in another order")
    best = cell.copy()
    best.numbers = atoms.numbers
    # cross-check of our Warren-Cowley judge: sqsgenerator's own alphas of unlike pairs
    # (it reports (1 + alpha) / 2 for like pairs, counting each like bond once)
    wc = warren_cowley(best, 3, species=case.symbols)
    check = max(abs(result.sro(s, a, b).value - wc.pair(s, a, b))
                for s in (1, 2, 3) for a in case.symbols for b in case.symbols if a != b)
    return best, dict(wall_s=wall, steps_run=int(iterations), own_score=float(result.objective),
                      sqsgen_wc_check=float(check))


# --------------------------------------------------------------------------- judges
class Judges:
    """All judges of one case, built once."""

    def __init__(self, case: Case, target: Atoms, n_ref_cells: int, icet_ok: bool):
        from ase_crystalgen import GRSCalculator

        self.case = case
        t0 = time.perf_counter()
        self.icet = (IcetJudge(case.primitive, ICET_CUTOFFS, case.symbols, case.fractions)
                     if icet_ok else None)
        # built apart from the GRS methods' calculators, with the package defaults
        self.grs = GRSCalculator(target=target)
        self.emt_ref = None
        if case.emt_ref is not None:
            self.emt_ref = random_alloy_energy(case.emt_ref, case.fractions, n_ref_cells,
                                               np.random.default_rng([TARGET_SEED, 99]))
        self.setup_s = time.perf_counter() - t0
        # how random the GRS target itself is (finite size leaves some order)
        self.target_wc = warren_cowley(target, 3, species=case.symbols).max_abs(3)

    def info(self) -> dict:
        d = dict(judge_setup_s=self.setup_s, target_wc_max13=self.target_wc)
        if self.emt_ref is not None:
            d.update(emt_ref_eV=self.emt_ref.tolist(), emt_ref_mean_eV=float(self.emt_ref.mean()),
                     emt_ref_std_meV=float(1e3 * self.emt_ref.std(ddof=1))
                     if len(self.emt_ref) > 1 else None,
                     emt_ref_se_meV=float(1e3 * self.emt_ref.std(ddof=1)
                                          / np.sqrt(len(self.emt_ref)))
                     if len(self.emt_ref) > 1 else None,
                     emt_ref_sites=len(self.case.emt_ref))
        return d

    def __call__(self, atoms: Atoms) -> dict:
        counts = {s: atoms.get_chemical_symbols().count(s) for s in self.case.symbols}
        if counts != self.case.counts:
            raise RuntimeError(f"composition {counts} is not {self.case.counts}")
        wc = warren_cowley(atoms, WC_SHELLS, species=self.case.symbols)
        out = dict(wc_max13=wc.max_abs(3), wc_mean13=wc.mean_abs(3), wc=wc.todict())
        if self.icet is not None:
            out.update(self.icet(atoms))
        if self.emt_ref is not None:
            e = emt_energy(atoms)
            err = 1e3 * (e - self.emt_ref.mean())
            out.update(emt_eV=e, emt_err_meV=err, emt_abs_meV=abs(err))
        a = atoms.copy()
        out["grs_score"] = float(self.grs.get_property("score", a))
        return out


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


def version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


#: what the numbers depend on besides the installed packages
CODE_PATHS = ("ase_crystalgen", "benchmarks/bench_sqs.py", "benchmarks/sqs_judges.py")


def git_state() -> str:
    """Commit of the working tree and whether the library or this benchmark had uncommitted
    changes when the run imported them."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_PATHS],
                               cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = sorted(line[3:] for line in dirty.splitlines() if line.strip())
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed
                   else " (clean: no uncommitted changes in " + ", ".join(CODE_PATHS) + ")")


def grs_defaults() -> str:
    """The package's GRS defaults as this run imported them."""
    import inspect

    from ase_crystalgen.grs.potential import DEFAULTS
    from ase_crystalgen.optimize import SimulatedAnnealing

    sa = {k: v.default for k, v in inspect.signature(SimulatedAnnealing).parameters.items()}
    return (f"GRSCalculator {DEFAULTS}; SimulatedAnnealing temperature={sa.get('temperature')!r}"
            f" (start, stop = {SimulatedAnnealing.AUTO_FACTORS} x the median energy change of "
            f"{SimulatedAnnealing.AUTO_SAMPLES} random moves), schedule={sa.get('schedule')!r}")


def machine_info() -> list[tuple[str, str]]:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        ("CPU", cpu_model()),
        ("cores (usable / total)", f"{usable_cores()} / {os.cpu_count()}"),
        ("load average at start (1/5/15 min)", load),
        ("BLAS threads", "1 (threadpoolctl)"),
        ("Python", platform.python_version()),
        ("numpy", np.__version__),
        ("ase", version("ase")),
        ("ase_crystalgen", version("ase_crystalgen")),
        ("ase_crystalgen git", git_state()),
        ("icet", version("icet")),
        ("sqsgenerator", version("sqsgenerator")),
    ]


def settings_of(method: str, args) -> dict:
    """What a record depends on besides (case, method, seed); --resume keeps a record only
    if these match."""
    cfg = METHODS[method]
    s = dict(kind=cfg["kind"])
    if cfg["kind"] == "icet":
        s["steps"] = args.steps
        s["cutoffs"] = ICET_CUTOFFS
    if cfg["kind"] == "sqsgen":
        s["iterations"] = args.steps if cfg["iterations"] == "steps" else args.sqsgen_iterations
        s["shells"] = {str(k): v for k, v in SQSGEN_SHELLS.items()}
    if cfg["kind"] in ("grs", "grs_call"):
        s["steps"] = args.steps
        s["options"] = repr(cfg["options"])
        s["equal_time"] = cfg.get("equal_time")
    return s


def run_one(case: Case, method: str, seed: int, args, target: Atoms,
            records: list[dict]) -> tuple[Atoms, dict] | None:
    cfg = METHODS[method]
    kind = cfg["kind"]
    if kind == "random":
        return start_of(case, seed), dict(wall_s=0.0, steps_run=0)
    if kind == "icet":
        return run_icet(case, args.steps, seed)
    if kind == "sqsgen":
        n = args.steps if cfg["iterations"] == "steps" else args.sqsgen_iterations
        return run_sqsgen(case, n, seed)
    if kind == "grs_call":
        return run_grs_call(case, target, args.steps, seed, **cfg["options"])
    n_steps = args.steps
    if cfg.get("equal_time"):
        def find(m):
            return next((r for r in records if (r["case"], r["method"], r["seed"])
                         == (case.name, m, seed)), None)
        ref, grs = find(cfg["equal_time"]), find("grs")
        if ref is None or grs is None or not grs["steps_run"]:
            return None
        n_steps = max(1, int(round(ref["wall_s"] / (grs["wall_s"] / grs["steps_run"]))))
    best, info = run_grs(case, start_of(case, seed), target, n_steps, seed, **cfg["options"])
    info["n_steps"] = n_steps
    return best, info


# --------------------------------------------------------------------------- report
MEASURES = [  # (key, header, format)
    ("icet_objective", "icet objective", "{:.3f}"),
    ("icet_cv_l1", "icet CV L1", "{:.3f}"),
    ("wc_max13", "max abs alpha 1-3", "{:.3f}"),
    ("wc_mean13", "mean abs alpha 1-3", "{:.3f}"),
    ("emt_abs_meV", "abs dE_EMT meV/atom", "{:.2f}"),
    ("grs_score", "GRS score", "{:.4f}"),
]


def median_of(recs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in recs if r.get(key) is not None]
    return float(np.median(vals)) if vals else None


def summarize(records: list[dict], case: str, methods: list[str]) -> list[dict]:
    rows = []
    for m in methods:
        recs = [r for r in records if r["case"] == case and r["method"] == m]
        if not recs:
            continue
        row = dict(method=m, n=len(recs))
        for key, _, _ in MEASURES:
            row[key] = median_of(recs, key)
        row["steps"] = median_of(recs, "steps_run")
        row["wall_s"] = median_of(recs, "wall_s")
        steps = sum(r["steps_run"] for r in recs)
        row["ms_per_trial"] = 1e3 * sum(r["wall_s"] for r in recs) / steps if steps else None
        rows.append(row)
    return rows


def fmt(v, f="{:.3f}") -> str:
    return "n/a" if v is None else f.format(v)


def ratio_line(rows: list[dict], num: str, den: str) -> str | None:
    by = {r["method"]: r for r in rows}
    a, b = by.get(num), by.get(den)
    if not a or not b or not b["ms_per_trial"] or not b["wall_s"]:
        return None
    return (f"{num} / {den}: cost per trial {a['ms_per_trial']:.3f} / {b['ms_per_trial']:.3f} ms = "
            f"{a['ms_per_trial'] / b['ms_per_trial']:.2f}x; median wall time per run "
            f"{a['wall_s']:.2f} / {b['wall_s']:.2f} s = {a['wall_s'] / b['wall_s']:.2f}x.")


def write_markdown(path: Path, meta: dict, records: list[dict], methods: list[str],
                   plot: Path | None, off_json: Path | None = None) -> None:
    steps = meta["steps"]
    lines = [
        "# Special quasirandom structures: GRS against icet and sqsgenerator", "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['elapsed_min']:.1f} min"
        f"{', QUICK settings' if meta.get('quick') else ''}; load average at the end "
        f"{meta.get('load_at_end', 'n/a')})."
        + (" Records kept from earlier runs (`--resume`): " + "; ".join(
            f"`{h}`" for h in meta["history"]) + "." if meta.get("history") else ""), "",
        *summary_lines(meta, records, methods),
        "## Machine", "", "| | |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in meta["machine"]], "",
        "## Problem", "",
        "Make a small periodic cell with the exact composition whose occupation looks like "
        "the ideal random alloy. Cases:", "",
        "| case | lattice | SQS cell | GRS target (random, exact composition) | EMT reference |",
        "|---|---|---|---|---|",
    ]
    for name, info in meta["cases"].items():
        emt = (f"{info['n_ref_cells']} random cells of {info.get('emt_ref_sites')} sites: "
               f"{info['emt_ref_mean_eV'] * 1e3:.2f} +- "
               f"{fmt(info.get('emt_ref_se_meV'), '{:.2f}')} meV/atom (std over cells "
               f"{fmt(info.get('emt_ref_std_meV'), '{:.2f}')})"
               if info.get("emt_ref_mean_eV") is not None else "none (EMT has no Nb, Mo, Ta, W)")
        lines.append(f"| {name} | {info['label']} | {info['cell']} | {info['target']}; its "
                     f"max abs alpha 1-3 = {info['target_wc_max13']:.3f} | {emt} |")
    lines += [
        "", "Methods (per case and seed, run interleaved: all methods of seed 0, then seed 1, "
        f"...; {meta['seeds']} seeds):", "",
        *[f"- `{m}`: {METHODS[m]['label']}" for m in methods], "",
        f"Settings: `--steps` = {steps}; icet `ClusterSpace(primitive, cutoffs={ICET_CUTOFFS})` "
        "(the fcc pairs reach shell 6 at these lattice parameters, the bcc ones shell 6 too), "
        "default T_start = 5, T_stop = 0.001, `random_seed` = seed, its own random start. "
        "sqsgenerator 0.5.6: Warren-Cowley objective with shell weights "
        f"{ {k: round(v, 3) for k, v in SQSGEN_SHELLS.items()} } (its default 1/s), random "
        f"iteration mode, one thread, seed = seed; `sqsgen` {steps} iterations, `sqsgen_long` "
        f"{meta['sqsgen_iterations']}. GRS: `SimulatedAnnealing(start, moves='swap', "
        f"n_steps={steps}, rng=Generator([seed, 2]))` from the `random` start of the seed, "
        "`GRSCalculator(target=<the large random alloy>)` (package defaults unless the method "
        "says otherwise); the calculator is built once per case (setup below, not in the "
        "run times). Package defaults when this ran: "
        f"{meta.get('grs_defaults', 'not recorded')}. `grs_call`: "
        "`generate_representative_structures(target, cell=<SQS cell>, composition=<counts>, "
        f"rng=seed, anneal_steps={steps})`, its own random starts (two anneals by default "
        "on a lattice, the lower energy kept; `grs_call1`: `restarts=1`); it builds its potential "
        "on every call (w_inter = w_intra = 1: for one member the energy is twice the score), "
        "so its wall time includes the target's descriptors (the `grs` setup below). "
        "`grs_doc`: " + METHODS["grs_doc"]["label"].split(": ", 1)[-1] + " (`GRSCalculator("
        "weights=(1.0,), scale='group', rank_weights=None, smoothing=1e-4)`, "
        "`temperature=(0.03, 3e-4), relative=True`). `grs_eqt`: the number of steps is icet's "
        "wall time of that seed divided by `grs`'s time per step of that seed.", "",
        "## Judges", "",
        "- *icet objective*: `compare_cluster_vectors(cv, cv_random, cs.as_list, "
        "optimality_weight=1, tol=1e-5)` with icet's `_get_sqs_cluster_vector` as cv_random, "
        f"cutoffs {ICET_CUTOFFS} (what `icet` minimises; negative once leading pair "
        "correlations are exact). *icet CV L1*: the same without the optimality term.",
        "- *max / mean abs alpha 1-3*: Warren-Cowley alpha_s^{AB} = 1 - P_s(B|A)/c_B on the "
        "ideal-lattice shells (periodic images counted; shells 1-6 in the JSON), over shells "
        "1-3 and all ordered pairs A, B (like pairs included). What `sqsgen*` minimises; "
        "icet's pair correlations cover the same shells, so it is not neutral for icet "
        "either. In a small cell some far shells are images of near ones (e.g. fcc shell 5 "
        "of the 2x2x2 cell is shell 1), which is why the headline stops at shell 3.",
        "- *abs dE_EMT*: |E_EMT(cell) - mean E_EMT(reference cells)| per atom, ideal lattice, "
        "no relaxation (ASE EMT, a many-body energy none of the methods sees; Cu-Au only).",
        "- *GRS score*: `GRSCalculator(target=<large random alloy>).get_property('score')` with "
        "the package defaults: what `grs`/`grs_eqt` minimise, for information.",
        "- *ms/trial*: total wall time / total trial steps (icet: n_steps; sqsgenerator: "
        "iterations; GRS: SA steps run); *wall s*: median wall time per run.", "",
        "## Results (medians over seeds)", "",
    ]
    for case, info in meta["cases"].items():
        rows = summarize(records, case, methods)
        if not rows:
            continue
        lines += [f"### {case}: {info['label']}, {info['formula']}", "",
                  "| method | runs | " + " | ".join(h for _, h, _ in MEASURES)
                  + " | steps | wall s | ms/trial |",
                  "|---|---:|" + "---:|" * (len(MEASURES) + 3)]
        for r in rows:
            lines.append(f"| {r['method']} | {r['n']} | "
                         + " | ".join(fmt(r[k], f) for k, _, f in MEASURES)
                         + f" | {fmt(r['steps'], '{:.0f}')} | {fmt(r['wall_s'], '{:.2f}')} | "
                         f"{fmt(r['ms_per_trial'], '{:.3f}')} |")
        lines.append("")
        setup = info.get("grs_setup_s")
        by = {r["method"]: r for r in rows}
        for num in ("grs", "grs_call", "grs_call1", "grs_doc"):
            line = ratio_line(rows, num, "icet")
            if line and num.startswith("grs_call") and setup and setup.get("grs") and by["icet"]["wall_s"]:
                net = [r for r in records if r["case"] == case and r["method"] == num]
                ms = 1e3 * sum(r["wall_s"] - setup["grs"] for r in net) / sum(
                    r["steps_run"] for r in net)
                line += (f" Less the `grs` setup ({setup['grs']:.2f} s) per call: {ms:.3f} ms "
                         f"per trial = {ms / by['icet']['ms_per_trial']:.2f}x icet's.")
            if line:
                lines.append(f"- {line}")
        if setup:
            lines.append("- GRS calculator setup (target descriptors, once per case and "
                         "keyword set): " + ", ".join(f"{k} {v:.2f} s" for k, v in setup.items()))
        lines.append("")
    missing = [c for c in CASES if c not in meta["cases"]]
    if missing:
        lines += [f"Cases not run yet: {', '.join(missing)} (`python benchmarks/bench_sqs.py "
                  "--resume` adds them and keeps the runs above).", ""]
    lines += validation_lines(meta, records)
    if plot is not None:
        lines += [f"![SQS judges per seed]({plot.name})", ""]
    if off_json is not None and off_json.exists():
        lines += offlattice_lines(json.loads(off_json.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def summary_lines(meta: dict, records: list[dict], methods: list[str]) -> list[str]:
    """Cost per trial of the GRS methods over icet's, per case (details under each case)."""
    parts = {}
    for case in meta["cases"]:
        by = {r["method"]: r for r in summarize(records, case, methods)}
        if "icet" not in by or not by["icet"]["ms_per_trial"]:
            continue
        parts[case] = ", ".join(f"`{m}` {by[m]['ms_per_trial'] / by['icet']['ms_per_trial']:.2f}x"
                                for m in ("grs", "grs_call", "grs_call1", "grs_doc") if m in by)
    if not parts:
        return []
    return ["Cost per trial step over icet's, this run (the machine was shared; see the load "
            "averages): " + "; ".join(f"{c}: {v}" for c, v in parts.items()) + ". `grs_call` "
            "includes building its potential on every call.", ""]


def l12_alphas() -> tuple[float, float]:
    """alpha_1(Au, Cu) and alpha_2(Au, Au) of L1_2 Cu3Au: exactly -1/3 and -3."""
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms.symbols[0] = "Au"
    wc = warren_cowley(atoms.repeat(2), 2)
    return wc.pair(1, "Au", "Cu"), wc.pair(2, "Au", "Au")


def validation_lines(meta: dict, records: list[dict]) -> list[str]:
    a1, a2 = l12_alphas()
    lines = ["## Checks of the judges", "",
             f"- Warren-Cowley of L1_2 Cu3Au: alpha_1(Au, Cu) = {a1:.6f} (exact: -1/3, each Au "
             f"has 12 Cu neighbours), alpha_2(Au, Au) = {a2:.6f} (exact: -3). Asserted in "
             "`tests/test_sqs_judges.py` with L1_0, B2, supercell and permutation invariance and "
             "a 4000-site random alloy (max abs alpha 1-3 < 0.03)."]
    for case, info in meta["cases"].items():
        by = {m: [r for r in records if r["case"] == case and r["method"] == m] for m in METHODS}
        parts = [f"GRS target's own max abs alpha 1-3: {info['target_wc_max13']:.3f}"]
        if by["icet"] and by["random"] and "icet_objective" in by["icet"][0]:
            better = sum(i["icet_objective"] < r["icet_objective"]
                         for i, r in zip(by["icet"], by["random"]))
            parts.append(f"icet's SQS below the random start on the icet objective for "
                         f"{better}/{min(len(by['icet']), len(by['random']))} seeds")
        checks = [r["sqsgen_wc_check"] for m in ("sqsgen", "sqsgen_long") for r in by[m]]
        if checks:
            parts.append("largest difference between sqsgenerator's own alphas of unlike pairs "
                         f"(shells 1-3) and ours: {max(checks):.1e}")
        if info.get("emt_ref_std_meV") is not None:
            parts.append(f"EMT reference: std over {info['n_ref_cells']} random cells of "
                         f"{info['emt_ref_sites']} sites {info['emt_ref_std_meV']:.2f} meV/atom, "
                         f"standard error of the mean {info['emt_ref_se_meV']:.2f} meV/atom")
        lines.append(f"- {case}: " + "; ".join(parts) + ".")
    lines.append("")
    return lines


def write_plot(path: Path, meta: dict, records: list[dict], methods: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("wc_max13", "max |alpha|, shells 1-3"), ("icet_objective", "icet objective"),
              ("emt_abs_meV", "|dE_EMT| (meV/atom)")]
    cases = list(meta["cases"])
    fig, axes = plt.subplots(len(cases), len(panels), figsize=(4.3 * len(panels),
                                                              3.0 * len(cases)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    jit = np.random.default_rng(0)
    for row, case in enumerate(cases):
        for col, (key, title) in enumerate(panels):
            ax = axes[row, col]
            shown = False
            for x, m in enumerate(methods):
                vals = [r[key] for r in records if r["case"] == case and r["method"] == m
                        and r.get(key) is not None]
                if vals:
                    shown = True
                    ax.scatter(x + jit.uniform(-0.15, 0.15, len(vals)), vals, s=22,
                               color=colors[x % len(colors)], zorder=3)
                    ax.hlines(np.median(vals), x - 0.3, x + 0.3, color="k", lw=1)
            if not shown:
                ax.text(0.5, 0.5, "n/a", transform=ax.transAxes, ha="center", va="center")
            ax.set_xticks(range(len(methods)))
            ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
            ax.set_title(f"{case}: {title}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle("one point per seed, bar = median; lower is better", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- off the lattice
#: The off-lattice study ("what icet cannot do"): Cu-Au cases, the relaxed target's size
#: (conventional fcc cells per side), the EMT relaxations and the GRS relaxation.
OFF_CASES = ("CuAu_x0.25", "CuAu_x0.50")
OFF_REPEAT = 6
OFF_TARGET_RELAX = dict(fmax=0.01, steps=1000)
OFF_CELL_RELAX = dict(fmax=0.01, steps=1000)
OFF_GRS_RELAX = dict(relax_steps=300, fmax=1e-4, optimizer="FIRE")
OFF_KINDS = {  # structure kinds of the off-lattice table, in order
    "icet": "icet SQS (ideal sites, a = relaxed alloy's)",
    "grs_lattice": "GRS one call, on the lattice (ideal sites)",
    "grs_relaxed": "GRS one call + relaxation under the GRS potential (no EMT)",
}
OFF_MEASURES = [  # (key, header, format)
    ("wc_max13", "max abs alpha 1-3", "{:.3f}"),
    ("de_asis_meV", "dE_EMT as is, meV/atom", "{:+.2f}"),
    ("de_relaxed_meV", "dE_EMT after EMT relaxation, meV/atom", "{:+.2f}"),
    ("msd", "MSD from sites, A^2", "{:.5f}"),
    ("msd_emt", "MSD after EMT relaxation, A^2", "{:.5f}"),
    ("emt_relax_steps", "EMT relaxation steps", "{:.0f}"),
    ("a_cell", "a of the cell, A", "{:.4f}"),
    ("grs_score", "GRS score", "{:.4f}"),
]


def relaxed_alloy(case: Case, repeat: int) -> dict:
    """A large random alloy on the ideal (Vegard) lattice and its EMT-relaxed copy."""
    conv = bulk(case.symbols[0], "fcc", a=case.a, cubic=True)
    ideal = conv.repeat(repeat)
    n = len(ideal)
    counts = {s: int(round(f * n)) for s, f in case.fractions.items()}
    idx = list(CASES).index(case.name)
    ideal = random_occupation(ideal, counts, np.random.default_rng([TARGET_SEED, idx, 7]))
    t0 = time.perf_counter()
    relaxed, steps, converged = emt_relax(ideal, **OFF_TARGET_RELAX)
    wall = time.perf_counter() - t0
    return dict(ideal=ideal, relaxed=relaxed, steps=steps, converged=converged, wall_s=wall,
                e_ideal=emt_energy(ideal), e_relaxed=emt_energy(relaxed),
                a_mean=float((4 * relaxed.get_volume() / n) ** (1 / 3)))


def off_lattice_seed(case: Case, ref: dict, seed: int, icet_steps: int,
                     icet_ok: bool) -> list[dict]:
    """icet's SQS, the GRS lattice SQS and the GRS-relaxed cell of one seed, judged."""
    from ase_crystalgen import GRSCalculator, generate_representative_structures

    a = ref["a_mean"]
    ideal32 = bulk(case.symbols[0], "fcc", a=a, cubic=True).repeat(2)
    target = ref["relaxed"]
    made: dict[str, tuple[Atoms, dict]] = {}
    if icet_ok:
        from icet import ClusterSpace
        from icet.tools.structure_generation import generate_sqs_from_supercells

        cs = ClusterSpace(bulk(case.symbols[0], "fcc", a=a), cutoffs=ICET_CUTOFFS,
                          chemical_symbols=case.symbols)
        t0 = time.perf_counter()
        sqs = generate_sqs_from_supercells(cs, supercells=[ideal32.copy()],
                                           target_concentrations=dict(case.fractions),
                                           n_steps=icet_steps, random_seed=seed)
        made["icet"] = (sqs, dict(wall_s=time.perf_counter() - t0))
    t0 = time.perf_counter()
    (lat,) = generate_representative_structures(target, cell=ideal32, composition=case.counts,
                                                rng=seed)
    made["grs_lattice"] = (lat, dict(wall_s=time.perf_counter() - t0))
    t0 = time.perf_counter()
    (rel,) = generate_representative_structures(target, cell=ideal32, composition=case.counts,
                                                rng=seed, **OFF_GRS_RELAX)
    # the relaxation's energies follow the annealing's in grs_history
    relax_steps = len(rel.info["grs_history"]) - len(lat.info["grs_history"]) - 1
    made["grs_relaxed"] = (rel, dict(wall_s=time.perf_counter() - t0, grs_relax_steps=relax_steps,
                                     same_occupation=bool(np.array_equal(lat.numbers,
                                                                         rel.numbers))))
    judge_grs = GRSCalculator(target=target)
    rows, emt_u = [], {}
    for kind, (atoms, info) in made.items():
        atoms = atoms.copy()
        atoms.calc, atoms.info = None, {}
        ideal = atoms.copy() if kind == "icet" else ideal32.copy()
        ideal.numbers = atoms.numbers
        relaxed, steps, conv = emt_relax(atoms, **OFF_CELL_RELAX)
        emt_u[kind] = site_displacements(relaxed, ideal)
        row = dict(case=case.name, seed=seed, kind=kind, **info,
                   wc_max13=warren_cowley(atoms, 3, ideal=ideal, species=case.symbols).max_abs(3),
                   de_asis_meV=1e3 * (emt_energy(atoms) - ref["e_relaxed"]),
                   de_relaxed_meV=1e3 * (emt_energy(relaxed) - ref["e_relaxed"]),
                   emt_relax_steps=steps, emt_converged=conv,
                   msd=msd_from_sites(atoms, ideal), msd_emt=msd_from_sites(relaxed, ideal),
                   a_cell=float((4 * atoms.get_volume() / len(atoms)) ** (1 / 3)),
                   grs_score=float(judge_grs.get_property("score", atoms.copy())),
                   numbers=atoms.numbers.tolist())
        if kind == "grs_relaxed":
            u = site_displacements(atoms, ideal)
            ref_u = emt_u["grs_lattice"]  # EMT's relaxation of the same occupation
            row["cos_emt"] = float(np.sum(u * ref_u) / np.sqrt(np.sum(u * u) * np.sum(ref_u**2)))
            row["positions"] = np.round(atoms.positions, 5).tolist()
            row["cell"] = np.round(atoms.cell.array, 5).tolist()
        rows.append(row)
    by = {r["kind"]: r for r in rows}
    gained = by["grs_lattice"]["de_asis_meV"] - by["grs_relaxed"]["de_asis_meV"]
    full = by["grs_lattice"]["de_asis_meV"] - by["grs_lattice"]["de_relaxed_meV"]
    by["grs_relaxed"]["recovered"] = gained / full if full > 0 else None
    return rows


def run_offlattice(args, icet_ok: bool) -> dict:
    """The off-lattice study; writes ``--off-json`` and returns its data."""
    path = Path(args.off_json)
    cases = [c.strip() for c in args.off_cases.split(",") if c.strip()]
    command = "python benchmarks/bench_sqs.py " + shlex.join(args.argv)
    data = dict(meta=dict(command=command.strip(), date=time.strftime("%Y-%m-%d %H:%M"),
                          seeds=args.seeds, icet_steps=args.steps, repeat=args.off_repeat,
                          target_relax=OFF_TARGET_RELAX, cell_relax=OFF_CELL_RELAX,
                          grs_relax=OFF_GRS_RELAX, machine=machine_info(), quick=args.quick,
                          cases={}), records=[])
    t_start = time.perf_counter()
    for name in cases:
        case = make_case(name)
        print(f"{name}: relaxing the {4 * args.off_repeat ** 3}-atom alloy with EMT ...",
              flush=True)
        ref = relaxed_alloy(case, args.off_repeat)
        data["meta"]["cases"][name] = dict(
            label=case.label, formula=case.formula, n_atoms=len(ref["ideal"]),
            emt_steps=ref["steps"], emt_converged=ref["converged"], emt_wall_s=ref["wall_s"],
            e_ideal_eV=ref["e_ideal"], e_relaxed_eV=ref["e_relaxed"], a_mean=ref["a_mean"],
            a_vegard=case.a, msd=msd_from_sites(ref["relaxed"], ref["ideal"]),
            wc_max13=warren_cowley(ref["ideal"], 3, species=case.symbols).max_abs(3))
        print(f"  {ref['steps']} FIRE steps ({ref['wall_s']:.0f} s), relaxation energy "
              f"{1e3 * (ref['e_ideal'] - ref['e_relaxed']):.2f} meV/atom, a {ref['a_mean']:.4f} A",
              flush=True)
        for seed in range(args.seeds):
            for row in off_lattice_seed(case, ref, seed, args.steps, icet_ok):
                data["records"].append(row)
                print(f"  {row['kind']:12s} seed {seed}: dE as is {row['de_asis_meV']:+7.2f}, "
                      f"relaxed {row['de_relaxed_meV']:+7.2f} meV/atom, MSD {row['msd']:.5f} "
                      f"(EMT {row['msd_emt']:.5f}) A^2, max|a| {row['wc_max13']:.3f}"
                      + (f", cos {row['cos_emt']:.2f}, GRS steps {row['grs_relax_steps']}"
                         if "cos_emt" in row else ""), flush=True)
            data["meta"]["elapsed_min"] = (time.perf_counter() - t_start) / 60
            save_records(path, data["meta"], data["records"])
    data["meta"]["load_at_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    save_records(path, data["meta"], data["records"])
    return data


def offlattice_lines(data: dict) -> list[str]:
    """The off-lattice section of the report."""
    meta, records = data["meta"], data["records"]
    gr = meta["grs_relax"]
    lines = [
        "## Off the lattice: what icet cannot do", "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta.get('elapsed_min', 0):.1f} "
        f"min{', QUICK settings' if meta.get('quick') else ''}; load average at the end "
        f"{meta.get('load_at_end', 'n/a')}; git {dict(meta['machine']).get('ase_crystalgen git')})."
        f" {meta['seeds']} seeds.", "",
        "A cluster expansion SQS lives on the ideal lattice. GRS matches descriptors of atoms "
        "wherever they are, so its target can be a *relaxed* random alloy and its structure "
        "can relax under the GRS potential (forces and stress from the descriptor mismatch) "
        "until its local environments look like the relaxed ones, without ever calling the "
        "energy model. The target: a random alloy of "
        f"{meta['repeat']}x{meta['repeat']}x{meta['repeat']} conventional fcc cells on the "
        "Vegard lattice, relaxed with ASE's EMT (positions and cell, `FIRE(FrechetCellFilter)`"
        f", fmax {meta['target_relax']['fmax']} eV/A). The cells (32 sites, 2x2x2 "
        "conventional) sit at the relaxed alloy's mean lattice parameter:", "",
        f"- `icet`: `generate_sqs_from_supercells` ({meta['icet_steps']} steps, cutoffs "
        f"{ICET_CUTOFFS}) at that lattice parameter, unrelaxed;",
        "- `grs_lattice`: `generate_representative_structures(relaxed_alloy, cell=ideal32, "
        "composition=counts, rng=seed)` (swaps, two anneals of 2000 steps, the better kept: "
        "package defaults);",
        "- `grs_relaxed`: the same call with `relax_steps="
        f"{gr['relax_steps']}, fmax={gr['fmax']:g}, optimizer='{gr['optimizer']}'`: the same "
        "annealing, then positions and cell relaxed (`FrechetCellFilter`) under the GRS "
        "potential of the relaxed alloy.", "",
        "Judges (EMT, which no method sees): *dE_EMT as is*: EMT energy per atom of the cell "
        "as made minus that of the relaxed large alloy; *after EMT relaxation*: the same once "
        f"each cell is relaxed with EMT (positions and cell, fmax {meta['cell_relax']['fmax']}"
        "); *MSD from sites*: mean squared displacement from the ideal sites with the "
        "homogeneous strain and the mean translation removed (`site_displacements`); *max "
        "abs alpha 1-3*: Warren-Cowley on the ideal sites; *GRS score*: default "
        "`GRSCalculator(target=relaxed alloy)`. Medians over seeds.", "",
    ]
    for name, info in meta["cases"].items():
        relax_e = 1e3 * (info["e_ideal_eV"] - info["e_relaxed_eV"])
        lines += [
            f"### {name}: {info['formula']}, 32 sites", "",
            f"Relaxed alloy: {info['n_atoms']} atoms, EMT relaxation {info['emt_steps']} FIRE "
            f"steps ({'converged' if info['emt_converged'] else 'NOT converged'}, "
            f"{info['emt_wall_s']:.0f} s); relaxation energy {relax_e:.2f} meV/atom; mean "
            f"lattice parameter {info['a_mean']:.4f} A (Vegard {info['a_vegard']:.4f} A); MSD "
            f"from its ideal sites {info['msd']:.5f} A^2; max abs alpha 1-3 "
            f"{info['wc_max13']:.3f}.", "",
            "| structure | runs | " + " | ".join(h for _, h, _ in OFF_MEASURES) + " | wall s |",
            "|---|---:|" + "---:|" * (len(OFF_MEASURES) + 1),
            f"| relaxed alloy ({info['n_atoms']} atoms) | 1 | {info['wc_max13']:.3f} | +0.00 | "
            f"+0.00 | {info['msd']:.5f} | {info['msd']:.5f} | {info['emt_steps']} | "
            f"{info['a_mean']:.4f} | - | - |",
        ]
        rows = {}
        for kind, label in OFF_KINDS.items():
            recs = [r for r in records if r["case"] == name and r["kind"] == kind]
            if not recs:
                continue
            rows[kind] = {k: median_of(recs, k) for k, _, _ in OFF_MEASURES}
            lines.append(f"| `{kind}`: {label} | {len(recs)} | "
                         + " | ".join(fmt(rows[kind][k], f) for k, _, f in OFF_MEASURES)
                         + f" | {fmt(median_of(recs, 'wall_s'), '{:.2f}')} |")
        lines.append("")
        rel = [r for r in records if r["case"] == name and r["kind"] == "grs_relaxed"]
        if rel:
            lat = {r["seed"]: r for r in records if r["case"] == name
                   and r["kind"] == "grs_lattice"}
            change = [r["de_asis_meV"] - lat[r["seed"]]["de_asis_meV"] for r in rel]
            rec = [r["recovered"] for r in rel if r.get("recovered") is not None]
            lines += [
                "- EMT energy as is of the GRS-relaxed cell minus that of the lattice SQS (the "
                "same occupation), per seed " + ", ".join(str(r["seed"]) for r in rel) + ": "
                + ", ".join(f"{d:+.2f}" for d in change) + " meV/atom; as a fraction of what "
                "EMT's own relaxation of the lattice SQS gains: "
                + ", ".join(f"{100 * x:+.0f}%" for x in rec) + " (positive: GRS went the right "
                "way).",
                "- Cosine between the GRS displacements and those of EMT's relaxation of the "
                "same occupation: " + ", ".join(f"{r['cos_emt']:.2f}" for r in rel)
                + "; GRS relaxation steps: " + ", ".join(str(r["grs_relax_steps"]) for r in rel)
                + f" (of at most {gr['relax_steps']}); the occupation is the lattice SQS's in "
                f"{sum(r['same_occupation'] for r in rel)}/{len(rel)} seeds.",
                *reading_lines(info, rows, rel, lat, change),
                "",
            ]
    lines += [
        "The reference energy is one random 864-atom realisation relaxed once; its finite-size "
        "scatter shifts every row of a case alike, not their differences.", ""]
    return lines


def reading_lines(info: dict, rows: dict, rel: list[dict], lat: dict,
                  change: list[float]) -> list[str]:
    """What the off-lattice table says, computed from it (so a rerun cannot contradict it)."""
    med = float(np.median(change))
    up = sum(c > 0 for c in change)
    g = rows["grs_relaxed"]
    after = max(abs(r["de_relaxed_meV"] - lat[r["seed"]]["de_relaxed_meV"]) for r in rel)
    out = [
        f"- Reading: the GRS relaxation {'raised' if med > 0 else 'lowered'} the EMT energy of "
        f"the cell as made (median {med:+.2f} meV/atom; up in {up}/{len(change)} seeds). Its "
        f"displacements are {g['msd'] / info['msd']:.1f}x the relaxed alloy's MSD and "
        f"{g['msd'] / g['msd_emt']:.1f}x that of EMT's relaxation of the same cell, and point "
        f"only partly the same way (median cosine {np.median([r['cos_emt'] for r in rel]):.2f}).",
        f"- After EMT relaxation the GRS-relaxed and the lattice cell of a seed end within "
        f"{after:.2f} meV/atom of each other; EMT needed a median "
        f"{g['emt_relax_steps']:.0f} steps from the GRS-relaxed cell and "
        f"{rows['grs_lattice']['emt_relax_steps']:.0f} from the lattice SQS.",
    ]
    if "icet" in rows:
        i, lt = rows["icet"], rows["grs_lattice"]
        out.append(f"- On the lattice: icet's SQS {i['de_asis_meV']:+.2f} / "
                   f"{i['de_relaxed_meV']:+.2f} meV/atom (as is / EMT-relaxed), GRS's "
                   f"{lt['de_asis_meV']:+.2f} / {lt['de_relaxed_meV']:+.2f}; max abs alpha 1-3 "
                   f"{i['wc_max13']:.3f} and {lt['wc_max13']:.3f}.")
    return out


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..n-1 (default 5)")
    p.add_argument("--steps", type=int, default=5000,
                   help="icet n_steps, GRS SA steps, sqsgen iterations (default 5000)")
    p.add_argument("--sqsgen-iterations", type=int, default=1_000_000,
                   help="iterations of sqsgen_long (default 1e6)")
    p.add_argument("--ref-cells", type=int, default=10,
                   help="random 4000-site cells for the EMT reference (default 10)")
    p.add_argument("--cases", default=",".join(CASES), help=f"cases (default {','.join(CASES)})")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"methods (default all: {','.join(METHODS)})")
    p.add_argument("--equal-time", action=argparse.BooleanOptionalAction, default=True,
                   help="include grs_eqt (GRS for icet's wall time; default on)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 2 seeds, 1000 steps, 1e5 sqsgen_long iterations, 4 ref cells")
    p.add_argument("--resume", action="store_true", help="keep the finished runs in the JSON")
    p.add_argument("--offlattice", action="store_true",
                   help="run the off-lattice study (relaxed targets, EMT judges) instead, then "
                   "redraw the report")
    p.add_argument("--off-cases", default=",".join(OFF_CASES),
                   help=f"cases of the off-lattice study (default {','.join(OFF_CASES)})")
    p.add_argument("--off-repeat", type=int, default=OFF_REPEAT,
                   help=f"relaxed target: n x n x n conventional fcc (default {OFF_REPEAT})")
    p.add_argument("--off-json", default="docs/benchmarks/sqs_offlattice.json",
                   help="off-lattice records (read by the report when present)")
    p.add_argument("--out", default="docs/benchmarks/sqs.md", help="markdown output")
    p.add_argument("--plot", default="docs/benchmarks/sqs.png", help="figure output ('' = none)")
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.quick:
        args.seeds, args.steps, args.sqsgen_iterations, args.ref_cells = 2, 1000, 100_000, 4
        args.off_repeat = min(args.off_repeat, 3)

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # tiny linear algebra per step; BLAS threads only cost
    except ImportError:
        pass
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not args.equal_time:
        methods = [m for m in methods if not METHODS.get(m, {}).get("equal_time")]
    for bad, known in ((set(cases) - set(CASES), CASES), (set(methods) - set(METHODS), METHODS)):
        if bad:
            p.error(f"unknown {sorted(bad)}; choose from {list(known)}")
    notes = []
    for kind, pkg in (("icet", "icet"), ("sqsgen", "sqsgenerator")):
        if version(pkg) == "not installed":
            dropped = [m for m in methods if METHODS[m]["kind"] == kind]
            methods = [m for m in methods if m not in dropped]
            notes.append(f"{pkg} not installed: skipped {dropped}")
    icet_ok = version("icet") != "not installed"

    out = Path(args.out)
    plot = Path(args.plot) if args.plot else None
    json_path = out.with_suffix(".json")
    if args.offlattice:
        bad = {c.strip() for c in args.off_cases.split(",")} - set(OFF_CASES)
        if bad:
            p.error(f"unknown off-lattice cases {sorted(bad)}; choose from {list(OFF_CASES)}")
        data = run_offlattice(args, icet_ok)
        if json_path.exists():  # redraw the report with the new section
            records, meta = load_records(json_path, True)
            methods = [m for m in METHODS if any(r["method"] == m for r in records)]
            write_markdown(out, meta, records, methods, plot, Path(args.off_json))
        return data["meta"]
    command = "python benchmarks/bench_sqs.py " + shlex.join(args.argv)
    meta = dict(command=command.strip(), steps=args.steps, seeds=args.seeds, quick=args.quick,
                grs_defaults=grs_defaults(),
                sqsgen_iterations=args.sqsgen_iterations, date=time.strftime("%Y-%m-%d %H:%M"),
                elapsed_min=0.0, machine=machine_info(), notes=notes, cases={})
    records, old_meta = load_records(json_path, args.resume)
    if old_meta:  # the runs that made the kept records
        meta["history"] = old_meta.get("history", []) + [
            f"{old_meta.get('command')} ({old_meta.get('date')}, "
            f"{old_meta.get('elapsed_min', 0):.1f} min)"]
    records = [r for r in records if r["case"] in cases and r["method"] in METHODS
               and r.get("settings") == settings_of(r["method"], args)]
    done = {(r["case"], r["method"], r["seed"]) for r in records}

    t_start = time.perf_counter()
    n_new = 0
    for name in cases:
        case = make_case(name)
        target = target_of(case)
        todo = [(s, m) for s in range(args.seeds) for m in methods if (name, m, s) not in done]
        old = old_meta.get("cases", {}).get(name) if args.resume else None
        if not todo and old:
            meta["cases"][name] = old
            continue
        print(f"{name}: building judges ...", flush=True)
        judges = Judges(case, target, args.ref_cells, icet_ok)
        meta["cases"][name] = dict(
            label=case.label, formula=case.formula, n_ref_cells=args.ref_cells,
            cell=f"{case.cell_text}, {len(case.cell)} sites",
            target=f"{case.big_text}, {len(target)} atoms", grs_setup_s={}, **judges.info())
        for seed, method in todo:
            got = run_one(case, method, seed, args, target, records)
            if got is None:
                print(f"  {method} seed {seed}: skipped (needs icet and grs of the seed)")
                continue
            atoms, info = got
            rec = dict(case=name, method=method, seed=seed, settings=settings_of(method, args),
                       **info, **judges(atoms), numbers=atoms.numbers.tolist())
            if METHODS[method]["kind"] == "grs":
                meta["cases"][name]["grs_setup_s"][method] = info["setup_s"]
            records.append(rec)
            n_new += 1
            meta["elapsed_min"] = (time.perf_counter() - t_start) / 60
            save_records(json_path, meta, records)
            print(f"  {method:12s} seed {seed}: wall {info['wall_s']:7.2f} s, steps "
                  f"{info['steps_run']:7d}, icet {fmt(rec.get('icet_objective'))}, max|a| "
                  f"{rec['wc_max13']:.3f}, dE_EMT {fmt(rec.get('emt_err_meV'), '{:+.2f}')}, "
                  f"GRS {rec['grs_score']:.4f}", flush=True)
    if n_new == 0 and old_meta:  # nothing ran: redraw the report of the run that made it
        meta = {**old_meta, "cases": {**old_meta.get("cases", {}), **meta["cases"]}}
    else:
        meta["elapsed_min"] = max(meta["elapsed_min"], (time.perf_counter() - t_start) / 60)
        meta["load_at_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    save_records(json_path, meta, records)
    if plot is not None:
        write_plot(plot, meta, records, methods)
    write_markdown(out, meta, records, methods, plot, Path(args.off_json))
    for note in notes:
        print(note)
    return meta


if __name__ == "__main__":
    main()
