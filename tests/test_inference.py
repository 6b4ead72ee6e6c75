"""CrystalGenerator / CrystalModifier on the shipped models: conditions, outputs, bad input."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ase import Atoms  # noqa: E402

from ase_crystalgen.inference import (  # noqa: E402
    ConditionWarning,
    CrystalGenerator,
    CrystalModifier,
    available_models,
    parse_composition,
    parse_energy_grid,
)
from ase_crystalgen.inference.conditions import spacegroup_list, wyckoff_compatible  # noqa: E402
from ase_crystalgen.models.io import CheckpointError  # noqa: E402


@pytest.fixture(scope="module")
def perov():
    return CrystalGenerator.from_pretrained("perov5-flow")


# --------------------------------------------------------------------------- conditions
def test_compositions_in_every_form_agree():
    expected = {38: 1, 22: 1, 8: 3}
    from pymatgen.core import Composition

    atoms = Atoms("SrTiO3", cell=np.eye(3) * 4, pbc=True)
    for given in (
        "SrTiO3",
        "Sr1Ti1O3",
        {"Sr": 1, "Ti": 1, "O": 3},
        {38: 1, 22: 1, 8: 3},
        Composition("SrTiO3"),
        atoms,
        ["O", "Sr", "O", "Ti", "O"],
    ):
        assert parse_composition(given) == expected
    assert parse_composition("Sr(TiO3)2") == {38: 1, 22: 2, 8: 6}


@pytest.mark.parametrize(
    "given, message",
    [
        ("FeQq", "composition 'FeQq': unknown element 'Qq'"),
        ({"Fe": 1, "Xx": 2}, "unknown element 'Xx'"),
        (
            "Ta0.5W0.5B6",
            "composition 'Ta0.5W0.5B6' has non-integer amounts {'Ta': 0.5, 'W': 0.5}: give "
            "the atoms of one cell",
        ),
        ("", "composition '' has no atoms"),
        ({"Fe": 0}, "non-positive or non-finite amounts {'Fe': 0.0}"),
        ({"Fe": float("nan")}, "non-positive or non-finite amounts"),
    ],
)
def test_bad_compositions_are_named(given, message):
    with pytest.raises(
        ValueError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("{", r"\{")
        .replace("}", r"\}")
        .replace(".", r"\."),
    ):
        parse_composition(given)


def test_energy_grids_and_space_groups():
    assert parse_energy_grid("-0.1:-0.3:-0.1") == [-0.1, -0.2, -0.3]
    assert parse_energy_grid("0:0.25:0.1") == [0.0, 0.1, 0.2]
    assert parse_energy_grid("0.5, -1") == [0.5, -1.0]
    with pytest.raises(ValueError, match="the step goes away from STOP"):
        parse_energy_grid("0:1:-0.1")
    with pytest.raises(ValueError, match="needs a finite, non-zero step"):
        parse_energy_grid("0:1:0")
    with pytest.raises(ValueError, match="energy nan is not finite"):
        parse_energy_grid("nan")
    assert spacegroup_list("Pm-3m") == [221]
    assert spacegroup_list([221, "P4mm", 225]) == [221, 99, 225]
    with pytest.raises(ValueError, match="space group 231 is outside 1-230"):
        spacegroup_list(231)


def test_wyckoff_compatibility_follows_the_multiplicities():
    pytest.importorskip("pyxtal")
    assert wyckoff_compatible([1, 1, 3], 221)  # cubic perovskite: 1a 1b 3c
    assert not wyckoff_compatible([1, 1, 3], 225)  # Fm-3m has no 3-fold site, also not as 4,4,12
    assert wyckoff_compatible([1], 225) and wyckoff_compatible([4], 225)  # primitive or conventional fcc
    assert wyckoff_compatible([4, 4, 12], 62)  # GdFeO3-type perovskite: 4c, 4b, 4c + 8d
    assert not wyckoff_compatible([2, 2, 6], 62)  # Pnma has no site of fewer than 4


# --------------------------------------------------------------------------- generation
def test_shipped_models_are_listed_with_their_cards():
    models = available_models()
    assert "perov5-flow" in models
    m = models["perov5-flow"]
    assert m["task"] == "generation" and m["objective"] == "flow-uniform" and m["max_atoms"] == 12


def test_sample_grid_order_info_and_seed(perov):
    out = perov.sample("SrTiO3", spacegroup=[221, "P4mm"], formation_energy=[-0.1, 0.3], n=2, seed=3)
    assert len(out) == 8
    keys = [
        (a.info["spacegroup_condition"], a.info["formation_energy_condition"], a.info["sample"]) for a in out
    ]
    assert keys == [(sg, e, r) for sg in (221, 99) for e in (-0.1, 0.3) for r in (0, 1)]
    for a in out:
        assert a.get_chemical_formula() == "O3SrTi"
        assert a.pbc.all() and np.isfinite(a.positions).all()
        assert a.info["model"] == "perov5-flow" and a.info["seed"] == 3 and a.info["method"] == "flow"
        assert a.info["steps"] == 10 and a.info["composition"] == "Sr1Ti1O3"
    again = perov.sample("SrTiO3", spacegroup=[221, "P4mm"], formation_energy=[-0.1, 0.3], n=2, seed=3)
    assert all(
        np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
        for a, b in zip(out, again)
    )
    other = perov.sample("SrTiO3", spacegroup=[221, "P4mm"], formation_energy=[-0.1, 0.3], n=2, seed=4)
    assert not np.allclose(out[0].positions, other[0].positions)


def test_shipped_perovskite_model_makes_cubic_srtio3(perov):
    """Cubic SrTiO3 (Pm-3m, a = 3.9 A) must be among a few samples: the model, not the test, knows it."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    ideal = Atoms(
        "SrTiO3",
        scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        cell=np.eye(3) * 3.905,
        pbc=True,
    )
    out = perov.sample("SrTiO3", spacegroup=221, formation_energy=-0.1, n=4, seed=0)
    matcher = StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)
    target = AseAtomsAdaptor.get_structure(ideal)
    matched = [matcher.fit(AseAtomsAdaptor.get_structure(a), target) for a in out]
    assert sum(matched) >= 3, matched
    lengths = np.array([a.cell.cellpar()[:3] for a, m in zip(out, matched) if m])
    assert np.all(np.abs(lengths - 3.905) < 0.25)  # Perov-5's PBE cells are a few % larger


def test_bad_conditions_are_named(perov):
    with pytest.raises(
        ValueError, match="composition Sr3Ti3O9 has 15 atoms; perov5-flow supports at most 12"
    ):
        perov.sample("Sr3Ti3O9", spacegroup=221, formation_energy=0.0)
    with pytest.warns(ConditionWarning, match="perov5-flow never saw Pu in training"):
        perov.sample("PuTiO3", spacegroup=221, formation_energy=0.0)
    with pytest.raises(ValueError, match=r"never saw Pu in training .*\(strict=True\)"):
        perov.sample("PuTiO3", spacegroup=221, formation_energy=0.0, strict=True)
    with pytest.warns(
        ConditionWarning, match=r"never saw space group 194 in training \(it saw 25, 47, 99, 123, 221\)"
    ):
        perov.sample("SrTiO3", spacegroup=194, formation_energy=0.0)
    with pytest.warns(ConditionWarning, match="cannot fill the Wyckoff positions of space group 225"):
        perov.sample("SrTiO3", spacegroup=225, formation_energy=0.0)
    with pytest.warns(
        ConditionWarning, match=r"formation energy 9\.000 eV/atom is outside the training range"
    ):
        perov.sample("SrTiO3", spacegroup=221, formation_energy=9.0)
    with pytest.raises(ValueError, match="formation_energy nan is not finite"):
        perov.sample("SrTiO3", spacegroup=221, formation_energy=float("nan"))
    with pytest.raises(ValueError, match="space group 0 is outside 1-230"):
        perov.sample("SrTiO3", spacegroup=0, formation_energy=0.0)
    with pytest.raises(
        ValueError, match="trained with flow-uniform; its samplers are flow, heun, midpoint, not 'ddim'"
    ):
        perov.sample("SrTiO3", spacegroup=221, formation_energy=0.0, method="ddim")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a condition the model knows raises no warning
        perov.sample("SrTiO3", spacegroup=221, formation_energy=0.0)


def test_unknown_and_corrupt_models_are_named(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"no model 'perov6': not a path that exists and not a shipped model \(shipped: .*perov5-flow",
    ):
        CrystalGenerator.from_pretrained("perov6")
    copy = tmp_path / "copy"
    shutil.copytree(available_models()["perov5-flow"]["path"], copy)
    data = bytearray((copy / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the SHA-256 recorded in model.json"):
        CrystalGenerator.from_pretrained(copy)
    with pytest.raises(
        ValueError, match=r"perov5-flow is a generation model \(flow-uniform\); use CrystalGenerator"
    ):
        CrystalModifier.from_pretrained("perov5-flow")


def test_loaded_half_precision_weights_run_in_float32(perov):
    assert all(p.dtype == torch.float32 for p in perov.loaded.model.parameters())
    assert perov.loaded.meta["weights_dtype"] == "float16"


# --------------------------------------------------------------------------- diffusion and modification
def test_diffusion_models_offer_ddim_and_ddpm():
    gen = CrystalGenerator.from_pretrained("tiny-ddpm")
    assert gen.methods == ("ddim", "ddpm")
    ddim = gen.sample("Cu3Au", spacegroup=221, formation_energy=-0.05, n=2, steps=10, seed=0)
    ddpm = gen.sample("Cu3Au", spacegroup=221, formation_energy=-0.05, n=2, steps=10, seed=0, method="ddpm")
    assert [a.info["method"] for a in ddim + ddpm] == ["ddim"] * 2 + ["ddpm"] * 2
    assert all(a.info["steps"] == 10 for a in ddim + ddpm)
    # same seed, same starting noise, different update rules: different structures
    assert not np.allclose(ddim[0].cell[:], ddpm[0].cell[:])
    with pytest.raises(ValueError, match="its samplers are ddim, ddpm, not 'flow'"):
        gen.sample("Cu3Au", spacegroup=221, formation_energy=-0.05, method="flow")


@pytest.fixture(scope="module")
def modifier():
    return CrystalModifier.from_pretrained("tiny-modifier")


def _cu3au() -> Atoms:
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.symbols[0] = "Au"
    return atoms


def test_modify_keeps_the_atoms_and_starts_from_the_structure(modifier):
    start = _cu3au()
    out = modifier.modify(start, energy_change=-0.05)
    assert isinstance(out, Atoms)
    assert sorted(out.numbers) == sorted(start.numbers) and np.isfinite(out.positions).all()
    assert out.info["initial_spacegroup"] == 221 and out.info["spacegroup_condition"] == 221
    assert out.info["energy_change_condition"] == -0.05 and out.info["initial_formula"] == "AuCu3"
    # flow matching from the initial structure with sigma = 0 draws no noise: the seed cannot matter
    again = modifier.modify(start, energy_change=-0.05, seed=123)
    assert np.array_equal(out.positions, again.positions) and np.array_equal(out.cell, again.cell)
    many = modifier.modify([start, start.copy()], energy_change=[-0.05, -0.2], spacegroup="Pm-3m")
    assert isinstance(many, list) and len(many) == 2
    assert np.allclose(many[0].positions, out.positions, atol=1e-5)  # batching does not change results
    assert not np.allclose(many[1].cell[:], many[0].cell[:])  # the energy condition is used


def test_modify_bad_input_is_named(modifier):
    start = _cu3au()
    with pytest.warns(ConditionWarning, match=r"energy change \+0\.100 eV/atom is positive"):
        modifier.modify(start, energy_change=0.1)
    with pytest.raises(ValueError, match="2 energy changes for 1 structures"):
        modifier.modify([start], energy_change=[-0.1, -0.2])
    with pytest.raises(
        ValueError, match=r"structure 0 \(Au8Cu24\) has 32 atoms; tiny-modifier supports at most 8"
    ):
        modifier.modify(start.repeat(2), energy_change=-0.1)
    with pytest.raises(ValueError, match="energy_change nan is not finite"):
        modifier.modify(start, energy_change=float("nan"))
    with pytest.raises(
        ValueError, match=r"tiny-modifier is a modification model \(modification-flow\); use CrystalModifier"
    ):
        CrystalGenerator.from_pretrained("tiny-modifier")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sampling_on_cuda_agrees_with_cpu_for_the_same_start():
    """The model runs on CUDA and gives cells of the size the CPU gives (the random streams differ)."""
    gen_cpu = CrystalGenerator.from_pretrained("perov5-flow")
    gen_gpu = CrystalGenerator.from_pretrained("perov5-flow", device="cuda")
    assert next(gen_gpu.loaded.model.parameters()).is_cuda
    out = gen_gpu.sample("SrTiO3", spacegroup=221, formation_energy=0.0, n=4, seed=0)
    assert len(out) == 4 and all(np.isfinite(a.positions).all() for a in out)
    lengths = np.array([a.cell.cellpar()[:3] for a in out])
    ref = np.array(
        [a.cell.cellpar()[:3] for a in gen_cpu.sample("SrTiO3", spacegroup=221, formation_energy=0.0, n=4)]
    )
    assert np.allclose(lengths.mean(), ref.mean(), atol=0.1)  # different RNG streams, same distribution


def test_sample_batch_mixes_compositions_and_matches_single_calls(perov):
    conditions = [("SrTiO3", 221, 0.0), ("KNbO3", "P4mm", 1.9), ({"Ca": 1, "Ti": 1, "O": 3}, 221, 0.5)]
    out = perov.sample_batch(conditions, seed=5)
    assert [a.get_chemical_formula() for a in out] == ["O3SrTi", "KNbO3", "CaO3Ti"]
    assert [a.info["sample"] for a in out] == [0, 1, 2]
    assert [a.info["spacegroup_condition"] for a in out] == [221, 99, 221]
    # a batch of one draws the same noise as sample(n=1): identical structures
    one = perov.sample_batch(conditions[:1], seed=5)[0]
    single = perov.sample("SrTiO3", spacegroup=221, formation_energy=0.0, seed=5)[0]
    assert np.array_equal(one.positions, single.positions) and np.array_equal(one.cell, single.cell)
    with pytest.raises(ValueError, match="composition Sr3Ti3O9 has 15 atoms"):
        perov.sample_batch([("SrTiO3", 221, 0.0), ("Sr3Ti3O9", 221, 0.0)])
