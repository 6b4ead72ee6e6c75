"""reduce_dataset: GRS of a data set split by composition."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from ase_crystalgen import ACEDescriptor
from ase_crystalgen.reduction import reduce_dataset
from ase_crystalgen.reduction.grs import allocate, composition_groups


def _alloy(n_au: int, seed: int, a: float = 3.8):
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.numbers[np.random.default_rng(seed).permutation(4)[:n_au]] = 79
    atoms.rattle(0.05, seed=seed)
    return atoms


def test_allocate_is_proportional_and_complete():
    assert allocate([1, 1, 2], 4) == [1, 1, 2]
    assert allocate([1, 1, 2], 7) == [2, 2, 3]   # one each, then 4 shared 1:1:2
    assert sum(allocate([5, 3, 1], 2)) == 2 and allocate([5, 3, 1], 2)[2] == 0
    for n in range(1, 12):
        assert sum(allocate([0.2, 0.5, 0.3], n)) == n


def test_groups_and_members_keep_the_compositions_of_the_data():
    data = [_alloy(1, s) for s in range(3)] + [_alloy(3, s, a=4.0) for s in range(3, 6)]
    groups = composition_groups(data)
    assert sorted(map(len, groups.values())) == [3, 3]
    desc = ACEDescriptor(["Cu", "Au"], nmax=(3, 2), lmax=(0, 1))
    members = reduce_dataset(data, 2, 4, descriptor=desc, rng=0, relax_steps=5)
    assert sorted(m.get_chemical_formula() for m in members) == ["Au3Cu", "AuCu3"]
    assert sorted(m.info["grs_group"] for m in members) == [0, 1]
    # each member sits at its group's density (the Au-rich group was made larger)
    for m in members:
        group = [data[i] for i in groups[list(groups)[m.info["grs_group"]]]]
        want = np.mean([len(a) / a.get_volume() for a in group])
        assert np.isfinite(m.info["grs_score"])
        assert len(m) / m.get_volume() == pytest.approx(want, rel=0.25)


def test_reduce_dataset_bad_input():
    desc = ACEDescriptor(["Cu", "Au"], nmax=(3, 2), lmax=(0, 1))
    with pytest.raises(ValueError, match="needs at least two structures"):
        reduce_dataset([_alloy(1, 0)], 1, 4, descriptor=desc)
    with pytest.raises(ValueError, match="must be positive"):
        reduce_dataset([_alloy(1, 0), _alloy(1, 1)], 0, 4, descriptor=desc)
    with pytest.raises(ValueError, match="has no atoms"):
        reduce_dataset([_alloy(1, 0), _alloy(1, 1)[:0]], 1, 4, descriptor=desc)


def test_cli_reduce_labels_resumes_and_refuses_other_settings(tmp_path, capsys):
    from ase.calculators.emt import EMT
    from ase.io import read, write

    from ase_crystalgen.cli import main

    data = []
    for s in range(3):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.1, seed=s)
        data.append(a)
    write(tmp_path / "data.extxyz", data)
    out = tmp_path / "set.extxyz"
    common = [str(tmp_path / "data.extxyz"), "--n-atoms", "4", "--relax-steps", "5",
              "--nmax", "3", "2", "--lmax", "0", "1", "--out", str(out), "--no-progress"]
    assert main(["reduce", *common, "--n-structures", "1", "--label", "emt"]) == 0
    first = read(out, ":")
    assert len(first) == 1 and (tmp_path / "set_vs_data.png").stat().st_size > 0
    # the stored label is EMT's energy and forces of the member
    ref = first[0].copy()
    ref.calc = EMT()
    assert first[0].get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    assert np.allclose(first[0].get_forces(), ref.get_forces(), atol=1e-6)
    # a rerun asking for more keeps the first member and adds one
    assert main(["reduce", *common, "--n-structures", "2", "--label", "emt"]) == 0
    both = read(out, ":")
    assert len(both) == 2 and np.allclose(both[0].positions, first[0].positions)
    assert "resuming: 1 of 2" in capsys.readouterr().out
    # other settings are refused with one line that names them
    assert main(["reduce", *common, "--n-structures", "2"]) == 2
    assert "label" in capsys.readouterr().err
    (tmp_path / "one.extxyz").write_text("")
    write(tmp_path / "one.extxyz", data[:1])
    assert main(["reduce", str(tmp_path / "one.extxyz"), "--out", str(tmp_path / "x.extxyz")]) == 2
    assert "needs at least two" in capsys.readouterr().err


def test_cli_reduce_kernel_joint_labels_every_member_and_resumes_by_whole_groups(tmp_path, capsys):
    from ase.calculators.emt import EMT
    from ase.io import read, write

    from ase_crystalgen.cli import main

    data = [_alloy(1, s) for s in range(3)] + [_alloy(3, s, a=4.0) for s in range(3, 6)]
    write(tmp_path / "data.extxyz", data)
    out = tmp_path / "set.extxyz"
    common = [str(tmp_path / "data.extxyz"), "--n-atoms", "4", "--relax-steps", "4", "--nmax", "3", "2",
              "--lmax", "0", "1", "--out", str(out), "--no-progress", "--objective", "kernel",
              "--build", "joint", "--label", "emt"]
    assert main(["reduce", *common, "--n-structures", "3"]) == 0
    made = read(out, ":")
    assert len(made) == 3 and sorted({m.info["grs_group"] for m in made}) == [0, 1]
    # a group is written at once: every member of it carries its EMT label, not only the last
    for m in made:
        ref = m.copy()
        ref.calc = EMT()
        assert m.info["grs_objective"] == "kernel"
        assert m.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    # rerun: whole groups are kept as they are
    assert main(["reduce", *common, "--n-structures", "3"]) == 0
    assert "resuming: 3 of 3" in capsys.readouterr().out
    again = read(out, ":")
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(made, again))
    # another objective is another run
    assert main(["reduce", *[c if c != "kernel" else "moments" for c in common], "--n-structures", "3"]) == 2
    assert "objective" in capsys.readouterr().err
    # the function refuses a group that has only some of its members
    desc = ACEDescriptor(["Cu", "Au"], nmax=(3, 2), lmax=(0, 1))
    groups = [[m for m in made if m.info["grs_group"] == g] for g in (0, 1)]
    pair = max(groups, key=len)
    assert sorted(map(len, groups)) == [1, 2]
    with pytest.raises(ValueError, match="cannot resume a group from 1 of its 2 members"):
        reduce_dataset(data, 3, 4, descriptor=desc, objective="kernel", build="joint", existing=pair[:1])


def test_cli_reduce_d_optimal_picks_labels_resumes_and_refuses(tmp_path, capsys):
    from ase.calculators.emt import EMT
    from ase.io import read, write

    from ase_crystalgen.cli import main
    from ase_crystalgen.reduction import d_optimal

    data = []
    for s in range(6):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1 + s % 2, 1, 1))
        a.rattle(0.02 + 0.02 * s, seed=s)
        ref = a.copy()
        ref.calc = EMT()
        from ase.calculators.singlepoint import SinglePointCalculator

        a.calc = SinglePointCalculator(a, energy=ref.get_potential_energy(),
                                       forces=ref.get_forces())
        data.append(a)
    write(tmp_path / "data.extxyz", data)
    out = tmp_path / "set.extxyz"
    common = [str(tmp_path / "data.extxyz"), "--strategy", "d-optimal", "--nmax", "3", "2",
              "--lmax", "0", "1", "--out", str(out), "--no-progress"]
    assert main(["reduce", *common, "--total-atoms", "12"]) == 0
    got = read(out, ":")
    desc = ACEDescriptor(["Cu"], nmax=(3, 2), lmax=(0, 1))
    want = d_optimal(read(tmp_path / "data.extxyz", ":"), 12, desc)
    assert [a.info["data_index"] for a in got] == [
        next(k for k, d in enumerate(data)
             if len(d) == len(w) and np.allclose(d.positions, w.positions)) for w in want]
    assert sum(map(len, got)) <= 12 and (tmp_path / "set_vs_data.png").stat().st_size > 0
    # the data set's own labels travel with the picks
    for a in got:
        src = data[a.info["data_index"]]
        assert a.get_potential_energy() == pytest.approx(src.get_potential_energy(), abs=1e-8)
        assert np.allclose(a.get_forces(), src.get_forces(), atol=1e-8)
    # a rerun resumes (nothing to add); another budget is another run
    assert main(["reduce", *common, "--total-atoms", "12"]) == 0
    assert f"resuming: {len(got)} of {len(got)}" in capsys.readouterr().out
    assert main(["reduce", *common, "--total-atoms", "20"]) == 2
    assert "total_atoms" in capsys.readouterr().err
    # a budget no structure fits is named
    assert main(["reduce", *common, "--total-atoms", "3", "--overwrite"]) == 2
    assert "no structure of" in capsys.readouterr().err
