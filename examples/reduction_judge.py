"""Do a few small GRS train a potential as well as the data set they replace?

The judge of :mod:`ase_crystalgen.reduction`: a linear ACE model (energy and forces, ridge,
per-species one-body energies) is fitted on each reduced set and tested on snapshots held
out from the data set. Next to the test errors stand the coverage of the data set's
atomic environments (largest and mean distance from a data-set environment to the nearest
selected one) and the GRS paper's hull-volume ratio (eq. 18).

Data: EMT Langevin snapshots of strained fcc Cu (``emt_cu_snapshots``) or of random Cu-Au
alloys (``emt_cuau_snapshots``); every fourth snapshot is held out for testing, the rest is
the pool to reduce. Selections:

* ``GRS``: ``k`` representative structures of ``n`` atoms built for the pool, then labelled
  with EMT (what DFT would do in practice);
* ``random``, ``farthest``, ``kmeans``: whole pool snapshots within the GRS set's total
  atoms, and ``random (N^3)`` within its sum of ``N^3`` (DFT cost); a budget that fits no
  snapshot gives no row;
* ``all``: the whole pool, the reference.

Run ``python examples/reduction_judge.py`` (a few minutes), ``--system cuau`` for the
alloy, or ``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from ase.calculators.emt import EMT

from ase_crystalgen import ACEDescriptor
from ase_crystalgen._threads import single_threaded_blas
from ase_crystalgen.optimize import generate_representative_structures
from ase_crystalgen.reduction import (
    budget,
    farthest_point,
    judge_selection,
    kmeans_snapshots,
    random_snapshots,
)
from ase_crystalgen.reduction.datasets import emt_cu_snapshots, emt_cuau_snapshots, label


def main(quick: bool = False, system: str = "cu", seed: int = 0) -> dict:
    """Build the data set, reduce it several ways and judge each reduction.

    Returns
    -------
    dict with ``rows`` (one dict per selection: ``name``, ``n_structures``, ``atoms``,
    ``n3``, ``energy_rmse`` (eV/atom), ``force_rmse`` (eV/A), ``max_distance``,
    ``mean_distance``, ``hull_ratio``), ``force_std`` of the test set, ``n_pool``,
    ``n_test`` and ``seconds``.
    """
    with single_threaded_blas():
        return _main(quick, system, seed)


def _main(quick: bool, system: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    elements = {"cu": ["Cu"], "cuau": ["Cu", "Au"]}[system]
    if system == "cu":
        kw = dict(temperatures=(300, 1500), strains=(-0.02, 0.02), repeats=(2,),
                  n_snapshots=4) if quick else {}
        data = emt_cu_snapshots(rng, **kw)
    else:
        kw = dict(compositions=(0.25, 0.75), temperatures=(300, 1200), n_snapshots=2,
                  n_arrangements=1) if quick else {}
        data = emt_cuau_snapshots(rng, **kw)
    test, pool = data[::4], [a for k, a in enumerate(data) if k % 4]
    nmax, lmax = ((4, 2, 2), (0, 2, 2)) if quick else ((8, 2, 2, 1), (0, 2, 2, 1))
    desc = ACEDescriptor(elements, nmax=nmax, lmax=lmax)
    k, n_atoms, steps = (4, 16, 40) if quick else (12, 16, 150)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="logm result may be inaccurate")
        grs = generate_representative_structures(pool, k, n_atoms, descriptor=desc,
                                                 relax_steps=steps, rng=rng)
    grs = [label(m, EMT()) for m in grs]
    b = budget(grs)
    selections = {
        "GRS": grs,
        "random": random_snapshots(pool, b["atoms"], rng),
        "farthest": farthest_point(pool, b["atoms"], desc, rng),
        "kmeans": kmeans_snapshots(pool, b["atoms"], desc, rng),
        "random (N^3)": random_snapshots(pool, None, rng, max_n3=b["n3"]),
        "all": pool,
    }
    rows = []
    for name, sel in selections.items():
        if not sel:
            continue
        out = judge_selection(sel, test, desc, data=pool)
        rows.append({"name": name, **out["budget"],
                     "energy_rmse": out["test"]["energy_rmse"],
                     "force_rmse": out["test"]["force_rmse"],
                     "max_distance": out["coverage"]["max_distance"],
                     "mean_distance": out["coverage"]["mean_distance"],
                     "hull_ratio": out["hull"]["ratio"]})
    force_std = float(np.concatenate([a.get_forces().ravel() for a in test]).std())
    res = {"rows": rows, "force_std": force_std, "n_pool": len(pool), "n_test": len(test),
           "seconds": time.perf_counter() - t0}
    print(f"{system}: pool {len(pool)} snapshots ({sum(map(len, pool))} atoms), test "
          f"{len(test)} (force std {force_std:.3f} eV/A); GRS {k} x {n_atoms} atoms; "
          f"basis nmax={nmax} lmax={lmax}")
    print(f"{'selection':14s} {'structs':>7s} {'atoms':>6s} {'sum N^3':>9s} "
          f"{'E meV/at':>9s} {'F eV/A':>8s} {'cov max':>8s} {'cov mean':>8s} {'hull':>6s}")
    for r in rows:
        print(f"{r['name']:14s} {r['n_structures']:7d} {r['atoms']:6d} {r['n3']:9.3g} "
              f"{1000 * r['energy_rmse']:9.2f} {r['force_rmse']:8.4f} "
              f"{r['max_distance']:8.2f} {r['mean_distance']:8.2f} {r['hull_ratio']:6.3f}")
    print(f"{res['seconds']:.0f} s")
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data set and GRS")
    parser.add_argument("--system", choices=("cu", "cuau"), default="cu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(quick=args.quick, system=args.system, seed=args.seed)
