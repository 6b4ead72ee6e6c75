"""Element one-hot vectors and the shipped elemental-property table."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ase_crystalgen.representation import elements as el

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "ase_crystalgen" / "data"


def raw(symbol: str, name: str) -> float:
    table = el.property_table(standardised=False)
    return table[el.ELEMENT_SYMBOLS.index(symbol), el.PROPERTY_NAMES.index(name)]


def test_constants():
    assert el.N_ELEMENTS == len(el.ELEMENT_SYMBOLS) == 103
    assert el.ELEMENT_SYMBOLS[0] == "H" and el.ELEMENT_SYMBOLS[25] == "Fe" and el.ELEMENT_SYMBOLS[-1] == "Lr"
    assert el.N_PROPERTIES == len(el.PROPERTY_NAMES) == len(set(el.PROPERTY_NAMES)) == 22


@pytest.mark.parametrize("standardised", [True, False])
def test_table_shape_and_finite(standardised):
    table = el.property_table(standardised)
    assert table.shape == (103, 22) and table.dtype == np.float64
    assert np.isfinite(table).all()


def test_table_is_a_copy():
    el.property_table()[:] = 0.0
    assert np.abs(el.property_table()).sum() > 0


def test_standardised_columns():
    table = el.property_table()
    np.testing.assert_allclose(table.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(table.std(axis=0), 1.0, atol=1e-12)
    raw_table = el.property_table(standardised=False)
    meta = json.loads((DATA / "elemental_properties.json").read_text())
    mean = np.array([f["mean"] for f in meta["features"]])
    std = np.array([f["std"] for f in meta["features"]])
    np.testing.assert_allclose(table * std + mean, raw_table, rtol=1e-12, atol=1e-9)


def test_known_raw_values():
    table = el.property_table(standardised=False)
    np.testing.assert_array_equal(table[:, el.PROPERTY_NAMES.index("atomic_number")], np.arange(1, 104))
    assert raw("F", "en_pauling") == pytest.approx(3.98)
    assert raw("O", "en_pauling") == pytest.approx(3.44)
    assert raw("C", "atomic_weight") == pytest.approx(12.011, abs=1e-3)
    assert raw("Fe", "period") == 4 and raw("Fe", "group") == 8
    assert raw("Fe", "melting_point") == pytest.approx(1811.15)
    assert raw("Fe", "ionization_energy") == pytest.approx(7.9025, abs=1e-4)
    assert 10 ** raw("Fe", "log10_density") == pytest.approx(7.87)
    # valence subshells as mendeleev's nvalence(): Fe 3d6 4s2, Ga 4s2 4p1 (filled 3d excluded)
    assert [raw("Fe", f"n_{l}_valence") for l in "spdf"] == [2, 0, 6, 0]
    assert [raw("Ga", f"n_{l}_valence") for l in "spdf"] == [2, 1, 0, 0]
    assert raw("Fe", "n_unfilled") == 4 and raw("Ne", "n_unfilled") == 0


def test_conventions_and_imputed_entries():
    assert raw("Ce", "group") == raw("Lr", "group") == raw("La", "group") == 3
    # unbound anion, and a monatomic-gas standard state
    assert raw("Ne", "electron_affinity") == 0 and raw("He", "electron_affinity") == 0
    assert raw("Ar", "heat_of_formation") == 0
    meta = json.loads((DATA / "elemental_properties.json").read_text())
    imputed = {(e["symbol"], e["feature"]) for e in meta["imputed"]}
    assert ("Ce", "group") in imputed and ("Fe", "group") not in imputed
    assert set(meta["imputation_rules"]) >= {e["rule"] for e in meta["imputed"]}
    for f in meta["features"]:
        assert f["n_imputed"] == sum(1 for e in meta["imputed"] if e["feature"] == f["name"])
    # the csv's own record of imputed entries agrees with the json
    lines = (DATA / "elemental_properties.csv").read_text().splitlines()[1:]
    from_csv = {(r.split(",")[0], name) for r in lines for name in r.split(",")[-1].split(";") if name}
    assert from_csv == imputed


def test_one_hot():
    numbers = [26, 8, 8, 1]
    oh = el.one_hot(numbers, length=6)
    assert oh.shape == (6, 103) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.sum(axis=1), [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(oh[:4].argmax(axis=1) + 1, numbers)
    assert el.one_hot(["Fe", "O"]).shape == (2, 103)
    assert el.one_hot([], length=3).sum() == 0


def test_element_properties():
    props = el.element_properties(["Fe", 8], length=4)
    assert props.shape == (4, 22) and props.dtype == np.float32
    table = el.property_table()
    np.testing.assert_allclose(props[:2], table[[25, 7]], rtol=1e-6)
    assert not props[2:].any()
    raw_props = el.element_properties(np.array([6]), standardised=False)
    assert raw_props.shape == (1, 22) and raw_props[0, el.PROPERTY_NAMES.index("atomic_number")] == 6


def test_atomic_numbers_of():
    np.testing.assert_array_equal(el.atomic_numbers_of(["H", "Fe", 8, np.int64(103)]), [1, 26, 8, 103])
    np.testing.assert_array_equal(el.atomic_numbers_of(np.array([1, 103])), [1, 103])
    assert el.atomic_numbers_of([]).shape == (0,)


@pytest.mark.parametrize(
    "arg, message",
    [
        (["Fe", "Xx"], "unknown element 'Xx'"),
        (["fe"], "unknown element 'fe'"),
        (["Og"], "element Og (Z=118) is outside the supported range H-Lr (Z=1-103)"),
        (["Rf"], "element Rf (Z=104) is outside the supported range H-Lr (Z=1-103)"),
        ([0], "atomic number 0 is outside the supported range 1-103"),
        ([1, 104], "atomic number 104 is outside the supported range 1-103"),
        (np.array([5, -1]), "atomic number -1 is outside the supported range 1-103"),
    ],
)
def test_atomic_numbers_of_errors(arg, message):
    with pytest.raises(ValueError) as info:
        el.atomic_numbers_of(arg)
    assert str(info.value) == message


@pytest.mark.parametrize("arg", ["Fe", [1.0], [True]])
def test_atomic_numbers_of_type_errors(arg):
    with pytest.raises(TypeError):
        el.atomic_numbers_of(arg)


@pytest.mark.parametrize("func", [el.one_hot, el.element_properties])
def test_too_many_atoms(func):
    with pytest.raises(ValueError) as info:
        func([1, 2, 3, 4], length=3)
    assert str(info.value) == "4 atoms do not fit in 3 rows"


def test_runtime_does_not_import_mendeleev():
    code = (
        "import sys; from ase_crystalgen.representation import elements as el; el.property_table(); "
        "print('mendeleev' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_table_is_reproducible(tmp_path):
    pytest.importorskip("mendeleev")
    import json
    from importlib.metadata import version

    shipped = json.loads((DATA / "elemental_properties.json").read_text())["mendeleev_version"]
    if version("mendeleev") != shipped:  # other releases may revise the data
        pytest.skip(f"table built with mendeleev {shipped}, installed {version('mendeleev')}")
    script = ROOT / "scripts" / "build_elemental_properties.py"
    subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path)], check=True, capture_output=True)
    for name in ("elemental_properties.csv", "elemental_properties.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
