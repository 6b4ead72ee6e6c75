"""Ensembles of representative structures and the PCA hull-volume ratio."""

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read, write

from ase_crystalgen import ACEDescriptor
from ase_crystalgen.cli import main
from ase_crystalgen.grs.analysis import pca_hull_volume_ratio
from ase_crystalgen.optimize import generate_representative_structures

SMALL = dict(nmax=(4, 2, 2, 1), lmax=(0, 2, 2, 1))


def test_hull_ratio_of_known_shapes(rng):
    # a filled square and its left half: PCA rotates and scales both alike
    T = rng.uniform(size=(4000, 2)) * [2.0, 1.0]
    T = np.vstack([T, [[0, 0], [2, 0], [0, 1], [2, 1]]])
    half = T[T[:, 0] <= 1.0]
    half = np.vstack([half, [[1, 0], [1, 1]]])
    r = pca_hull_volume_ratio(half, T)
    assert r["n_components"] == 2
    assert r["ratio"] == pytest.approx(0.5, abs=1e-12)
    assert pca_hull_volume_ratio(T, T)["ratio"] == pytest.approx(1.0)
    # 3 features with one exact linear dependence: 2 components hold all the variance
    T3 = np.column_stack([T, T[:, 0] + 2 * T[:, 1]])
    assert pca_hull_volume_ratio(T3[:50], T3)["n_components"] == 2


@pytest.fixture(scope="module")
def thermal_cu():
    t = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    t.rattle(0.15, seed=1)
    return t


def test_ensemble_members_and_joint_score(thermal_cu):
    d = ACEDescriptor(["Cu"], **SMALL)
    members = generate_representative_structures(thermal_cu, 3, 8, descriptor=d, rng=0,
                                                  relax_steps=60)
    assert [len(m) for m in members] == [8, 8, 8]
    assert [m.info["grs_index"] for m in members] == [0, 1, 2]
    from ase_crystalgen import GRSCalculator

    calc = GRSCalculator(thermal_cu, descriptor=d, core_repulsion=None)
    Bs = [d.compute(m) for m in members]
    for k, m in enumerate(members):
        assert m.info["grs_score"] == pytest.approx(calc.objective.score(Bs[k]))
        joint = calc.objective.ensemble_score(Bs[: k + 1], grad=False)[0]
        assert m.info["grs_ensemble_score"] == pytest.approx(joint)
        h = m.info["grs_history"]
        assert h[-1] < h[0]  # each member's relaxation lowered its effective energy
    # the relaxed set represents the target better than unrelaxed random packings
    raw = generate_representative_structures(thermal_cu, 3, 8, descriptor=d, rng=0,
                                             relax_steps=0)
    assert members[-1].info["grs_ensemble_score"] < raw[-1].info["grs_ensemble_score"]


def test_ensemble_bad_input(thermal_cu):
    d = ACEDescriptor(["Cu"], **SMALL)
    with pytest.raises(ValueError, match=r"the members would contain Au, absent from the target "
                                         r"\(Cu\): nothing to match"):
        generate_representative_structures(thermal_cu, 1, 8, descriptor=d,
                                           composition={"Cu": 0.5, "Au": 0.5})
    alloy = thermal_cu.copy()
    alloy[0].symbol = "Au"
    with pytest.raises(ValueError, match=r"the members would contain Au, which the descriptor does "
                                         r"not know \(\['Cu'\]\)"):
        generate_representative_structures(alloy, 1, 8, descriptor=d,
                                           composition={"Cu": 0.5, "Au": 0.5})
    with pytest.raises(ValueError, match="the target contains Au, which the members' composition "
                                         "lacks"):
        generate_representative_structures(alloy, 1, 8, composition={"Cu": 1.0})
    with pytest.raises(ValueError, match="n_structures must be >= 1"):
        generate_representative_structures(thermal_cu, 0, 8, descriptor=d)
    with pytest.raises(ValueError, match="needs a parent lattice"):
        generate_representative_structures(thermal_cu, 1, 8, descriptor=d, candidates="lattice")


def test_cli_grs_writes_and_resumes(tmp_path, thermal_cu, capsys):
    write(tmp_path / "target.extxyz", thermal_cu)
    out = tmp_path / "grs.extxyz"
    args = [str(tmp_path / "target.extxyz"), "--n-atoms", "8", "--relax-steps", "20",
            "--nmax", "4", "2", "2", "1", "--lmax", "0", "2", "2", "1", "--out", str(out),
            "--no-progress"]
    assert main(["grs", *args, "--n-structures", "1"]) == 0
    first = read(out, ":")
    assert len(first) == 1 and (tmp_path / "grs_scores.png").exists()
    assert main(["grs", *args, "--n-structures", "2"]) == 0
    assert "resuming: 1 of 2 structures" in capsys.readouterr().out
    both = read(out, ":")
    assert len(both) == 2
    assert np.allclose(both[0].positions, first[0].positions)  # the first was kept
    assert main(["grs", str(tmp_path / "missing.xyz")]) == 2


# ------------------------------------------------------------------ on a lattice (SQS, orderings)
def _fcc(a=3.75, repeat=2):
    return bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)


def test_top_level_call_finds_l12_on_a_given_cell():
    """The icet-like call: target, cell, composition; defaults find L1_2 and keep the sites."""
    from ase_crystalgen import generate_representative_structures as top

    assert top is generate_representative_structures
    t = _fcc()
    t.symbols[::4] = "Au"
    cell = _fcc()
    for seed in range(3):
        (m,) = top(t, cell=cell, composition={"Au": 8, "Cu": 24}, rng=seed)
        assert m.info["grs_score"] < 1e-8
        assert np.allclose(m.positions, cell.positions) and np.allclose(m.cell, cell.cell)
        assert m.get_chemical_formula() == "Au8Cu24"
        # the Au sit on one simple-cubic sublattice: no Au-Au nearest neighbours
        au = np.flatnonzero(m.numbers == 79)
        d = m.get_all_distances(mic=True)[np.ix_(au, au)] + 10 * np.eye(8)
        assert d.min() > 3.7


def test_top_level_call_accepts_a_descriptor_target_and_bounds(tmp_path):
    from ase_crystalgen import DescriptorTarget

    t = _fcc(repeat=1)
    t.symbols[::4] = "Au"
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    dt = DescriptorTarget.from_structures(t, d, orders=(1, 2))
    dt.save(tmp_path / "t.npz")
    cell = _fcc(repeat=1)
    (m,) = generate_representative_structures(
        DescriptorTarget.load(tmp_path / "t.npz"), cell=cell, descriptor=d,
        composition={"Au": (0, 4), "Cu": (0, 4)}, rng=1)
    assert m.get_chemical_formula() == "AuCu3" and m.info["grs_score"] < 1e-8
    with pytest.raises(ValueError, match="a DescriptorTarget holds no density"):
        generate_representative_structures(dt, 1, 4, descriptor=d, composition={"Cu": 3, "Au": 1})
    with pytest.raises(ValueError, match="needs the descriptor it was made with"):
        generate_representative_structures(dt, cell=cell)


def test_restarts_keep_the_lowest_energy_anneal():
    """The first of the two restarts (the default on a lattice) is the single anneal (same
    random stream), so the kept member's energy is never above it; the sites and the
    composition are kept."""
    rng = np.random.default_rng(3)
    t = _fcc(repeat=3)
    t.numbers[rng.permutation(len(t))[:27]] = 79  # a random Cu3Au-like target
    cell = _fcc()
    for seed in range(2):
        kw = dict(cell=cell, composition={"Au": 8, "Cu": 24}, rng=seed, anneal_steps=150,
                  w_intra=0.0)
        (one,) = generate_representative_structures(t, restarts=1, **kw)
        (two,) = generate_representative_structures(t, **kw)  # 2 on a lattice
        assert two.info["grs_score"] <= one.info["grs_score"] + 1e-12
        assert two.get_chemical_formula() == "Au8Cu24"
        assert np.allclose(two.positions, cell.positions)
    with pytest.raises(ValueError, match="restarts must be a whole number >= 1"):
        generate_representative_structures(t, cell=cell, restarts=0)


def test_top_level_call_bad_input():
    t = _fcc(repeat=1)
    t.symbols[::4] = "Au"
    with pytest.raises(ValueError, match=r"the cell's 4 sites cannot hold the composition"):
        generate_representative_structures(t, cell=_fcc(repeat=1), composition={"Au": 2, "Cu": 3})
    with pytest.raises(ValueError, match=r"cannot hold the composition bounds"):
        generate_representative_structures(t, cell=_fcc(repeat=1),
                                           composition={"Au": (0, 1), "Cu": (0, 2)})
    with pytest.raises(ValueError, match=r"the members would contain Ag, absent from the target"):
        generate_representative_structures(t, cell=_fcc(repeat=1),
                                           composition={"Au": 1, "Cu": 2, "Ag": 1})
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        generate_representative_structures(t, cell=_fcc(repeat=1), weights=(np.nan,))
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        generate_representative_structures(t, cell=_fcc(repeat=1), weights=(1.0, -1.0))
    with pytest.raises(ValueError, match="the target structure has no atoms"):
        generate_representative_structures(t[:0], cell=_fcc(repeat=1))
    with pytest.raises(ValueError, match="the cell has no sites"):
        generate_representative_structures(t, cell=t[:0], composition={"Au": 1, "Cu": 3})
    with pytest.raises(ValueError, match="n_atoms=8 but the cell has 4 sites"):
        generate_representative_structures(t, n_atoms=8, cell=_fcc(repeat=1))


def _heusler_l21():
    """L2_1 Cu2MnAl on a bcc cell doubled along each axis (16 sites): the four fcc
    sublattices hold Al, Mn, Cu, Cu."""
    a = 2.98
    t = bulk("Fe", "bcc", a=a, cubic=True).repeat(2)
    n = np.rint(2 * t.positions / a).astype(int)
    label = 2 * (n[:, 0] % 2) + ((n[:, 0] + n[:, 1] + n[:, 2]) // 2) % 2
    t.numbers = np.select([label == 0, label == 1], [13, 25], 29)
    return t


def _d019():
    """D0_19 Mg3Cd (Ni3Sn type) on a 2x2x2 hcp supercell (16 sites)."""
    t = bulk("Mg", "hcp", a=3.2, c=5.2).repeat((2, 2, 1))
    f = t.get_scaled_positions()
    on = np.all(np.isclose(f, [0, 0, 0], atol=1e-3), axis=1) | np.all(
        np.isclose(f, [2 / 3, 1 / 3, 0.5], atol=1e-3), axis=1)
    t.numbers[on] = 48
    return t.repeat((1, 1, 2))


@pytest.mark.parametrize("make", [_heusler_l21, _d019], ids=["L2_1 ternary bcc", "D0_19 hcp"])
def test_defaults_recover_orderings_from_random_starts(make):
    """Package defaults, nothing else: the ordered crystal is found from random
    permutations of its species (judged by pymatgen's StructureMatcher, not the score)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    target = make()
    matcher = StructureMatcher(primitive_cell=False, scale=False)
    ref = AseAtomsAdaptor.get_structure(target)
    for seed in range(2):
        start = target.copy()
        start.numbers = np.random.default_rng(seed).permutation(target.numbers)
        (m,) = generate_representative_structures(target, cell=start, rng=seed)
        assert m.info["grs_score"] < 1e-8
        assert matcher.fit(ref, AseAtomsAdaptor.get_structure(m))
