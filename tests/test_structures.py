"""The shared structure utilities: file reading, element order, formulas, checks, RNGs."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_crystalgen.structures import (
    as_rng,
    check_structure,
    element_counts,
    element_order,
    formula_counts,
    min_distance,
    read_frames,
)


def test_read_frames_reads_every_frame_and_names_what_is_wrong(tmp_path):
    import ase.io

    frames = [bulk("Cu", cubic=True), bulk("Au", cubic=True).repeat(2)]
    ase.io.write(tmp_path / "two.extxyz", frames)
    back = read_frames(tmp_path / "two.extxyz", "target")
    assert [len(a) for a in back] == [4, 32]
    with pytest.raises(FileNotFoundError, match=r"^target file not found: .*nope\.xyz$"):
        read_frames(tmp_path / "nope.xyz", "target")
    with pytest.raises(FileNotFoundError, match=r"^target path is a directory, not a structure file"):
        read_frames(tmp_path, "target")
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(ValueError, match=r"^could not read target file .*empty\.extxyz: Empty file"):
        read_frames(tmp_path / "empty.extxyz", "target")
    (tmp_path / "bad.extxyz").write_text((tmp_path / "two.extxyz").read_text() + "3\nbroken\n")
    with pytest.raises(KeyError, match=r"could not read frame 2 of candidate file"):
        read_frames(tmp_path / "bad.extxyz", "candidate", error=KeyError)


def test_element_order_is_first_appearance_across_structures():
    a = Atoms("AuCuAu", positions=np.eye(3))
    b = Atoms("NiCu", positions=np.eye(3)[:2])
    assert element_order([a, b]) == ["Au", "Cu", "Ni"]
    assert element_order(b) == ["Ni", "Cu"]
    assert element_counts([a, b]) == {"Au": 2, "Cu": 2, "Ni": 1}
    assert list(element_counts(bulk("Cu", cubic=True).repeat(2))) == ["Cu"]
    assert sum(element_counts(bulk("Cu", cubic=True).repeat(2)).values()) == 32


def test_formula_counts_expands_groups_and_keeps_written_order():
    assert formula_counts("Cu3Au") == {"Cu": 3, "Au": 1}
    assert formula_counts("(AuCu)2Ni") == {"Au": 2, "Cu": 2, "Ni": 1}
    with pytest.raises(ValueError, match=r"^cannot read the formula 'Cu\)3'$"):
        formula_counts("Cu)3")


def test_checks_find_overlaps_images_and_non_finite_numbers():
    fcc = bulk("Cu", "fcc", a=3.6)
    nn = 3.6 / np.sqrt(2)
    assert check_structure(fcc) is None
    assert min_distance(fcc, 3.0) == pytest.approx(nn)
    assert min_distance(fcc, 2.0) == np.inf
    # with the minimum distance above the nearest-neighbour distance the atom overlaps its images
    assert check_structure(fcc, min_distance=3.0).startswith(
        "overlapping atoms: atom 0 (Cu) and a periodic image of itself are 2.546 Å apart"
    )
    bad = fcc.copy()
    bad.positions[0, 1] = np.nan
    assert check_structure(bad) == "positions of atoms [0] are not finite (NaN or inf)"
    flat = Atoms("Cu", cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True)
    assert check_structure(flat) == "the periodic cell vectors are degenerate (zero volume)"
    assert check_structure(Atoms()) == "the structure has no atoms"


def test_as_rng_takes_seeds_and_generators_and_refuses_the_rest():
    g = np.random.default_rng(3)
    assert as_rng(g) is g
    assert as_rng(5).integers(1 << 30) == np.random.default_rng(5).integers(1 << 30)
    assert isinstance(as_rng(None), np.random.Generator)
    with pytest.raises(TypeError, match=r"^rng must be a numpy.random.Generator, got int$"):
        as_rng(5, seeds=False)
    with pytest.raises(TypeError, match=r"^rng must be .* or an integer seed, got bool$"):
        as_rng(True)
