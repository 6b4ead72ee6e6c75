"""The data-set-reduction judge: linear ACE model, coverage, baselines, EMT data sets."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.singlepoint import SinglePointCalculator

from ase_crystalgen import ACEDescriptor
from ase_crystalgen.grs.analysis import pca_hull_volume_ratio
from ase_crystalgen.reduction import (
    LinearACECalculator,
    LinearACEModel,
    budget,
    coverage,
    d_optimal,
    farthest_point,
    hull_ratio,
    judge_selection,
    kmeans_snapshots,
    random_snapshots,
    reference_labels,
)
from ase_crystalgen.reduction.datasets import (
    emt_alloy_snapshots,
    emt_cu_snapshots,
    emt_cuau_snapshots,
)
from ase_crystalgen.reduction.linear import FORMAT_VERSION


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def small_desc():
    return ACEDescriptor(["Cu", "Au"], nmax=(3, 2), lmax=(0, 1))


@pytest.fixture(scope="module")
def truth(small_desc):
    """A known linear ACE model (e0, w) and structures labelled by it."""
    rng = np.random.default_rng(7)
    w = 0.1 * rng.normal(size=small_desc.n_features)
    e0 = np.array([-3.5, -2.25])

    def make(n):
        out = []
        for k in range(n):
            a = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 1, 1) if k % 2 else (1, 2, 1))
            a.set_chemical_symbols(np.where(rng.random(len(a)) < 0.4, "Au", "Cu").tolist())
            a.positions += rng.normal(scale=0.15, size=a.positions.shape)
            B, g = small_desc.compute_with_gradients(a)
            E = e0[small_desc.species_of(a)].sum() + B.sum(0) @ w
            F = -np.einsum("ifkc,f->kc", g.positions(), w)  # independent of the model's path
            a.calc = SinglePointCalculator(a, energy=E, forces=F)
            out.append(a)
        return out

    return {"w": w, "e0": e0, "train": make(16), "test": make(4)}


@pytest.fixture(scope="module")
def cu_data():
    return emt_cu_snapshots(rng=3, temperatures=(300, 1500), strains=(-0.02, 0.02),
                            repeats=(2,), n_snapshots=4, equilibration=10, interval=8)


@pytest.fixture(scope="module")
def cu_desc():
    return ACEDescriptor(["Cu"], nmax=(6, 2, 2), lmax=(0, 2, 2))


@pytest.fixture(scope="module")
def cu_model(cu_data, cu_desc):
    return LinearACEModel(cu_desc).fit(cu_data[::2])


def _cuau(seed=0, rattle=0.1):
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.8, cubic=True).repeat((2, 1, 1))
    a.set_chemical_symbols(["Cu", "Au", "Cu", "Cu", "Au", "Cu", "Au", "Cu"])
    a.positions += rng.normal(scale=rattle, size=a.positions.shape)
    return a


# ---------------------------------------------------------------- exact recovery
def test_exact_recovery_of_a_linear_ace_model(truth, small_desc):
    model = LinearACEModel(small_desc, alpha=0.0).fit(truth["train"])
    err = model.errors(truth["test"])
    assert err["energy_rmse"] < 1e-10
    assert err["force_rmse"] < 1e-8
    assert err["force_std"] > 0.05  # the forces are not trivially zero
    np.testing.assert_allclose(model.e0, truth["e0"], atol=1e-8)
    # sum over Cu atoms of the Cu-Au pair sums equals the sum over Au atoms of the Au-Cu
    # ones (same pairs, symmetric cutoff), so only w(Cu:Au n) + w(Au:Cu n) is identifiable;
    # every other weight is recovered on its own
    labels = small_desc.feature_labels()
    pairs = [(labels.index(f"Cu:r1[Au{n}l0]"), labels.index(f"Au:r1[Cu{n}l0]"))
             for n in (1, 2, 3)]
    tied = [k for p in pairs for k in p]
    free = np.setdiff1d(np.arange(small_desc.n_features), tied)
    np.testing.assert_allclose(model.weights[free], truth["w"][free], atol=1e-7)
    for a, b in pairs:
        assert model.weights[a] + model.weights[b] == pytest.approx(
            truth["w"][a] + truth["w"][b], abs=1e-7)
    assert model.fit_info["rank"] == model.fit_info["n_parameters"] - len(pairs)


def test_small_ridge_penalty_barely_moves_the_exact_answer(truth, small_desc):
    err = LinearACEModel(small_desc, alpha=1e-12).fit(truth["train"]).errors(truth["test"])
    assert err["energy_rmse"] < 1e-6 and err["force_rmse"] < 1e-5
    # a strong penalty does move it: the test above can fail
    err = LinearACEModel(small_desc, alpha=1.0).fit(truth["train"]).errors(truth["test"])
    assert err["force_rmse"] > 1e-3


def test_standardising_on_a_reference_set_is_a_reparametrisation(truth, small_desc, cu_data):
    ref = truth["test"] + truth["train"][:3]
    atoms = _cuau(seed=4)
    plain = LinearACEModel(small_desc, alpha=0.0).fit(truth["train"])
    on_ref = LinearACEModel(small_desc, alpha=0.0).fit(truth["train"], reference=ref)
    assert not np.allclose(on_ref.scale, plain.scale)
    assert on_ref.predict(atoms)[0] == pytest.approx(plain.predict(atoms)[0], abs=1e-8)
    # with a penalty the standardisation decides which weights are cheap
    plain = LinearACEModel(small_desc, alpha=1e-2).fit(truth["train"][:4])
    on_ref = LinearACEModel(small_desc, alpha=1e-2).fit(truth["train"][:4], reference=cu_data)
    assert abs(on_ref.predict(atoms)[0] - plain.predict(atoms)[0]) > 1e-4


def test_cross_validation_picks_the_smallest_penalty_for_exact_data(truth, small_desc):
    model = LinearACEModel(small_desc, alpha=[1.0, 1e-2, 1e-12], cv_folds=4).fit(truth["train"])
    assert model.alpha_ == 1e-12
    scores = model.fit_info["cv_scores"]
    assert scores[2] < 1e-12 < scores[1] < scores[0]
    plain = LinearACEModel(small_desc, alpha=1e-12).fit(truth["train"])
    np.testing.assert_allclose(model.weights, plain.weights, atol=1e-12)
    with pytest.raises(ValueError, match="needs at least 2 structures"):
        LinearACEModel(small_desc, alpha=[1e-3, 1.0]).fit(truth["train"][:1])


def test_energy_only_fit_recovers_energies(truth, small_desc):
    model = LinearACEModel(small_desc, alpha=0.0, force_weight=0.0)
    bare = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=True) for a in truth["train"]]
    for a, ref in zip(bare, truth["train"]):
        a.info["energy"] = ref.get_potential_energy()  # energies only, no forces anywhere
    model.fit(bare)
    # 16 energies cannot fix 53 parameters, but they are reproduced exactly
    assert model.errors(truth["train"], forces=False)["energy_rmse"] < 1e-10


def test_explicit_labels_equal_calculator_labels(truth, small_desc):
    explicit = []
    for a in truth["train"]:
        b = Atoms(a.numbers, a.positions, cell=a.cell, pbc=True)
        b.info["REF_energy"] = a.get_potential_energy()
        b.arrays["REF_forces"] = a.get_forces()
        explicit.append(b)
    m1 = LinearACEModel(small_desc, alpha=1e-6).fit(truth["train"])
    m2 = LinearACEModel(small_desc, alpha=1e-6, energy_key="REF_energy",
                        forces_key="REF_forces").fit(explicit)
    np.testing.assert_allclose(m2.weights, m1.weights, atol=1e-10)
    e, f = reference_labels(explicit[0], "REF_energy", "REF_forces")
    assert e == truth["train"][0].get_potential_energy()
    assert reference_labels(Atoms("Cu")) == (None, None)


# ---------------------------------------------------------------- physics of the model
def test_forces_and_stress_are_minus_derivatives_of_the_energy(truth, small_desc):
    model = LinearACEModel(small_desc).fit(truth["train"])
    atoms = _cuau(seed=1)
    atoms.calc = model.as_calculator()
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, 1e-5),
                               atol=1e-8)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, 1e-6),
                               atol=1e-8)
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy())


def test_predictions_are_invariant(cu_model):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=5)
    e, f = cu_model.predict(atoms)
    moved = atoms.copy()
    moved.translate([0.3, -1.1, 2.0])
    moved.wrap()
    e2, f2 = cu_model.predict(moved)
    assert e2 == pytest.approx(e, abs=1e-10)
    np.testing.assert_allclose(f2, f, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(atoms))
    e3, f3 = cu_model.predict(atoms[perm])
    assert e3 == pytest.approx(e, abs=1e-10)
    np.testing.assert_allclose(f3, f[perm], atol=1e-10)
    rot = atoms.copy()
    rot.rotate(37, "x", rotate_cell=True)
    rot.rotate(-71, "z", rotate_cell=True)
    e4, f4 = cu_model.predict(rot)
    R = np.linalg.solve(atoms.cell.array, rot.cell.array).T  # rotation taking atoms to rot
    assert e4 == pytest.approx(e, abs=1e-9)
    np.testing.assert_allclose(f4, f @ R.T, atol=1e-9)


def test_emt_cu_fit_learns_the_forces(cu_data, cu_model):
    held_out = cu_data[1::2]
    err = cu_model.errors(held_out)
    # the linear model must explain most of the force variance of unseen snapshots
    assert err["force_rmse"] < 0.15 * err["force_std"]
    assert err["energy_rmse"] < 0.01  # eV/atom
    # and a model that never saw forces does much worse on them
    energy_only = LinearACEModel(cu_model.descriptor, force_weight=0.0).fit(cu_data[::2])
    assert energy_only.errors(held_out)["force_rmse"] > 2 * err["force_rmse"]


def test_calculator_runs_ase_dynamics(cu_model):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=2)
    atoms.calc = LinearACECalculator(cu_model)
    md = VelocityVerlet(atoms, 2 * units.fs)
    e_start = atoms.get_total_energy()
    md.run(20)
    assert atoms.get_total_energy() == pytest.approx(e_start, abs=2e-3 * len(atoms))
    assert atoms.get_potential_energy() == pytest.approx(cu_model.predict(atoms)[0])


# ---------------------------------------------------------------- persistence
def test_save_load_round_trip(tmp_path, truth, small_desc):
    model = LinearACEModel(small_desc, alpha=1e-6, force_weight=0.5).fit(truth["train"])
    path = model.save(tmp_path / "model.npz")
    back = LinearACEModel.load(path)
    assert back.alpha == 1e-6 and back.force_weight == 0.5
    atoms = _cuau(seed=3)
    e, f = model.predict(atoms)
    e2, f2 = back.predict(atoms)
    assert e2 == e
    np.testing.assert_array_equal(f2, f)


def test_corrupt_or_foreign_model_files_are_refused(tmp_path, truth, small_desc):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="is not a readable LinearACEModel file"):
        LinearACEModel.load(bad)
    good = LinearACEModel(small_desc).fit(truth["train"]).save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="is not a readable LinearACEModel file"):
        LinearACEModel.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a LinearACEModel file: missing meta, e0"):
        LinearACEModel.load(other)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.array(str(arrays["meta"]).replace(
        f'"format_version": {FORMAT_VERSION}', '"format_version": 99'))
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(ValueError, match="format version 99; this version of ase_crystalgen "
                                         f"reads version {FORMAT_VERSION}"):
        LinearACEModel.load(future)


# ---------------------------------------------------------------- bad input
def test_bad_training_input_is_named(truth, small_desc):
    model = LinearACEModel(small_desc)
    with pytest.raises(ValueError, match="^no structures to fit$"):
        model.fit([])
    unlabelled = truth["train"][:1] + [_cuau()]
    with pytest.raises(ValueError, match=r"structure 1 has no reference energy"):
        model.fit(unlabelled)
    no_forces = _cuau()
    no_forces.info["energy"] = -20.0
    with pytest.raises(ValueError, match=r"structure 0 has no reference forces .*"
                                         "use force_weight=0 to fit energies only"):
        model.fit([no_forces])
    silver = bulk("Ag", "fcc", a=4.1, cubic=True)
    silver.calc = SinglePointCalculator(silver, energy=-1.0, forces=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"structure 1 contains element\(s\) Ag that the "
                                         r"descriptor lacks \(it knows \['Cu', 'Au'\]\)"):
        model.fit([truth["train"][0], silver])
    nan_e = _cuau()
    nan_e.calc = SinglePointCalculator(nan_e, energy=np.nan, forces=np.zeros((8, 3)))
    with pytest.raises(ValueError, match=r"structure 0 has a non-finite reference energy"):
        model.fit([nan_e])
    nan_f = _cuau()
    forces = np.zeros((8, 3))
    forces[3, 1] = np.nan
    nan_f.calc = SinglePointCalculator(nan_f, energy=-10.0, forces=forces)
    with pytest.raises(ValueError, match=r"structure 0 has non-finite reference forces"):
        model.fit([nan_f])
    with pytest.raises(RuntimeError, match="the model is not fitted"):
        model.predict(_cuau())
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        LinearACEModel(small_desc, alpha=-1)


def test_species_unseen_in_training_cannot_be_predicted(cu_data):
    desc = ACEDescriptor(["Cu", "Au"], nmax=(3, 2), lmax=(0, 1))
    model = LinearACEModel(desc).fit(cu_data[:4])
    with pytest.raises(ValueError, match="the model was fitted without Au"):
        model.predict(_cuau())


# ---------------------------------------------------------------- coverage and hull
def test_coverage_is_zero_on_the_data_and_grows_when_a_region_is_left_out(cu_data, cu_desc):
    full = coverage(cu_data, cu_data, cu_desc)
    assert full["max_distance"] == 0.0 and full["mean_distance"] == 0.0
    assert full["n_data_environments"] == sum(len(a) for a in cu_data)
    cold = [a for a in cu_data if a.info["temperature"] == 300]
    hot = [a for a in cu_data if a.info["temperature"] == 1500]
    part = coverage(cold, cu_data, cu_desc)
    assert part["max_distance"] > 1.0
    k, i = part["worst"]
    assert cu_data[k].info["temperature"] == 1500  # the environment left out is a hot one
    # a superset never covers worse
    more = coverage(cold + hot[:2], cu_data, cu_desc)
    assert more["max_distance"] <= part["max_distance"]
    assert more["mean_distance"] < part["mean_distance"]


def test_coverage_on_arrays_matches_a_brute_force_distance():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(50, 4)) * [1, 2, 3, 0]  # one constant feature keeps unit scale
    S = D[:10] + 0.01
    std = D.std(0)
    std[3] = 1.0
    dist = np.linalg.norm((D[:, None] - S[None]) / std, axis=2).min(1)
    out = coverage(S, D)
    assert out["max_distance"] == pytest.approx(dist.max())
    assert out["mean_distance"] == pytest.approx(dist.mean())
    assert out["worst"] == (0, int(dist.argmax()))


def test_hull_ratio_is_the_papers_eq18(cu_data, cu_desc):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert hull_ratio(cu_data, cu_data, cu_desc, max_components=3)["ratio"] == 1.0
        r = hull_ratio(cu_data[:3], cu_data, cu_desc, max_components=3)
        ref = pca_hull_volume_ratio(cu_data[:3], cu_data, cu_desc, max_components=3)
    assert 0 < r["ratio"] < 1 and r["ratio"] == ref["ratio"]


def test_judge_selection_reports_errors_coverage_and_budget(cu_data, cu_desc):
    out = judge_selection(cu_data[:6], cu_data[8:], cu_desc, data=cu_data)
    assert out["budget"] == {"n_structures": 6, "atoms": 192, "n3": 6 * 32.0**3}
    assert out["test"]["n_structures"] == len(cu_data) - 8
    assert out["train"]["force_rmse"] <= out["test"]["force_rmse"]
    assert out["coverage"]["max_distance"] > 0 and 0 < out["hull"]["ratio"] <= 1 + 1e-9
    assert out["fit"]["alpha"] in out["fit"]["cv_alphas"]
    one = judge_selection(cu_data[:1], cu_data[8:], cu_desc, alpha=(1e-8, 1e-3))
    assert one["fit"]["alpha"] == 1e-3 and "coverage" not in one


# ---------------------------------------------------------------- baselines
def _sized_set():
    """Structures of 1, 2, 4 and 8 conventional cells (4 to 32 atoms)."""
    out = []
    for k, rep in enumerate([(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2)] * 3):
        a = bulk("Cu", "fcc", a=3.6 + 0.02 * k, cubic=True).repeat(rep)
        a.rattle(0.02 * k, seed=k)
        out.append(a)
    return out


@pytest.mark.parametrize("strategy", ["random", "farthest", "kmeans", "d_optimal"])
def test_baselines_respect_the_budget(strategy, cu_desc):
    data = _sized_set()
    rng = np.random.default_rng(0)

    def pick(total, max_n3=None):
        if strategy == "random":
            return random_snapshots(data, total, rng, max_n3=max_n3)
        f = {"farthest": farthest_point, "kmeans": kmeans_snapshots,
             "d_optimal": d_optimal}[strategy]
        return f(data, total, cu_desc, rng, max_n3=max_n3)

    for total in (4, 30, 50, 100):
        chosen = pick(total)
        assert 0 < budget(chosen)["atoms"] <= total
        ids = [id(a) for a in chosen]
        assert len(set(ids)) == len(ids) and set(ids) <= {id(a) for a in data}
    chosen = pick(None, max_n3=3 * 8**3)
    assert 0 < budget(chosen)["n3"] <= 3 * 8**3
    assert all(len(a) <= 8 for a in chosen)
    with pytest.raises(ValueError, match="give a budget: total_atoms, max_n3 or both"):
        pick(None)


def test_random_snapshots_fill_the_budget_and_are_reproducible():
    data = _sized_set()
    a = random_snapshots(data, 60, np.random.default_rng(4))
    b = random_snapshots(data, 60, np.random.default_rng(4))
    assert [id(x) for x in a] == [id(x) for x in b]
    # every structure left out would break the budget
    left = 60 - budget(a)["atoms"]
    assert all(len(x) > left for x in data if all(x is not y for y in a))


def test_farthest_point_adds_the_structure_farthest_from_the_picks():
    data = [bulk("Cu", "fcc", a=3.6, cubic=True) for _ in range(10)]
    x = np.array([0.0, 0.5, 1.0, 3.0, 3.2, 4.0, 7.0, 7.7, 9.0, 10.0])
    for seed in range(6):
        chosen = farthest_point(data, 16, x[:, None], np.random.default_rng(seed))
        order = [next(k for k, d in enumerate(data) if d is c) for c in chosen]
        assert len(order) == 4
        for n in range(1, 4):  # each pick maximises the distance to its nearest earlier pick
            gap = np.abs(x[:, None] - x[order[:n]][None]).min(1)
            assert gap[order[n]] == gap.max()
        assert order[1] in (0, 9)  # on a line the farthest point is an end


def test_kmeans_snapshots_pick_one_per_cluster():
    data = [bulk("Cu", "fcc", a=3.6, cubic=True) for _ in range(12)]
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(size=(6, 2)) * 0.1, rng.normal(size=(6, 2)) * 0.1 + 10]
    chosen = kmeans_snapshots(data, 8, X, np.random.default_rng(0))
    picked = [next(k for k, d in enumerate(data) if d is c) for c in chosen]
    assert len(picked) == 2 and sorted(k // 6 for k in picked) == [0, 1]


def _logdet_gain(R, M):
    """log det(M + R^T R) - log det M, directly."""
    return np.linalg.slogdet(M + R.T @ R)[1] - np.linalg.slogdet(M)[1]


def test_d_optimal_is_the_exact_greedy_log_det_design(cu_desc):
    data = _sized_set()
    total, alpha = 60, 1e-3
    picked, info = d_optimal(data, total, cu_desc, alpha=alpha, return_info=True)
    rows = LinearACEModel(cu_desc).design_matrices(data, reference=data)
    R = [np.vstack([xe[None], xf]) for xe, xf in rows]
    P = R[0].shape[1]
    # brute force: every step the largest gain per atom among the structures that fit
    M, left, order = alpha * np.eye(P), total, []
    while True:
        cand = [k for k in range(len(data)) if k not in order and len(data[k]) <= left]
        if not cand:
            break
        gains = {k: _logdet_gain(R[k], M) for k in cand}
        k = max(cand, key=lambda j: gains[j] / len(data[j]))
        assert info["gains"][len(order)] == pytest.approx(gains[k], rel=1e-8)
        order.append(k)
        M, left = M + R[k].T @ R[k], left - len(data[k])
    assert info["indices"] == order
    assert [id(a) for a in picked] == [id(data[k]) for k in order]
    # the gains add up to the log-determinant of the final information (relative to alpha I)
    assert info["log_det"] == pytest.approx(
        np.linalg.slogdet(M)[1] - P * np.log(alpha), rel=1e-9)
    # the order of the data set does not matter
    perm = np.random.default_rng(3).permutation(len(data))
    again = d_optimal([data[k] for k in perm], total, cu_desc, alpha=alpha)
    assert {id(a) for a in again} == {id(a) for a in picked}


def test_d_optimal_prefers_forces_and_skips_copies(cu_desc):
    # a perfect crystal has no force rows worth having (its forces vanish by symmetry for
    # any weights); a copy of a picked snapshot adds little; an independent snapshot adds much
    perfect = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    hot = [perfect.copy() for _ in range(2)]
    for k, a in enumerate(hot):
        a.rattle(0.08, seed=10 + k)
    copy = hot[0].copy()
    data = [perfect, hot[0], copy, hot[1]]
    _, f = LinearACEModel(cu_desc).design_matrices([perfect], reference=data)[0]
    assert np.abs(f).max() < 1e-10
    _, info = d_optimal(data, 16, cu_desc, return_info=True)
    assert sorted(info["indices"]) == [1, 3]
    _, info = d_optimal(data, 24, cu_desc, return_info=True)
    assert sorted(info["indices"][:2]) == [1, 3]
    # the third pick (copy or perfect crystal) adds little: a copy at most log 2 per parameter
    assert info["gains"][2] < 0.5 * min(info["gains"][:2])
    assert info["gains"][2] <= cu_desc.n_features * np.log(2) + 1e-9
    # with the N^3 cost alone the same holds
    chosen = d_optimal(data, None, cu_desc, max_n3=2 * 8**3)
    assert sorted(id(a) for a in chosen) == sorted([id(hot[0]), id(hot[1])])


def test_d_optimal_takes_every_composition_first(small_desc):
    # two rattled alloys of one composition carry more force information than a barely
    # rattled pure crystal; without it a fit cannot place the pure crystal's energy
    data = [_cuau(1, 0.12), _cuau(2, 0.12)]
    pure = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    pure.rattle(0.005, seed=3)
    data.append(pure)
    _, info = d_optimal(data, 16, small_desc, cover_compositions=False, return_info=True)
    assert sorted(info["indices"]) == [0, 1]
    _, info = d_optimal(data, 16, small_desc, return_info=True)
    assert info["indices"][1] == 2 and info["indices"][0] in (0, 1)
    # once every composition is in, the greedy choice resumes: the other alloy is next
    _, info = d_optimal(data, 24, small_desc, return_info=True)
    assert sorted(info["indices"]) == [0, 1, 2]


def test_d_optimal_first_pick_from_rng_and_bad_input(cu_desc):
    data = _sized_set()
    firsts = {id(d_optimal(data, 60, cu_desc, np.random.default_rng(s))[0]) for s in range(8)}
    assert len(firsts) > 1
    for s in range(3):
        a = d_optimal(data, 60, cu_desc, np.random.default_rng(s))
        b = d_optimal(data, 60, cu_desc, np.random.default_rng(s))
        assert [id(x) for x in a] == [id(x) for x in b]
    assert d_optimal(data, 3, cu_desc) == []  # the smallest structure has 4 atoms
    bad = data[:3] + [Atoms("Ni4", positions=np.eye(4, 3) * 2.5, cell=[5, 5, 5], pbc=True)]
    with pytest.raises(ValueError, match=r"data-set entry 3: element\(s\) Ni not in"):
        d_optimal(bad, 60, cu_desc)
    with pytest.raises(ValueError, match="alpha must be positive, not 0"):
        d_optimal(data, 60, cu_desc, alpha=0.0)
    with pytest.raises(ValueError, match="both zero: no rows to design"):
        d_optimal(data, 60, cu_desc, energy_weight=0.0, force_weight=0.0)
    nan = data[0].copy()
    nan.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="data-set entry 0 has non-finite positions"):
        d_optimal([nan] + data[1:], 60, cu_desc)


# ---------------------------------------------------------------- data sets
def test_emt_alloy_snapshots_for_another_pair_and_bad_pairs():
    kw = dict(temperatures=(600,), repeat=1, n_snapshots=1, equilibration=2, interval=2,
              compositions=(0.0, 0.5, 1.0))
    a = emt_alloy_snapshots(("Ni", "Pd"), 2, **kw)
    assert [x.info["fraction"] for x in a] == [0.0, 0.5, 0.5, 1.0]
    assert [x.get_chemical_formula() for x in a] == ["Ni4", "Ni2Pd2", "Ni2Pd2", "Pd4"]
    # Vegard's law between the experimental lattice constants (thermal motion aside)
    assert a[0].cell[0, 0] == pytest.approx(3.52) and a[3].cell[0, 0] == pytest.approx(3.89)
    ref = a[1].copy()
    ref.calc = EMT()
    assert a[1].get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
    # Cu-Au is this recipe for Cu and Au, frame for frame
    b = emt_alloy_snapshots(("Cu", "Au"), 5, **kw)
    c = emt_cuau_snapshots(5, **kw)
    for x, y in zip(b, c):
        np.testing.assert_array_equal(x.positions, y.positions)
        assert x.info["fraction"] == y.info["x_au"]
    with pytest.raises(ValueError, match="Fe is not an fcc metal of ASE's EMT"):
        emt_alloy_snapshots(("Cu", "Fe"), 0, **kw)
    with pytest.raises(ValueError, match="give two different elements"):
        emt_alloy_snapshots(("Cu", "Cu"), 0, **kw)


def test_emt_data_sets_are_labelled_deterministic_and_as_described():
    kw = dict(temperatures=(600,), repeat=1, n_snapshots=1, equilibration=2, interval=2,
              compositions=(0.0, 0.5, 1.0))
    a = emt_cuau_snapshots(rng=1, **kw)
    b = emt_cuau_snapshots(rng=1, **kw)
    assert len(a) == 1 + 2 + 1  # the pure ends have one arrangement
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.positions, y.positions)
        assert x.get_chemical_symbols() == y.get_chemical_symbols()
    assert [x.info["x_au"] for x in a] == [0.0, 0.5, 0.5, 1.0]
    assert [x.info["arrangement"] for x in a] == [0, 0, 1, 0]
    assert [x.get_chemical_symbols().count("Au") for x in a] == [0, 2, 2, 4]
    frame = a[1]
    ref = frame.copy()
    ref.calc = EMT()
    assert frame.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(frame.get_forces(), ref.get_forces(), atol=1e-10)
    cu = emt_cu_snapshots(rng=0, temperatures=(300,), strains=(0.01,), repeats=(1,),
                          n_snapshots=2, equilibration=1, interval=1)
    assert len(cu) == 2 and cu[0].info == {"temperature": 300.0, "strain": 0.01}
    assert cu[0].cell.lengths() == pytest.approx([3.6 * 1.01] * 3)
    with pytest.raises(ValueError, match="Au fraction 1.5 is outside"):
        emt_cuau_snapshots(compositions=(1.5,))


# ---------------------------------------------------------------- the example
def test_reduction_example_judges_every_selection_at_the_grs_budget():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "reduction_judge.py"
    spec = importlib.util.spec_from_file_location("example_reduction_judge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.main(quick=True)
    rows = {r["name"]: r for r in res["rows"]}
    assert {"GRS", "random", "farthest", "kmeans", "all"} <= set(rows)
    for name in ("random", "farthest", "kmeans"):
        assert rows[name]["atoms"] <= rows["GRS"]["atoms"]
    full = rows["all"]
    assert full["max_distance"] == 0.0 and full["hull_ratio"] == pytest.approx(1.0)
    assert full["force_rmse"] < 0.5 * res["force_std"]
    assert all(np.isfinite(r["force_rmse"]) for r in rows.values())
