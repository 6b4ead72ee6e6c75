"""The ``crystalgen demo`` job: a generalized representative structure (GRS) of a Cu3Au alloy.

Everything runs on embedded defaults, on a CPU, with nothing to download:

1. **Target.** A random fcc Cu-Au alloy of Cu3Au composition (3x3x3 conventional cells, 108
   atoms) at the Vegard's-law lattice constant, relaxed with ASE's EMT potential (positions
   and cell through :class:`ase.filters.FrechetCellFilter`): a real, slightly distorted,
   chemically disordered alloy.
2. **Candidate.** A 2x2x2 fcc cell (32 atoms) at the target's density with a random
   occupation of the same composition, rattled.
3. **GRS.** :class:`~ase_crystalgen.GRSCalculator` on the candidate; FIRE minimises the
   score (mean and variance of the ACE descriptors against the target) over positions and
   cell together.
4. **Output.** ``grs.extxyz`` (the GRS; ``ase gui`` opens it), ``target.extxyz``,
   ``trajectory.traj`` (the minimisation), ``minimisation.log`` (ASE's optimiser log),
   ``summary.json``, the figure ``grs_demo.png`` and a picture of the GRS, ``grs.png``.

What to expect. The score falls several-fold, below that of an independent 108-atom sample
of the same alloy (reported as the yardstick: the sample-to-sample noise of the target), but
not to zero: 32 atoms in one periodic cell cannot carry every feature of a 108-atom random
alloy, and moving atoms cannot change which species neighbour each other. The radial
distribution shows the price: with only the mean and variance of the descriptors to match,
the minimiser gives up the fcc shells for a distorted, glass-like packing whose closest
pairs sit at the core-repulsion radius. With a target the candidate can represent exactly
(``examples/grs_l12_relax.py``) the score goes to zero and the crystal comes back.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import __version__
from .._threads import single_threaded_blas
from ..build.alloys import random_fcc_alloy, vegard_lattice_constant
from ..calculators import GRSCalculator
from ..optimize import SimulatedAnnealing
from ..structures import radial_distribution

# (full, quick) settings; quick keeps the same structures and cuts the step counts
_SETTINGS = {
    False: {"emt_steps": 60, "anneal_steps": 400, "grs_steps": 400, "traj_interval": 5},
    True: {"emt_steps": 8, "anneal_steps": 40, "grs_steps": 30, "traj_interval": 5},
}


def _relax_with_emt(atoms: Atoms, steps: int, fmax: float = 0.02) -> int:
    """Relax positions and cell of ``atoms`` in place with EMT and FIRE (through
    :func:`~ase_crystalgen.relaxation.relax_one`); returns the steps taken."""
    from ..relaxation import relax_one

    relaxed = relax_one(atoms, "emt", fmax=fmax, steps=steps, optimizer="FIRE", cell_filter=True)
    if "relax_error" in relaxed.info:
        raise RuntimeError(f"EMT relaxation of the demo alloy failed: {relaxed.info['relax_error']}")
    atoms.set_cell(relaxed.cell)
    atoms.positions = relaxed.positions
    atoms.info["emt_energy_per_atom"] = float(relaxed.info["energy_per_atom"])
    return int(relaxed.info["relax_steps"])


def _composition(atoms: Atoms) -> dict[str, int]:
    return dict(Counter(atoms.get_chemical_symbols()))


def _cell_summary(atoms: Atoms) -> dict:
    par = atoms.cell.cellpar()
    return {"lengths_A": [round(float(x), 4) for x in par[:3]],
            "angles_deg": [round(float(x), 3) for x in par[3:]],
            "volume_per_atom_A3": round(float(atoms.get_volume() / len(atoms)), 4)}


def _moment_summary(calc: GRSCalculator, B: np.ndarray) -> dict[str, float]:
    """Mean absolute scaled difference per moment order (what the score sums)."""
    from ..grs.objective import MOMENT_NAMES

    diffs = calc.objective.differences(B)
    return {MOMENT_NAMES[p]: float(np.mean(np.abs(D))) for p, D in diffs.items()}


def _plot(path: Path, steps: np.ndarray, scores: np.ndarray, score_reference: float,
          calc: GRSCalculator, target: Atoms, B_before: np.ndarray, B_after: np.ndarray,
          before: Atoms, after: Atoms, anneal_scores=()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15.5, 4.6), constrained_layout=True)

    n_sa = len(anneal_scores)
    if n_sa:
        ax[0].semilogy(np.arange(n_sa), anneal_scores, color="C1",
                       label="annealing: swaps on fcc sites")
        ax[0].axvline(n_sa - 1, color="0.8", lw=0.8)
    ax[0].semilogy(np.asarray(steps) + max(n_sa - 1, 0), scores, color="C0",
                   label="FIRE: positions + cell")
    ax[0].axhline(score_reference, color="0.4", ls="--",
                  label=f"independent {len(target)}-atom sample")
    ax[0].legend(frameon=False)
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("GRS score Q (32 atoms)")
    first = anneal_scores[0] if n_sa else scores[0]
    ax[0].set_title(f"score {first:.3g} -> {scores[-1]:.3g}")
    ax[0].grid(True, which="both", alpha=0.3)

    # per-feature means in units of the target's scale, the units the score uses
    s = calc.target.scale
    t_mean = calc.target.moments[1] / s
    lo, hi = float(t_mean.min()), float(t_mean.max())
    pad = 0.05 * (hi - lo)
    ax[1].plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8, label="y = x")
    ax[1].scatter(t_mean, B_before.mean(0) / s, s=9, color="0.6", label="start")
    ax[1].scatter(t_mean, B_after.mean(0) / s, s=9, color="C3", label="GRS")
    ax[1].set_xlabel("target mean / scale")
    ax[1].set_ylabel("candidate mean / scale")
    ax[1].set_title(f"{calc.target.n_features} ACE descriptor means")
    ax[1].legend(loc="upper left", frameon=False)

    for atoms, label, style in ((target, f"target ({len(target)} atoms)", "k-"),
                                (before, "start", ":"), (after, f"GRS ({len(after)} atoms)", "-")):
        r, g = radial_distribution(atoms)
        kw = {"color": "0.6"} if label == "start" else ({} if label.startswith("t") else
                                                         {"color": "C3"})
        ax[2].plot(r, g, style, label=label, lw=1.2, **kw)
    ax[2].set_xlabel("r (A)")
    ax[2].set_ylabel("g(r), Gaussian-broadened (0.05 A)")
    ax[2].set_title("radial distribution")
    ax[2].legend(frameon=False)

    fig.suptitle("GRS of a disordered Cu$_3$Au alloy (EMT-relaxed target)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(out_dir: str | os.PathLike = "demo-output", seed: int = 0, quick: bool = False,
             progress: bool = True, verbose: bool = True) -> dict:
    """Build a GRS of a random Cu3Au alloy and write the results to ``out_dir``.

    Parameters
    ----------
    out_dir : folder for the output files (created if needed).
    seed : seed of the :class:`numpy.random.Generator` behind the target's and the
        candidate's occupations and the rattle.
    quick : cut the step counts (EMT 8, GRS 30) so that the demo runs in seconds.
    progress : show a tqdm progress bar during the GRS minimisation.
    verbose : print a short report to stdout.

    Returns
    -------
    dict
        The content of ``summary.json``: ``score_before``, ``score_after``, ``steps``,
        ``converged``, ``timings_s``, compositions, cells, descriptor and objective
        settings, per-moment differences and ``files`` (name -> path).
    """
    with single_threaded_blas():
        return _run_demo(Path(out_dir), seed, quick, progress, verbose)


def _run_demo(out: Path, seed: int, quick: bool, progress: bool, verbose: bool) -> dict:
    import ase.io
    from ase.filters import FrechetCellFilter
    from ase.io.trajectory import Trajectory
    from ase.optimize import FIRE
    from tqdm.auto import tqdm

    cfg = _SETTINGS[bool(quick)]
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    timings = {}
    t_start = time.perf_counter()

    # 1. target: a random Cu3Au alloy relaxed with EMT
    t0 = time.perf_counter()
    a_vegard = vegard_lattice_constant({"Cu": 0.75, "Au": 0.25})
    target = random_fcc_alloy({"Cu": 81, "Au": 27}, a_vegard, repeat=3, rng=rng)
    target.rattle(0.02, rng=rng)  # breaks the symmetry EMT forces alone would keep
    emt_steps = _relax_with_emt(target, steps=cfg["emt_steps"])
    # a second, independent sample of the same alloy: its score against the target is the
    # sample-to-sample noise of a 108-atom random alloy, the yardstick for the GRS score
    reference = random_fcc_alloy({"Cu": 81, "Au": 27}, a_vegard, repeat=3, rng=rng)
    reference.rattle(0.02, rng=rng)
    _relax_with_emt(reference, steps=cfg["emt_steps"])
    timings["target_emt_relaxation"] = time.perf_counter() - t0

    # 2. candidate: 32 atoms at the target's density, random occupation, rattled
    a_candidate = (4 * target.get_volume() / len(target)) ** (1 / 3)
    candidate = random_fcc_alloy({"Cu": 24, "Au": 8}, a_candidate, repeat=2, rng=rng)
    start = candidate.copy()

    # 3. GRS: chemical order first (simulated annealing of swaps on the fcc sites, like an
    # SQS search), then positions and cell (FIRE)
    t0 = time.perf_counter()
    calc = GRSCalculator(target=target)
    timings["target_descriptors"] = time.perf_counter() - t0
    candidate.calc = calc
    B_before = calc.descriptor.compute(candidate)
    score_before = calc.score(candidate)
    score_reference = calc.score(reference)
    t0 = time.perf_counter()
    sa = SimulatedAnnealing(candidate, moves="swap", rng=rng, n_steps=cfg["anneal_steps"],
                            tolerance=-1.0)
    sa.run()
    candidate.numbers = sa.best_atoms.numbers
    score_annealed = calc.score(candidate)
    anneal_scores = [h[2] for h in sa.history]
    timings["grs_annealing"] = time.perf_counter() - t0

    fmax = 1e-3
    t0 = time.perf_counter()
    steps, scores = [], []
    with (Trajectory(out / "trajectory.traj", "w") as traj,
          open(out / "minimisation.log", "w") as log):
        opt = FIRE(FrechetCellFilter(candidate), logfile=log)
        bar = tqdm(total=cfg["grs_steps"], desc="GRS minimisation", unit="step",
                   disable=not progress, leave=False)
        converged, written = False, -1
        for converged in opt.irun(fmax=fmax, steps=cfg["grs_steps"]):
            # results are those of the current geometry: irun evaluates before yielding
            steps.append(opt.nsteps)
            scores.append(calc.results["score"])
            if opt.nsteps % cfg["traj_interval"] == 0 or converged:
                traj.write(candidate)
                written = opt.nsteps
            if opt.nsteps:
                bar.update(1)
                bar.set_postfix(score=f"{scores[-1]:.4g}", refresh=False)
        bar.close()
        if written != opt.nsteps:
            traj.write(candidate)  # the last frame is always the GRS
    timings["grs_minimisation"] = time.perf_counter() - t0
    n_steps = opt.nsteps
    max_force = float(np.linalg.norm(opt.optimizable.get_gradient().reshape(-1, 3), axis=1).max())
    core_energy = calc.results["core_energy"]

    grs = candidate.copy()
    B_after = calc.descriptor.compute(grs)
    score_after = calc.score(grs)
    grs.info.update({"grs_score": score_after, "grs_score_start": score_before,
                     "grs_target": target.get_chemical_formula(), "seed": seed})

    # 4. output
    t0 = time.perf_counter()
    files = {
        "grs": out / "grs.extxyz",
        "target": out / "target.extxyz",
        "trajectory": out / "trajectory.traj",
        "log": out / "minimisation.log",
        "figure": out / "grs_demo.png",
        "picture": out / "grs.png",
        "summary": out / "summary.json",
    }
    ase.io.write(files["grs"], grs, format="extxyz")
    ase.io.write(files["target"], target, format="extxyz")
    _plot(files["figure"], np.array(steps), np.array(scores), score_reference, calc, target,
          B_before, B_after, start, grs, anneal_scores)
    ase.io.write(files["picture"], grs, rotation="10x,-20y", show_unit_cell=2, radii=0.6)
    timings["output"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    summary = {
        "ase_crystalgen_version": __version__,
        "seed": seed,
        "quick": bool(quick),
        "score_before": float(score_before),
        "score_after_annealing": float(score_annealed),
        "anneal_steps": int(cfg["anneal_steps"]),
        "score_after": float(score_after),
        "score_ratio": float(score_after / score_before),
        "score_independent_sample": float(score_reference),
        "core_energy_after_eV": float(core_energy),
        "moment_differences": {"before": _moment_summary(calc, B_before),
                               "after": _moment_summary(calc, B_after)},
        "steps": int(n_steps),
        "max_steps": cfg["grs_steps"],
        "fmax": fmax,
        "converged": bool(converged),
        "max_generalised_force": max_force,
        "target": {
            "n_atoms": len(target),
            "composition": _composition(target),
            "vegard_lattice_constant_A": round(a_vegard, 4),
            "emt_steps": int(emt_steps),
            "emt_energy_per_atom_eV": target.info["emt_energy_per_atom"],
            **_cell_summary(target),
        },
        "candidate": {
            "n_atoms": len(grs),
            "composition": _composition(grs),
            "start_lattice_constant_A": round(float(a_candidate), 4),
            "rattle_stdev_A": 0.1,
            "start": _cell_summary(start),
            "grs": _cell_summary(grs),
        },
        "descriptor": {**calc.descriptor.todict(), "n_features": calc.descriptor.n_features},
        "objective": calc.objective.todict(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "files": {k: str(v) for k, v in files.items()},
    }
    # the round trip turns integer keys (moment orders) into strings, as in the file
    summary = json.loads(json.dumps(summary))
    with open(files["summary"], "w") as fh:
        json.dump(summary, fh, indent=2)

    if verbose:
        _report(summary)
    return summary


def _report(s: dict) -> None:
    t, c = s["target"], s["candidate"]
    state = "converged" if s["converged"] else "step limit"
    print(f"ase_crystalgen {s['ase_crystalgen_version']} demo: GRS of a random Cu3Au alloy")
    print(f"  target     {t['n_atoms']} atoms {t['composition']}, EMT-relaxed "
          f"({t['emt_steps']} FIRE steps), cell {t['lengths_A']} A")
    print(f"  candidate  {c['n_atoms']} atoms {c['composition']}, GRS cell {c['grs']['lengths_A']}"
          f" A, angles {c['grs']['angles_deg']} deg")
    print(f"  score      {s['score_before']:.4g} -> {s['score_after_annealing']:.4g} after "
          f"{s['anneal_steps']} annealing steps (swaps on fcc sites)")
    print(f"             -> {s['score_after']:.4g} "
          f"(x{s['score_ratio']:.3f} overall) after {s['steps']} FIRE steps ({state}), "
          f"{s['timings_s']['total']:.1f} s")
    print(f"  yardstick  an independent {t['n_atoms']}-atom sample of the same alloy scores "
          f"{s['score_independent_sample']:.4g}")
    print("  files")
    for path in s["files"].values():
        print(f"    {path}")
    print(f"  view the GRS with: ase gui {s['files']['grs']}")
