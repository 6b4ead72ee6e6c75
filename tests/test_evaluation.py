"""Match rate, RMSE and validity of generated crystals (ase_crystalgen.evaluation)."""

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from ase_crystalgen.evaluation import (
    TOLERANCES,
    EvaluationResult,
    evaluate_structures,
    match_samples,
    structure_validity,
)


def cscl(a=4.1, c_scale=1.0, symbols="CsCl"):
    return Atoms(symbols, scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]],
                 cell=np.diag([a, a, a * c_scale]), pbc=True)


def nacl():
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


def rattled(atoms, stdev=0.01, seed=3):
    out = atoms.copy()
    out.rattle(stdev=stdev, seed=seed)
    return out


def match(samples, targets, **kw):
    kw.setdefault("progress", False)
    return match_samples(samples, targets, **kw)


def test_tolerance_sets():
    assert TOLERANCES["paper"] == dict(ltol=0.2, stol=0.3, angle_tol=5.0)
    assert TOLERANCES["field"] == dict(ltol=0.3, stol=0.5, angle_tol=10.0)
    assert TOLERANCES["loose"] == dict(ltol=0.4, stol=0.6, angle_tol=10.0)
    assert TOLERANCES["looser"] == dict(ltol=1.0, stol=1.5, angle_tol=25.0)
    with pytest.raises(ValueError, match="unknown tolerance"):
        match([[cscl()]], [cscl()], tolerances=("strict",))


def test_identity_matches_with_zero_rmse():
    r = match([[nacl()]], [nacl()])
    for tol in ("paper", "field"):
        assert r.matched(tol, 1)[0]
        assert r.best_rms(tol, 1)[0] == pytest.approx(0.0, abs=1e-8)
    assert r.summary()["metrics"]["field"]["k=1"]["match_rate"] == 1.0


def test_rattled_rmse_equals_pymatgen():
    target, sample = nacl(), rattled(nacl())
    r = match([[sample]], [target], tolerances=("field",))
    direct = StructureMatcher(**TOLERANCES["field"]).get_rms_dist(
        AseAtomsAdaptor.get_structure(sample), AseAtomsAdaptor.get_structure(target))[0]
    assert 0 < direct < 0.01
    assert r.best_rms("field", 1)[0] == pytest.approx(direct, rel=1e-10)
    assert r.summary()["metrics"]["field"]["k=1"]["rmse"] == pytest.approx(direct, rel=1e-10)


def test_lattice_distortion_between_tolerance_levels():
    # scale=True equalises volumes, so a 1.4x stretch of c becomes a length ratio of
    # 1.4**(2/3) = 1.25 between the two cells: outside ltol 0.2, inside ltol 0.3
    r = match([[cscl(c_scale=1.4)]], [cscl()], tolerances=("paper", "field"))
    assert not r.matched("paper", 1)[0]
    assert r.matched("field", 1)[0]
    assert r.best_rms("field", 1)[0] == pytest.approx(0.0, abs=1e-8)  # same fractional sites


def test_wrong_composition_never_matches():
    r = match([[cscl(symbols="CsBr")] * 3], [cscl()], tolerances=tuple(TOLERANCES))
    for tol in TOLERANCES:
        assert not r.matched(tol, 20)[0]
        assert r.summary()["metrics"][tol]["k=20"]["rmse"] is None


def test_k_semantics_first_k_samples_and_short_lists():
    wrong = cscl(symbols="CsBr")
    samples = [[wrong, wrong, rattled(cscl()), cscl()]]
    r = match(samples, [cscl()], tolerances=("field",), ks=(1, 2, 3, 20))
    assert [bool(r.matched("field", k)[0]) for k in (1, 2, 3, 20)] == [False, False, True, True]
    # best of k: the exact copy (4th sample) beats the rattled one (3rd) only from k=4 on
    assert r.best_rms("field", 3)[0] > r.best_rms("field", 20)[0]
    assert r.best_rms("field", 20)[0] == pytest.approx(0.0, abs=1e-8)
    m = r.summary()["metrics"]["field"]
    assert m["k=1"]["match_rate"] == 0.0 and m["k=20"]["match_rate"] == 1.0


def test_single_atoms_counts_as_one_sample_and_empty_lists_never_match():
    r = match([cscl(), []], [cscl(), cscl()], ks=(1,))
    assert r.valid == [[True], []] and r.matched("paper", 1).tolist() == [True, False]
    assert r.summary()["validity"]["n_samples"] == 1
    with pytest.raises(ValueError, match="sample lists"):
        match([[cscl()]], [cscl(), cscl()])


def test_validity_reasons():
    assert structure_validity(nacl()) == (True, "")
    across = Atoms("CsCl", positions=[[0.1, 2, 2], [3.9, 2, 2]], cell=np.eye(3) * 4.0, pbc=True)
    assert structure_validity(across) == (False, "atoms 0 and 1 are 0.20 A apart")
    flat = Atoms("Cs", cell=np.diag([1.0, 1.0, 0.01]), pbc=True)
    assert structure_validity(flat) == (False, "volume 0.01 A^3 < 0.1")
    nan = cscl()
    nan.positions[1, 2] = np.nan
    assert structure_validity(nan) == (False, "NaN coordinates")
    thin = Atoms("Cs", cell=np.diag([0.4, 5.0, 5.0]), pbc=True)
    assert structure_validity(thin) == (False, "atom 0 is 0.40 A from its periodic image")
    assert structure_validity(across, min_distance=0.1) == (True, "")
    huge = Atoms("Cu2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * 20.0, pbc=True)
    assert structure_validity(huge) == (False, "volume per atom 4e+03 A^3 > 1000")
    assert structure_validity(huge, max_volume_per_atom=5000) == (True, "")


def test_invalid_sample_is_not_matched_unless_asked():
    # a target that is itself too dense: its exact copy would match, but samples must be valid
    close = Atoms("CsCl", positions=[[0, 0, 0], [0.4, 0, 0]], cell=np.eye(3) * 4.1, pbc=True)
    nan = close.copy()
    nan.positions[0, 0] = np.nan
    r = match([[close.copy(), nan]], [close], ks=(2,))
    assert r.valid == [[False, False]]
    assert not r.matched("paper", 2)[0]
    s = r.summary()
    assert s["validity"] == dict(rate=0.0, n_valid=0, n_samples=2, reasons={"overlap": 1, "non-finite": 1})
    r = match([[close.copy(), nan]], [close], ks=(2,), match_invalid=True)
    assert r.matched("paper", 2)[0] and r.rms["paper"][0][1] is None


def test_pymatgen_errors_are_counted_as_no_match(monkeypatch):
    def boom(self, s1, s2):
        raise RuntimeError("degenerate lattice")

    monkeypatch.setattr(StructureMatcher, "get_rms_dist", boom)
    r = match([[cscl(), cscl()]], [cscl()], tolerances=("field",))
    assert r.errors == {"field": 2} and not r.matched("field", 20)[0]
    assert "degenerate lattice" in r.messages[0]
    assert r.summary()["errors"] == {"field": 2}


def _dataset():
    """Four targets: CsCl (sg 221, matched at k=1), CsCl (221, only its 2nd sample matches),
    NaCl (225, rattled, matched), CsCl (221, no match)."""
    wrong = cscl(symbols="CsBr")
    targets = [cscl(), cscl(a=4.0), nacl(), cscl(a=4.2)]
    targets[0].info["spacegroup"] = 221  # given, not detected
    samples = [[cscl()], [wrong, cscl(a=4.0)], [rattled(nacl()), wrong], [wrong, wrong]]
    return samples, targets


def test_spacegroup_breakdown_and_subsets():
    samples, targets = _dataset()
    r = match(samples, targets, tolerances=("paper", "field"), ks=(1, 20))
    assert r.spacegroups == [221, 221, 225, 221]
    assert r.formulas[2] == "ClNa"
    subsets = {"seen": [0, 1], "unseen": [2, 3], "empty": []}
    s = r.summary(subsets)
    assert s["metrics"]["paper"]["k=1"]["match_rate"] == pytest.approx(0.5)
    assert s["metrics"]["paper"]["k=20"]["match_rate"] == pytest.approx(0.75)
    assert s["metrics"]["paper"]["k=20"]["n_matched"] == 3
    sg = s["spacegroups"]
    assert list(sg) == ["221", "225"]
    assert sg["221"]["n"] == 3 and sg["225"]["n"] == 1
    assert sg["221"]["field"]["k=1"] == pytest.approx(1 / 3)
    assert sg["221"]["field"]["k=20"] == pytest.approx(2 / 3)
    assert sg["225"]["paper"] == {"k=1": 1.0, "k=20": 1.0}
    seen, unseen = s["subsets"]["seen"], s["subsets"]["unseen"]
    assert seen["metrics"]["field"]["k=1"]["match_rate"] == 0.5
    assert seen["metrics"]["field"]["k=20"]["match_rate"] == 1.0
    assert seen["metrics"]["field"]["k=20"]["rmse"] == pytest.approx(0.0, abs=1e-8)
    assert unseen["metrics"]["field"]["k=20"]["match_rate"] == 0.5
    assert unseen["metrics"]["field"]["k=20"]["rmse"] == pytest.approx(r.best_rms("field", 20)[2])
    assert unseen["validity"]["n_samples"] == 4
    assert s["subsets"]["empty"]["metrics"]["field"]["k=1"]["match_rate"] is None
    with pytest.raises(IndexError):
        r.summary({"bad": [4]})


def test_json_round_trip_and_markdown(tmp_path):
    samples, targets = _dataset()
    r = match(samples, targets, tolerances={"mine": dict(ltol=0.3, stol=0.5, angle_tol=10)})
    path = tmp_path / "eval.json"
    r.to_json(path, subsets={"seen": [0, 1]})
    data = json.loads(path.read_text())
    assert data["summary"] == json.loads(json.dumps(r.summary({"seen": [0, 1]})))
    back = EvaluationResult.from_json(path)
    assert back.to_dict() == json.loads(json.dumps(r.to_dict()))
    assert back.summary() == json.loads(json.dumps(r.summary()))
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no temporary left behind
    md = r.to_markdown(subsets={"seen": [0, 1]})
    rmse = r.summary()["metrics"]["mine"]["k=20"]["rmse"]
    assert "50.00 %" in md and "75.00 %" in md and f"{rmse:.4f}" in md
    assert "| mine (0.3/0.5/10) | 1 |" in md
    assert "| seen | mine (0.3/0.5/10) | 20 | 100.00 %" in md
    assert "| 221 | 3 |" in md and "| 225 | 1 |" in md


def test_parallel_equals_serial():
    samples, targets = _dataset()
    serial = match(samples, targets, n_jobs=1)
    parallel = match(samples, targets, n_jobs=2)
    assert parallel.to_dict() == serial.to_dict()


def test_evaluate_structures_and_require_fit():
    samples, targets = _dataset()
    s = evaluate_structures(samples, targets, tolerances=("field",), ks=(1,), progress=False,
                            subsets={"a": [0]}, require_fit=True)
    assert s["metrics"]["field"]["k=1"]["n_matched"] == 2
    assert s["subsets"]["a"]["metrics"]["field"]["k=1"]["match_rate"] == 1.0
    assert s["settings"]["require_fit"] is True
