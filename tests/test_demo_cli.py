"""The demo, the command line and the examples, on small settings."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from ase_crystalgen import ACEDescriptor, GRSCalculator, __version__
from ase_crystalgen.cli import main
from ase_crystalgen.demos.grs import run_demo
from ase_crystalgen.structures import radial_distribution

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _l12(repeat: int = 1):
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms[0].symbol = "Au"
    return atoms.repeat(repeat)


# --------------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, seed=0, quick=True, progress=False, verbose=False)


def test_demo_writes_every_file(demo):
    out, summary = demo
    for name in ("grs.extxyz", "target.extxyz", "trajectory.traj", "summary.json",
                 "grs_demo.png", "grs.png", "minimisation.log"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "summary.json").read_text()) == summary


def test_demo_minimisation_lowers_the_score(demo):
    _, s = demo
    assert s["score_after"] < s["score_before"]
    assert s["steps"] > 0


def test_demo_grs_reads_back_and_keeps_composition(demo):
    out, s = demo
    grs = ase.io.read(out / "grs.extxyz")
    target = ase.io.read(out / "target.extxyz")
    assert len(grs) == s["candidate"]["n_atoms"] == 32
    # FIRE moves atoms, never changes species: the composition is the target's, scaled
    assert Counter(grs.get_chemical_symbols()) == {"Cu": 24, "Au": 8}
    assert Counter(target.get_chemical_symbols()) == {"Cu": 81, "Au": 27}
    # the files alone reproduce the reported score
    assert GRSCalculator(target=target).score(grs) == pytest.approx(s["score_after"], rel=1e-5)
    # the last trajectory frame is the GRS
    last = ase.io.read(out / "trajectory.traj", index=-1)
    np.testing.assert_allclose(last.positions, grs.positions, atol=1e-6)


def test_radial_distribution_of_fcc():
    # first fcc shell: 12 neighbours at a / sqrt(2); the integral of 4 pi r^2 rho g(r)
    # over the first peak counts them
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    r, g = radial_distribution(atoms, rmax=3.0, n_points=600, sigma=0.05)
    assert r[np.argmax(g)] == pytest.approx(3.6 / np.sqrt(2), abs=0.01)
    rho = len(atoms) / atoms.get_volume()
    n_first = np.trapezoid(4 * np.pi * r**2 * rho * g, r)
    assert n_first == pytest.approx(12, abs=0.01)


# --------------------------------------------------------------------------- examples
def test_example_l12_relaxes_back_to_the_crystal():
    res = _load_example("grs_l12_relax").main(quick=True)
    assert res["score_after"] < 1e-4 * res["score_before"]
    assert res["max_displacement"] < 0.02


def test_example_random_alloy_lowers_the_score():
    res = _load_example("grs_random_alloy").main(quick=True)
    assert res["score_after"] < res["score_before"]
    assert res["composition"] == {"Au": 8, "Cu": 24}
    # the cell relaxes, but the density stays that of the target within a few per cent
    assert res["volume_per_atom_grs"] == pytest.approx(res["volume_per_atom_target"], rel=0.05)


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def l12_files(tmp_path):
    target = _l12(2)
    cand = target.copy()
    cand.rattle(0.05, rng=np.random.default_rng(1))
    paths = tmp_path / "target.extxyz", tmp_path / "cand.extxyz"
    ase.io.write(paths[0], target)
    ase.io.write(paths[1], cand)
    return str(paths[0]), str(paths[1]), target, cand


def _printed_scores(text: str) -> list[float]:
    return [float(line.rsplit("score", 1)[1]) for line in text.splitlines() if " score " in line]


def test_cli_score(l12_files, capsys):
    target_path, cand_path, target, cand = l12_files
    assert main(["score", cand_path, target_path]) == 0
    (score,) = _printed_scores(capsys.readouterr().out)
    assert score == pytest.approx(GRSCalculator(target=target).score(cand), rel=1e-6)
    assert score > 0
    # a structure scores exactly zero against itself
    assert main(["score", target_path, target_path]) == 0
    assert _printed_scores(capsys.readouterr().out) == [0.0]


def test_cli_score_missing_file(l12_files, tmp_path, capsys):
    target_path = l12_files[0]
    missing = str(tmp_path / "no-such-file.xyz")
    assert main(["score", missing, target_path]) == 2
    err = capsys.readouterr().err
    assert err == f"crystalgen: error: candidate file not found: {missing}\n"


def test_cli_score_unreadable_file(l12_files, tmp_path, capsys):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not a structure\n")
    assert main(["score", l12_files[1], str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"crystalgen: error: could not read target file {bad}")
    assert err.count("\n") == 1


def test_cli_descriptors_unknown_element(l12_files, capsys):
    assert main(["descriptors", l12_files[0], "--elements", "Cu", "Xx"]) == 2
    assert capsys.readouterr().err == "crystalgen: error: unknown element 'Xx'\n"


def test_cli_descriptors_element_missing_from_descriptor(l12_files, capsys):
    assert main(["descriptors", l12_files[0], "--elements", "Cu"]) == 2
    err = capsys.readouterr().err
    assert err == "crystalgen: error: element(s) Au not in the descriptor's elements ['Cu']\n"


def test_cli_descriptors_writes_the_descriptor_array(tmp_path, capsys):
    frames = [_l12(1), _l12(2)]
    frames[1].rattle(0.05, rng=np.random.default_rng(2))
    path = tmp_path / "frames.extxyz"
    ase.io.write(path, frames)
    out = tmp_path / "B.npy"
    argv = ["descriptors", str(path), "--elements", "Cu", "Au", "--nmax", "4", "2", "1",
            "--lmax", "0", "2", "2", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    desc = ACEDescriptor(["Cu", "Au"], nmax=(4, 2, 1), lmax=(0, 2, 2))
    B = np.load(out)
    # compared with the frames as stored (extxyz rounds positions)
    stored = ase.io.read(path, index=":")
    np.testing.assert_allclose(B, np.concatenate([desc.compute(a) for a in stored]), atol=1e-12)
    # rank 1: one radial function per n and neighbour element
    assert "   1            8" in text
    ranks = Counter(inv.rank for inv in desc.basis.invariants)
    assert sum(ranks.values()) == desc.n_per_species == B.shape[1] // 2


def test_cli_mismatched_nmax_lmax(l12_files, capsys):
    assert main(["descriptors", l12_files[0], "--nmax", "2", "2", "--lmax", "0"]) == 2
    assert "must have the same length" in capsys.readouterr().err


def test_cli_version_and_usage(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"crystalgen {__version__}"
    assert main([]) == 2  # a command is required
    assert "required" in capsys.readouterr().err


def test_python_dash_m():
    res = subprocess.run([sys.executable, "-m", "ase_crystalgen", "--version"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0
    assert res.stdout.strip() == f"crystalgen {__version__}"
