"""Readers, processing (filters, groups, splits, pairs), the processed cache and torch datasets."""

import csv
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter

from ase_crystalgen.datasets import (
    BuildSettings,
    CacheError,
    DataFormatError,
    build_dataset,
    from_pymatgen,
    load_dataset,
    open_source,
    read_aflow_csv,
    read_ase,
    read_cdvae_csv,
    split_by_formula,
)
from ase_crystalgen.datasets import cache as cache_module
from ase_crystalgen.datasets.cache import reduced_formula
from ase_crystalgen.datasets.processing import (
    frequency_mask,
    modification_pairs,
    polymorph_groups,
    sample_epoch_pairs,
)


def perovskite(a, symbols, shift=0.0):
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac[1] += shift  # B cation off-centre along [111]: a lower-symmetry (R3m) polymorph
    return Atoms(symbols, cell=np.eye(3) * a, scaled_positions=frac, pbc=True)


# Perovskite-like polymorph families made here (energies invented, eV/atom): four formulas,
# three polymorphs each (the centred cubic one and two off-centred ones).
FORMULAS = {
    "SrTiO3": (("Sr", "Ti", "O", "O", "O"), 3.905, -3.50),
    "BaTiO3": (("Ba", "Ti", "O", "O", "O"), 4.00, -3.40),
    "CaTiO3": (("Ca", "Ti", "O", "O", "O"), 3.84, -3.45),
    "SrZrO3": (("Sr", "Zr", "O", "O", "O"), 4.10, -3.70),
}


def make_structures():
    out = []
    for formula, (symbols, a, e0) in FORMULAS.items():
        for k, shift in enumerate((0.0, 0.03, 0.06)):
            atoms = perovskite(a * (1 + 0.01 * k), symbols, shift)
            atoms.info.update(formation_energy=e0 + 0.05 * k, id=f"{formula}-{k}")
            out.append(atoms)
    return out


def write_cdvae_csv(path, structures, bad_rows=()):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "material_id", "cif", "formula", "heat_ref", "dir_gap"])
        for i, atoms in enumerate(structures):
            cif = str(CifWriter(AseAtomsAdaptor.get_structure(atoms)))
            w.writerow(
                [i, atoms.info["id"], cif, atoms.get_chemical_formula(), atoms.info["formation_energy"], 1.5]
            )
        for j, (cif, energy) in enumerate(bad_rows):
            w.writerow([len(structures) + j, f"bad-{j}", cif, "X", energy, 0.0])
    return path


@pytest.fixture
def structures():
    return make_structures()


@pytest.fixture
def cdvae_csv(tmp_path, structures):
    return write_cdvae_csv(tmp_path / "perov.csv", structures)


# --- readers -----------------------------------------------------------------------------


def test_cdvae_reader_recovers_structures_and_columns(cdvae_csv, structures):
    read = read_cdvae_csv(cdvae_csv)
    assert len(read) == len(structures)
    for a, b in zip(read, structures):
        assert a.info["formation_energy"] == b.info["formation_energy"]
        assert a.info["id"] == b.info["id"] and a.info["dir_gap"] == 1.5
        assert sorted(a.get_chemical_symbols()) == sorted(b.get_chemical_symbols())
        np.testing.assert_allclose(a.cell.cellpar(), b.cell.cellpar(), atol=1e-6)
        np.testing.assert_allclose(
            np.sort(a.get_all_distances(mic=True).ravel()),
            np.sort(b.get_all_distances(mic=True).ravel()),
            atol=1e-5,
        )
    assert open_source(cdvae_csv).energy_column == "heat_ref"


def test_cdvae_reader_names_bad_rows(tmp_path, structures):
    path = write_cdvae_csv(tmp_path / "bad.csv", structures[:2], bad_rows=[("not a cif", -1.0)])
    with pytest.raises(DataFormatError, match=r"^bad\.csv row 3: cannot parse CIF"):
        read_cdvae_csv(path)
    with pytest.warns(UserWarning, match="skipped 1 unreadable rows"):
        assert len(read_cdvae_csv(path, errors="skip")) == 2
    good_cif = str(CifWriter(AseAtomsAdaptor.get_structure(structures[0])))
    path = write_cdvae_csv(tmp_path / "nan.csv", [], bad_rows=[(good_cif, "nan")])
    with pytest.raises(DataFormatError, match=r"^nan\.csv row 1: energy in column 'heat_ref' is nan$"):
        read_cdvae_csv(path)
    with pytest.raises(DataFormatError, match=r"no column 'energy'"):
        read_cdvae_csv(cdvae := write_cdvae_csv(tmp_path / "c.csv", structures[:1]), energy_column="energy")
    assert cdvae.exists()


def test_unknown_csv_layout_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match=r"CSV has neither a 'cif' column"):
        open_source(path)
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        open_source(tmp_path / "missing.csv")


def write_aflow_rows(path, rows):
    cols = [
        "auid",
        "compound",
        "pretty_formula",
        "species",
        "composition",
        "nsites",
        "geometry",
        "positions_fractional",
        "enthalpy_formation_atom",
        "spacegroup_relax",
    ]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def test_aflow_reader(tmp_path):
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # Na4Cl4, alternating in ase's order
    order = np.argsort([0 if s == "Na" else 1 for s in nacl.get_chemical_symbols()], kind="stable")
    frac = nacl.get_scaled_positions()[order]
    row = {
        "auid": "aflow:0001",
        "compound": "Na4Cl4",
        "pretty_formula": "Na4Cl4",
        "species": "Na,Cl",
        "composition": "4,4",
        "nsites": 8,
        "geometry": "5.64,5.64,5.64,90,90,90",
        "positions_fractional": ";".join(",".join(repr(float(v)) for v in p) for p in frac),
        "enthalpy_formation_atom": -2.1,
        "spacegroup_relax": 225,
    }
    # the same crystal with the paper-export style: reduced formula, bracketed positions
    row2 = dict(
        row,
        auid="aflow:0002",
        species="",
        composition="",
        pretty_formula="NaCl",
        positions_fractional=json.dumps(frac.tolist()),
    )
    bad = dict(row, auid="aflow:0003", nsites=9)
    path = write_aflow_rows(tmp_path / "aflow.csv", [row, row2, bad])
    with pytest.raises(DataFormatError, match=r"^aflow\.csv row 3: nsites=9 but 8 positions$"):
        read_aflow_csv(path)
    with pytest.warns(UserWarning):
        read = read_aflow_csv(path, errors="skip")
    assert open_source(path).format == "aflow"
    for atoms in read:
        assert atoms.get_chemical_formula() == "Cl4Na4"
        assert atoms.info["spacegroup"] == 225 and atoms.info["formation_energy"] == -2.1
        np.testing.assert_allclose(
            np.sort(atoms.get_all_distances(mic=True).ravel()),
            np.sort(nacl.get_all_distances(mic=True).ravel()),
            atol=1e-9,
        )
    assert [a.info["id"] for a in read] == ["aflow:0001", "aflow:0002"]


def test_ase_file_db_and_pymatgen_readers(tmp_path, structures):
    import ase.db
    import ase.io

    ase.io.write(tmp_path / "s.extxyz", structures)
    read = read_ase(tmp_path / "s.extxyz")
    assert [a.info["formation_energy"] for a in read] == [s.info["formation_energy"] for s in structures]
    with ase.db.connect(tmp_path / "s.db") as db:
        for s in structures:
            db.write(s, formation_energy=s.info["formation_energy"], material=s.info["id"])
    read = read_ase(tmp_path / "s.db")
    assert open_source(tmp_path / "s.db").format == "db"
    assert [a.info["material"] for a in read] == [s.info["id"] for s in structures]
    # no energy anywhere -> the message says where to put it
    ase.io.write(tmp_path / "plain.extxyz", [bulk("Cu")])
    with pytest.raises(DataFormatError, match=r"^plain\.extxyz structure 1: no energy condition; set one of"):
        read_ase(tmp_path / "plain.extxyz")
    pmg = [AseAtomsAdaptor.get_structure(s) for s in structures[:2]]
    read = from_pymatgen(pmg, formation_energies=[-1.0, -2.0], ids=["a", "b"])
    assert [a.info["formation_energy"] for a in read] == [-1.0, -2.0]
    assert read[1].get_chemical_formula() == structures[1].get_chemical_formula()


# --- processing --------------------------------------------------------------------------


def test_frequency_filter_drops_rare_elements_and_groups():
    elements = [["Cu"]] * 60 + [["Cu", "Au"]] * 39 + [["Cu", "Pt"]]
    sgs = [225] * 99 + [221]
    keep, rare_el, rare_sg = frequency_mask(elements, sgs, min_fraction=0.02)
    assert rare_el == ["Pt"] and rare_sg == [221]
    assert keep.sum() == 99 and not keep[-1]
    keep, rare_el, rare_sg = frequency_mask(elements, sgs, min_fraction=0.0)
    assert keep.all() and rare_el == [] and rare_sg == []


def test_groups_split_and_pairs():
    formulas = ["A", "B", "A", "C", "A", "B", "D", "C", "A"]
    energies = [0.3, 0.1, -0.2, 0.0, 0.1, -0.5, 1.0, 0.2, 0.5]
    groups = polymorph_groups(formulas, energies)
    np.testing.assert_array_equal(groups["A"], [2, 4, 0, 8])  # sorted by energy
    lowest, nonlowest = modification_pairs(groups)
    # a group of k gives k-1 lowest-energy pairs and (k-1)(k-2)/2 others
    assert len(lowest) == 3 + 1 + 1 and len(nonlowest) == 3
    e = np.array(energies)
    assert np.all(e[lowest[:, 1]] <= e[lowest[:, 0]]) and np.all(e[nonlowest[:, 1]] <= e[nonlowest[:, 0]])
    assert all(formulas[i] == formulas[j] for i, j in np.vstack([lowest, nonlowest]))
    assert {tuple(p) for p in nonlowest} == {(0, 4), (8, 4), (8, 0)}


def test_split_by_formula_has_no_leak_and_close_fractions():
    rng = np.random.default_rng(0)
    formulas = [f"F{k}" for k in rng.integers(0, 400, 4000)]
    split = split_by_formula(formulas, (0.8, 0.1, 0.1), np.random.default_rng(1))
    for s in range(3):
        members = {f for f, t in zip(formulas, split) if t == s}
        others = {f for f, t in zip(formulas, split) if t != s}
        assert not members & others
    np.testing.assert_allclose(np.bincount(split, minlength=3) / len(split), [0.8, 0.1, 0.1], atol=0.01)
    with pytest.raises(ValueError, match="split fractions must be three non-negative numbers summing to 1"):
        split_by_formula(formulas, (0.5, 0.1, 0.1))


def test_epoch_pairs_are_balanced_capped_and_reseeded():
    # groups of sizes 2..7 -> many non-lowest pairs in the big groups
    formulas, energies = [], []
    for g, size in enumerate(range(2, 8)):
        formulas += [f"G{g}"] * size
        energies += list(np.linspace(0, 1, size))
    groups = polymorph_groups(formulas, energies)
    group_of = np.zeros(len(formulas), dtype=int)
    for g, (_, idx) in enumerate(sorted(groups.items())):
        group_of[idx] = g
    lowest, nonlowest = modification_pairs(groups)
    pairs = sample_epoch_pairs(lowest, nonlowest, group_of, cap_per_group=2, rng=np.random.default_rng(0))
    is_lowest = np.array([tuple(p) in {tuple(q) for q in lowest} for p in pairs])
    assert is_lowest.sum() == (~is_lowest).sum()  # equal numbers of each kind
    for kind in (is_lowest, ~is_lowest):
        counts = np.bincount(group_of[pairs[kind][:, 1]])
        assert counts.max() <= 2
    again = sample_epoch_pairs(lowest, nonlowest, group_of, 2, np.random.default_rng(0))
    other = sample_epoch_pairs(lowest, nonlowest, group_of, 2, np.random.default_rng(1))
    np.testing.assert_array_equal(pairs, again)
    assert not np.array_equal(pairs, other)


def test_reduced_formula_matches_pymatgen():
    from pymatgen.core import Composition

    for numbers in ([38, 22, 8, 8, 8], [29, 29, 29, 79] * 2, [6] * 12, [56, 8, 8, 22, 8, 56, 8, 8, 22, 8]):
        symbols = Atoms(numbers=numbers).get_chemical_formula()
        assert reduced_formula(np.array(numbers)) == Composition(symbols).reduced_formula


# --- cache -------------------------------------------------------------------------------


def test_build_load_and_round_trip(tmp_path, cdvae_csv, structures):
    data = build_dataset(
        cdvae_csv, tmp_path / "out", progress=False, min_fraction=0.0, split=(0.5, 0.25, 0.25)
    )
    assert len(data) == len(structures)
    assert data.meta["counts"]["polymorph_groups"] == 4
    for name in ("data.npz", "meta.json", "summary.json", "summary.md", "summary.png"):
        assert (tmp_path / "out" / name).exists()
    loaded = load_dataset(tmp_path / "out")
    for key, value in data.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[key], value)
    # each cached structure matches its source, and groups never straddle splits
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    by_id = {s.info["id"]: s for s in structures}
    for i in range(len(loaded)):
        atoms = loaded.atoms(i)
        src = by_id[atoms.info["id"]]
        assert atoms.info["formation_energy"] == src.info["formation_energy"]
        assert matcher.fit(AseAtomsAdaptor.get_structure(atoms), AseAtomsAdaptor.get_structure(src))
    for formula in set(loaded.arrays["formula"]):
        assert len(set(loaded.arrays["split"][loaded.arrays["formula"] == formula])) == 1
    # the centred polymorphs are Pm-3m; B displaced along [111] (ferroelectric rhombohedral) R3m
    assert set(loaded.arrays["spacegroup"].tolist()) == {221, 160}


def test_cache_is_reused_rebuilt_on_change_and_checked(tmp_path, cdvae_csv, structures, monkeypatch):
    out = tmp_path / "out"
    build_dataset(cdvae_csv, out, progress=False, min_fraction=0.0)
    calls = []
    real = cache_module._encode_chunk
    monkeypatch.setattr(cache_module, "_encode_chunk", lambda *a: calls.append(1) or real(*a))
    build_dataset(cdvae_csv, out, progress=False, min_fraction=0.0)
    assert calls == []  # up to date: nothing re-encoded
    build_dataset(cdvae_csv, out, progress=False, min_fraction=0.0, max_atoms=20)
    assert calls == [1]  # settings changed
    assert load_dataset(out).arrays["x"].shape[1] == 24
    write_cdvae_csv(cdvae_csv, structures[:-1])  # source changed
    assert len(build_dataset(cdvae_csv, out, progress=False, min_fraction=0.0, max_atoms=20)) == 11
    # corruption is detected on load, and a build repairs it with a warning
    with open(out / "data.npz", "r+b") as fh:
        fh.seek(100)
        fh.write(b"garbage")
    with pytest.raises(CacheError, match=r"data\.npz is corrupt: its checksum does not match meta\.json"):
        load_dataset(out)
    with pytest.warns(UserWarning, match="rebuilding"):
        build_dataset(cdvae_csv, out, progress=False, min_fraction=0.0, max_atoms=20)
    assert len(load_dataset(out)) == 11
    meta = json.loads((out / "meta.json").read_text())
    meta["schema_version"] = 999
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=r"has schema version 999, this version of ase_crystalgen reads 1"):
        load_dataset(out)
    with pytest.raises(CacheError, match=r"is not a processed data set"):
        load_dataset(tmp_path)


def test_interrupted_build_resumes_without_redoing_chunks(tmp_path, cdvae_csv, monkeypatch):
    reference = build_dataset(cdvae_csv, tmp_path / "ref", progress=False, min_fraction=0.0, chunk_size=3)
    calls = []
    real = cache_module._encode_chunk

    def interrupted(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(cache_module, "_encode_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cdvae_csv, tmp_path / "out", progress=False, min_fraction=0.0, chunk_size=3)
    assert not (tmp_path / "out" / "meta.json").exists()
    assert len(list((tmp_path / "out").glob(".partial-*/chunk-*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(cache_module, "_encode_chunk", lambda *a: calls.append(1) or real(*a))
    resumed = build_dataset(cdvae_csv, tmp_path / "out", progress=False, min_fraction=0.0, chunk_size=3)
    assert len(calls) == 2  # 12 rows in chunks of 3: two were done before the interruption
    for key, value in reference.arrays.items():
        np.testing.assert_array_equal(resumed.arrays[key], value)
    assert not list((tmp_path / "out").glob(".partial-*"))


def test_build_reports_skipped_rows(tmp_path, structures):
    big = structures[0].repeat((2, 2, 2))  # 40 sites
    big.info.update(structures[0].info, id="big")
    overlap = structures[1].copy()
    overlap.positions[1] = overlap.positions[0] + 0.1
    path = write_cdvae_csv(tmp_path / "mixed.csv", structures + [big], bad_rows=[("junk", 0.0)])
    rows = list(csv.reader(open(path)))
    cif = str(CifWriter(AseAtomsAdaptor.get_structure(overlap)))
    with open(path, "a", newline="") as fh:
        csv.writer(fh).writerow([len(rows), "overlap", cif, "x", -1.0, 0])
    data = build_dataset(path, tmp_path / "out", progress=False, min_fraction=0.0, max_atoms=30)
    counts = data.meta["counts"]
    assert counts["structures"] == len(structures)
    assert counts["skipped"] == {"size": 1, "unreadable": 1, "invalid": 1}
    kinds = {p["kind"]: p["reason"] for p in data.meta["first_problems"]}
    assert "cannot parse CIF" in kinds["unreadable"] and "overlap" in kinds["invalid"]


def test_build_settings_validation():
    with pytest.raises(ValueError, match=r"^max_sites=70 exceeds max_atoms=60$"):
        BuildSettings(max_sites=70)


# --- torch datasets ----------------------------------------------------------------------


def test_torch_datasets(tmp_path, cdvae_csv):
    torch = pytest.importorskip("torch")
    from ase_crystalgen.datasets.torch_datasets import CrystalDataset, ModificationDataset
    from ase_crystalgen.representation import property_table, spacegroup_operations

    data = build_dataset(
        cdvae_csv, tmp_path / "out", progress=False, min_fraction=0.0, max_atoms=8, split=(1.0, 0.0, 0.0)
    )
    ds = CrystalDataset(data, "train")
    assert len(ds) == 12
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["x"].shape == (4, 12, 3) and batch["elements"].shape == (4, 12, 103)
    assert batch["properties"].shape == (4, 12, 22) and batch["spacegroup_ops"].shape == (4, 192, 4, 4)
    for b in range(4):
        i = int(batch["index"][b])
        t = data.tensors(i)
        np.testing.assert_allclose(batch["x"][b].numpy(), t.x, atol=1e-6)
        np.testing.assert_array_equal(batch["mask"][b].numpy(), t.mask)
        z = batch["elements"][b].argmax(1)[: t.n_sites].numpy() + 1
        np.testing.assert_array_equal(z, t.numbers)
        np.testing.assert_allclose(
            batch["properties"][b][0].numpy(), property_table()[t.numbers[0] - 1], atol=1e-6
        )
        np.testing.assert_array_equal(batch["spacegroup_ops"][b].numpy(), spacegroup_operations(t.spacegroup))
        assert float(batch["energy"][b]) == pytest.approx(t.formation_energy)

    pairs = ModificationDataset(data, "train", cap_per_group=1, seed=3)
    # 4 groups of 3: lowest pairs 2 per group (cap 1 -> 1), non-lowest 1 per group -> 4 + 4
    assert len(pairs) == 8
    for k in range(len(pairs)):
        item = pairs[k]
        i, j = int(item["index_init"]), int(item["index"])
        assert data.arrays["formula"][i] == data.arrays["formula"][j]
        assert float(item["energy"]) == pytest.approx(data.arrays["energy"][j] - data.arrays["energy"][i])
        assert float(item["energy"]) < 0  # the target is more stable
    first = pairs.pairs.copy()
    pairs.set_epoch(1)
    second = pairs.pairs.copy()
    pairs.set_epoch(0)
    np.testing.assert_array_equal(pairs.pairs, first)
    assert not np.array_equal(first, second) or len(first) < 2
    val = ModificationDataset(data, "train", resample=False)
    assert len(val) == 8 and all(data.arrays["rank"][int(val[k]["index"])] == 0 for k in range(len(val)))

    # the stacked batches the trainer reads are exactly the collated items, in dtype and value
    ks = [5, 0, 3, 3, 11]
    for dataset in (ds, CrystalDataset(data, "train", augment=True, seed=2), pairs, val):
        kk = [k % len(dataset) for k in ks]
        collated = torch.utils.data.default_collate([dataset[k] for k in kk])
        stacked = dataset.batch(kk)
        assert stacked.keys() == collated.keys()
        for key in collated:
            assert stacked[key].dtype == collated[key].dtype, key
            torch.testing.assert_close(stacked[key], collated[key], rtol=0, atol=0)


# --- command line ------------------------------------------------------------------------


def test_cli_dataset_build_and_info(tmp_path, cdvae_csv, capsys):
    from ase_crystalgen.cli import main

    out = tmp_path / "built"
    assert main(["dataset", "build", str(cdvae_csv), "--out", str(out), "--min-fraction", "0",
                 "--split", "0.5,0.25,0.25", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "12 structures (4 polymorph groups) from 12 rows" in text
    assert (out / "summary.png").stat().st_size > 10_000
    meta = json.loads((out / "meta.json").read_text())
    assert meta["settings"]["split"] == [0.5, 0.25, 0.25] and meta["source"]["energy_column"] == "heat_ref"
    assert main(["dataset", "info", str(out)]) == 0
    assert "| 221 | 4 |" in capsys.readouterr().out
    # errors: one line, exit code 2
    assert main(["dataset", "build", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert "data source not found" in capsys.readouterr().err
    assert main(["dataset", "build", str(cdvae_csv), "--out", str(out), "--split", "a,b"]) == 2
    assert "--split 'a,b': give three fractions" in capsys.readouterr().err
    assert main(["dataset", "info", str(tmp_path)]) == 2
    assert "is not a processed data set" in capsys.readouterr().err


def test_duplicates_are_found_and_split_by_structure(tmp_path, structures):
    from ase_crystalgen.datasets.processing import duplicate_mask

    first = structures[0]
    copy = first.copy()  # the same crystal: rotated, translated, atoms permuted, other cell
    copy.positions += [0.3, -0.2, 0.9]
    copy.rotate(37, "z", rotate_cell=True)
    copy = copy[[4, 2, 0, 3, 1]]
    copy.set_cell([copy.cell[0], copy.cell[1], copy.cell[2] + copy.cell[0]], scale_atoms=False)
    copy.wrap()
    copy.info.update(first.info, id="copy")
    pool = structures + [copy]
    formulas = [reduced_formula(a.numbers) for a in pool]
    energies = [a.info["formation_energy"] for a in pool]
    keep, rep = duplicate_mask(pool, formulas, energies)
    assert keep.sum() == len(structures) and not keep[-1] and rep[-1] == 0
    # a different energy means a different calculation: not compared
    energies[-1] += 0.5
    assert duplicate_mask(pool, formulas, energies)[0].all()
    path = write_cdvae_csv(tmp_path / "dups.csv", pool)
    data = build_dataset(path, tmp_path / "out", progress=False, min_fraction=0.0, deduplicate=True,
                         split_by="structure", split=(0.5, 0.25, 0.25))
    assert data.meta["counts"]["duplicates"] == 1 and len(data) == len(structures)
    # split by structure: polymorphs of one formula may now be in different splits
    assert len(set(data.arrays["split"].tolist())) == 3
