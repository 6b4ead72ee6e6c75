"""Starting cells for a GRS search: every builder in ``ase_crystalgen.build`` once.

Run ``python examples/build_candidates.py``. It prints, for an Au-Cu alloy:

1. how many distinct supercells (Hermite normal forms) each size has;
2. the most cube-like 32-site supercell of the fcc primitive cell (the 2x2x2 conventional
   cube) and a random 12-site one, drawn over all shapes;
3. a random Au8Cu24 occupation of the cube, and a rattled random lattice candidate;
4. a random dense packing at the number density of fcc Cu (liquid/amorphous start).
"""

from __future__ import annotations

import numpy as np
from ase.build.supercells import eval_shape_deviation

from ase_crystalgen.build import (
    hermite_normal_forms,
    parent_lattice,
    random_lattice_candidate,
    random_occupation,
    random_packing,
    supercell,
)


def main(quick: bool = False) -> dict:
    """Build one candidate of each kind and return them with a few numbers.

    Parameters
    ----------
    quick : bool
        Smaller cells (for the test suite): the 4-site conventional cube and 16 packed atoms.

    Returns
    -------
    dict
        ``hnf_counts`` (sizes 1-8), the ``cube`` supercell and its ``cube_shape_deviation``,
        a random ``hnf_cell``, the ``occupied`` cube, the rattled ``lattice_candidate`` and the
        ``packing``, with its ``packing_min_distance`` in Å.
    """
    rng = np.random.default_rng(2024)
    a = 3.75  # fcc lattice constant of AuCu3 in Å
    n = 4 if quick else 32
    n_packed = 16 if quick else 64

    fcc = parent_lattice("fcc", a)
    hnf_counts = [len(hermite_normal_forms(det)) for det in range(1, 9)]

    # without an rng: the most cube-like supercell of that size
    cube = supercell(fcc, n_atoms=n)
    hnf_cell = supercell(fcc, n_atoms=12, rng=rng, shape_tolerance=None)
    occupied = random_occupation(cube, {"Au": 0.25, "Cu": 0.75}, rng)
    candidate = random_lattice_candidate(fcc, n, "AuCu3", rng, rattle=0.05)

    packing = random_packing(
        "AuCu3", n_atoms=n_packed, density=4 / a**3, rng=rng, min_distance_factor=0.5
    )
    dist = packing.get_all_distances(mic=True)
    min_distance = float(dist[np.triu_indices(len(packing), 1)].min())

    print(f"HNF supercells of size 1..8: {hnf_counts}")
    print(
        f"most cube-like {n}-site fcc supercell: cell lengths "
        f"{np.round(cube.cell.lengths(), 3)} Å, angles {np.round(cube.cell.angles(), 1)}"
    )
    print(
        f"random 12-site HNF supercell: lengths {np.round(hnf_cell.cell.lengths(), 3)} Å, "
        f"matrix {hnf_cell.info['supercell_matrix'].tolist()}"
    )
    print(f"random occupation: {occupied.get_chemical_formula()}")
    print(f"rattled lattice candidate: {candidate.get_chemical_formula()}")
    print(
        f"random packing: {packing.get_chemical_formula()}, "
        f"{len(packing) / packing.get_volume():.4f} atoms/Å^3, "
        f"closest pair {min_distance:.2f} Å"
    )
    return {
        "hnf_counts": hnf_counts,
        "cube": cube,
        "cube_shape_deviation": float(eval_shape_deviation(cube.cell.array, "sc")),
        "hnf_cell": hnf_cell,
        "occupied": occupied,
        "lattice_candidate": candidate,
        "packing": packing,
        "packing_min_distance": min_distance,
    }


if __name__ == "__main__":
    main()
