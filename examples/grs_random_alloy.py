"""A small representative structure (GRS) of a disordered Cu3Au alloy.

The target is a random fcc Cu3Au alloy of 108 atoms, relaxed with ASE's EMT potential so
that the larger Au atoms push their neighbours apart. We look for a 32-atom cell whose
per-atom ACE descriptors have the same mean and variance as the target's: the candidate
starts as a random fcc occupation at the target's density and FIRE minimises the GRS score
over atomic positions *and* the cell (through ASE's ``FrechetCellFilter``, which the
calculator's analytic stress makes possible).

The score falls several-fold. It does not reach zero: 32 atoms in one periodic cell cannot
carry every feature of a 108-atom random alloy, and moving atoms cannot change which species
neighbour each other, so the minimiser distorts the lattice instead. ``crystalgen demo``
runs the same recipe and draws the result, radial distribution included.

Run ``python examples/grs_random_alloy.py`` (about ten seconds) or with ``--quick``.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE

from ase_crystalgen import GRSCalculator


def random_cu3au(repeat: int, a: float, rng: np.random.Generator):
    """fcc supercell of ``repeat**3`` conventional cells, a quarter of the sites Au at random."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    symbols = np.array(["Cu"] * len(atoms))
    symbols[: len(atoms) // 4] = "Au"
    atoms.set_chemical_symbols(rng.permutation(symbols))
    return atoms


def main(quick: bool = False, seed: int = 0) -> dict:
    """Relax a 32-atom candidate towards the descriptor moments of a random Cu3Au alloy.

    Parameters
    ----------
    quick : a handful of steps for both relaxations (a smoke test).
    seed : seed of the occupations and the rattle.

    Returns
    -------
    dict
        ``score_before``, ``score_after``, ``steps``, ``volume_per_atom_target``,
        ``volume_per_atom_grs`` (A^3), ``composition`` of the GRS and ``grs`` (the Atoms).
    """
    rng = np.random.default_rng(seed)

    # target: Vegard's-law lattice constant, then EMT relaxes positions and cell
    a = 0.75 * 3.61 + 0.25 * 4.08
    target = random_cu3au(3, a, rng)
    target.rattle(0.02, rng=rng)
    target.calc = EMT()
    FIRE(FrechetCellFilter(target), logfile=None).run(fmax=0.02, steps=5 if quick else 60)
    target.calc = None
    v_target = target.get_volume() / len(target)

    # candidate: 2x2x2 conventional cells at the target's density
    candidate = random_cu3au(2, (4 * v_target) ** (1 / 3), rng)
    candidate.rattle(0.1, rng=rng)
    calc = GRSCalculator(target=target)
    candidate.calc = calc
    score_before = calc.score(candidate)

    opt = FIRE(FrechetCellFilter(candidate), logfile=None)
    opt.run(fmax=1e-3, steps=25 if quick else 400)
    score_after = calc.score(candidate)
    v_grs = candidate.get_volume() / len(candidate)

    print(f"target: {target.get_chemical_formula()} ({len(target)} atoms), "
          f"{v_target:.3f} A^3/atom after EMT")
    print(f"GRS:    {candidate.get_chemical_formula()} ({len(candidate)} atoms), "
          f"{v_grs:.3f} A^3/atom")
    print(f"score {score_before:.4f} -> {score_after:.4f} in {opt.nsteps} FIRE steps "
          "(positions + cell)")
    counts = Counter(candidate.get_chemical_symbols())
    return {"score_before": score_before, "score_after": score_after, "steps": opt.nsteps,
            "volume_per_atom_target": v_target, "volume_per_atom_grs": v_grs,
            "composition": dict(counts), "grs": candidate}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, for a smoke test")
    main(quick=parser.parse_args().quick)
