"""The generation half of ``crystalgen demo``: perovskites from the shipped model, relaxed with CHGNet.

1. ``CrystalGenerator.from_pretrained("perov5-flow")`` samples cubic (Pm-3m, 221) SrVO3 and
   SrSnO3 at the formation energies (Perov-5's ``heat_ref``, eV/atom) of their Perov-5
   entries, and SrTiO3, a composition Perov-5 does not contain, at 0 eV/atom. Low energies
   matter: Perov-5 also holds A/B-swapped perovskites at high ``heat_ref``, and the model
   reproduces those when asked for such energies.
2. CHGNet (shipped weights, offline) relaxes every sample, positions and cell (FIRE).
3. Output: ``generated.extxyz`` (raw samples), ``generated_relaxed.extxyz`` (``ase gui``
   opens both), ``generation.png`` (a picture of each relaxed structure with the space group
   asked for and found, and its energy) and ``generation_summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, atomic_write_text

#: (composition, space group, Perov-5 heat_ref of the entry in val.csv, eV/atom)
DEMO_CONDITIONS = (("SrVO3", 221, -0.266), ("SrSnO3", 221, 0.020), ("SrTiO3", 221, 0.0))


def run_generation_demo(
    out_dir: str | os.PathLike = "demo-output",
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    verbose: bool = True,
    calculator: str = "chgnet",
) -> dict:
    """Generate, relax and picture a few perovskites; returns the summary dict."""
    import ase.io

    from ..inference.generator import CrystalGenerator
    from ..relaxation import relax

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gen = CrystalGenerator.from_pretrained("perov5-flow")
    n = 1 if quick else 2
    samples = []
    for composition, sg, energy in DEMO_CONDITIONS:
        samples += gen.sample(composition, spacegroup=sg, formation_energy=energy, n=n, seed=seed)
    t_sample = time.perf_counter() - t0
    relaxed = relax(samples, calculator=calculator, fmax=0.05, steps=60 if quick else 300, progress=progress)
    t_relax = time.perf_counter() - t0 - t_sample

    files = {
        "generated": out / "generated.extxyz",
        "relaxed": out / "generated_relaxed.extxyz",
        "picture": out / "generation.png",
        "summary": out / "generation_summary.json",
    }
    with atomic_path(files["generated"]) as tmp:
        ase.io.write(tmp, samples, format="extxyz")
    with atomic_path(files["relaxed"]) as tmp:
        ase.io.write(tmp, relaxed, format="extxyz")
    _picture(files["picture"], relaxed, calculator)
    rows = [
        {
            "composition": a.info["composition"],
            "spacegroup_asked": a.info["spacegroup_condition"],
            "spacegroup_found": a.info.get("spacegroup_relaxed"),
            "energy_per_atom_eV": a.info.get("energy_per_atom"),
            "converged": bool(a.info.get("converged")),
            "relax_steps": a.info.get("relax_steps"),
            "lattice_A": [round(float(x), 3) for x in a.cell.cellpar()[:3]],
            "error": a.info.get("relax_error"),
        }
        for a in relaxed
    ]
    summary = {
        "model": gen.name,
        "calculator": calculator,
        "seed": seed,
        "quick": bool(quick),
        "structures": rows,
        "timings_s": {"sampling": round(t_sample, 2), "relaxation": round(t_relax, 2)},
        "files": {k: str(v) for k, v in files.items()},
    }
    atomic_write_text(files["summary"], json.dumps(summary, indent=2) + "\n")
    if verbose:
        print(
            f"generation: {len(samples)} perovskites from {gen.name} in {t_sample:.1f} s, relaxed with "
            f"{calculator} in {t_relax:.1f} s"
        )
        for r in rows:
            e = "-" if r["energy_per_atom_eV"] is None else f"{r['energy_per_atom_eV']:.3f} eV/atom"
            print(
                f"  {r['composition']:<10} SG {r['spacegroup_asked']:>3} asked, "
                f"{r['spacegroup_found']} found, "
                f"{e}, a,b,c = {r['lattice_A']} A"
            )
        for path in files.values():
            print(f"    {path}")
    return summary


def _picture(path: Path, structures, calculator: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms

    n = len(structures)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax, atoms in zip(axes.ravel(), structures):
        if np.isfinite(atoms.positions).all():
            plot_atoms(atoms.repeat((2, 2, 2)), ax, rotation="10x,-20y", radii=0.5)
        found = atoms.info.get("spacegroup_relaxed", "?")
        energy = atoms.info.get("energy_per_atom")
        e = f"{energy:.2f} eV/atom" if energy is not None else atoms.info.get("relax_error", "failed")[:30]
        ax.set_title(
            f"{atoms.info['composition']}: SG {atoms.info['spacegroup_condition']} -> {found}\n{e}",
            fontsize=9,
        )
        ax.set_axis_off()
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    fig.suptitle(f"perov5-flow samples relaxed with {calculator} (2x2x2 repeats)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


__all__ = ["DEMO_CONDITIONS", "run_generation_demo"]
