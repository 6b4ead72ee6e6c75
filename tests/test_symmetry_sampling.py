"""Snapping generated crystals to their requested space group (``inference.symmetry``)."""

import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_crystalgen.inference.symmetry import symmetrize
from ase_crystalgen.representation.spacegroups import get_spacegroup


def cubic_perovskite(a=3.9):
    return Atoms(
        "SrTiO3",
        scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        cell=np.eye(3) * a,
        pbc=True,
    )


def rutile(a=4.594, c=2.959, u=0.3048):
    return Atoms(
        "Ti2O4",
        scaled_positions=[
            [0, 0, 0],
            [0.5, 0.5, 0.5],
            [u, u, 0],
            [1 - u, 1 - u, 0],
            [0.5 + u, 0.5 - u, 0.5],
            [0.5 - u, 0.5 + u, 0.5],
        ],
        cell=[a, a, c],
        pbc=True,
    )


def periodic_difference(a, b):
    """Cartesian displacement of each atom from ``a`` to ``b`` (same cell), minimum image."""
    d = b.get_scaled_positions() - a.get_scaled_positions()
    d -= np.round(d)
    return d @ b.cell.array


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_perovskite_snaps_to_221_near_the_ideal_positions(seed):
    ideal = cubic_perovskite()
    rng = np.random.default_rng(seed)
    noise = 0.03
    noisy = ideal.copy()
    noisy.positions += rng.normal(0, noise, noisy.positions.shape)
    noisy.set_cell(noisy.cell.array + rng.normal(0, noise, (3, 3)), scale_atoms=False)
    assert get_spacegroup(noisy, 1e-3) != 221

    out = symmetrize(noisy, 221)

    assert out.info["symmetrized"] is True
    assert out.info["spacegroup_found"] == 221 and out.info["spacegroup_requested"] == 221
    assert get_spacegroup(out, 1e-5) == 221
    assert out.info["symprec_used"] > 0 and out.info["symmetrize_shift"] < 5 * noise
    # the same atoms in the same order, the cell cubic and as large as before within the noise
    assert (out.numbers == noisy.numbers).all()
    a, b, c, alpha, beta, gamma = out.cell.cellpar()
    assert np.allclose([a, b, c], a, atol=1e-8) and np.allclose([alpha, beta, gamma], 90, atol=1e-6)
    assert abs(a - 3.9) < 3 * noise
    # on the ideal sites: up to one rigid translation (the origin is free), within the noise
    d = periodic_difference(ideal, out)
    assert np.abs(d - d.mean(axis=0)).max() < 3 * noise
    # and each atom moved by no more than the noise (no jump to another periodic image)
    assert np.linalg.norm(periodic_difference(noisy, out), axis=1).max() < 5 * noise
    shifts = np.linalg.norm(periodic_difference(noisy, out), axis=1)
    assert np.isclose(out.info["symmetrize_shift"], shifts.max())
    # the input is not touched
    assert "symmetrized" not in noisy.info


def test_supercell_and_non_standard_cell_keep_their_atoms_and_setting():
    rng = np.random.default_rng(4)
    noisy = cubic_perovskite().repeat((2, 1, 1))
    noisy.positions += rng.normal(0, 0.02, noisy.positions.shape)
    out = symmetrize(noisy, "Pm-3m")
    assert out.info["symmetrized"] is True and len(out) == 10
    assert out.get_chemical_formula() == noisy.get_chemical_formula()
    assert (out.numbers == noisy.numbers).all()
    assert get_spacegroup(out, 1e-5) == 221
    # the doubled cell stays doubled: a is still twice b and c
    a, b, c = out.cell.lengths()
    assert np.isclose(a, 2 * b, atol=1e-8) and np.isclose(b, c, atol=1e-8)

    # a rotated primitive fcc cell stays primitive and keeps its orientation
    fcc = bulk("Cu", "fcc", a=3.6)
    fcc.rotate(30, "z", rotate_cell=True)
    fcc.positions[0] += [0.01, 0.0, -0.01]
    out = symmetrize(fcc, 225)
    assert out.info["symmetrized"] is True and len(out) == 1
    assert np.abs(out.cell.array - fcc.cell.array).max() < 0.05


@pytest.mark.parametrize(
    "atoms, spacegroup",
    [(cubic_perovskite(), 221), (rutile(), 136), (bulk("Cu", "fcc", a=3.6), 225)],
)
def test_a_structure_already_in_its_group_comes_back_unchanged(atoms, spacegroup):
    atoms = atoms.copy()
    atoms.rotate(17, "x", rotate_cell=True)
    atoms.translate([0.3, -0.2, 0.1])
    assert get_spacegroup(atoms, 1e-5) == spacegroup
    out = symmetrize(atoms, spacegroup)
    assert out.info["symmetrized"] is True and out.info["symprec_used"] == 1e-3
    assert np.abs(out.cell.array - atoms.cell.array).max() < 1e-10
    assert np.abs(periodic_difference(atoms, out)).max() < 1e-10
    assert out.info["symmetrize_shift"] < 1e-10


def test_an_unreachable_group_leaves_the_structure_unchanged():
    atoms = cubic_perovskite()
    atoms.positions += np.random.default_rng(5).normal(0, 0.02, atoms.positions.shape)
    # P4mm is a subgroup of Pm-3m, but spglib always reports the larger group here
    for requested in (99, 194):
        out = symmetrize(atoms, requested)
        assert out.info["symmetrized"] is False
        assert out.info["spacegroup_requested"] == requested
        assert out.info["spacegroup_found"] == 221
        assert math.isnan(out.info["symprec_used"]) and out.info["symmetrize_shift"] == 0.0
        assert np.array_equal(out.positions, atoms.positions)
        assert np.array_equal(out.cell.array, atoms.cell.array)
    # a ladder too tight for the noise cannot reach 221 either
    out = symmetrize(atoms, 221, symprec_ladder=(1e-5,))
    assert out.info["symmetrized"] is False and out.info["spacegroup_found"] == 1
    assert np.array_equal(out.positions, atoms.positions)


def test_info_survives_extxyz(tmp_path):
    import ase.io

    atoms = cubic_perovskite()
    snapped, kept = symmetrize(atoms, 221), symmetrize(atoms, 99)
    ase.io.write(tmp_path / "s.extxyz", [snapped, kept], format="extxyz")
    back = ase.io.read(tmp_path / "s.extxyz", index=":")
    assert back[0].info["symmetrized"] is True and back[1].info["symmetrized"] is False
    assert back[0].info["symprec_used"] == 1e-3 and math.isnan(back[1].info["symprec_used"])
    assert back[1].info["spacegroup_found"] == 221


@pytest.mark.parametrize(
    "spacegroup, message",
    [
        (0, "space group 0 is outside 1-230"),
        (231, "space group 231 is outside 1-230"),
        (2.5, "space group 2.5 is not an integer"),
        ("Xq9", "unknown space-group symbol 'Xq9'"),
    ],
)
def test_invalid_space_group_is_named(spacegroup, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        symmetrize(cubic_perovskite(), spacegroup)


def test_bad_structures_and_ladders_are_refused():
    with pytest.raises(ValueError, match=r"cannot symmetrise an empty structure \(no atoms\)"):
        symmetrize(Atoms(cell=np.eye(3) * 3, pbc=True), 1)
    with pytest.raises(ValueError, match="symmetrize needs a periodic structure with a full cell"):
        symmetrize(Atoms("Cu", cell=np.eye(3) * 3, pbc=[True, True, False]), 1)
    with pytest.raises(ValueError, match="symprec_ladder is empty"):
        symmetrize(cubic_perovskite(), 221, symprec_ladder=())
    with pytest.raises(ValueError, match="symprec_ladder must hold positive tolerances"):
        symmetrize(cubic_perovskite(), 221, symprec_ladder=(0.1, -0.1))


def test_evaluate_with_symmetrize_post_processes_the_same_samples(tmp_path, one_torch_thread):
    pytest.importorskip("torch")
    import ase.io
    from test_datasets import make_structures, write_cdvae_csv

    from ase_crystalgen.cli import main
    from ase_crystalgen.datasets import build_dataset
    from ase_crystalgen.inference.pretrained import resolve_model

    csv = write_cdvae_csv(tmp_path / "perov.csv", make_structures())
    data = tmp_path / "data"
    build_dataset(csv, data, progress=False, min_fraction=0.0, max_atoms=8, split=(0.0, 1.0, 0.0))
    model = str(resolve_model("tiny-ddpm"))
    common = [
        "evaluate",
        model,
        "--data",
        str(data),
        "--split",
        "val",
        "-k",
        "2",
        "--steps",
        "5",
        "--seed",
        "7",
        "--no-progress",
    ]
    assert main([*common, "--out", str(tmp_path / "raw")]) == 0
    assert main([*common, "--symmetrize", "--out", str(tmp_path / "sym")]) == 0
    raw_summary = json.loads((tmp_path / "raw" / "evaluation.json").read_text())
    summary = json.loads((tmp_path / "sym" / "evaluation.json").read_text())
    assert summary["run"]["symmetrize"] is True and raw_summary["run"]["symmetrize"] is False
    assert "symmetrize" not in raw_summary

    raw = ase.io.read(tmp_path / "raw" / "samples.extxyz", index=":")
    sym = ase.io.read(tmp_path / "sym" / "samples.extxyz", index=":")
    assert len(raw) == len(sym) == summary["symmetrize"]["n_samples"]
    assert sum(bool(s.info["symmetrized"]) for s in sym) == summary["symmetrize"]["n_symmetrized"]
    for r, s in zip(raw, sym):
        assert (r.info["target"], r.info["sample"]) == (s.info["target"], s.info["sample"])
        assert (r.numbers == s.numbers).all()
        if s.info["symmetrized"]:
            assert get_spacegroup(s, 1e-3) == s.info["spacegroup_requested"]
            shift = np.linalg.norm(periodic_difference(r, s), axis=1).max()
            assert shift <= s.info["symmetrize_shift"] + 1e-6
        else:
            # extxyz keeps about 8 significant digits
            assert np.allclose(s.positions, r.positions, atol=1e-6)
            assert np.allclose(s.cell.array, r.cell.array, atol=1e-6)


def test_evaluate_snaps_noisy_copies_of_the_targets_closer_to_them(tmp_path, monkeypatch):
    """A stand-in sampler returns each target with noisy coordinates: all are snapped, RMSE falls."""
    pytest.importorskip("torch")
    import torch
    from test_datasets import make_structures, write_cdvae_csv

    from ase_crystalgen.datasets import ProcessedDataset, build_dataset
    from ase_crystalgen.evaluation import evaluate as evaluate_module
    from ase_crystalgen.inference.pretrained import resolve_model

    csv = write_cdvae_csv(tmp_path / "perov.csv", make_structures())
    build_dataset(
        csv, tmp_path / "data", progress=False, min_fraction=0.0, max_atoms=8, split=(0.0, 1.0, 0.0)
    )
    data = ProcessedDataset.load(tmp_path / "data")
    last = {}
    conditions = evaluate_module._conditions

    def recording_conditions(ds, idx):
        last["idx"] = list(idx)
        return conditions(ds, idx)

    def noisy_targets(loaded, cond, x_init=None, sampler=None, steps=None, generator=None):
        x = torch.as_tensor(data.arrays["x"][last["idx"]], dtype=torch.float32).clone()
        n_sites = data.arrays["n_sites"][last["idx"]]
        for b, n in enumerate(n_sites):
            x[b, :n] += 0.004 * torch.randn((n, 3), generator=generator)
        return x

    monkeypatch.setattr(evaluate_module, "_conditions", recording_conditions)
    monkeypatch.setattr(evaluate_module, "sample_tensors", noisy_targets)
    model = resolve_model("tiny-ddpm")
    kw = dict(split="val", k=1, seed=3, progress=False, tolerances=("paper",))
    raw = evaluate_module.evaluate_model(model, data, **kw)
    snapped = evaluate_module.evaluate_model(model, data, symmetrize=True, **kw)
    assert snapped["symmetrize"]["n_symmetrized"] == snapped["symmetrize"]["n_samples"] == 12
    assert raw["metrics"]["paper"]["k=1"]["match_rate"] == 1.0
    assert snapped["metrics"]["paper"]["k=1"]["match_rate"] == 1.0
    assert snapped["metrics"]["paper"]["k=1"]["rmse"] < 0.7 * raw["metrics"]["paper"]["k=1"]["rmse"]


def test_symmetrize_refuses_modification_models(tmp_path):
    pytest.importorskip("torch")
    from ase_crystalgen.evaluation.evaluate import evaluate_model
    from ase_crystalgen.inference.pretrained import resolve_model

    message = "symmetrize applies to generation models; this one is a modification model"
    with pytest.raises(ValueError, match=message):
        evaluate_model(resolve_model("tiny-modifier"), tmp_path / "no-data", symmetrize=True, progress=False)


def test_docstring_example_runs():
    import doctest

    from ase_crystalgen.inference import symmetry

    result = doctest.testmod(symmetry, raise_on_error=False)
    assert result.attempted >= 4 and result.failed == 0
