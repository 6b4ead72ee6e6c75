"""Joint and alternating GRS builds (reduce_dataset, joint_relax) and moment-matching
selection of snapshots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase.build import bulk

from ase_crystalgen import ACEDescriptor
from ase_crystalgen.grs.objective import DescriptorTarget, GRSObjective
from ase_crystalgen.grs.potential import GRSPotential
from ase_crystalgen.reduction import budget, moment_matching, reduce_dataset
from ase_crystalgen.reduction.grs import _JointEvaluator, joint_relax


@pytest.fixture(scope="module")
def desc():
    return ACEDescriptor(["Cu"], nmax=(4, 2), lmax=(0, 1))


def _cu(a, rep=(2, 1, 1), rattle=0.08, seed=0):
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(rep)
    atoms.rattle(rattle, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def data():
    """Compressed and expanded cells of two sizes, thermal noise of two amplitudes."""
    out = []
    for k in range(10):
        rep = (2, 1, 1) if k % 3 else (2, 2, 1)
        out.append(_cu(3.45 + 0.06 * k, rep, rattle=0.03 + 0.03 * (k % 2), seed=k))
    return out


def _distance(selection, data, desc):
    """Pooled moment distance of a selection to the data (the public score path)."""
    target = DescriptorTarget.from_structures(data, desc, orders=(1, 2))
    objective = GRSObjective(target, weights=(1.0, 1.0), rank_weights="hierarchy")
    return objective.score(np.concatenate(desc.compute_many(selection), 0))


# ---------------------------------------------------------------- moment matching
def test_moment_matching_respects_the_budget_and_beats_the_first_snapshots(data, desc):
    for total in (16, 40, 64):
        picked, q = moment_matching(data, total, desc, return_score=True)
        assert 0 < budget(picked)["atoms"] <= total
        ids = [id(a) for a in picked]
        assert len(set(ids)) == len(ids) and set(ids) <= {id(a) for a in data}
        assert q == pytest.approx(_distance(picked, data, desc), rel=1e-9)
        first, left = [], total  # the data's first snapshots that fit the same budget
        for a in data:
            if len(a) <= left:
                first.append(a)
                left -= len(a)
        assert q <= _distance(first, data, desc) + 1e-12
        rng = np.random.default_rng(total)
        for _ in range(5):  # and random snapshots of the same budget
            rand, left = [], total
            for k in rng.permutation(len(data)):
                if len(data[k]) <= left:
                    rand.append(data[k])
                    left -= len(data[k])
            assert q <= _distance(rand, data, desc) + 1e-12
    picked = moment_matching(data, None, desc, max_n3=3 * 8**3)
    assert 0 < budget(picked)["n3"] <= 3 * 8**3 and all(len(a) == 8 for a in picked)


def test_moment_matching_finds_the_best_pair_of_two_clusters(desc):
    # five compressed and five expanded cells: a pair matches the mean only if it takes
    # one of each; among those the brute-force best is found
    data = [_cu(3.45, seed=k) for k in range(5)] + [_cu(3.75, seed=k) for k in range(5, 10)]
    picked, q = moment_matching(data, 16, desc, return_score=True)
    sides = sorted(next(k for k, d in enumerate(data) if d is p) // 5 for p in picked)
    assert sides == [0, 1]
    best = min(_distance([data[i], data[j]], data, desc)
               for i, j in itertools.combinations(range(10), 2))
    assert q == pytest.approx(best, rel=1e-9)


def test_moment_matching_bad_input(data, desc):
    with pytest.raises(ValueError, match="give a budget: total_atoms, max_n3 or both"):
        moment_matching(data, None, desc)
    with pytest.raises(ValueError, match="starts must be 'all' or 'greedy', not 'best'"):
        moment_matching(data, 16, desc, starts="best")
    with pytest.raises(ValueError, match="the data set is empty"):
        moment_matching([], 16, desc)
    assert moment_matching(data, 4, desc) == []  # nothing fits four atoms


# ---------------------------------------------------------------- joint relaxation
@pytest.fixture(scope="module")
def potential(data, desc):
    return GRSPotential.from_target(data, descriptor=desc, weights=(1.0, 1.0), w_inter=1.0,
                                    w_intra=0.0)


def test_joint_forces_and_stress_are_derivatives_of_the_set_energy(data, desc, potential):
    members = [_cu(3.6, seed=20), _cu(3.5, (1, 2, 1), seed=21)]
    context = [desc.compute(data[0])]
    joint = _JointEvaluator(potential, members, context, 0.3, 1.0)

    def total():
        return sum(r["energy"] for r in joint.evaluate())

    res = joint.evaluate()
    h = 1e-5
    for m_i, atom, c in ((0, 3, 1), (1, 5, 2), (1, 0, 0)):
        m = members[m_i]
        m.positions[atom, c] += h
        up = total()
        m.positions[atom, c] -= 2 * h
        down = total()
        m.positions[atom, c] += h
        assert res[m_i]["forces"][atom, c] == pytest.approx(-(up - down) / (2 * h), abs=1e-6)
    m = members[1]  # stress: derivative with respect to a strain of member 1 alone
    cell, pos = m.cell.array.copy(), m.positions.copy()
    energies = []
    for e in (h, -h):
        strain = np.eye(3)
        strain[0, 1] = strain[1, 0] = e / 2
        m.set_cell(cell @ strain, scale_atoms=False)
        m.positions = pos @ strain
        energies.append(total())
    m.set_cell(cell)
    m.positions = pos
    assert res[1]["stress"][5] == pytest.approx(
        (energies[0] - energies[1]) / (2 * h) / m.get_volume(), abs=1e-6)


def test_joint_relax_lowers_the_joint_score_of_a_sequential_set(data, desc, potential):
    members = reduce_dataset(data, 3, 8, descriptor=desc, rng=0, relax_steps=8)
    before = potential.objective.ensemble_score([desc.compute(m) for m in members],
                                                grad=False)[0]
    moved = [m.copy() for m in members]
    out = joint_relax(moved, potential, steps=20)
    after = potential.objective.ensemble_score([desc.compute(m) for m in moved], grad=False)[0]
    assert out["joint_score"] == pytest.approx(after, rel=1e-9)
    assert after < before
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(out["history"]))
    assert not np.allclose(moved[0].positions, members[0].positions)
    assert all(m.calc is None for m in moved)


@pytest.mark.parametrize("build", ["joint", "alternating"])
def test_builds_together_keep_groups_compositions_and_report_scores(build, desc):
    data = [_cu(3.6, seed=k) for k in range(3)]
    for k in range(3):
        a = _cu(3.8, seed=10 + k)
        a.numbers[:2] = 79
        data.append(a)
    d2 = ACEDescriptor(["Cu", "Au"], nmax=(3, 2), lmax=(0, 1))
    members = reduce_dataset(data, 3, 8, descriptor=d2, rng=1, relax_steps=6, build=build,
                             passes=2)
    assert sorted(m.get_chemical_formula() for m in members) == ["Au2Cu6", "Cu8", "Cu8"]
    for m in members:
        assert m.info["grs_build"] == build
        assert np.isfinite(m.info["grs_score"]) and np.isfinite(m.info["grs_ensemble_score"])
    # the two pure-Cu members are one group and share its joint score
    cu = [m for m in members if m.get_chemical_formula() == "Cu8"]
    assert cu[0].info["grs_group"] == cu[1].info["grs_group"]
    assert cu[0].info["grs_ensemble_score"] == cu[1].info["grs_ensemble_score"]


def test_builds_bad_input(data, desc):
    with pytest.raises(ValueError, match="unknown build 'parallel'; use one of sequential, "
                                         "joint, alternating"):
        reduce_dataset(data, 2, 8, descriptor=desc, build="parallel")
    with pytest.raises(ValueError, match="passes must be a whole number >= 1, got 0"):
        reduce_dataset(data, 2, 8, descriptor=desc, build="alternating", passes=0)
    # one Cu group of two members; an earlier run's single member of it cannot be resumed
    half = data[0].copy()
    half.info["grs_group"] = 0
    with pytest.raises(ValueError, match="build='joint' makes each group at once: it cannot "
                                         "resume a group from 1 of its 2 members"):
        reduce_dataset(data, 2, 8, descriptor=desc, build="joint", existing=[half])
    with pytest.raises(ValueError, match="build='joint' does not take anneal_steps"):
        reduce_dataset(data, 2, 8, descriptor=desc, build="joint", anneal_steps=10)
    with pytest.raises(ValueError, match="joint_relax needs at least one structure"):
        joint_relax([], None)
