"""Relax Cu-Au candidates and rank them by energy above the convex hull.

EMT stands in for the expensive calculator so that the script runs in seconds; every call
takes any ASE calculator in exactly the same way (``"chgnet"``, ``"m3gnet"``, or an instance
such as ``ase.calculators.vasp.Vasp(...)``). The references are computed with the same
calculator as the candidates: elemental Cu and Au from simple prototypes, plus L1_2 Cu3Au as a
known compound. The candidates are then relaxed and placed against the hull:

* L1_2 Cu3Au itself, from a strained start: on the hull, 0 meV/atom up to the relaxation
  tolerance (it may print as -0.00);
* L1_0 CuAu, L1_2 CuAu3 and B2 CuAu: other orderings, measured against the Cu3Au-Au tie line.
  L1_0 CuAu comes out about 1 meV/atom *below* it: a negative value means a phase more stable
  than the references, here a real one (CuAu is a known ordered compound) that the references
  lack;
* a structure with two atoms 0.3 Å apart: not relaxed, reported with its error.

Run ``python examples/relax_and_hull.py``. With ``CRYSTALGEN_RUN_VASP=1`` (and ASE's VASP
set up: ``ASE_VASP_COMMAND`` and ``VASP_PP_PATH``) the same script runs with VASP instead.
"""

from __future__ import annotations

import os

import numpy as np
from ase import Atoms
from ase.build import bulk

from ase_crystalgen.relaxation import PhaseDiagramReference, relax


def l12(majority: str, minority: str, a: float) -> Atoms:
    """L1_2 ordering: the minority element on the cube corners of the conventional fcc cell."""
    atoms = bulk(majority, "fcc", a=a, cubic=True)
    atoms[0].symbol = minority
    return atoms


def l10(a: float) -> Atoms:
    """L1_0 CuAu: alternating Au and Cu (001) planes of the conventional fcc cell."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    for i, z in enumerate(atoms.get_scaled_positions()[:, 2]):
        if abs(z) < 1e-6:
            atoms[i].symbol = "Au"
    return atoms


def candidates() -> dict[str, Atoms]:
    """The structures to screen, by name."""
    broken = Atoms("CuAu", positions=[[0, 0, 0], [0.3, 0, 0]], cell=[3.0] * 3, pbc=True)
    return {
        "L1_2 Cu3Au": l12("Cu", "Au", 3.85),
        "L1_0 CuAu": l10(3.95),
        "L1_2 CuAu3": l12("Au", "Cu", 4.0),
        "B2 CuAu": Atoms("CuAu", scaled_positions=[[0, 0, 0], [0.5] * 3], cell=[3.15] * 3, pbc=True),
        "broken": broken,
    }


def main(calculator="emt", fmax: float = 0.01) -> dict[str, float]:
    """Build references, relax the candidates and print their energies above the hull.

    Returns
    -------
    dict
        Candidate name -> energy above the hull in eV/atom (NaN for a failed relaxation).
    """
    # 1. references, with the calculator that will relax the candidates
    refs = PhaseDiagramReference.from_calculator(
        ["Cu", "Au"], calculator, known_phases=[l12("Cu", "Au", 3.75)], fmax=fmax, progress=False
    )
    # EMT puts hcp Cu 0.9 meV/atom below fcc Cu, so the Cu reference printed is hcp: the
    # references are as good as the calculator, no better
    print(f"references: {refs}")
    for atoms in refs.structures:
        proto = atoms.info.get("prototype", "known phase")
        print(f"  {atoms.get_chemical_formula():8s} {proto:12s} {atoms.info['energy_per_atom']:9.4f} eV/atom")

    # 2. candidates
    named = candidates()
    relaxed = relax(list(named.values()), calculator, fmax=fmax, progress=False)

    # 3. hull distances
    header = f"{'candidate':12s} {'formula':8s} {'conv':>5s} {'sg':>4s} {'E_form':>8s} {'E_hull':>8s}"
    print(f"\n{header}  decomposition")
    print(f"{'':12s} {'':8s} {'':>5s} {'':>4s} {'meV/at':>8s} {'meV/at':>8s}")
    e_hull: dict[str, float] = {}
    for name, atoms in zip(named, relaxed):
        formula = atoms.get_chemical_formula()
        if "relax_error" in atoms.info:
            e_hull[name] = float("nan")
            print(f"{name:12s} {formula:8s} failed: {atoms.info['relax_error']}")
            continue
        e_hull[name] = refs.e_above_hull(atoms)
        e_form = refs.formation_energy_per_atom(atoms)
        decomp = " + ".join(f"{x:.3g} {phase}" for phase, x in refs.decomposition(atoms).items())
        sg = atoms.info.get("spacegroup_relaxed", 0)
        print(
            f"{name:12s} {formula:8s} {atoms.info['converged']!s:>5s} {sg:4d} "
            f"{1000 * e_form:8.2f} {1000 * e_hull[name]:8.2f}  {decomp}"
        )
    return e_hull


def vasp_calculator():
    """The same screen with VASP: build the calculator in a factory, pass it like ``"emt"``.

    ASE's optimiser drives the relaxation, so VASP runs single points (its defaults
    ``ibrion=-1, nsw=0``): ``ediffg`` applies only when VASP relaxes by itself, and ``fmax`` of
    :func:`~ase_crystalgen.relaxation.relax` plays its role (``fmax=0.01`` ~ ``ediffg=-0.01``).
    A high ``encut`` keeps the Pulay stress of cell relaxations small.
    """
    from ase.calculators.vasp import Vasp

    return Vasp(
        xc="PBE",
        encut=500,
        ediff=1e-5,
        ediffg=-0.01,
        kspacing=0.2,
        ismear=1,
        sigma=0.1,
        lwave=False,  # successive structures differ; do not restart from the last one's orbitals
        lcharg=False,
        directory="vasp-relax",
    )


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    if os.environ.get("CRYSTALGEN_RUN_VASP"):
        main(calculator=vasp_calculator)  # a factory: resolved once, then reused
    else:
        main()
