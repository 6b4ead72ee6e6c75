"""User conditions -> checked condition tensors for a trained model.

A model can only be asked what its inputs can express: a cell of at most ``max_atoms`` atoms
of elements H-Lr, a space group 1-230 and a finite energy. Inside those limits a model can
still be asked about chemistry, symmetry or energies it never saw in training; that is a
:class:`ConditionWarning` (or an error with ``strict=True``) naming what is new to it.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from ..representation.elements import atomic_numbers_of
from ..representation.spacegroups import validate_spacegroup
from ..structures import composition_amounts


def chemical_symbol(z: int) -> str:
    return chemical_symbols[int(z)]


class ConditionWarning(UserWarning):
    """A condition outside what the model saw in training (elements, space group, energy)."""


def _warn_or_raise(message: str, strict: bool) -> None:
    if strict:
        raise ValueError(message + " (strict=True)")
    warnings.warn(message, ConditionWarning, stacklevel=4)


def parse_composition(composition: Any) -> dict[int, int]:
    """Atoms of one cell as ``{Z: count}`` from a formula, dict, pymatgen Composition or Atoms.

    Parameters
    ----------
    composition
        A formula string (``"SrTiO3"``, ``"Ta1W1B6"``, ``"C8"``, parentheses allowed), a
        mapping of symbols or atomic numbers to counts, a pymatgen ``Composition``, an
        ``ase.Atoms`` or a sequence of symbols / atomic numbers (one per atom). The counts are
        the atoms of the generated cell, so they must be positive integers.

    Raises
    ------
    ValueError
        For an unknown element, a non-integer or non-positive count, or an empty composition.
    """
    from ase import Atoms

    if isinstance(composition, Atoms):
        composition = composition.numbers.tolist()
    if hasattr(composition, "get_el_amt_dict"):  # pymatgen Composition
        composition = composition.get_el_amt_dict()
    if not isinstance(composition, (str, Mapping)):
        if not isinstance(composition, Iterable):
            raise TypeError(
                f"composition must be a formula, a dict, a pymatgen Composition, Atoms or a list of "
                f"elements, not {type(composition).__name__}"
            )
        atoms_of: dict = {}
        for element in composition:  # one per atom
            atoms_of[element] = atoms_of.get(element, 0) + 1
        composition = atoms_of
    counts = composition_amounts(composition)
    return dict(zip(atomic_numbers_of(list(counts)).tolist(), counts.values(), strict=True))


def formula_of(counts: Mapping[int, int]) -> str:
    """Cell formula in the model's element order (``Sr1Ti1O3`` style, pymatgen's order)."""
    from pymatgen.core import Composition

    comp = Composition({chemical_symbol(z): n for z, n in counts.items()})
    return comp.formula.replace(" ", "")


def spacegroup_list(spacegroup: Any) -> list[int]:
    """One or several space groups (numbers or symbols) as a list of numbers 1-230."""
    if isinstance(spacegroup, (str, int, np.integer)) or not isinstance(spacegroup, Iterable):
        return [validate_spacegroup(spacegroup)]
    out = [validate_spacegroup(s) for s in spacegroup]
    if not out:
        raise ValueError("no space group given")
    return out


def energy_list(energy: Any, name: str = "formation_energy") -> list[float]:
    """One or several energies (eV/atom) as a list of finite floats."""
    values = [energy] if np.ndim(energy) == 0 else list(np.ravel(np.asarray(energy, dtype=object)))
    if not values:
        raise ValueError(f"no {name} given")
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name} {v!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{name} {v} is not finite")
        out.append(f)
    return out


def parse_energy_grid(text: str) -> list[float]:
    """``"START:STOP:STEP"`` (STOP included when on the grid), or comma-separated values."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"energy grid {text!r} is not START:STOP:STEP")
        start, stop, step = (float(p) for p in parts)
        if step == 0 or not all(math.isfinite(v) for v in (start, stop, step)):
            raise ValueError(f"energy grid {text!r} needs a finite, non-zero step")
        if (stop - start) * step < 0:
            raise ValueError(f"energy grid {text!r}: the step goes away from STOP")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        return [round(start + i * step, 10) for i in range(n)]
    return energy_list([p for p in text.split(",") if p.strip()], "energy")


def wyckoff_compatible(counts: Sequence[int], spacegroup: int) -> bool | None:
    """Whether element counts can fill Wyckoff positions of ``spacegroup`` (pyxtal), else None.

    The cell may be primitive or conventional, so the counts are tried as given and times the
    number of lattice points of the centred cell. ``None`` when pyxtal is not installed.
    """
    try:
        from pyxtal.symmetry import Group
    except ImportError:
        return None
    group = Group(int(spacegroup))
    centring = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "F": 4, "R": 3}.get(group.symbol[0], 1)
    for factor in sorted({1, centring}):
        if group.check_compatible([int(c) * factor for c in counts])[0]:
            return True
    return False


#: quantile of the training energies that ``sample()`` asks for when no energy is given
DEFAULT_ENERGY_QUANTILE = 0.1
#: fewest training energies a group (chemical system, cell size) needs to set the default energy
MIN_ENERGY_GROUP = 5


class ModelDomain:
    """What a model was trained on (from its card) and the checks against it."""

    def __init__(self, meta: Mapping[str, Any], name: str = "model"):
        card = meta.get("card", {})
        self.name = name
        self.max_atoms = int(meta["data_schema"]["max_atoms"])
        self.elements = set(card.get("elements") or [])
        self.spacegroups = set(card.get("spacegroups") or [])
        self.max_sites = card.get("max_sites")
        self.energy_range = card.get("energy_range")
        self.energy_change_range = card.get("energy_change_range")
        self.statistics = card.get("condition_statistics") or {}
        self.min_sites = card.get("min_sites", self.statistics.get("min_sites"))

    def check_composition(self, counts: Mapping[int, int], strict: bool = False) -> None:
        n = sum(counts.values())
        if n > self.max_atoms:
            raise ValueError(
                f"composition {formula_of(counts)} has {n} atoms; {self.name} supports at most "
                f"{self.max_atoms} atoms per cell"
            )
        if self.elements:
            new = [chemical_symbol(z) for z in sorted(counts) if z not in self.elements]
            if new:
                _warn_or_raise(
                    f"{self.name} never saw {', '.join(new)} in training (it knows "
                    f"{len(self.elements)} elements); expect poor structures",
                    strict,
                )
        if self.max_sites is not None and n > int(self.max_sites):
            _warn_or_raise(
                f"composition {formula_of(counts)} has {n} atoms; {self.name} was trained on cells of "
                f"at most {self.max_sites}",
                strict,
            )
        if self.min_sites is not None and n < int(self.min_sites):
            _warn_or_raise(
                f"composition {formula_of(counts)} has {n} atoms; {self.name} was trained on cells of "
                f"at least {self.min_sites} atoms (give a larger cell, e.g. {_multiple(counts, int(self.min_sites))})",
                strict,
            )

    def check_spacegroup(self, counts: Mapping[int, int], spacegroup: int, strict: bool = False) -> None:
        if self.spacegroups and spacegroup not in self.spacegroups:
            known = sorted(self.spacegroups)
            shown = ", ".join(map(str, known[:20])) + (" ..." if len(known) > 20 else "")
            _warn_or_raise(
                f"{self.name} never saw space group {spacegroup} in training (it saw {shown})", strict
            )
        ok = _compatible(tuple(counts.values()), int(spacegroup))
        if ok is False:
            _warn_or_raise(
                f"composition {formula_of(counts)} cannot fill the Wyckoff positions of space group "
                f"{spacegroup} (neither as a primitive nor as a conventional cell)",
                strict,
            )

    def check_energy(self, energy: float, strict: bool = False, change: bool = False) -> None:
        rng = self.energy_change_range if change else self.energy_range
        what = "energy change" if change else "formation energy"
        if change and energy > 0:
            _warn_or_raise(
                f"energy change {energy:+.3f} eV/atom is positive; {self.name} was trained toward more "
                "stable polymorphs (negative changes)",
                strict,
            )
        if rng is not None:
            low, high = rng
            margin = 0.1 * (high - low)
            if not low - margin <= energy <= high + margin:
                _warn_or_raise(
                    f"{what} {energy:.3f} eV/atom is outside the training range [{low:.3f}, {high:.3f}] "
                    f"of {self.name}",
                    strict,
                )

    # ---- defaults: what sample() asks for when the user gives no space group or energy ----

    def default_spacegroups(self, counts: Mapping[int, int]) -> tuple[list[int], np.ndarray, str]:
        """Space groups a cell of ``counts`` can be asked for, their weights, and where they came from.

        The candidates are the space groups the model saw in training for cells of this many
        atoms (all training cells when it saw none of this size), weighted by how often it saw
        them, less those whose Wyckoff positions the composition cannot fill (pyxtal). Cards
        without training statistics give every space group of the card equal weight.

        Raises
        ------
        ValueError
            When no space group the model saw can hold the composition.
        """
        n = int(sum(counts.values()))
        by_size = self.statistics.get("spacegroups_by_size") or {}
        if str(n) in by_size:
            seen = {int(k): int(v) for k, v in by_size[str(n)].items()}
            source = f"training frequencies of {n}-atom cells"
        elif by_size:
            seen = {}
            for table in by_size.values():
                for k, v in table.items():
                    seen[int(k)] = seen.get(int(k), 0) + int(v)
            source = f"training frequencies of all cell sizes (none had {n} atoms)"
        elif self.spacegroups:
            seen = dict.fromkeys(sorted(self.spacegroups), 1)
            source = "the card's space groups, equal weights (no training statistics)"
        else:
            raise ValueError(f"{self.name} does not say which space groups it saw: give a spacegroup")
        fill = tuple(counts.values())
        allowed = [sg for sg in sorted(seen) if _compatible(fill, sg) is not False]
        if not allowed:
            raise ValueError(
                f"composition {formula_of(counts)} cannot fill the Wyckoff positions of any space "
                f"group {self.name} saw ({', '.join(map(str, sorted(seen)))}): give a spacegroup"
            )
        weights = np.array([seen[sg] for sg in allowed], dtype=float)
        return allowed, weights / weights.sum(), source

    def default_energy(self, counts: Mapping[int, int], quantile: float = DEFAULT_ENERGY_QUANTILE) -> tuple[float, str]:
        """A low energy to ask for: the ``quantile`` of the training energies of this chemistry.

        The training energies come from the first group with at least
        :data:`MIN_ENERGY_GROUP` structures: the same chemical system (``"O-Sr-Ti"``); then
        the systems that share all elements but one with it, all but two, down to half of
        them; then cells of the same number of atoms; then every training structure. Cards without
        training statistics use the point ``quantile`` of the way up the card's energy range.
        Returns the energy (eV/atom) and a sentence saying where it came from.
        """
        if not 0.0 <= float(quantile) <= 1.0:
            raise ValueError(f"energy quantile must lie in [0, 1], got {quantile}")
        stats = self.statistics
        elements = sorted(chemical_symbol(z) for z in counts)
        system = "-".join(elements)
        by_system = stats.get("energies_by_system", {})
        n = str(int(sum(counts.values())))
        groups = [(by_system.get(system), f"the chemical system {system}")]
        # then systems that share all but one, two, ... of the elements (at least half of them)
        for shared in range(len(elements) - 1, (len(elements) + 1) // 2 - 1, -1):
            if shared < 1:
                break
            pooled = [
                v for key, v in by_system.items() if len(set(key.split("-")) & set(elements)) >= shared
            ]
            groups.append((
                [e for v in pooled for e in v],
                f"{len(pooled)} chemical systems sharing {shared} of the elements {', '.join(elements)}",
            ))
        groups += [
            (stats.get("energies_by_size", {}).get(n), f"{n}-atom cells"),
            (stats.get("energies"), "all training structures"),
        ]
        for values, what in groups:
            if values and len(values) >= MIN_ENERGY_GROUP:
                energy = float(np.quantile(np.asarray(values, dtype=float), quantile))
                return energy, f"quantile {quantile:g} of the training energies of {what}"
        if self.energy_range is None:
            raise ValueError(f"{self.name} does not say which energies it saw: give a formation_energy")
        low, high = self.energy_range
        return float(low + quantile * (high - low)), f"quantile {quantile:g} of the card's energy range"


#: the warning when pyxtal is missing and space groups go unchecked
NO_WYCKOFF_CHECK = (
    "pyxtal is not installed, so no Wyckoff check was made: space groups the composition cannot "
    "fill are not refused (pip install pyxtal, or the package's [ml] extra)"
)


def _compatible(counts: tuple[int, ...], spacegroup: int) -> bool | None:
    """:func:`wyckoff_compatible`, cached; warns (:data:`NO_WYCKOFF_CHECK`) when it cannot tell."""
    ok = _compatible_cached(counts, spacegroup)
    if ok is None:
        warnings.warn(NO_WYCKOFF_CHECK, ConditionWarning, stacklevel=3)
    return ok


@functools.lru_cache(maxsize=4096)
def _compatible_cached(counts: tuple[int, ...], spacegroup: int) -> bool | None:
    return wyckoff_compatible(list(counts), spacegroup)


def _multiple(counts: Mapping[int, int], at_least: int) -> str:
    """The formula of ``counts`` repeated until the cell holds ``at_least`` atoms."""
    n = sum(counts.values())
    factor = -(-at_least // n)
    return formula_of({z: c * factor for z, c in counts.items()})


__all__ = [
    "DEFAULT_ENERGY_QUANTILE",
    "ConditionWarning",
    "NO_WYCKOFF_CHECK",
    "ModelDomain",
    "energy_list",
    "formula_of",
    "parse_composition",
    "parse_energy_grid",
    "spacegroup_list",
    "wyckoff_compatible",
]
