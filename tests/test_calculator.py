"""GRSCalculator: ASE contract, finite differences, minimisation with ASE optimizers."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.filters import FrechetCellFilter
from ase.io import write
from ase.optimize import BFGS, FIRE, LBFGS
from ase.optimize.sciopt import SciPyFminCG
from conftest import l12_aucu3, random_cell

from ase_crystalgen import ACEDescriptor, CoreRepulsion, DescriptorTarget, GRSCalculator

SMALL = dict(nmax=(4, 2, 2, 1), lmax=(0, 2, 2, 1))


def test_forces_and_stress_finite_difference_multielement(rng):
    target = random_cell(rng, ["Cu", "Au", "Ni"], n_atoms=12)
    cand = random_cell(rng, ["Cu", "Au", "Ni"], n_atoms=7, min_dist=1.6)
    desc = ACEDescriptor(["Cu", "Au", "Ni"], **SMALL)
    cand.calc = GRSCalculator(target, descriptor=desc, weights={1: 1.0, 2: 0.5, 3: 0.1},
                              core_repulsion=CoreRepulsion(strength=2.0, scale=1.0))
    cand.get_potential_energy()
    assert cand.calc.results["core_energy"] > 0  # the repulsion is part of the check
    F = cand.get_forces()
    assert np.allclose(F, calculate_numerical_forces(cand, eps=1e-5), atol=1e-6)
    S = cand.get_stress()
    assert np.allclose(S, calculate_numerical_stress(cand, eps=1e-6), atol=1e-7)
    assert np.abs(F).max() > 1e-2 and np.abs(S).max() > 1e-4


def test_energy_is_zero_at_the_target():
    t = l12_aucu3()
    atoms = t.copy()
    atoms.calc = GRSCalculator(target=t)
    assert atoms.get_potential_energy() == 0.0
    assert np.abs(atoms.get_forces()).max() < 1e-10
    assert np.abs(atoms.get_stress()).max() < 1e-10


def test_rattled_l12_relaxes_back_to_the_crystal():
    t = l12_aucu3()
    atoms = t.copy()
    atoms.rattle(0.05, seed=4)
    atoms.calc = GRSCalculator(target=t)
    e0 = atoms.get_potential_energy()
    disp0 = np.abs(atoms.positions - t.positions).max()
    assert FIRE(atoms, logfile=None).run(fmax=1e-5, steps=1000)
    assert atoms.get_potential_energy() < 2e-2 * e0
    disp = atoms.positions - t.positions
    disp -= disp.mean(0)  # the score is translation invariant
    # near a crystal target the moments change to second order in the displacements, so
    # the smoothed distance is quartic-flat there: fmax 1e-4 stops at about a third of the rattle
    assert np.abs(disp).max() < 0.5 * disp0


def test_cell_relaxation_recovers_the_target_lattice_constant():
    target = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms.calc = GRSCalculator(target=target, descriptor=ACEDescriptor(["Cu"], **SMALL))
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-5, steps=200)
    assert atoms.cell.lengths() == pytest.approx([3.61] * 3, abs=1e-3)


def test_scipy_conjugate_gradient():
    t = l12_aucu3(repeat=1)
    atoms = t.copy()
    atoms.rattle(0.05, seed=5)
    atoms.calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL))
    e0 = atoms.get_potential_energy()
    SciPyFminCG(atoms, logfile=None).run(fmax=1e-5, steps=300)
    assert atoms.get_potential_energy() < 1e-2 * e0


def test_reverse_weights_increase_the_distance():
    t = l12_aucu3(repeat=1)
    desc = ACEDescriptor(["Cu", "Au"], **SMALL)
    forward = GRSCalculator(target=t, descriptor=desc, core_repulsion=None)
    atoms = t.copy()
    atoms.rattle(0.05, seed=6)
    d0 = forward.score(atoms)
    # the plain |x| (smoothing 0): near the target the pseudo-Huber pull is too weak to push
    atoms.calc = GRSCalculator(target=t, descriptor=desc, weights=(-1.0, -1.0), smoothing=0)
    FIRE(atoms, logfile=None, maxstep=0.05).run(fmax=1e-3, steps=30)
    assert forward.score(atoms) > 2 * d0


def test_targets_from_file_list_and_array_agree(tmp_path):
    frames = [l12_aucu3(repeat=1), bulk("Cu", "fcc", a=3.6, cubic=True)]
    frames[1].rattle(0.1, seed=1)
    write(tmp_path / "target.extxyz", frames)
    desc = ACEDescriptor(["Cu", "Au"], **SMALL)
    cand = l12_aucu3(repeat=1)
    cand.rattle(0.02, seed=2)
    a = GRSCalculator(frames, descriptor=desc).score(cand)
    b = GRSCalculator(str(tmp_path / "target.extxyz"), descriptor=desc).score(cand)
    arrays = np.concatenate(desc.compute_many(frames))
    c = GRSCalculator(arrays, descriptor=desc).score(cand)
    t = DescriptorTarget.from_structures(frames, desc)
    t.save(tmp_path / "target.npz")
    d = GRSCalculator(str(tmp_path / "target.npz"), descriptor=desc).score(cand)
    assert b == pytest.approx(a, rel=1e-7)  # extxyz stores 8 decimals
    # without a descriptor, the elements come from the file
    default = GRSCalculator(str(tmp_path / "target.extxyz"))
    assert default.descriptor.elements == ["Au", "Cu"]
    with pytest.raises(FileNotFoundError, match="target file .*missing.xyz does not exist"):
        GRSCalculator(str(tmp_path / "missing.xyz"))
    assert c == pytest.approx(a, rel=1e-12)
    assert d == pytest.approx(a, rel=1e-12)


def test_results_are_cached_until_atoms_change():
    t = l12_aucu3(repeat=1)
    atoms = t.copy()
    atoms.rattle(0.03, seed=1)
    calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL))
    atoms.calc = calc
    e1 = atoms.get_potential_energy()
    forces = calc.results["forces"]
    atoms.get_forces()
    assert calc.results["forces"] is forces  # no recomputation
    atoms.positions[0, 0] += 0.01
    assert atoms.get_potential_energy() != e1


def test_ensemble_context_forces_finite_difference():
    t = l12_aucu3(repeat=1)
    others = [t.copy() for _ in range(2)]
    for k, o in enumerate(others):
        o.rattle(0.1, seed=10 + k)
    atoms = t.copy()
    atoms.rattle(0.1, seed=3)
    atoms.calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL),
                               w_inter=0.5, w_intra=1.0, context=others)
    assert np.allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-5), atol=1e-6)


def test_molecule_target_without_cell():
    mol = molecule("CH3OH")
    cand = mol.copy()
    cand.rattle(0.05, seed=1)
    cand.calc = GRSCalculator(target=mol, descriptor=ACEDescriptor(["C", "H", "O"], **SMALL))
    assert np.allclose(cand.get_forces(), calculate_numerical_forces(cand, eps=1e-5), atol=1e-6)
    with pytest.raises(PropertyNotImplementedError):
        cand.get_stress()


def test_unknown_element_in_candidate_is_named():
    t = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms = t.copy()
    atoms[0].symbol = "Ag"
    atoms.calc = GRSCalculator(target=t)
    with pytest.raises(ValueError, match=r"element\(s\) Ag not in the descriptor's elements"):
        atoms.get_potential_energy()


def test_mismatched_target_and_descriptor():
    t = DescriptorTarget(np.ones((2, 5)))
    with pytest.raises(ValueError, match="different bases"):
        GRSCalculator(t, descriptor=ACEDescriptor(["Cu"], **SMALL))


def test_bad_input_gets_one_clear_error():
    t = l12_aucu3(repeat=1)
    calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL))
    with pytest.raises(ValueError, match="GRSCalculator: the structure has no atoms"):
        calc.get_potential_energy(t[:0])
    with pytest.raises(ValueError, match=r"moment weights must be finite numbers, got \{1: nan\}"):
        GRSCalculator(target=t, weights=(np.nan,))
    with pytest.raises(ValueError, match="rank_weights must be finite and >= 0"):
        GRSCalculator(target=t, rank_weights=(1.0, -1.0))
    with pytest.raises(ValueError, match="the target structure has no atoms"):
        GRSCalculator(target=t[:0])
    with pytest.raises(ValueError, match=r"element\(s\) Ag not in the descriptor's elements"):
        calc.get_potential_energy(bulk("Ag", "fcc", a=4.1, cubic=True))


@pytest.mark.parametrize("optimizer", [BFGS, LBFGS, FIRE])
def test_quasi_newton_optimizers_converge_with_a_cell_filter(optimizer):
    """Rattled and strained L1_2 with the default basis and defaults: BFGS, LBFGS and FIRE
    all converge and bring the cell back near the target's."""
    t = l12_aucu3()
    calc = GRSCalculator(target=t)
    rng = np.random.default_rng(0)
    for seed in range(2):
        atoms = t.copy()
        atoms.rattle(0.05, seed=seed)
        eps = rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.calc = calc
        e0 = atoms.get_potential_energy()
        strain0 = np.abs(atoms.cell.lengths() - 7.5).max()
        assert optimizer(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4, steps=300)
        assert atoms.get_potential_energy() < 0.05 * e0
        assert np.abs(atoms.cell.lengths() - 7.5).max() < 0.6 * strain0
