"""The synthetic alloy polymorph set of the shipped ``synthetic-alloys-*`` models.

Every element of EMT (Al, Cu, Ag, Au, Ni, Pd, Pt) and every binary A, AB, A3B, AB3 of them,
in ten space groups of metal and intermetallic prototypes, two random structures per pair,
cells of 4-8 atoms, relaxed with EMT under their symmetry (``generate_polymorphs``).

    python scripts/make_synthetic_alloys.py OUT.extxyz [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np

from ase_crystalgen.datasets.synthetic import (
    DEFAULT_SPACEGROUPS,
    EMT_ELEMENTS,
    generate_polymorphs,
    write_synthetic_set,
)


def compositions() -> list[str]:
    out = list(EMT_ELEMENTS)
    for a, b in itertools.combinations(EMT_ELEMENTS, 2):
        out += [f"{a}{b}", f"{a}3{b}", f"{a}{b}3"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-per-group", type=int, default=2)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        structures = generate_polymorphs(
            compositions(), DEFAULT_SPACEGROUPS, n_per_group=args.n_per_group,
            rng=np.random.default_rng(args.seed), max_atoms=8, min_atoms=4,
        )
    write_synthetic_set(structures, args.out)
    print(f"wrote {len(structures)} structures to {args.out}")


if __name__ == "__main__":
    main()
