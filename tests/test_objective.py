"""The GRS objective: moments, scores, gradients, ensembles, target I/O."""

import numpy as np
import pytest
from scipy import stats

from ase_crystalgen.grs import DescriptorTarget, GRSObjective, central_moments


def test_central_moments_match_scipy(rng):
    B = rng.normal(size=(50, 7)) ** 2
    m = central_moments(B, (1, 2, 3, 4))
    assert np.allclose(m[1], B.mean(0))
    for p in (2, 3, 4):
        assert np.allclose(m[p], stats.moment(B, moment=p, axis=0))


def test_score_is_zero_at_the_target_and_positive_elsewhere(rng):
    T = rng.normal(size=(40, 5))
    target = DescriptorTarget(T)
    obj = GRSObjective(target, weights={1: 1.0, 2: 0.5, 3: 0.2, 4: 0.1})
    assert obj.score(T) == 0.0
    assert obj.score(T[rng.permutation(40)]) == pytest.approx(0.0, abs=1e-12)
    assert obj.score(T + 0.01) > 0


def test_plain_absolute_value_score_by_hand(rng):
    T = rng.normal(size=(10, 3))
    C = rng.normal(size=(6, 3))
    target = DescriptorTarget(T, scale=np.array([1.0, 2.0, 4.0]))
    obj = GRSObjective(target, weights=(1.0, 0.5), smoothing=0.0)
    s = np.array([1.0, 2.0, 4.0])
    d1 = np.abs(C.mean(0) - T.mean(0)) / s
    d2 = np.abs(C.var(0) - T.var(0)) / s**2
    assert obj.score(C) == pytest.approx(d1.mean() + 0.5 * d2.mean(), rel=1e-14)


@pytest.mark.parametrize("weights", [(1.0, 1.0), {1: 1.0, 2: -0.3, 3: 0.2, 4: 0.05}, (-1.0,)])
def test_gradient_finite_difference(rng, weights):
    T = rng.normal(size=(30, 4))
    obj = GRSObjective(DescriptorTarget(T), weights=weights, smoothing=1e-2)
    B = rng.normal(size=(7, 4))
    Q, G = obj.score_and_gradient(B)
    h = 1e-6
    for i in range(7):
        for f in range(4):
            Bp, Bm = B.copy(), B.copy()
            Bp[i, f] += h
            Bm[i, f] -= h
            assert (obj.score(Bp) - obj.score(Bm)) / (2 * h) == pytest.approx(G[i, f], rel=1e-6, abs=1e-9)


def test_ensemble_score_pools_structures(rng):
    T = rng.normal(size=(12, 3))
    obj = GRSObjective(DescriptorTarget(T), weights=(1.0, 1.0))
    # two structures that together hold exactly the target's environments
    Q, grads = obj.ensemble_score([T[:5], T[5:]])
    assert Q == pytest.approx(0.0, abs=1e-12)
    assert obj.score(T[:5]) > 0
    # gradient of the joint term against finite differences
    parts = [rng.normal(size=(4, 3)), rng.normal(size=(5, 3))]
    Q, grads = obj.ensemble_score(parts)
    h = 1e-6
    p = [x.copy() for x in parts]
    p[1][2, 1] += h
    m = [x.copy() for x in parts]
    m[1][2, 1] -= h
    fd = (obj.ensemble_score(p, grad=False)[0] - obj.ensemble_score(m, grad=False)[0]) / (2 * h)
    assert fd == pytest.approx(grads[1][2, 1], rel=1e-6)


def test_intra_term_with_context_equals_ensemble_score(rng):
    T = rng.normal(size=(12, 3))
    others = [rng.normal(size=(4, 3)), rng.normal(size=(6, 3))]
    B = rng.normal(size=(5, 3))
    obj = GRSObjective(DescriptorTarget(T), w_inter=0.0, w_intra=1.0, context=others)
    joint = GRSObjective(DescriptorTarget(T))
    assert obj.score(B) == pytest.approx(joint.ensemble_score([B, *others], grad=False)[0])


def test_rms_scale_is_pooled_over_centre_blocks_and_floored():
    T = np.zeros((4, 6))
    T[:2, :3] = [[1, 0, 2], [3, 0, 2]]  # species-0 atoms
    T[2:, 3:] = [[1, 0, 4], [1, 0, 4]]  # species-1 atoms
    t = DescriptorTarget(T, block_size=3)
    T[:, 1] = 1e-17  # round-off "non-zero" values must not set the floor
    rms = np.sqrt(np.array([(1 + 9 + 1 + 1) / 4, 1e-34 * 4 / 4, (4 + 4 + 16 + 16) / 4]))
    expected = np.maximum(rms, 0.1 * np.median(rms[[0, 2]]))
    assert np.allclose(t.scale, np.tile(expected, 2))


def test_target_save_load_roundtrip_and_corrupt_file(tmp_path, rng):
    t = DescriptorTarget(rng.normal(size=(9, 4)), elements=["Cu"], block_size=4)
    t.save(tmp_path / "t.npz")
    u = DescriptorTarget.load(tmp_path / "t.npz")
    assert u.orders == t.orders and u.elements == ["Cu"] and u.block_size == 4
    for p in t.orders:
        assert np.array_equal(u.moments[p], t.moments[p])
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="bad.npz is not a valid DescriptorTarget file"):
        DescriptorTarget.load(tmp_path / "bad.npz")


def test_bad_input_errors(rng):
    with pytest.raises(ValueError, match="NaN"):
        DescriptorTarget(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="moment orders must be within 1..4"):
        DescriptorTarget(rng.normal(size=(3, 2)), orders=(1, 5))
    t = DescriptorTarget(rng.normal(size=(3, 2)), orders=(1, 2))
    with pytest.raises(ValueError, match=r"weights for moment orders \[3\]"):
        GRSObjective(t, weights=(1, 1, 1))
    obj = GRSObjective(t)
    with pytest.raises(ValueError, match="the target has 2 features"):
        obj.score(rng.normal(size=(3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        obj.score(np.array([[np.nan, 1.0]]))


def test_group_scale_pools_within_groups():
    T = np.array([[1.0, 3.0, 10.0, 0.0], [1.0, 1.0, 30.0, 0.0]])
    t = DescriptorTarget(T, scale="group", groups=np.array([1, 1, 2, 3]))
    g1 = np.sqrt((1 + 9 + 1 + 1) / 4)
    g2 = np.sqrt((100 + 900) / 2)
    floor = 0.1 * np.median([g1, g1, g2])
    assert np.allclose(t.scale, [g1, g1, g2, floor])
    with pytest.raises(ValueError, match="one group label per descriptor"):
        DescriptorTarget(T, scale="group")
