"""The energy ranker: fingerprint invariances, exact recovery, the choice among candidates, I/O."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

pytest.importorskip("sklearn")

from ase_crystalgen.inference.ranking import (  # noqa: E402
    EnergyRanker,
    environment_fingerprint,
    load_ranker,
)


def _alloys(n: int, seed: int) -> list[Atoms]:
    """Rattled, strained fcc Cu-Au-Ag cells of 4 or 8 atoms with random occupations."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
        if rng.random() < 0.5:
            atoms = atoms.repeat((2, 1, 1))
        atoms.numbers = rng.choice([29, 79, 47], size=len(atoms))
        strain = np.eye(3) + rng.normal(0, 0.02, (3, 3))
        atoms.set_cell(atoms.cell[:] @ strain * rng.uniform(0.98, 1.06), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        out.append(atoms)
    return out


def _emt(structures):
    out = []
    for a in structures:
        b = a.copy()
        b.calc = EMT()
        out.append(b.get_potential_energy() / len(b))
    return np.array(out)


def test_fingerprint_is_invariant_to_rotation_translation_order_and_cell_choice():
    atoms = _alloys(1, 3)[0]
    ref = environment_fingerprint(atoms)
    moved = atoms.copy()
    moved.rotate(37, (1, 2, 3), rotate_cell=True)
    moved.translate((0.3, -1.2, 2.0))
    moved.wrap()
    perm = np.random.default_rng(0).permutation(len(atoms))
    shuffled = atoms[perm]
    for other in (moved, shuffled, atoms.repeat((1, 2, 1))):
        assert np.allclose(environment_fingerprint(other), ref, atol=1e-9)
    # it does see chemistry on sites: swapping two unlike atoms changes it
    z = atoms.numbers
    i, j = next((i, j) for i in range(len(z)) for j in range(len(z)) if z[i] != z[j])
    swapped = atoms.copy()
    swapped.numbers[[i, j]] = z[[j, i]]
    assert not np.allclose(environment_fingerprint(swapped), ref)


def test_fingerprint_names_bad_structures():
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite positions"):
        environment_fingerprint(atoms)
    with pytest.raises(ValueError, match="has no atoms"):
        environment_fingerprint(Atoms(cell=np.eye(3) * 3, pbc=True))


def test_per_element_energies_are_recovered_exactly():
    # energies that are a sum of per-element references: the linear term alone holds them
    mu = {29: -0.7, 79: 0.4, 47: 1.3}
    train, test = _alloys(60, 0), _alloys(20, 1)

    def energy(s):
        return np.array([np.mean([mu[z] for z in a.numbers]) for a in s])

    ranker = EnergyRanker.fit(train, energy(train), calculator=None)
    assert np.max(np.abs(ranker.predict(test) - energy(test))) < 2e-3
    assert ranker.card["holdout_mae"] < 2e-3
    assert ranker.card["elements"] == [29, 47, 79]
    with pytest.warns(RuntimeWarning, match="fitted without Pt: its energies for structures with them"):
        ranker.predict([bulk("Pt", "fcc", a=3.9)])


def test_a_calculators_own_energies_are_reproduced():
    # labels made by EMT, ranker told to use EMT: the calculator term carries them exactly
    train, test = _alloys(60, 0), _alloys(20, 1)
    ranker = EnergyRanker.fit(train, _emt(train), calculator="emt", noisy_copies=0)
    assert ranker.calculator == "emt" and not ranker.card["crystal_features"]
    assert np.max(np.abs(ranker.predict(test) - _emt(test))) < 5e-3
    # without the calculator the fingerprint regression has to learn EMT, and does worse
    plain = EnergyRanker.fit(train, _emt(train), calculator=None, noisy_copies=0)
    assert np.mean(np.abs(plain.predict(test) - _emt(test))) > np.mean(np.abs(ranker.predict(test) - _emt(test)))


def test_choose_keeps_the_candidate_closest_to_the_request_and_skips_bad_ones():
    train = _alloys(60, 0)
    ranker = EnergyRanker.fit(train, _emt(train), calculator="emt", noisy_copies=0)
    groups = [_alloys(5, 10 + g) for g in range(4)]
    wanted = [float(_emt(g).min()) for g in groups[:2]] + [float(_emt(g).max()) for g in groups[2:]]
    picks = ranker.choose(groups, wanted)
    for group, e, r in zip(groups, wanted, picks):
        truth = _emt(group)
        assert r == int(np.argmin(np.abs(truth - e)))
        assert group[r].info["ranker_energy"] == pytest.approx(truth[r], abs=5e-3)
    # an invalid candidate and one with a close contact are passed over while others remain
    group = _alloys(3, 20)
    target = float(_emt(group)[0])
    group[0].info["close_contact"] = True
    assert ranker.choose([group], [target])[0] != 0
    group[1].info["invalid"] = True
    assert ranker.choose([group], [target])[0] == 2
    with pytest.raises(ValueError, match="2 candidate groups but 1 energies"):
        ranker.choose([group, group], [target])


def _relaxed_alloys(n: int, seed: int) -> list[Atoms]:
    """Cu-Au-Ag fcc cells with random occupations, relaxed with EMT (positions only)."""
    from ase.optimize import BFGS

    out = []
    for atoms in _alloys(n, seed):
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=0.02, steps=200)
        atoms.calc = None
        out.append(atoms)
    return out


def test_noisy_copies_teach_the_ranker_to_read_unrelaxed_geometry():
    # energies are those of relaxed crystals; the ranker is asked about displaced and strained
    # copies of unseen ones (what a generator's samples are). With noisy copies in the fit it
    # predicts the relaxed energy from the unrelaxed geometry better than without.
    from ase_crystalgen.inference.ranking import _rattled

    train, test = _relaxed_alloys(60, 0), _relaxed_alloys(20, 1)
    y_train, y_test = _emt(train), _emt(test)
    rattled = _rattled(test, np.random.default_rng(5))
    errors = {}
    for copies in (0, 2):
        ranker = EnergyRanker.fit(train, y_train, calculator="emt", noisy_copies=copies)
        assert ranker.card["noisy_copies"] == copies and ranker.card["n_structures"] == 60
        errors[copies] = np.mean(np.abs(ranker.predict(rattled) - y_test))
    assert errors[2] < 0.8 * errors[0]
    # the copies keep the atoms, their order and the structure's identity; only geometry moves
    again = _rattled(test[:3], np.random.default_rng(5))
    for a, b, c in zip(test[:3], again, rattled[:3]):
        assert list(a.numbers) == list(b.numbers) and np.allclose(b.positions, c.positions)
        assert 0.02 < np.sqrt(np.mean((b.positions - a.positions) ** 2)) < 0.4
    with pytest.raises(ValueError, match="noisy_copies must be 0 or more"):
        EnergyRanker.fit(train, y_train, noisy_copies=-1)
    with pytest.raises(ValueError, match="crystal_features need calculator=.chgnet., not None"):
        EnergyRanker.fit(train, y_train, crystal_features=True)
    with pytest.raises(ValueError, match="calculator_values are the energies of the structures given"):
        EnergyRanker.fit(train, y_train, calculator="emt", calculator_values=y_train)


def test_chgnet_crystal_features_ranker_reproduces_chgnet_and_round_trips(tmp_path):
    pytest.importorskip("chgnet")
    from ase_crystalgen.inference.ranking import calculator_energies

    train, test = _alloys(24, 0), _alloys(6, 1)
    e_train, feats = calculator_energies(train, "chgnet", crystal_features=True)
    assert feats.shape == (24, 64) and np.all(np.isfinite(feats))
    # the same energies as without features, and as CHGNet's ASE calculator
    assert np.allclose(calculator_energies(train, "chgnet"), e_train, atol=1e-6)
    # labels that are CHGNet's own energies are carried by the linear calculator term
    ranker = EnergyRanker.fit(train, e_train, calculator="chgnet", noisy_copies=0, n_components=16)
    assert ranker.card["crystal_features"] and ranker.card["format"] == 2
    assert np.max(np.abs(ranker.predict(test) - calculator_energies(test, "chgnet"))) < 5e-3
    path = ranker.save(tmp_path / "ranker.npz")
    assert np.array_equal(EnergyRanker.load(path).predict(test), ranker.predict(test))
    with pytest.raises(ValueError, match="crystal features come from CHGNet; the calculator is EMT"):
        calculator_energies(test, "emt", crystal_features=True)
    with pytest.raises(ValueError, match="uses CHGNet's crystal features: leave calculator_values out"):
        ranker.predict(test, calculator_values=np.zeros(6))


def test_save_and_load_round_trip_and_bad_files_are_named(tmp_path):
    train = _alloys(30, 0)
    ranker = EnergyRanker.fit(train, _emt(train), calculator=None, n_components=16)
    path = ranker.save(tmp_path / "ranker.npz")
    again = EnergyRanker.load(path)
    test = _alloys(5, 1)
    assert np.array_equal(ranker.predict(test), again.predict(test))
    assert again.card == ranker.card
    # a model directory's ranker.npz is found; a directory without one is named
    assert isinstance(load_ranker(None, tmp_path), EnergyRanker)
    with pytest.raises(ValueError, match="has no ranker.npz; fit one with 'crystalgen ranker"):
        load_ranker(None, tmp_path / "sub" / "model.json")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="bad.npz is not a readable energy ranker"):
        EnergyRanker.load(bad)
    with pytest.raises(FileNotFoundError, match="no energy ranker at"):
        EnergyRanker.load(tmp_path / "missing.npz")


def test_fit_refuses_bad_input():
    train = _alloys(12, 0)
    with pytest.raises(ValueError, match="at least 10 structures"):
        EnergyRanker.fit(train[:5], np.zeros(5))
    energies = np.zeros(12)
    energies[3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(at \[3\]\)"):
        EnergyRanker.fit(train, energies)


def test_generator_candidates_return_the_ranked_best_of_the_same_draws():
    torch = pytest.importorskip("torch")  # noqa: F841
    from ase_crystalgen.inference import CrystalGenerator

    gen = CrystalGenerator.from_pretrained("tiny-ddpm")
    train = _alloys(40, 0)
    ranker = EnergyRanker.fit([a for a in train if set(a.numbers) <= {29, 79, 47}], _emt(train), calculator="emt",
                              noisy_copies=0)
    kwargs = dict(spacegroup=221, formation_energy=-0.05, steps=10, seed=4, threads=1)
    plain = gen.sample("Cu3Au", n=4, **kwargs)
    best = gen.sample("Cu3Au", n=1, candidates=4, ranker=ranker, **kwargs)
    assert len(best) == 1 and best[0].info["candidates"] == 4
    r = best[0].info["candidate"]
    # the candidates are the draws of n=4 with the same seed; the kept one is the ranker's choice
    assert np.allclose(best[0].positions, plain[r].positions) and np.allclose(best[0].cell, plain[r].cell)
    valid = [k for k, a in enumerate(plain) if "invalid" not in a.info and not a.info["close_contact"]]
    assert valid  # this seed draws a clean candidate
    pred = ranker.predict([plain[k] for k in valid])
    assert r == valid[int(np.argmin(np.abs(pred + 0.05)))]
    # sample_batch: one structure per condition, each the pick of its own run of draws
    conditions = [("Cu3Au", 221, -0.05), ("CuAu", 123, 0.1)]
    drawn = gen.sample_batch([c for c in conditions for _ in range(3)], steps=10, seed=4, threads=1)
    picked = gen.sample_batch(conditions, steps=10, seed=4, threads=1, candidates=3, ranker=ranker)
    assert len(picked) == 2
    for k, atoms in enumerate(picked):
        group = drawn[3 * k : 3 * k + 3]
        assert np.allclose(atoms.positions, group[atoms.info["candidate"]].positions)
        clean = [a for a in group if "invalid" not in a.info and not a.info["close_contact"]]
        assert clean  # this seed draws at least one clean candidate per condition
        pred = ranker.predict(clean)
        assert np.allclose(atoms.positions, clean[int(np.argmin(np.abs(pred - conditions[k][2])))].positions)
    with pytest.raises(ValueError, match="has no ranker.npz"):
        gen.sample("Cu3Au", candidates=2, **kwargs)
    with pytest.raises(ValueError, match="candidates must be a whole number of at least 1"):
        gen.sample("Cu3Au", candidates=0, ranker=ranker, **kwargs)


def test_evaluate_with_candidates_matches_the_ranked_choice_of_the_plain_draws(tmp_path):
    pytest.importorskip("torch")
    import ase.io
    from test_datasets import make_structures, write_cdvae_csv

    from ase_crystalgen.datasets import ProcessedDataset, build_dataset
    from ase_crystalgen.evaluation.evaluate import evaluate_model
    from ase_crystalgen.inference.pretrained import resolve_model

    csv = write_cdvae_csv(tmp_path / "perov.csv", make_structures())
    build_dataset(csv, tmp_path / "data", progress=False, min_fraction=0.0, max_atoms=8, split=(0.0, 1.0, 0.0))
    data = ProcessedDataset.load(tmp_path / "data")
    idx = data.indices("val")
    ranker = EnergyRanker.fit([data.atoms(i) for i in idx], data.arrays["energy"][idx], n_components=8)
    model = resolve_model("tiny-ddpm")
    kw = dict(split="val", seed=3, steps=5, progress=False, tolerances=("field",))
    evaluate_model(model, data, k=3, out=tmp_path / "plain", **kw)
    summary = evaluate_model(model, data, k=1, candidates=3, ranker=ranker, out=tmp_path / "ranked", **kw)
    assert summary["run"]["candidates"] == 3 and summary["ranking"]["candidates"] == 3
    from ase_crystalgen.structures import flag_close_contacts

    plain = flag_close_contacts(ase.io.read(tmp_path / "plain" / "samples.extxyz", index=":"))
    ranked = ase.io.read(tmp_path / "ranked" / "samples.extxyz", index=":")
    assert ranked
    energy = {str(data.arrays["ids"][i]): float(data.arrays["energy"][i]) for i in idx}
    for chosen in ranked:
        group = [a for a in plain if a.info["target"] == chosen.info["target"]]
        same = [k for k, a in enumerate(group) if np.allclose(a.positions, chosen.positions, atol=1e-5)]
        assert len(same) == 1  # the kept structure is one of the draws of the plain run
        clean = [a for a in group if not a.info["close_contact"]] or group
        best = min(clean, key=lambda a: abs(ranker.predict([a])[0] - energy[chosen.info["target"]]))
        assert np.allclose(best.positions, chosen.positions, atol=1e-5)
    with pytest.raises(ValueError, match="candidates apply to generation models"):
        evaluate_model(resolve_model("tiny-modifier"), data, candidates=2, progress=False)


def test_shipped_rankers_load_and_a_corrupt_copy_is_refused(tmp_path):
    import shutil

    from ase_crystalgen.inference.pretrained import resolve_model

    for name, spread in (("perov5-flow", 0.686), ("carbon24-flow", 0.100)):
        ranker = load_ranker(None, resolve_model(name))
        assert ranker.calculator == "chgnet"
        # its held-out error is a small part of the spread of the energies it separates
        assert ranker.card["holdout_mae"] < 0.2 * ranker.card["energy_std"]
        assert ranker.card["energy_std"] == pytest.approx(spread, abs=1e-3)
    copy = tmp_path / "perov5-flow"
    shutil.copytree(resolve_model("perov5-flow"), copy)
    raw = bytearray((copy / "ranker.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (copy / "ranker.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the SHA-256 recorded in"):
        load_ranker(None, copy)


def test_cli_ranker_fits_a_processed_data_set(tmp_path, capsys):
    from test_datasets import make_structures, write_cdvae_csv

    from ase_crystalgen.cli import main
    from ase_crystalgen.datasets import ProcessedDataset, build_dataset

    csv = write_cdvae_csv(tmp_path / "perov.csv", make_structures())
    build_dataset(csv, tmp_path / "data", progress=False, min_fraction=0.0, max_atoms=8, split=(1.0, 0.0, 0.0))
    out = tmp_path / "ranker.npz"
    args = ["ranker", str(tmp_path / "data"), "--calculator", "none", "--components", "8", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    assert "held-out MAE" in capsys.readouterr().out
    ranker = EnergyRanker.load(out)
    data = ProcessedDataset.load(tmp_path / "data")
    idx = data.indices("train")
    assert ranker.card["split"] == "train" and ranker.card["n_structures"] == len(idx)
    assert ranker.calculator is None and ranker.card["noisy_copies"] == 2 and not ranker.card["crystal_features"]
    # it reproduces the energies it was fitted on closely (kernel ridge interpolates)
    fitted = ranker.predict([data.atoms(i) for i in idx])
    assert np.mean(np.abs(fitted - data.arrays["energy"][idx])) < 0.5 * np.std(data.arrays["energy"][idx])
    assert main([*args, "--out", str(tmp_path / "ranker.json")]) == 2
    assert "ending in .npz" in capsys.readouterr().err
    assert main([*args, "--out", str(out), "--split", "test"]) == 2
    assert "a ranker needs 10" in capsys.readouterr().err
    assert main([*args, "--out", str(out), "--noisy-copies", "-1"]) == 2
    assert "--noisy-copies -1: give 0 or more" in capsys.readouterr().err
