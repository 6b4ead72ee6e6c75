"""Build the elemental-property table shipped in ``ase_crystalgen/data``.

Development-time only: needs the ``mendeleev`` package, which the runtime module
:mod:`ase_crystalgen.representation.elements` does not import.

Writes ``elemental_properties.csv`` (one row per element H-Lr: symbol, Z, the 22 raw feature
values and the ``;``-separated names of the features whose value is not mendeleev's) and
``elemental_properties.json`` (feature names, units, sources, the mean and standard deviation
used for standardisation, the imputation rules and every imputed entry). Re-running the script
with the same mendeleev version reproduces both files byte for byte. See
``docs/elemental-properties.md``.

Usage::

    python scripts/build_elemental_properties.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import warnings
from pathlib import Path

import mendeleev
from mendeleev.econf import ElectronicConfiguration
from mendeleev.fetch import fetch_table

N_ELEMENTS = 103
DEFAULT_OUT_DIR = Path(__file__).resolve().parents[1] / "ase_crystalgen" / "data"
CSV_NAME = "elemental_properties.csv"
JSON_NAME = "elemental_properties.json"
# 10 significant digits: far below the accuracy of the data, and short enough to be stable
FLOAT_FORMAT = ".10g"

# (name, unit, mendeleev source, description)
FEATURES: tuple[tuple[str, str, str, str], ...] = (
    ("atomic_number", "", "atomic_number", "Atomic number Z."),
    ("period", "", "period", "Period (row) of the periodic table."),
    ("group", "", "group_id",
     "IUPAC group 1-18; the f-block elements Ce-Lu and Th-Lr, which mendeleev leaves without a "
     "group, are placed in group 3 with La and Ac."),
    ("mendeleev_number", "", "mendeleev_number", "Mendeleev number (chemical-similarity ordering)."),
    ("atomic_weight", "Da", "atomic_weight", "Standard atomic weight."),
    ("atomic_radius", "pm", "atomic_radius_rahm", "Atomic radius of Rahm, Hoffmann and Ashcroft (2016)."),
    ("covalent_radius", "pm", "covalent_radius_pyykko", "Single-bond covalent radius of Pyykko (2009)."),
    ("vdw_radius", "pm", "vdw_radius", "Van der Waals radius (CRC Handbook, 95th ed.)."),
    ("log10_atomic_volume", "log10(cm^3/mol)", "atomic_weight / density",
     "log10 of the molar volume of the element at 295 K (mendeleev's atomic_volume); the log keeps "
     "the gases (1.2e4-2.4e4 cm^3/mol) from swamping the solids (5-120 cm^3/mol)."),
    ("log10_density", "log10(g/cm^3)", "density", "log10 of the density at 295 K, for the same reason."),
    ("en_pauling", "", "en_pauling", "Pauling electronegativity."),
    ("ionization_energy", "eV", "ionizationenergies (degree 1)", "First ionisation energy."),
    ("electron_affinity", "eV", "electron_affinity",
     "Electron affinity; 0 where the anion is unbound (negative values, and missing ones outside the "
     "f block)."),
    ("dipole_polarizability", "bohr^3", "dipole_polarizability", "Static dipole polarisability."),
    ("melting_point", "K", "phasetransitions.melting_point",
     "Melting point at 1 atm; for allotropic elements that of the allotrope that melts (solid-solid "
     "transition rows are skipped, sublimation rows used only when nothing else is given)."),
    ("boiling_point", "K", "phasetransitions.boiling_point",
     "Boiling (or sublimation) point at 1 atm, same allotrope as melting_point."),
    ("heat_of_formation", "kJ/mol", "heat_of_formation",
     "Enthalpy of formation of the gaseous atom from the standard state (atomisation enthalpy), a "
     "proxy for the cohesive energy."),
    ("n_s_valence", "", "electronic_configuration",
     "Valence s electrons. Valence subshells as in mendeleev's Element.nvalence(): ns and np of the "
     "period n, plus (n-1)d for d- and f-block elements and (n-2)f for the f block."),
    ("n_p_valence", "", "electronic_configuration", "Valence p electrons (see n_s_valence)."),
    ("n_d_valence", "", "electronic_configuration", "Valence d electrons (see n_s_valence)."),
    ("n_f_valence", "", "electronic_configuration", "Valence f electrons (see n_s_valence)."),
    ("n_unfilled", "", "electronic_configuration",
     "Empty states in the partly filled valence subshells (sum of capacity - occupancy over the "
     "occupied valence subshells), as Magpie's NUnfilled."),
)
FEATURE_NAMES = tuple(f[0] for f in FEATURES)

RULES = {
    "f_block_group_3": "f-block element (Ce-Lu, Th-Lr) placed in group 3 by convention.",
    "group_interpolation": "Not an f-block element: linear interpolation in the period between the "
    "nearest elements of the same group that have a value; beyond the last one, its value is carried.",
    "series_interpolation": "f-block element: linear interpolation in Z between the nearest f-block "
    "elements of the same period (lanthanides Ce-Lu, actinides Th-Lr) that have a value; beyond the "
    "last one, its value is carried.",
    "homologue": "f-block series without any value: the value of the element 32 places away in the "
    "other series (actinide <- lanthanide), after that one's own imputation.",
    "unbound_anion_zero": "Negative electron affinity, or a missing one outside the f block: the anion "
    "is unbound (noble gases, Be, Mg, N, Mn, group 12, ...), recorded as 0 eV.",
    "monatomic_gas_zero": "Noble gas without a heat of formation: the standard state is the "
    "monatomic gas, so the atomisation enthalpy is 0 by definition.",
    "sublimation_point": "The element sublimes at 1 atm (no liquid), the sublimation point is used as "
    "the melting point.",
}


def valence_counts(econf: str, block: str, period: int) -> dict[str, int]:
    """Valence s/p/d/f electron counts and empty states, valence subshells as Element.nvalence()."""
    conf = ElectronicConfiguration(econf).conf
    valence = {(period, "s"), (period, "p")}
    if block in ("d", "f"):
        valence.add((period - 1, "d"))
    if block == "f":
        valence.add((period - 2, "f"))
    capacity = {"s": 2, "p": 6, "d": 10, "f": 14}
    counts = {f"n_{l}_valence": 0 for l in "spdf"}
    unfilled = 0
    for (n, l), occ in conf.items():
        if (n, l) in valence:
            counts[f"n_{l}_valence"] += occ
            unfilled += capacity[l] - occ
    counts["n_unfilled"] = unfilled
    return counts


def _phase_transition(rows: list[dict]) -> tuple[float | None, float | None, bool]:
    """Melting point, boiling point, and whether the melting point is a sublimation point."""
    rows = [r for r in rows if r["is_transition"] != 1] or rows
    melting = [r for r in rows if r["is_sublimation_point"] != 1] or rows
    row = melting[0]
    mp, bp = _num(row["melting_point"]), _num(row["boiling_point"])
    if mp is None and row["is_sublimation_point"] == 1:
        return bp, bp, True
    return mp, bp, False


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _records(df) -> list[dict]:
    return df.to_dict("records")


def raw_values() -> tuple[list[dict], dict[tuple[str, str], str]]:
    """Per-element feature dicts (None = missing) and the (symbol, feature) -> rule of overrides."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elements = sorted(_records(fetch_table("elements")), key=lambda r: r["atomic_number"])
        transitions = _records(fetch_table("phasetransitions"))
        ionisation = _records(fetch_table("ionizationenergies"))
    elements = elements[:N_ELEMENTS]
    assert [r["atomic_number"] for r in elements] == list(range(1, N_ELEMENTS + 1))
    ie1 = {r["atomic_number"]: r["ionization_energy"] for r in ionisation if r["ion_charge"] == 0}

    rows, rules = [], {}
    for el in elements:
        z, sym = el["atomic_number"], el["symbol"]
        mp, bp, sublimes = _phase_transition(
            sorted((r for r in transitions if r["atomic_number"] == z), key=lambda r: r["id"])
        )
        if sublimes:
            rules[sym, "melting_point"] = "sublimation_point"
        group = _num(el["group_id"])
        if group is None and el["block"] == "f":
            group = 3.0
            rules[sym, "group"] = "f_block_group_3"
        ea = _num(el["electron_affinity"])
        if (ea is not None and ea < 0) or (ea is None and el["block"] != "f"):
            ea = 0.0
            rules[sym, "electron_affinity"] = "unbound_anion_zero"
        hof = _num(el["heat_of_formation"])
        if hof is None and el["group_id"] == 18:
            hof = 0.0
            rules[sym, "heat_of_formation"] = "monatomic_gas_zero"
        density = _num(el["density"])
        row = {
            "symbol": sym, "block": el["block"],
            "atomic_number": float(z),
            "period": float(el["period"]),
            "group": group,
            "mendeleev_number": _num(el["mendeleev_number"]),
            "atomic_weight": _num(el["atomic_weight"]),
            "atomic_radius": _num(el["atomic_radius_rahm"]),
            "covalent_radius": _num(el["covalent_radius_pyykko"]),
            "vdw_radius": _num(el["vdw_radius"]),
            "log10_atomic_volume": math.log10(el["atomic_weight"] / density),
            "log10_density": math.log10(density),
            "en_pauling": _num(el["en_pauling"]),
            "ionization_energy": _num(ie1.get(z)),
            "electron_affinity": ea,
            "dipole_polarizability": _num(el["dipole_polarizability"]),
            "melting_point": mp,
            "boiling_point": bp,
            "heat_of_formation": hof,
        }
        counts = valence_counts(el["electronic_configuration"], el["block"], el["period"])
        row.update({k: float(v) for k, v in counts.items()})
        rows.append(row)
    return rows, rules


def _interpolate(x: float, known: list[tuple[float, float]]) -> float:
    """Linear interpolation in ``known`` (sorted (x, value) pairs), nearest value carried beyond."""
    below = [p for p in known if p[0] < x]
    above = [p for p in known if p[0] > x]
    if not below:
        return above[0][1]
    if not above:
        return below[-1][1]
    (x0, y0), (x1, y1) = below[-1], above[0]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def impute(rows: list[dict], rules: dict[tuple[str, str], str]) -> None:
    """Fill the missing values in place (see ``RULES``), recording the rule used."""
    for name in FEATURE_NAMES:
        missing = [r for r in rows if r[name] is None]
        # the zeros of the physical overrides are data; interpolated values are not
        guessed = {r["symbol"] for r in missing}
        # lanthanides first: the homologue rule for the actinides needs their final values
        for r in sorted(missing, key=lambda r: (r["block"] != "f", r["period"], r["atomic_number"])):
            if r["block"] == "f":
                known = [(s["atomic_number"], s[name]) for s in rows
                         if s["block"] == "f" and s["period"] == r["period"] and s["symbol"] not in guessed]
                rule, x = "series_interpolation", r["atomic_number"]
            else:
                known = [(s["period"], s[name]) for s in rows
                         if s["block"] != "f" and s["group"] == r["group"] and s["symbol"] not in guessed]
                rule, x = "group_interpolation", r["period"]
            if known:
                r[name] = _interpolate(x, known)
            elif r["block"] == "f" and r["period"] == 7:
                rule = "homologue"
                r[name] = rows[int(r["atomic_number"]) - 1 - 32][name]
            else:
                raise RuntimeError(f"no rule to impute {name} of {r['symbol']}")
            rules[r["symbol"], name] = rule


def _fmt(value: float) -> str:
    return format(value, FLOAT_FORMAT)


def build(out_dir: Path) -> None:
    rows, rules = raw_values()
    impute(rows, rules)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["symbol", "Z", *FEATURE_NAMES, "imputed"])
    table = []
    for r in rows:
        text = [_fmt(r[name]) for name in FEATURE_NAMES]
        # mean and std from the written (rounded) values, so that the runtime standardisation is exact
        table.append([float(t) for t in text])
        flagged = ";".join(name for name in FEATURE_NAMES if (r["symbol"], name) in rules)
        writer.writerow([r["symbol"], int(r["atomic_number"]), *text, flagged])

    features = []
    for j, (name, unit, source, description) in enumerate(FEATURES):
        column = [row[j] for row in table]
        mean = math.fsum(column) / len(column)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in column) / len(column))
        features.append({
            "name": name, "unit": unit, "source": source, "description": description,
            "mean": mean, "std": std,
            "n_imputed": sum(1 for (_, feat) in rules if feat == name),
        })
    imputed = [
        {"symbol": r["symbol"], "feature": name, "rule": rules[r["symbol"], name]}
        for r in rows for name in FEATURE_NAMES if (r["symbol"], name) in rules
    ]
    meta = {
        "description": "Elemental-property table of ase_crystalgen: 22 features for H-Lr (Z=1-103).",
        "generated_by": "scripts/build_elemental_properties.py",
        "mendeleev_version": mendeleev.__version__,
        "csv": CSV_NAME,
        "n_elements": N_ELEMENTS,
        "standardisation": "(value - mean) / std per feature, with the mean and the population "
        "standard deviation (ddof=0) over the 103 elements of the values in the csv.",
        "features": features,
        "imputation_rules": RULES,
        "imputed": imputed,
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CSV_NAME).write_text(buf.getvalue(), encoding="utf-8")
    (out_dir / JSON_NAME).write_text(json.dumps(meta, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help="where to write the csv and json (default: ase_crystalgen/data)")
    args = parser.parse_args(argv)
    build(args.out_dir)


if __name__ == "__main__":
    main()
