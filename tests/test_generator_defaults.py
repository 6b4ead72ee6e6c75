"""CrystalGenerator defaults a user expects: a composition is enough; close contacts, cell
sizes and bad arguments named; second-order flow samplers; torch threads."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402

from ase_crystalgen import CrystalGenerator  # noqa: E402
from ase_crystalgen._threads import default_threads, torch_threads, usable_cores  # noqa: E402
from ase_crystalgen.generative.flow import ode_sample  # noqa: E402
from ase_crystalgen.inference import ConditionWarning  # noqa: E402
from ase_crystalgen.inference.conditions import ModelDomain, wyckoff_compatible  # noqa: E402
from ase_crystalgen.structures import contact_ratio, flag_close_contacts  # noqa: E402


@pytest.fixture(scope="module")
def perov():
    return CrystalGenerator.from_pretrained("perov5-flow")


def _domain(stats, spacegroups=(221, 225, 229), energy_range=(-1.0, 1.0)):
    meta = {
        "data_schema": {"max_atoms": 8},
        "card": {
            "spacegroups": list(spacegroups),
            "energy_range": list(energy_range),
            "condition_statistics": stats,
            "min_sites": stats.get("min_sites"),
        },
    }
    return ModelDomain(meta, "toy")


# ----------------------------------------------------------------------- default space groups
def test_default_space_groups_follow_training_frequencies_of_the_cell_size():
    domain = _domain({"spacegroups_by_size": {"1": {"221": 6, "225": 3, "229": 1}, "2": {"229": 5}}})
    groups, weights, source = domain.default_spacegroups({29: 1})
    assert groups == [221, 225, 229]
    np.testing.assert_allclose(weights, [0.6, 0.3, 0.1], rtol=0, atol=1e-15)
    assert source == "training frequencies of 1-atom cells"
    # a size never seen pools every size
    groups, weights, source = domain.default_spacegroups({29: 3})
    assert groups == [221, 225, 229] and source.startswith("training frequencies of all cell sizes")
    np.testing.assert_allclose(weights, [6 / 15, 3 / 15, 6 / 15])


def test_default_space_groups_leave_out_what_the_composition_cannot_fill():
    domain = _domain({"spacegroups_by_size": {"5": {"221": 2, "225": 2, "1": 1}}})
    groups, weights, _ = domain.default_spacegroups({38: 1, 22: 1, 8: 3})  # SrTiO3
    expected = [sg for sg in (1, 221, 225) if wyckoff_compatible([1, 1, 3], sg) is not False]
    assert 225 not in expected and groups == expected  # Fm-3m has no 3-fold site pattern for O3
    np.testing.assert_allclose(weights.sum(), 1.0)
    lonely = _domain({"spacegroups_by_size": {"5": {"225": 2}}})
    with pytest.raises(ValueError, match="cannot fill the Wyckoff positions of any space group toy saw"):
        lonely.default_spacegroups({38: 1, 22: 1, 8: 3})


def test_without_pyxtal_the_skipped_wyckoff_check_is_said(monkeypatch):
    from ase_crystalgen.inference import conditions

    monkeypatch.setitem(sys.modules, "pyxtal", None)  # import pyxtal now raises ImportError
    monkeypatch.setitem(sys.modules, "pyxtal.symmetry", None)
    conditions._compatible_cached.cache_clear()
    try:
        assert wyckoff_compatible([1, 1, 3], 225) is None
        domain = _domain({"spacegroups_by_size": {"5": {"221": 2, "225": 2}}})
        with pytest.warns(ConditionWarning, match="pyxtal is not installed, so no Wyckoff check was made"):
            groups, _, _ = domain.default_spacegroups({38: 1, 22: 1, 8: 3})
        assert groups == [221, 225]  # nothing refused that could not be checked
        with pytest.warns(ConditionWarning, match="no Wyckoff check was made"):
            domain.check_spacegroup({38: 1, 22: 1, 8: 3}, 225)
    finally:
        conditions._compatible_cached.cache_clear()


def test_drawn_space_groups_have_the_training_frequencies(perov):
    stats = perov.domain.statistics["spacegroups_by_size"]["5"]
    total = sum(stats.values())
    out = perov.sample("KNbO3", n=600, steps=1, seed=5)
    counts = Counter(a.info["spacegroup_condition"] for a in out)
    assert set(counts) <= {int(k) for k in stats}
    for sg, c in stats.items():
        p = c / total
        sigma = math.sqrt(600 * p * (1 - p))
        assert abs(counts[int(sg)] - 600 * p) < 5 * sigma, (sg, counts[int(sg)], 600 * p)
    assert {a.info["spacegroup_source"] for a in out} == {"training frequencies of 5-atom cells"}


# ----------------------------------------------------------------------------- default energy
def test_default_energy_is_a_quantile_of_the_nearest_chemistry():
    cu = [0.5, 0.1, 0.4, 0.2, 0.3]
    stats = {
        "structures": 9,
        "energies_by_system": {"Cu": sorted(cu), "Au-Cu": [-0.2, -0.1, 0.0, 0.1, 0.2], "Ag": [1.0]},
        "energies_by_size": {"4": [-0.5, -0.4, -0.3, -0.2, -0.1, 0.0]},
        "energies": [-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3],
    }
    domain = _domain(stats)
    assert domain.default_energy({29: 2}, 0.0) == (0.1, "quantile 0 of the training energies of the chemical system Cu")
    assert domain.default_energy({29: 2}, 1.0)[0] == 0.5
    assert domain.default_energy({29: 2}, 0.5)[0] == pytest.approx(0.3, abs=1e-12)
    # Au-Pd is unseen: the systems sharing one of its two elements (Au-Cu) stand in
    energy, source = domain.default_energy({79: 1, 46: 1}, 0.0)
    assert energy == -0.2 and source.endswith("1 chemical systems sharing 1 of the elements Au, Pd")
    # Ag has one structure only, and no other system has Ag: the cell size, then everything
    assert domain.default_energy({47: 4}, 0.0) == (-0.5, "quantile 0 of the training energies of 4-atom cells")
    assert domain.default_energy({47: 3}, 1.0) == (0.3, "quantile 1 of the training energies of all training structures")
    with pytest.raises(ValueError, match=r"energy quantile must lie in \[0, 1\], got 1.5"):
        domain.default_energy({29: 2}, 1.5)
    # a card without statistics: the point of the energy range
    assert _domain({}).default_energy({29: 1}, 0.25) == (-0.5, "quantile 0.25 of the card's energy range")


def test_a_composition_is_enough(perov):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        out = perov.sample("KNbO3", n=3, seed=2)
    energies = perov.domain.statistics["energies"]
    for a in out:
        assert a.get_chemical_formula() == "KNbO3"
        assert a.info["spacegroup_condition"] in (25, 47, 99, 123, 221)
        assert a.info["formation_energy_source"].startswith("quantile 0.1 of the training energies of")
        # a low energy: below the median of everything the model saw
        assert min(energies) <= a.info["formation_energy_condition"] < np.median(energies)
    again = perov.sample("KNbO3", n=3, seed=2)
    assert [a.info["spacegroup_condition"] for a in again] == [a.info["spacegroup_condition"] for a in out]
    given = perov.sample("KNbO3", spacegroup=221, formation_energy=0.3, n=1)[0]
    assert given.info["spacegroup_source"] == "given" and given.info["formation_energy_source"] == "given"


# ------------------------------------------------------------------------ cells and contacts
def test_cells_below_the_training_sizes_warn_and_strict_refuses(perov):
    message = "composition Cu1 has 1 atoms; perov5-flow was trained on cells of at least 5 atoms (give a larger cell, e.g. Cu5)"
    with pytest.warns(ConditionWarning) as record:
        perov.sample("Cu", spacegroup=221, formation_energy=0.3, steps=2)
    assert message in [str(w.message) for w in record]
    with pytest.raises(ValueError, match=r"at least 5 atoms .*\(strict=True\)"):
        perov.sample("Cu", spacegroup=221, formation_energy=0.3, steps=2, strict=True)


def test_contact_ratio_of_known_structures():
    dimer = Atoms("CuAu", positions=[[0, 0, 0], [1.5, 0, 0]], cell=np.eye(3) * 10, pbc=True)
    assert contact_ratio(dimer) == pytest.approx(1.5 / (1.32 + 1.36), abs=1e-12)
    fcc = bulk("Cu", "fcc", a=3.61)  # nearest neighbours 2.553 A, radii sum 2.64
    assert contact_ratio(fcc) == pytest.approx(3.61 / math.sqrt(2) / 2.64, abs=1e-12)
    tiny = Atoms("Cu", cell=np.eye(3) * 2.0, pbc=True)  # the atom meets its own images
    assert contact_ratio(tiny) == pytest.approx(2.0 / 2.64, abs=1e-12)
    assert contact_ratio(Atoms("Cu", cell=np.eye(3) * 4.0, pbc=True)) == 1.0
    nan = Atoms("Cu", positions=[[np.nan, 0, 0]], cell=np.eye(3) * 4.0, pbc=True)
    flagged = flag_close_contacts([dimer, fcc, tiny, nan])
    assert [a.info["close_contact"] for a in flagged] == [True, False, False, False]
    with pytest.raises(ValueError, match=r"contact fraction must lie in \(0, 1\], got 0"):
        flag_close_contacts([fcc], 0)


def test_close_contacts_are_flagged_or_dropped(perov):
    kwargs = dict(spacegroup=221, formation_energy=0.3, n=8, seed=1, steps=10)
    flagged = perov.sample("SrTiO3", contact_fraction=0.85, **kwargs)
    close = [a.info["close_contact"] for a in flagged]
    assert close == [a.info["min_contact_ratio"] < 0.85 for a in flagged]
    kept = perov.sample("SrTiO3", contact_fraction=0.85, close_contacts="drop", **kwargs)
    assert len(kept) == close.count(False)
    assert [a.info["sample"] for a in kept] == [a.info["sample"] for a, c in zip(flagged, close) if not c]
    with pytest.raises(ValueError, match="close_contacts must be 'flag' or 'drop', not 'keep'"):
        perov.sample("SrTiO3", close_contacts="keep", **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 2.7}, "n must be a whole number of at least 1, got 2.7"),
        ({"n": 0}, "n must be a whole number of at least 1, got 0"),
        ({"steps": 0}, "steps must be a whole number of at least 1, got 0"),
        ({"batch_size": 0}, "batch_size must be a whole number of at least 1, got 0"),
        ({"threads": 0}, "threads must be a whole number of at least 1, got 0"),
        ({"energy_quantile": -0.1}, r"energy quantile must lie in \[0, 1\], got -0.1"),
    ],
)
def test_bad_arguments_are_named(perov, kwargs, message):
    with pytest.raises(ValueError, match=message):
        perov.sample("SrTiO3", **{"spacegroup": 221, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_named():
    with pytest.raises(ValueError, match="device 'cuda': .*use device 'cpu'"):
        CrystalGenerator.from_pretrained("perov5-flow", device="cuda")


def test_steps_given_are_the_steps_run(perov):
    a = perov.sample("SrTiO3", spacegroup=221, formation_energy=0.3, steps=3, method="heun")[0]
    assert a.info["steps"] == 3 and a.info["method"] == "heun"


# ------------------------------------------------------------------------------ ODE solvers
def _errors(solver):
    # dx/dt = -x + t with x(0) = 1 has x(1) = 2 / e
    x0 = torch.ones(1, 2, dtype=torch.float64)
    exact = 2 / math.e
    return [
        abs(float(ode_sample(lambda x, t: -x + t[:, None], x0, steps, solver)[0, 0]) - exact)
        for steps in (8, 16, 32)
    ]


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2), ("heun", 2)])
def test_ode_solvers_converge_at_their_order(solver, order):
    errors = _errors(solver)
    for coarse, fine in zip(errors, errors[1:]):
        assert coarse / fine == pytest.approx(2**order, rel=0.15)


def test_second_order_samplers_beat_euler_at_equal_network_evaluations():
    euler_16 = _errors("euler")[1]
    heun_8, midpoint_8 = _errors("heun")[0], _errors("midpoint")[0]
    assert heun_8 < euler_16 / 5 and midpoint_8 < euler_16 / 5


def test_unknown_solver_and_inference_sampler_are_named():
    from ase_crystalgen.generative import make_method

    with pytest.raises(ValueError, match="unknown ODE solver 'rk4'; choose from euler, midpoint, heun"):
        ode_sample(lambda x, t: x, torch.zeros(1, 1), 2, "rk4")
    with pytest.raises(ValueError, match="inference_sampler 'ddim' is not one of flow, heun, midpoint"):
        make_method("flow-uniform", inference_sampler="ddim")
    method = make_method("flow-uniform", inference_sampler="heun", inference_steps=10)
    assert method.default_sampler == "heun" and method.to_dict()["inference_sampler"] == "heun"


# ---------------------------------------------------------------------------------- threads
def test_default_threads_respect_omp_num_threads_and_free_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='two' is not a whole number"):
        default_threads()
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= default_threads() <= usable_cores() <= (os.cpu_count() or 1)


def test_torch_threads_are_restored(perov):
    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    perov.sample("SrTiO3", spacegroup=221, formation_energy=0.3, steps=2, threads=1)
    assert torch.get_num_threads() == before


def test_cli_sample_needs_only_a_composition(tmp_path):
    import ase.io

    from ase_crystalgen.cli import main

    out = tmp_path / "knbo3.extxyz"
    argv = ["sample", "perov5-flow", "--composition", "KNbO3", "-n", "3", "--steps", "2",
            "--threads", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    frames = ase.io.read(out, ":")
    assert len(frames) == 3
    for a in frames:
        assert a.get_chemical_formula() == "KNbO3" and a.info["steps"] == 2
        assert a.info["spacegroup_source"] == "training frequencies of 5-atom cells"
        assert a.info["formation_energy_source"].startswith("quantile 0.1 of the training energies")


def test_symmetrized_samples_have_their_space_group_exactly(perov):
    import spglib

    raw = perov.sample("SrTiO3", spacegroup=221, formation_energy=0.3, n=4, seed=0)
    snapped = perov.sample("SrTiO3", spacegroup=221, formation_energy=0.3, n=4, seed=0, symmetrize=True)
    for a, b in zip(raw, snapped):
        assert b.get_chemical_formula() == a.get_chemical_formula()
        if b.info["symmetrized"]:
            cell = (b.cell[:], b.get_scaled_positions(), b.numbers)
            assert spglib.get_symmetry_dataset(cell, symprec=1e-5).number == 221
            assert b.info["spacegroup_condition"] == 221 and "min_contact_ratio" in b.info
        else:
            np.testing.assert_array_equal(b.positions, a.positions)
    assert sum(b.info["symmetrized"] for b in snapped) >= 3  # the model makes near-cubic SrTiO3
