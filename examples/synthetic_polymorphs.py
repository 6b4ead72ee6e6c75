"""Synthetic polymorph set: random symmetric EMT crystals with formation energies.

pyxtal puts each composition on the Wyckoff positions of a list of space groups, EMT relaxes
the crystals under their symmetry, and every structure gets its formation energy against the
relaxed fcc elements. Structures sharing a reduced formula are a polymorph group, the unit of
the conditional-generation data sets. The set is written to ``synthetic.extxyz``.

Run::

    python examples/synthetic_polymorphs.py            # the standard set (about half a minute)
    python examples/synthetic_polymorphs.py --quick    # a tiny set (a few seconds)

Needs pyxtal: ``pip install 'ase_crystalgen[synthetic]'``.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import defaultdict

import numpy as np
from ase import Atoms

from ase_crystalgen.datasets.synthetic import default_synthetic_set, generate_polymorphs, write_synthetic_set


def main(quick: bool = False) -> list[Atoms]:
    """Build the set, write ``synthetic.extxyz`` and print its polymorph groups.

    Parameters
    ----------
    quick : bool, optional
        Two compositions in four space groups with at most four atoms per cell instead of the
        standard set.

    Returns
    -------
    list of ase.Atoms
        The structures, with ``info`` as written.
    """
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        if quick:
            structures = generate_polymorphs(["Cu", "CuAu"], [225, 221, 229, 123], rng=rng, max_atoms=4,
                                             progress=False)
        else:
            structures = default_synthetic_set(rng=rng)
    elapsed = time.perf_counter() - start
    write_synthetic_set(structures, "synthetic.extxyz")

    groups: dict[str, list[Atoms]] = defaultdict(list)
    for atoms in structures:
        groups[atoms.info["formula"]].append(atoms)
    print(f"{len(structures)} structures, {len(groups)} polymorph groups, {elapsed:.1f} s "
          f"-> synthetic.extxyz")
    for note in caught:
        print(f"note: {note.message}")
    for formula, members in groups.items():
        members.sort(key=lambda a: a.info["formation_energy"])
        lowest = members[0].info["formation_energy"]
        print(f"\n{formula}: {len(members)} polymorphs")
        print(f"  {'id':<28} {'asked':>5} {'found':>5} {'atoms':>5} {'E_f meV/atom':>13} {'above min':>10}")
        for a in members:
            e_f = a.info["formation_energy"]
            print(f"  {a.info['id']:<28} {a.info['spacegroup_generated']:>5} {a.info['spacegroup']:>5} "
                  f"{len(a):>5} {1000 * e_f:>13.1f} {1000 * (e_f - lowest):>10.1f}")
    return structures


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
