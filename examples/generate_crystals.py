"""Generate, modify, relax and rank crystals with the shipped models.

1. ``CrystalGenerator`` (``synthetic-alloys-flow``) samples Cu3Au cells in three space groups
   at two formation energies;
2. EMT (standing in for CHGNet or VASP: pass ``calculator="chgnet"`` or a ``Vasp(...)``
   object instead) relaxes them;
3. a ``PhaseDiagramReference`` built with the same calculator gives each one's energy above
   the hull;
4. ``CrystalModifier`` (``synthetic-alloys-modifier``) moves the least stable one toward a
   more stable polymorph, which is relaxed and ranked again.

    python examples/generate_crystals.py [--n 2] [--out generated.extxyz]
"""

from __future__ import annotations

import argparse

import ase.io

from ase_crystalgen.inference import CrystalGenerator, CrystalModifier
from ase_crystalgen.relaxation import PhaseDiagramReference, relax


def main(n: int = 2, out: str = "generated.extxyz", steps: int | None = None) -> dict:
    generator = CrystalGenerator.from_pretrained("synthetic-alloys-flow")
    samples = generator.sample(
        "Cu3Au", spacegroup=[221, "P4/mmm", 139], formation_energy=[-0.08, -0.02], n=n, steps=steps, seed=0
    )
    relaxed = [a for a in relax(samples, calculator="emt", progress=False) if "relax_error" not in a.info]
    refs = PhaseDiagramReference.from_calculator(["Cu", "Au"], "emt", progress=False)
    for atoms in relaxed:
        atoms.info["e_above_hull"] = refs.e_above_hull(atoms)
    relaxed.sort(key=lambda a: a.info["e_above_hull"])
    print(
        f"{len(relaxed)} of {len(samples)} samples relaxed with EMT; energy above the Cu-Au hull (eV/atom):"
    )
    for a in relaxed:
        print(
            f"  SG {a.info['spacegroup_condition']:>3} asked, "
            f"{a.info.get('spacegroup_relaxed', '?'):>3} after relaxation, "
            f"E_form asked {a.info['formation_energy_condition']:+.2f}, "
            f"E above hull {a.info['e_above_hull']:+.4f}"
        )

    worst = relaxed[-1]
    modifier = CrystalModifier.from_pretrained("synthetic-alloys-modifier")
    proposal = modifier.modify(worst, energy_change=-0.05, steps=steps)
    better = relax(proposal, calculator="emt", progress=False)
    before, after = worst.info["e_above_hull"], refs.e_above_hull(better)
    print(f"modifier: least stable candidate {before:+.4f} -> {after:+.4f} eV/atom above the hull")
    ase.io.write(out, relaxed + [better], format="extxyz")
    print(f"wrote {out}")
    return {"relaxed": relaxed, "modified_before": before, "modified_after": after}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--out", default="generated.extxyz")
    args = parser.parse_args()
    main(args.n, args.out)
