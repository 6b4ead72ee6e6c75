"""Data-set reduction side by side: do a few GRS train a potential as well as snapshots?

Data sets (``ase_crystalgen.reduction.datasets``, labelled with ASE's EMT): ``cu``, EMT
Langevin snapshots of strained fcc Cu (48 structures of 32 and 108 atoms, 300-2500 K,
strains -3..+3 %); ``cuau``, random fcc Cu-Au alloys at Au fractions 0-1 (48 structures of
32 atoms, 300-1500 K); ``fe``, the LAMMPS tensile test of bcc Fe (EAM; 48 structures of 54
and 72 atoms); ``nipd``, the Cu-Au recipe for Ni-Pd (``emt_alloy_snapshots``; a set no
method here was designed on). Every fourth snapshot is held out as the test set; the rest
is the pool to reduce.

Selections, for each total-atom budget and seed:

* ``grs_reduce``: :func:`ase_crystalgen.reduction.reduce_dataset` (k members of n atoms,
  its defaults: joint term only, variance weighted like the mean, compositions and
  densities of the pool's own structures), labelled with EMT afterwards;
* ``grs_joint``: the same, ``build="joint"``: all members of a composition group start as
  random packings and one optimiser relaxes them together (``relax_steps`` steps of the
  whole group) against the joint term;
* ``grs_alternating``: the same starts, ``build="alternating"``: three passes, each
  relaxing every member in turn for ``relax_steps // 3`` steps against all the others;
* ``grs_reduce_own``: the same split by composition with the one call's weights (own
  and joint term, variance weight 0.01);
* ``grs_call``: the one call ``generate_representative_structures(pool, k, n)`` at the
  package defaults (own and joint term, variance weight 0.01, the pool's mean
  composition), labelled with EMT;
* ``grs_kernel``: the same split by composition, ``objective="kernel"``: the members
  (random packings, built jointly) minimise the maximum mean discrepancy between their
  environments and the group's (:mod:`ase_crystalgen.grs.kernel`) instead of two moments,
  for ``--kernel-steps`` steps;
* ``snapshots``, ``snapshots_moments``, ``snapshots_kernel`` (a diagnostic of the
  objective, not a method): k random pool structures of exactly 32 atoms, as they are, and
  the same structures relaxed together against the moment objective of ``grs_joint`` or
  the kernel objective of ``grs_kernel`` (each composition group against its own pool
  structures, ``relax_steps`` steps): does moving real structures down an objective make
  them better training data?
* ``moments``: :func:`ase_crystalgen.reduction.moment_matching`, whole pool snapshots
  picked greedily (then improved by exchanges) so that their pooled descriptor moments
  match the pool's under the GRS objective of ``grs_reduce``, within the same total atoms;
* ``d_optimal``: :func:`ase_crystalgen.reduction.d_optimal`, whole pool snapshots picked
  greedily to maximise the log-determinant of the information of the linear fit's force
  and energy rows (no labels used), within the same total atoms; deterministic (every seed
  gives the same pick), as ``crystalgen reduce --strategy d-optimal`` runs it;
* ``d_optimal_nocover``: the same without first taking one structure of every composition
  of the pool (``cover_compositions=False``);
* ``d_optimal_seeded``: ``d_optimal`` with the first pick drawn at random by the seed;
* ``d_optimal_n3``: ``d_optimal`` with cost ``N^3``, within the ``grs_reduce`` set's sum of
  N^3;
* ``random``, ``farthest``, ``kmeans``: whole pool snapshots within the same total atoms;
* ``random_n3``: random pool snapshots within the ``grs_reduce`` set's sum of N^3 (the DFT
  cost the GRS paper argues about);
* ``all``: the whole pool (the reference).

Judge (``judge_selection``): a linear ACE model (energy and forces, ridge chosen by
cross-validation on the selection, features standardised on the pool) fitted on the
selection; force and energy RMSE on the test set; coverage of the pool's environments;
the moment distance of the selection (all its atoms pooled) to the pool under the
objective of ``grs_reduce``; the squared maximum mean discrepancy (MMD^2) of the selection's
environments to the pool's (the kernel of ``grs.kernel`` fitted to the whole pool, a
distribution distance no method but ``grs_kernel`` optimises per group); the members' EMT
energies and nearest-neighbour distances against the pool's.

    python benchmarks/bench_reduction.py                  # everything, both data sets
    python benchmarks/bench_reduction.py --quick          # 384 atoms; no grs_reduce_own/grs_call
    python benchmarks/bench_reduction.py --systems cu --seeds 2 --budgets 192

Writes ``docs/benchmarks/reduction.md``, ``.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _machine import cpu_model, usable_cores
from ase.calculators.emt import EMT

from ase_crystalgen import ACEDescriptor
from ase_crystalgen._threads import single_threaded_blas
from ase_crystalgen.optimize import generate_representative_structures
from ase_crystalgen.reduction import (
    budget,
    d_optimal,
    farthest_point,
    judge_selection,
    kmeans_snapshots,
    moment_matching,
    random_snapshots,
    reduce_dataset,
)
from ase_crystalgen.reduction.datasets import (
    emt_alloy_snapshots,
    emt_cu_snapshots,
    emt_cuau_snapshots,
    label,
    lammps_fe_tensile_snapshots,
)

N_ATOMS = 32  # atoms per GRS member
METHODS = ["grs_reduce", "grs_joint", "grs_alternating", "grs_reduce_own", "grs_call",
           "grs_kernel", "snapshots", "snapshots_moments", "snapshots_kernel", "moments",
           "d_optimal", "d_optimal_nocover", "d_optimal_seeded", "d_optimal_n3", "random",
           "farthest", "kmeans", "random_n3", "all"]
QUICK_SKIP = ("grs_reduce_own", "grs_call")


SYSTEMS = ("cu", "cuau", "fe", "nipd")


def load(system: str):
    if system == "cu":
        data, elements = emt_cu_snapshots(0), ["Cu"]
    elif system == "cuau":
        data, elements = emt_cuau_snapshots(0), ["Cu", "Au"]
    elif system == "nipd":
        data, elements = emt_alloy_snapshots(("Ni", "Pd"), 0), ["Ni", "Pd"]
    elif system == "fe":
        data, elements = lammps_fe_tensile_snapshots(0), ["Fe"]
    else:
        raise SystemExit(f"unknown system {system!r}; use {', '.join(SYSTEMS)}")
    test, pool = data[::4], [a for k, a in enumerate(data) if k % 4]
    return pool, test, ACEDescriptor(elements)


def label_fe(atoms):
    """``atoms`` labelled with the Fe EAM potential of the ``fe`` set (a LAMMPS single point;
    the frame comes back in LAMMPS' orientation, wrapped, with energy and forces)."""
    from ase_crystalgen.lammps.md import lammps_snapshots, potential_path

    frame = lammps_snapshots(atoms, "eam/fs", f"* * {potential_path('VFe_mm.eam.fs')} Fe",
                             species_order=["Fe"], temperature=1.0, steps=0, every=1,
                             ensemble="nve")[0]
    frame.info.update({k: v for k, v in atoms.info.items() if k not in frame.info})
    return frame


def labeller(system: str):
    return label_fe if system == "fe" else (lambda atoms: label(atoms, EMT()))


def physics(structures) -> dict:
    """Reference energy per atom (the stored label; EMT for unlabelled structures) and
    shortest interatomic distance of each structure."""
    e, nn = [], []
    for a in structures:
        if a.calc is not None and "energy" in getattr(a.calc, "results", {}):
            b = a
        else:
            b = a.copy()
            b.calc = EMT()
        e.append(b.get_potential_energy() / len(b))
        d = b.get_all_distances(mic=True) + 1e3 * np.eye(len(b))
        nn.append(float(d.min()))
    return {"emt_per_atom": e, "min_distance": nn}


def pool_objective(pool, desc):
    """The objective of ``grs_reduce`` and ``moments`` against the whole pool."""
    from ase_crystalgen.grs.objective import GRSObjective
    from ase_crystalgen.grs.potential import make_target

    target = make_target(np.concatenate(desc.compute_many(pool), 0), desc, orders=(1, 2))
    return GRSObjective(target, weights=(1.0, 1.0), rank_weights="hierarchy")


def relaxed_snapshots(chosen, pool, desc, objective: str, steps: int) -> list:
    """Copies of ``chosen`` pool structures relaxed together against an objective of their
    composition group's pool structures (the potentials of ``reduce_dataset``)."""
    from ase_crystalgen.grs.kernel import KernelObjective, KernelTarget
    from ase_crystalgen.grs.potential import GRSPotential
    from ase_crystalgen.grs.repulsion import CoreRepulsion
    from ase_crystalgen.reduction.grs import (
        REDUCTION_DEFAULTS,
        _fractions,
        composition_groups,
        joint_relax,
    )

    out = []
    for key, idx in composition_groups(pool).items():
        mine = [a.copy() for a in chosen if _fractions(a) == key]
        if not mine:
            continue
        part = [pool[i] for i in idx]
        if objective == "kernel":
            pot = GRSPotential(desc, KernelObjective(KernelTarget.from_structures(part, desc)),
                               CoreRepulsion())
        else:
            pot = GRSPotential.from_target(part, descriptor=desc,
                                           weights=REDUCTION_DEFAULTS["weights"],
                                           w_inter=1.0, w_intra=0.0)
        for a in mine:
            a.calc = None
        res = joint_relax(mine, pot, steps=steps, w_inter=0.0, w_intra=1.0)
        for a in mine:
            a.info.update(grs_score=float(pot.score(a)), grs_ensemble_score=res["joint_score"])
        out += mine
    return out


def run(system: str, budgets, seeds, relax_steps: int, methods, kernel_steps: int) -> list[dict]:
    from ase_crystalgen.grs.kernel import KernelObjective, KernelTarget

    pool, test, desc = load(system)
    lab = labeller(system)
    pool_phys = physics(pool)
    objective = pool_objective(pool, desc)
    mmd = KernelObjective(KernelTarget.from_structures(pool, desc, rng=0))
    records = [{"system": system, "method": "pool", **pool_phys}]
    grs_runs = {
        "grs_reduce": lambda k, seed: reduce_dataset(pool, k, N_ATOMS, descriptor=desc, rng=seed,
                                                     relax_steps=relax_steps),
        "grs_joint": lambda k, seed: reduce_dataset(pool, k, N_ATOMS, descriptor=desc, rng=seed,
                                                    relax_steps=relax_steps, build="joint"),
        "grs_alternating": lambda k, seed: reduce_dataset(
            pool, k, N_ATOMS, descriptor=desc, rng=seed, relax_steps=relax_steps,
            build="alternating", passes=3),
        "grs_reduce_own": lambda k, seed: reduce_dataset(
            pool, k, N_ATOMS, descriptor=desc, rng=seed, relax_steps=relax_steps, w_inter=1.0,
            weights=(1.0, 0.01)),
        "grs_call": lambda k, seed: generate_representative_structures(
            pool, k, N_ATOMS, descriptor=desc, rng=seed, relax_steps=relax_steps),
        "grs_kernel": lambda k, seed: reduce_dataset(pool, k, N_ATOMS, descriptor=desc, rng=seed,
                                                     relax_steps=kernel_steps, build="joint",
                                                     objective="kernel"),
    }
    with single_threaded_blas(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*logm result may be inaccurate.*")
        ref = judge_selection(pool, test, desc, data=pool)
        records.append({"system": system, "method": "all", "seed": 0, "budget": 0,
                        **budget(pool), "force_rmse": ref["test"]["force_rmse"],
                        "energy_rmse": ref["test"]["energy_rmse"],
                        "cov_max": ref["coverage"]["max_distance"],
                        "cov_mean": ref["coverage"]["mean_distance"]})
        for total in budgets:
            k = max(1, total // N_ATOMS)
            for seed in seeds:
                sel, extra = {}, {}
                for name, make in grs_runs.items():
                    if name not in methods:
                        continue
                    t0 = time.perf_counter()
                    grs = make(k, seed)
                    extra[name] = dict(wall_s=time.perf_counter() - t0,
                                       scores=[m.info["grs_score"] for m in grs],
                                       ensemble_scores=[m.info["grs_ensemble_score"]
                                                        for m in grs])
                    sel[name] = [lab(m) for m in grs]
                atoms = k * N_ATOMS
                small = [a for a in pool if len(a) == N_ATOMS]
                if small and any(m.startswith("snapshots") for m in methods):
                    pick = np.random.default_rng([seed, 11]).choice(
                        len(small), min(k, len(small)), replace=False)
                    chosen = [small[i] for i in sorted(pick)]
                    if "snapshots" in methods:
                        sel["snapshots"] = chosen
                    for obj in ("moments", "kernel"):
                        name = f"snapshots_{obj}"
                        if name in methods:
                            t0 = time.perf_counter()
                            moved = relaxed_snapshots(chosen, pool, desc, obj, relax_steps)
                            extra[name] = dict(
                                wall_s=time.perf_counter() - t0,
                                scores=[m.info["grs_score"] for m in moved],
                                ensemble_scores=[m.info["grs_ensemble_score"] for m in moved])
                            sel[name] = [lab(m) for m in moved]
                rng = np.random.default_rng([seed, 7])
                if "moments" in methods:
                    t0 = time.perf_counter()
                    sel["moments"] = moment_matching(pool, atoms, desc)
                    extra["moments"] = dict(wall_s=time.perf_counter() - t0)
                if "d_optimal" in methods:
                    t0 = time.perf_counter()
                    sel["d_optimal"] = d_optimal(pool, atoms, desc)
                    extra["d_optimal"] = dict(wall_s=time.perf_counter() - t0)
                if "d_optimal_nocover" in methods:
                    sel["d_optimal_nocover"] = d_optimal(pool, atoms, desc,
                                                         cover_compositions=False)
                if "d_optimal_seeded" in methods:
                    sel["d_optimal_seeded"] = d_optimal(pool, atoms, desc,
                                                        np.random.default_rng([seed, 13]))
                if "d_optimal_n3" in methods:
                    sel["d_optimal_n3"] = d_optimal(pool, None, desc,
                                                    max_n3=k * float(N_ATOMS) ** 3)
                if "random" in methods:
                    sel["random"] = random_snapshots(pool, atoms, rng)
                if "farthest" in methods:
                    sel["farthest"] = farthest_point(pool, atoms, desc, rng)
                if "kmeans" in methods:
                    sel["kmeans"] = kmeans_snapshots(pool, atoms, desc, rng)
                if "random_n3" in methods:
                    sel["random_n3"] = random_snapshots(pool, None, rng,
                                                        max_n3=k * float(N_ATOMS) ** 3)
                for name, s in sel.items():
                    rec = {"system": system, "method": name, "seed": seed, "budget": total}
                    if not s:
                        records.append({**rec, "empty": True})
                        continue
                    out = judge_selection(s, test, desc, data=pool)
                    rec.update(budget(s), force_rmse=out["test"]["force_rmse"],
                               energy_rmse=out["test"]["energy_rmse"],
                               cov_max=out["coverage"]["max_distance"],
                               cov_mean=out["coverage"]["mean_distance"],
                               moment_distance=float(objective.score(
                                   np.concatenate(desc.compute_many(s), 0))),
                               mmd2=float(mmd.ensemble_score(desc.compute_many(s),
                                                             grad=False)[0]),
                               **extra.get(name, {}))
                    if name.startswith(("grs", "snapshots")):
                        rec.update(physics(s))
                        rec["formulas"] = [a.get_chemical_formula() for a in s]
                    records.append(rec)
                    print(f"{system} budget {total} seed {seed} {name:15s} F "
                          f"{rec['force_rmse']:.4f} eV/A  E {1e3 * rec['energy_rmse']:7.1f} "
                          f"meV/atom  atoms {rec['atoms']}  N^3 {rec['n3']:.3g}  moment distance "
                          f"{rec['moment_distance']:.4g}  MMD^2 {rec['mmd2']:.4g}  "
                          f"{rec.get('wall_s', 0):.0f} s",
                          flush=True)
    return records


def median(recs, key):
    vals = [r[key] for r in recs if key in r]
    return float(np.median(vals)) if vals else None


def write_report(path: Path, meta: dict, records: list[dict]) -> None:
    lines = ["# Data-set reduction: GRS against snapshots, judged by a fitted potential", "",
             f"Generated by `{meta['command']}` on {meta['date']} ({meta['minutes']:.1f} min; "
             f"{meta['cpu']}, {meta['cores']} cores; load average at the end "
             f"{meta['load']}).", "",
             "Judge: a linear ACE model (energy and forces, ridge chosen by cross-validation "
             "on the selection, `ACEDescriptor(elements)` features standardised on the pool) "
             "fitted on each selection; RMSE on the held-out test snapshots (every fourth). "
             "Coverage: largest / mean distance from a pool environment to the nearest "
             "selected one (standardised descriptors). Medians over seeds "
             f"{meta['seeds']}; GRS members have {N_ATOMS} atoms and relax for at most "
             f"{meta['relax_steps']} steps.", ""]
    for system in meta["systems"]:
        recs = [r for r in records if r["system"] == system]
        pool = next(r for r in recs if r["method"] == "pool")
        allr = next(r for r in recs if r["method"] == "all")
        lines += [f"## {system}", "",
                  f"Pool: {allr['n_structures']} structures, {allr['atoms']} atoms; reference energy "
                  f"{np.min(pool['emt_per_atom']):.3f} to {np.max(pool['emt_per_atom']):.3f} "
                  f"eV/atom (median {np.median(pool['emt_per_atom']):.3f}); shortest distance "
                  f"per structure {np.min(pool['min_distance']):.2f} to "
                  f"{np.max(pool['min_distance']):.2f} A. The whole pool as the training set: "
                  f"force RMSE {allr['force_rmse']:.4f} eV/A, energy RMSE "
                  f"{1e3 * allr['energy_rmse']:.1f} meV/atom.", "",
                  "| budget (atoms) | method | runs | structures | atoms | sum N^3 | force RMSE "
                  "eV/A | energy RMSE meV/atom | coverage max | coverage mean | moment "
                  "distance | MMD^2 | wall s |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for total in meta["budgets"]:
            for m in meta["methods"]:
                rs = [r for r in recs if r["method"] == m and r.get("budget") == total
                      and not r.get("empty")]
                if not rs:
                    lines.append(f"| {total} | {m} | 0 | - | - | - | - | - | - | - | - | - | - |")
                    continue
                wall = median(rs, "wall_s")
                lines.append(
                    f"| {total} | {m} | {len(rs)} | {median(rs, 'n_structures'):.0f} | "
                    f"{median(rs, 'atoms'):.0f} | {median(rs, 'n3'):.3g} | "
                    f"{median(rs, 'force_rmse'):.4f} | {1e3 * median(rs, 'energy_rmse'):.1f} | "
                    f"{median(rs, 'cov_max'):.1f} | {median(rs, 'cov_mean'):.2f} | "
                    f"{median(rs, 'moment_distance'):.4f} | "
                    + ("-" if median(rs, "mmd2") is None else f"{median(rs, 'mmd2'):.4f}") + " | "
                    + ("-" if wall is None else f"{wall:.0f}") + " |")
        lines += ["", "Per seed, force RMSE (eV/A):", ""]
        for total in meta["budgets"]:
            for m in meta["methods"]:
                rs = [r for r in recs if r["method"] == m and r.get("budget") == total
                      and not r.get("empty")]
                if rs:
                    lines.append(f"- budget {total}, {m}: " + ", ".join(
                        f"{r['force_rmse']:.4f}" for r in rs))
        lines += ["", "GRS members and relaxed snapshots (reference energy per atom (EMT; EAM for fe), shortest "
                  "distance, own score; then the joint score of the last member's group):", ""]
        for r in recs:
            if r["method"].startswith(("grs", "snapshots_")) and not r.get("empty"):
                lines.append(
                    f"- {r['method']}, budget {r['budget']}, seed {r['seed']}: "
                    + ", ".join(f"{f} {e:.2f} eV/atom {d:.2f} A {s:.3g}" for f, e, d, s in zip(
                        r["formulas"], r["emt_per_atom"], r["min_distance"], r["scores"]))
                    + f"; joint {r['ensemble_scores'][-1]:.3g}")
        lines.append("")
    lines += [f"![force RMSE against total atoms and sum of N^3]({meta['plot']})", ""]
    path.write_text("\n".join(lines))


def plot(path: Path, meta: dict, records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = meta["systems"]
    fig, axes = plt.subplots(2, len(systems), figsize=(5 * len(systems), 8), squeeze=False)
    marks = dict(grs_reduce="o", grs_joint="h", grs_alternating="*", grs_reduce_own="P",
                 grs_call="s", grs_kernel="p", snapshots="1", snapshots_moments="2",
                 snapshots_kernel="3", moments="<", d_optimal="8", d_optimal_nocover="+",
                 d_optimal_seeded="d", d_optimal_n3="X", random="^", farthest="v", kmeans="D",
                 random_n3="x")
    for j, system in enumerate(systems):
        recs = [r for r in records if r["system"] == system and "force_rmse" in r]
        allr = next(r for r in recs if r["method"] == "all")
        for i, key in enumerate(("atoms", "n3")):
            ax = axes[i, j]
            for m, mk in marks.items():
                rs = [r for r in recs if r["method"] == m]
                if rs:
                    ax.scatter([r[key] for r in rs], [r["force_rmse"] for r in rs], marker=mk,
                               label=m)
            ax.axhline(allr["force_rmse"], color="k", ls="--", lw=1, label="whole pool")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("total atoms" if key == "atoms" else "sum of N^3")
            ax.set_ylabel("test force RMSE (eV/A)")
            ax.set_title(system)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="cu,cuau")
    p.add_argument("--budgets", default="192,384", help="total atoms of the GRS sets")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--relax-steps", type=int, default=150)
    p.add_argument("--kernel-steps", type=int, default=600,
                   help="relaxation steps of grs_kernel (default: 600; the kernel objective "
                        "converges more slowly than the moments)")
    p.add_argument("--quick", action="store_true",
                   help="budget 384 only, without grs_reduce_own and grs_call")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated subset of {','.join(METHODS[:-1])}")
    p.add_argument("--out", default="docs/benchmarks/reduction.md")
    args = p.parse_args(argv)
    t0 = time.time()
    systems = args.systems.split(",")
    budgets = [int(b) for b in args.budgets.split(",")]
    methods = [m for m in METHODS[:-1] if not (args.quick and m in QUICK_SKIP)]
    if args.quick and args.budgets == p.get_default("budgets"):
        budgets = [384]
    if args.methods:
        methods = args.methods.split(",")
        unknown = sorted(set(methods) - set(METHODS[:-1]))
        if unknown:
            p.error(f"unknown methods {', '.join(unknown)}")
    seeds = list(range(args.seeds))
    records = []
    for system in systems:
        records += run(system, budgets, seeds, args.relax_steps, methods, args.kernel_steps)
    out = Path(args.out)
    meta = dict(command="python benchmarks/bench_reduction.py " + " ".join(sys.argv[1:]),
                date=time.strftime("%Y-%m-%d %H:%M"), minutes=(time.time() - t0) / 60,
                cpu=cpu_model(), cores=usable_cores(),
                load=" / ".join(f"{x:.2f}" for x in os.getloadavg()), systems=systems,
                budgets=budgets, seeds=seeds, relax_steps=args.relax_steps,
                kernel_steps=args.kernel_steps, methods=methods,
                plot=out.with_suffix(".png").name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    plot(out.with_suffix(".png"), meta, records)
    write_report(out, meta, records)
    print(out.read_text())


if __name__ == "__main__":
    main()
