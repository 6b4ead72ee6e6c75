"""The shared structure utilities: file reading, element order, compositions, checks, RNGs."""

import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_crystalgen.structures import (
    as_rng,
    check_structure,
    composition_amounts,
    element_counts,
    element_order,
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


def test_compositions_expand_brackets_sum_repeats_and_keep_the_written_order():
    assert composition_amounts("Cu3Au") == {"Cu": 3, "Au": 1}
    assert list(composition_amounts("AuCu3")) == ["Au", "Cu"]
    assert composition_amounts("(AuCu)2Ni") == {"Au": 2, "Cu": 2, "Ni": 1}
    assert composition_amounts("Sr[Ti(O3)]2") == {"Sr": 1, "Ti": 2, "O": 6}
    assert composition_amounts(" Sr Ti O3 ") == {"Sr": 1, "Ti": 1, "O": 3}
    assert composition_amounts("CuAuCu2") == {"Cu": 3, "Au": 1}
    assert composition_amounts({"Cu": 1, 79: 1, 29: 2}) == {"Cu": 3, "Au": 1}
    assert composition_amounts({"Cu": np.int64(3)}) == {"Cu": 3}
    assert all(type(n) is int for n in composition_amounts("Cu3Au").values())
    assert composition_amounts("Ta0.5W0.5B6", whole=False) == {"Ta": 0.5, "W": 0.5, "B": 6.0}
    assert composition_amounts({"Au": 0.0, "Cu": 1.0}, whole=False, zeros=True) == {"Au": 0.0, "Cu": 1.0}


@pytest.mark.parametrize(
    "composition, options, message",
    [
        ("cu3au", {}, "cannot read the formula 'cu3au': unexpected 'c' at position 0 "
                      "(element symbols start with a capital letter)"),
        ("Cu)3", {}, "cannot read the formula 'Cu)3': ')' at position 2 closes no bracket"),
        ("Cu(Au]", {}, "cannot read the formula 'Cu(Au]': ']' at position 5 closes no bracket"),
        ("Cu(Au2", {}, "cannot read the formula 'Cu(Au2': the bracket '(' at position 2 is not closed"),
        ("Cu()", {}, "cannot read the formula 'Cu()': the brackets at position 2 hold nothing"),
        ("Cu-1", {}, "cannot read the formula 'Cu-1': unexpected '-' at position 2"),
        ("2Cu", {},
         "cannot read the formula '2Cu': the count '2' at position 0 follows no element or bracket"),
        ("CuQq3", {}, "composition 'CuQq3': unknown element 'Qq'"),
        ("XCu", {}, "composition 'XCu': unknown element 'X'"),
        ({"Cu": 1, 0: 1}, {}, "composition {'Cu': 1, 0: 1}: unknown element 0"),
        ({"Cu": 1, True: 1}, {}, "composition {'Cu': 1, True: 1}: unknown element True"),
        ("", {}, "composition '' has no atoms"),
        ({}, {}, "composition {} has no atoms"),
        ({"Cu": 0, "Au": 0}, {"zeros": True}, "composition {'Cu': 0, 'Au': 0} has no atoms"),
        ("Cu0Au", {}, "composition 'Cu0Au' has non-positive or non-finite amounts {'Cu': 0.0}"),
        ({"Cu": -1, "Au": 2}, {"zeros": True},
         "composition {'Cu': -1, 'Au': 2} has negative or non-finite amounts {'Cu': -1.0}"),
        ({"Cu": float("inf")}, {},
         "composition {'Cu': inf} has non-positive or non-finite amounts {'Cu': inf}"),
        ({"Cu": "3", "Au": True}, {},
         "composition {'Cu': '3', 'Au': True} has amounts that are not numbers {'Cu': '3', 'Au': True}"),
        ("Cu2.5Au", {}, "composition 'Cu2.5Au' has non-integer amounts {'Cu': 2.5}: give the atoms of one "
                        "cell (for instance Ta1W1B6, not Ta0.125W0.125B0.75)"),
    ],
)
def test_composition_errors_name_the_bad_part(composition, options, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        composition_amounts(composition, **options)


def test_a_composition_is_a_formula_or_a_mapping():
    with pytest.raises(TypeError, match="^composition must be a dict or a formula string, got list$"):
        composition_amounts(["Cu", "Au"])


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
