"""The generation half of ``crystalgen demo``: shipped perov5-flow model + real CHGNet relaxations."""

from __future__ import annotations

import ase.io
import pytest

pytest.importorskip("torch")
pytest.importorskip("chgnet")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import torch

    from ase_crystalgen.demos.generation import run_generation_demo

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CHGNet on small cells is faster on one thread of a busy machine
    try:
        out = tmp_path_factory.mktemp("gdemo")
        return out, run_generation_demo(out, quick=True, progress=False, verbose=False)
    finally:
        torch.set_num_threads(threads)


def test_generation_demo_writes_structures_and_a_picture(demo):
    out, summary = demo
    for key in ("generated", "relaxed", "picture", "summary"):
        assert (out / summary["files"][key].split("/")[-1]).stat().st_size > 0
    frames = ase.io.read(out / "generated_relaxed.extxyz", ":")
    assert [f.get_chemical_formula() for f in frames] == ["O3SrV", "O3SnSr", "O3SrTi"]


def test_generated_perovskites_relax_to_perovskites(demo):
    """Every relaxed sample is the ABO3 perovskite (B in the O octahedron, StructureMatcher at the
    field's tolerances); SrVO3 and SrTiO3, cubic at room temperature, keep Pm-3m at PBE-like
    lattice constants. (SrSnO3 is orthorhombic in nature: its cubic cell may distort.)"""
    import numpy as np
    from ase import Atoms
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    out, summary = demo
    frames = ase.io.read(out / "generated_relaxed.extxyz", ":")
    matcher = StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)
    expected = {"Sr1V1O3": 3.90, "Sr1Sn1O3": 4.11, "Sr1Ti1O3": 3.94}  # CHGNet (MP PBE) cubic cells
    for row, atoms in zip(summary["structures"], frames):
        assert row["error"] is None and row["converged"], row
        a, b = atoms.get_chemical_symbols()[:2]
        ideal = Atoms(
            [a, b, "O", "O", "O"],
            cell=np.eye(3) * expected[row["composition"]],
            pbc=True,
            scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        )
        assert matcher.fit(AseAtomsAdaptor.get_structure(atoms), AseAtomsAdaptor.get_structure(ideal)), row
        if row["composition"] != "Sr1Sn1O3":
            assert row["spacegroup_found"] == 221, row
            assert max(row["lattice_A"]) - min(row["lattice_A"]) < 0.03
            assert row["lattice_A"][0] == pytest.approx(expected[row["composition"]], abs=0.05)
