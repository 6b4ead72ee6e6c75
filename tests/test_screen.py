"""``crystalgen screen``: generate -> relax (EMT) -> deduplicate -> hull; resume, failures, Dask."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("torch")

import ase.io  # noqa: E402
from ase.calculators.calculator import Calculator, all_changes  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.db import connect  # noqa: E402

from ase_crystalgen.cli import main  # noqa: E402
from ase_crystalgen.inference.screen import ScreenError, ScreenSettings, screen  # noqa: E402

MODEL = "synthetic-alloys-flow"


def settings(**kw) -> ScreenSettings:
    base = dict(
        model=MODEL,
        composition="Cu3Au",
        spacegroups=[221, 123],
        energies=[-0.06, 0.0],
        n=2,
        calculator="emt",
        fmax=0.05,
        relax_steps=200,
        steps=20,
        seed=1,
    )
    base.update(kw)
    return ScreenSettings(**base)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("screen")
    rows = screen(settings(), out, progress=False)
    return out, rows


def _energies(out):
    with connect(out / "screen.db") as db:
        return {r.cid: (r.get("energy"), r.status) for r in db.select("cid>=0")}


def test_screen_writes_every_candidate_and_the_hull(serial):
    out, rows = serial
    assert [r["cid"] for r in rows] == list(range(8))
    for name in (
        "settings.json",
        "candidates.extxyz",
        "screen.db",
        "references.extxyz",
        "summary.csv",
        "summary.md",
        "screen.png",
    ):
        assert (out / name).stat().st_size > 0, name
    relaxed = [r for r in rows if r["status"] == "relaxed"]
    assert len(relaxed) >= 4  # a trained model on its own chemistry gives relaxable cells
    with connect(out / "screen.db") as db:
        assert db.count() == 8
        for row in db.select(status="relaxed"):
            symbols = row.toatoms().get_chemical_symbols()
            assert symbols.count("Cu") == 3 * symbols.count("Au")
            if row.converged:
                # FrechetCellFilter judges forces in the frame of the starting cell; the Cartesian
                # forces differ by the cell's deformation, a few tens of % at most here
                assert row.max_force <= 1.5 * 0.05
    with open(out / "summary.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 8
    md = (out / "summary.md").read_text()
    assert "| E condition | 123 | 221 |" in md and md.count("\n| -0.060 |") == 1


def test_energy_above_hull_is_the_formation_energy_against_the_elements(serial):
    """Only elemental references: the hull is 0 at every composition, so e_above_hull = E_form,
    and E_form = (E - 3 mu_Cu - mu_Au) / 4 with mu from the reference file."""
    out, rows = serial
    refs = ase.io.read(out / "references.extxyz", ":")
    mu = {a.get_chemical_symbols()[0]: a.get_potential_energy() / len(a) for a in refs}
    assert set(mu) == {"Cu", "Au"}
    with connect(out / "screen.db") as db:
        for row in db.select(status="relaxed"):
            e_form = (row.energy - row.natoms * (0.75 * mu["Cu"] + 0.25 * mu["Au"])) / row.natoms
            assert row.formation_energy_per_atom == pytest.approx(e_form, abs=1e-9)
            assert row.e_above_hull == pytest.approx(e_form, abs=1e-9)


def test_duplicates_point_at_a_lower_energy_unique_match(serial):
    out, _ = serial
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    with connect(out / "screen.db") as db:
        rows = {r.cid: r for r in db.select(status="relaxed")}
    matcher = StructureMatcher()
    for cid, row in rows.items():
        rep = rows[row.duplicate_of]
        assert rep.unique and rep.energy_per_atom <= row.energy_per_atom + 1e-12
        if cid != rep.cid:
            assert matcher.fit(
                AseAtomsAdaptor.get_structure(row.toatoms()), AseAtomsAdaptor.get_structure(rep.toatoms())
            )
    uniques = [r for r in rows.values() if r.unique]
    for i, a in enumerate(uniques):
        for b in uniques[i + 1 :]:
            assert not matcher.fit(
                AseAtomsAdaptor.get_structure(a.toatoms()), AseAtomsAdaptor.get_structure(b.toatoms())
            )


def test_an_interrupted_screen_resumes_and_loses_nothing(serial, tmp_path):
    out, _ = serial
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for name in ("references.extxyz", "summary.csv"):
        (copy / name).unlink()
    with connect(copy / "screen.db") as db:  # as if killed after the first three relaxations
        ids = [r.id for r in db.select("cid>=3")]
        db.delete(ids)
        kept = {r.cid: (r.id, r.mtime) for r in db.select()}
    screen(settings(), copy, progress=False)
    assert _energies(copy) == _energies(out)  # EMT relaxations are deterministic
    with connect(copy / "screen.db") as db:
        assert db.count() == 8
        for cid, (row_id, _) in kept.items():
            assert db.get(cid=cid).id == row_id  # earlier rows were not relaxed again


def test_a_different_screen_in_the_same_directory_is_refused(serial):
    out, _ = serial
    with pytest.raises(ScreenError) as info:
        screen(settings(energies=[-0.1], n=1), out, progress=False)
    assert str(info.value) == (
        f"{out} holds a screen with other settings (energies, n differ: energies: [-0.06, 0.0] there, "
        "[-0.1] now; n: 2 there, 1 now); use --overwrite (force=True) to start over, or choose another output"
    )


class FailsOnSecond(Calculator):
    """EMT, except that the second structure it is given raises."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self):
        super().__init__()
        self.emt, self.seen = EMT(), []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        key = atoms.info.get("cid")
        if key not in self.seen:
            self.seen.append(key)
        if len(self.seen) == 2 and key == self.seen[1]:
            raise RuntimeError("SCF did not converge")
        self.emt.calculate(atoms, properties, system_changes)
        self.results = dict(self.emt.results)


def test_a_calculator_that_raises_mid_screen_is_recorded_and_the_screen_goes_on(tmp_path):
    rows = screen(
        settings(energies=[0.0], spacegroups=[221], n=3), tmp_path, calculator=FailsOnSecond(), progress=False
    )
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "SCF did not converge" in failed[0]["relax_error"]
    assert sum(r["status"] == "relaxed" for r in rows) >= 1
    assert "SCF did not converge" in (tmp_path / "summary.md").read_text()


def test_dask_local_cluster_gives_the_serial_results(serial, tmp_path):
    distributed = pytest.importorskip("distributed")
    out, _ = serial
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        screen(settings(), tmp_path, scheduler=cluster.scheduler_address, progress=False)
    a, b = _energies(out), _energies(tmp_path)
    assert a.keys() == b.keys()
    for cid in a:
        assert a[cid][1] == b[cid][1]
        if a[cid][0] is not None:
            assert b[cid][0] == pytest.approx(a[cid][0], abs=1e-8)


def run(command: str) -> int:
    return main(command.split())  # the test paths have no spaces


def test_cli_screen_sample_relax_and_models(tmp_path, capsys):
    assert run("models") == 0
    assert MODEL in capsys.readouterr().out
    out, relaxed = tmp_path / "s.extxyz", tmp_path / "r.extxyz"
    sample = f"sample {MODEL} --composition Cu3Au --spacegroup 123,Pm-3m --energy -0.05 -n 2 --steps 20"
    assert run(f"{sample} --relax emt --out {out} --no-progress") == 0
    frames = ase.io.read(out, ":")
    assert len(frames) == 4 and {f.info["spacegroup_condition"] for f in frames} == {123, 221}
    assert all(f.get_chemical_formula() == "AuCu3" and "converged" in f.info for f in frames)
    assert run(f"relax {out} --calculator emt --out {relaxed} --no-progress") == 0
    assert "relaxed 4 structures with emt" in capsys.readouterr().out
    grid = "--spacegroups 221 --energies -0.04:-0.06:-0.02 --calculator emt --steps 20"
    assert (
        run(f"screen --model {MODEL} --composition Cu3Au {grid} --out {tmp_path / 'scr'} --no-progress") == 0
    )
    text = capsys.readouterr().out
    assert "2 candidates" in text and "screen.db" in text
    settings_json = json.loads((tmp_path / "scr" / "settings.json").read_text())
    assert settings_json["energies"] == [-0.04, -0.06]
    assert run(f"screen --model {MODEL} --composition Cu3Au --energies nan --out {tmp_path / 'bad'}") == 2
    assert "energy nan is not finite" in capsys.readouterr().err


def test_example_generate_crystals(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "generate_crystals.py"
    spec = importlib.util.spec_from_file_location("example_generate_crystals", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.main(n=1, out=str(tmp_path / "g.extxyz"), steps=20)
    assert len(res["relaxed"]) >= 3
    hulls = [a.info["e_above_hull"] for a in res["relaxed"]]
    assert all(h > -0.2 for h in hulls)  # EMT L1_2 Cu3Au is -0.01 eV/atom
    # with only elemental references the hull is flat at zero, so the energy above it is the
    # formation energy against fcc Cu and Au (EMT's ground states), computed here with ASE alone
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    def fcc_energy(symbol):
        atoms = bulk(symbol, "fcc", a={"Cu": 3.6, "Au": 4.06}[symbol])
        atoms.calc = EMT()
        BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4)
        return atoms.get_potential_energy()

    e_cu, e_au = fcc_energy("Cu"), fcc_energy("Au")
    for a, h in zip(res["relaxed"], hulls):
        x = a.copy()
        x.calc = EMT()
        n_au = int((x.numbers == 79).sum())
        e_form = (x.get_potential_energy() - n_au * e_au - (len(x) - n_au) * e_cu) / len(x)
        assert h == pytest.approx(e_form, abs=2e-3)
    # the least stable candidate is the one modified
    assert res["modified_before"] == max(hulls)
    assert len(ase.io.read(tmp_path / "g.extxyz", ":")) == len(res["relaxed"]) + 1


def test_given_references_and_known_phases_set_the_hull(serial, tmp_path):
    """References given with energies are used as they are; a relaxed known Cu3Au (L1_2) joins
    the hull, so a candidate's e_above_hull becomes its formation energy minus L1_2's."""
    from ase.build import bulk

    out, _ = serial
    l12 = bulk("Cu", "fcc", a=3.75, cubic=True)
    l12.symbols[0] = "Au"
    ase.io.write(tmp_path / "known.extxyz", l12)
    small = dict(spacegroups=[221], energies=[0.0], n=2)
    rows = screen(
        settings(
            **small, references=str(out / "references.extxyz"), known_phases=str(tmp_path / "known.extxyz")
        ),
        tmp_path / "s",
        progress=False,
    )
    refs = ase.io.read(tmp_path / "s" / "references.extxyz", ":")
    given = {
        a.get_chemical_formula(): a.get_potential_energy()
        for a in ase.io.read(out / "references.extxyz", ":")
    }
    used = {a.get_chemical_formula(): a.get_potential_energy() for a in refs}
    for formula, energy in given.items():
        assert used[formula] == pytest.approx(energy, abs=1e-9)  # not recomputed
    known = [a for a in refs if a.get_chemical_formula() == "AuCu3"]
    assert len(known) == 1 and known[0].info["converged"]
    mu = {
        a.get_chemical_symbols()[0]: a.get_potential_energy() / len(a)
        for a in ase.io.read(out / "references.extxyz", ":")
    }
    e_l12 = (known[0].get_potential_energy() - 3 * mu["Cu"] - mu["Au"]) / 4
    assert e_l12 < 0
    for r in rows:
        if r["status"] == "relaxed":
            assert r["e_above_hull"] == pytest.approx(r["formation_energy_per_atom"] - e_l12, abs=1e-9)
