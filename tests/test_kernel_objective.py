"""The kernel (MMD) distance of ``grs.kernel``: exact values, gradients, invariances, use."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from ase_crystalgen import ACEDescriptor
from ase_crystalgen.grs.kernel import KernelObjective, KernelTarget
from ase_crystalgen.grs.potential import GRSPotential
from ase_crystalgen.grs.repulsion import CoreRepulsion


def _rattled_cu(n, repeat, amplitude):
    """``n`` rattled fcc Cu cells (seeds 0..n-1)."""
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
        a.rattle(amplitude, seed=k)
        out.append(a)
    return out


def _target(rng, n=200, F=6, **kw):
    Y = rng.normal(size=(n, F)) * np.arange(1, F + 1)
    return Y, KernelTarget(Y, **kw)


def test_single_points_give_the_closed_form():
    # one target point, one structure point, identity coordinates (no spread to scale):
    # MMD^2 = k(x, x) - 2 k(x, y) + k(y, y) = 2 - 2 exp(-d^2 / 2h^2)
    Y = np.array([[0.0, 0.0], [2.0, 0.0]])
    t = KernelTarget(Y, bandwidth=1.5, variance=1.0)
    # projected coordinates: standardised, then rotated; distances scale by 1/std per axis
    x = t.project(np.array([[0.5, 0.0]]))
    d2 = ((x[:, None, :] - t.points[None]) ** 2).sum(-1)[0]
    k = np.exp(-d2 / (2 * 1.5**2))
    kyy = np.exp(-((t.points[0] - t.points[1]) ** 2).sum() / (2 * 1.5**2))
    expected = 1.0 - 2 * k.mean() + (2 + 2 * kyy) / 4
    obj = KernelObjective(t, w_inter=1.0, w_intra=0.0)
    assert obj.score(np.array([[0.5, 0.0]])) == pytest.approx(expected, rel=1e-12)
    assert t.points[:, 0] == pytest.approx([-1.0, 1.0])  # (0 - 1) / std 1, rotated onto axis 0


def test_the_target_against_itself_is_zero_and_anything_else_positive():
    rng = np.random.default_rng(0)
    Y, t = _target(rng, variance=1.0)
    obj = KernelObjective(t)
    assert obj.score(Y) == pytest.approx(0.0, abs=1e-12)
    assert obj.score(Y[:50] + 0.3) > 0
    assert obj.score(rng.normal(size=(30, 6)) * 5) > obj.score(Y[::4])


def test_gradient_matches_finite_differences_with_context():
    rng = np.random.default_rng(1)
    _, t = _target(rng, variance=0.95)
    obj = KernelObjective(t, w_inter=0.3, w_intra=1.0, context=[rng.normal(size=(7, 6))])
    B = rng.normal(size=(5, 6))
    Q, G = obj.score_and_gradient(B)
    num = np.zeros_like(B)
    h = 1e-6
    for i in range(B.shape[0]):
        for f in range(B.shape[1]):
            Bp, Bm = B.copy(), B.copy()
            Bp[i, f] += h
            Bm[i, f] -= h
            num[i, f] = (obj.score(Bp) - obj.score(Bm)) / (2 * h)
    assert Q > 0
    np.testing.assert_allclose(G, num, atol=1e-8 * max(1.0, np.abs(G).max()))


def test_row_order_and_splitting_do_not_matter():
    rng = np.random.default_rng(2)
    _, t = _target(rng)
    obj = KernelObjective(t)
    B = rng.normal(size=(12, 6))
    perm = rng.permutation(12)
    assert obj.score(B[perm]) == pytest.approx(obj.score(B), rel=1e-12)
    Q, Gs = obj.ensemble_score([B[:5], B[5:]])
    Q1, G1 = obj.score_and_gradient(B)
    assert Q == pytest.approx(Q1, rel=1e-12)
    np.testing.assert_allclose(np.concatenate(Gs), G1, atol=1e-14)
    # the intra term of a structure with context is the ensemble score of both
    ctx = KernelObjective(t, w_inter=0.0, w_intra=1.0, context=[B[5:]])
    assert ctx.score(B[:5]) == pytest.approx(Q, rel=1e-12)


def test_forces_and_stress_of_the_potential_match_finite_differences():
    d = ACEDescriptor(["Cu"], nmax=(4, 2), lmax=(0, 1), cutoffs=4.5)
    data = _rattled_cu(4, (2, 2, 1), 0.15)
    pot = GRSPotential(d, KernelObjective(KernelTarget.from_structures(data, d)), CoreRepulsion())
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.2, seed=5)
    res = pot.calculate(atoms)
    h = 1e-5
    for i, c in [(0, 0), (3, 2), (5, 1)]:
        p, m = atoms.copy(), atoms.copy()
        p.positions[i, c] += h
        m.positions[i, c] -= h
        fd = (pot.calculate(p)["energy"] - pot.calculate(m)["energy"]) / (2 * h)
        assert res["gradient"][i, c] == pytest.approx(fd, abs=1e-7 + 1e-5 * abs(fd))
    eps = np.zeros((3, 3))
    eps[0, 1] = eps[1, 0] = h
    p, m = atoms.copy(), atoms.copy()
    p.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
    m.set_cell(atoms.cell @ (np.eye(3) - eps), scale_atoms=True)
    fd = (pot.calculate(p)["energy"] - pot.calculate(m)["energy"]) / (2 * h)
    W = res["virial"]
    assert W[0, 1] + W[1, 0] == pytest.approx(fd, abs=1e-7 + 1e-5 * abs(fd))


def test_reduce_dataset_with_the_kernel_objective_lowers_it():
    from ase_crystalgen.reduction import reduce_dataset

    d = ACEDescriptor(["Cu"], nmax=(4, 2), lmax=(0, 1), cutoffs=4.5)
    data = _rattled_cu(3, (2, 2, 2), 0.1)
    members = reduce_dataset(data, 2, 8, descriptor=d, rng=0, objective="kernel",
                             relax_steps=15, build="joint")
    assert len(members) == 2 and all(len(m) == 8 for m in members)
    for m in members:
        assert m.info["grs_objective"] == "kernel"
        history = m.info["grs_history"]
        assert history[-1] < history[0]
    seq = reduce_dataset(data, 2, 8, descriptor=d, rng=0, objective="kernel", relax_steps=5)
    assert [m.info["grs_build"] for m in seq] == ["sequential", "sequential"]


def test_bad_input_is_named():
    from ase_crystalgen.reduction import reduce_dataset

    with pytest.raises(ValueError, match="at least two environments"):
        KernelTarget(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="every target descriptor is constant"):
        KernelTarget(np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        KernelTarget(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="unknown bandwidth 'silverman'"):
        KernelTarget(np.random.default_rng(0).normal(size=(5, 2)), bandwidth="silverman")
    t = KernelTarget(np.random.default_rng(0).normal(size=(5, 2)))
    with pytest.raises(ValueError, match="has 2 features"):
        KernelObjective(t).score(np.zeros((3, 4)))
    data = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("Cu", "fcc", a=3.7, cubic=True)]
    with pytest.raises(ValueError, match="unknown objective 'mmd'; use one of moments, kernel"):
        reduce_dataset(data, 1, 4, objective="mmd")
    with pytest.raises(ValueError, match="objective='kernel' does not take weights"):
        reduce_dataset(data, 1, 4, objective="kernel", weights=(1, 1))
