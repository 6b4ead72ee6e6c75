"""The paper-result examples (GRS paper sections IV.2-IV.4) on their quick settings.

Each example's ``main(quick=True)`` runs in seconds; these tests check the physics of what
it returns, not its timing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- IV.2 liquid
@pytest.fixture(scope="module")
def liquid(tmp_path_factory):
    out = tmp_path_factory.mktemp("liquid")
    return _load("grs_liquid").main(quick=True, out_dir=out)


def test_liquid_snapshot_has_lost_the_fcc_order(liquid):
    checks, n = liquid["liquid"], liquid["n_target"]
    assert checks["fcc_order_initial"] == pytest.approx(1.0)
    assert checks["coordination_12_initial"] == pytest.approx(1.0)
    # |rho(G)|^2 / N is the structure factor at the fcc reciprocal vectors: of order N in
    # the crystal, of order 1 (a few near the first liquid peak) in a liquid
    assert n * checks["fcc_order"] < 10
    # most atoms no longer have the 12 neighbours of the fcc first shell
    assert checks["coordination_12"] < 0.5
    assert checks["msd"] > 0.2  # Angstrom^2, atoms move beyond small vibrations
    assert 2000 < checks["temperature"] < 3200


def test_liquid_grs_beats_unrelaxed_random_packings_at_every_size(liquid):
    for grs, rnd in zip(liquid["grs"], liquid["random"]):
        assert grs["D1"] < 0.1 * rnd["D1"]
        assert grs["D2"] < 0.1 * rnd["D2"]


def test_liquid_grs_beats_a_small_md_cell_of_the_same_size(liquid):
    # the GRS is fitted to the mean and variance of the snapshot; a small EMT liquid is not
    for grs, md in zip(liquid["grs"], liquid["md"]):
        assert grs["D1"] < md["D1"]
        assert grs["D2"] < md["D2"]


def test_liquid_keeps_density_and_reports_cost_ratio(liquid):
    # the quick run melts a 4x4x4 conventional fcc cell (4 atoms each) at 15 A^3/atom: the
    # target has 256 atoms, and the GRS cells it reports are the 8- and 16-atom cells asked for
    n_target = 4 * 4**3
    assert liquid["n_target"] == n_target
    cells = liquid["grs_structures"]
    assert [len(a) for a in cells] == [8, 16]
    for atoms, v, c in zip(cells, liquid["grs_volume_per_atom"], liquid["dft_cost_ratio"]):
        # measured on the returned cell, not taken from the example's bookkeeping
        assert atoms.get_volume() / len(atoms) == pytest.approx(v)
        assert v == pytest.approx(15.0, rel=0.1)
        # cubic DFT cost of the cell that came back, relative to the 256-atom snapshot
        assert c == pytest.approx((len(atoms) / 256) ** 3)
    assert Path(liquid["figure"]).stat().st_size > 0


# --------------------------------------------------------------------------- IV.3 data set
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    return _load("grs_dataset_reduction").main(quick=True, out_dir=out)


def test_dataset_hull_ratio_is_a_fraction_and_grows_with_the_set(dataset):
    for n in dataset["sizes"]:
        ratios = np.array(dataset["ratio"][n])
        assert np.all(ratios >= 0) and np.all(ratios <= 1.5)
        assert np.all(np.array(dataset["outside"][n]) >= -1e-9)
    largest = dataset["ratio"][max(dataset["sizes"])]
    # a set's hull contains the hull of its first members: the ratio cannot fall with k
    assert np.all(np.diff(largest) >= -1e-12)
    assert largest[-1] > 0
    assert dataset["n_components"] == 3
    assert Path(dataset["figure"]).stat().st_size > 0


def test_dataset_members_carry_their_scores(dataset):
    for n in dataset["sizes"]:
        members = dataset["members"][n]
        assert len(members) == max(dataset["ks"])
        assert all(len(m) == n for m in members)
        assert all(np.isfinite(m.info["grs_ensemble_score"]) for m in members)


# --------------------------------------------------------------------------- IV.4 reverse
@pytest.fixture(scope="module")
def reverse(tmp_path_factory):
    out = tmp_path_factory.mktemp("reverse")
    return _load("grs_reverse").main(quick=True, out_dir=out)


def test_reverse_grs_moves_away_from_the_target(reverse):
    before, after = np.array(reverse["score_before"]), np.array(reverse["score_after"])
    # the ordinary (positive-weight) score is the dissimilarity: it must rise
    assert np.all(after > before)
    assert after.mean() > 2 * before.mean()
    assert np.mean(reverse["full_after"]) > np.mean(reverse["full_before"])
    assert np.mean(reverse["pca_after"]) > np.mean(reverse["pca_before"])


def test_reverse_grs_keeps_atoms_apart_and_composition(reverse):
    # the core repulsion keeps every pair near or beyond its onset (0.8 x the sum of
    # covalent radii: 1.78 A for Si-Si, 2.1-2.2 A for the metals)
    assert min(reverse["min_distance"]) > 1.6
    for atoms in reverse["structures"]:
        counts = {s: atoms.get_chemical_symbols().count(s) for s in ("Fe", "Cr", "Si", "V")}
        assert counts == {"Fe": 7, "Cr": 7, "Si": 3, "V": 3}  # swaps keep the composition
    assert Path(reverse["figure"]).stat().st_size > 0
