"""Why hierarchical rank weights: 32-site fcc Cu-Au SQS for several weightings of the ACE ranks.

For each setting, 4 seeds: a random occupation of the 2x2x2 conventional fcc cell with the
exact composition is annealed with swaps (``SimulatedAnnealing(start, moves="swap", rng=seed, n_steps=5000)``,
package defaults otherwise) against a 4000-atom random alloy (10x10x10 cells, Vegard lattice
parameter). The results are judged by measures the search does not use (``sqs_judges``):
max |Warren-Cowley alpha| over shells 1-3, icet's SQS objective (cutoffs [7, 5]) and the
EMT energy error against the large alloy. Prints one line per setting (medians).

    python benchmarks/bench_rank_weights.py 0.25
    python benchmarks/bench_rank_weights.py 0.5

Needs icet (``pip install -e .[bench]``).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase.build import bulk
from sqs_judges import IcetJudge, emt_energy, warren_cowley

from ase_crystalgen import ACEDescriptor, GRSCalculator
from ase_crystalgen.optimize import SimulatedAnnealing

SETTINGS = {
    "(8, 4, 2, 1)": dict(rank_weights=(8, 4, 2, 1)),
    "(8, 4, 2, 1), weights (1,)": dict(rank_weights=(8, 4, 2, 1), weights=(1.0,)),
    "(1, 1, 0, 0), weights (1,)": dict(rank_weights=(1, 1, 0, 0), weights=(1.0,)),
    "(1, 0.1, 0.01, 0.001), weights (1,)": dict(rank_weights=(1, .1, .01, .001), weights=(1.0,)),
    "(1, 0.03, 1e-3, 3e-5)": dict(rank_weights=(1, 3e-2, 1e-3, 3e-5)),
    "hierarchy (1, 1e-2, 1e-4, 1e-6), weights (1, 0.01): default": dict(),
    "hierarchy, weights (1, 0.1)": dict(weights=(1.0, 0.1)),
    "hierarchy, weights (1,)": dict(weights=(1.0,)),
    "(1, 1e-3, 1e-6, 1e-9)": dict(rank_weights=(1, 1e-3, 1e-6, 1e-9)),
    "(1, 0, 0, 0): pairs only": dict(rank_weights=(1, 0, 0, 0)),
    "hierarchy, scale 'group'": dict(scale="group"),
    "features alike, weights (1, 1), smoothing 1e-4 (former)": dict(
        rank_weights=None, weights=(1.0, 1.0), smoothing=1e-4),
    "hierarchy, cutoffs 7 A": dict(cutoffs=7.0),
    "hierarchy, cutoffs 7 A, 12 radial functions": dict(cutoffs=7.0, nmax=(12, 2, 2, 1)),
}


def main(x: float = 0.25, seeds: int = 5) -> None:
    a = (1 - x) * 3.61 + x * 4.08
    cell = bulk("Cu", "fcc", a=a, cubic=True).repeat(2)
    n_au = int(round(32 * x))
    big = bulk("Cu", "fcc", a=a, cubic=True).repeat(10)
    big.numbers = np.random.default_rng(123).permutation(
        np.where(np.arange(len(big)) < int(round(len(big) * x)), 79, 29))
    judge = IcetJudge(bulk("Cu", "fcc", a=a), [7.0, 5.0], ["Au", "Cu"], {"Au": x, "Cu": 1 - x})
    e_ref = emt_energy(big) / len(big)
    print(f"Cu(1-x)Au(x), x = {x}, a = {a:.4f} A; medians over {seeds} seeds")
    for name, kw in SETTINGS.items():
        kw = dict(kw)
        desc = {k: kw.pop(k) for k in ("cutoffs", "nmax") if k in kw}
        if "nmax" in desc:
            desc["lmax"] = (0, 2, 2, 1)
        t0 = time.time()
        calc = GRSCalculator(target=big, descriptor=ACEDescriptor(["Cu", "Au"], **desc)
                             if desc else None, **kw)
        rows = []
        for seed in range(seeds):
            start = cell.copy()
            start.numbers = np.random.default_rng(seed).permutation(
                np.where(np.arange(32) < n_au, 79, 29))
            start.calc = calc
            sa = SimulatedAnnealing(start, moves="swap", rng=seed, n_steps=5000)
            sa.run()
            b = sa.best_atoms
            rows.append((warren_cowley(b, n_shells=6).max_abs(3), judge(b)["icet_objective"],
                         1000 * abs(emt_energy(b) / 32 - e_ref)))
        r = np.median(np.array(rows), axis=0)
        print(f"{name:58s} max|alpha| 1-3 {r[0]:.3f}  icet objective {r[1]:6.2f}  "
              f"|dE_EMT| {r[2]:.2f} meV/atom  [{time.time() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.25)
