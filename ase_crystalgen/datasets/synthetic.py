"""Synthetic polymorphs: random symmetric crystals of EMT metals, relaxed, with formation energies.

A small, real polymorph data set that is made in seconds: pyxtal places the atoms of a composition
on the Wyckoff positions of a requested space group, ASE's EMT relaxes positions and cell under
that symmetry, and each structure gets its formation energy per atom against relaxed fcc elemental
references. Structures that share a reduced formula form a polymorph group, the unit of the
conditional-generation data sets (formation energy per atom and space group per member).

pyxtal is an optional dependency (``pip install 'ase_crystalgen[synthetic]'``).

Examples
--------
>>> import numpy as np
>>> from ase_crystalgen.datasets.synthetic import generate_polymorphs
>>> structures = generate_polymorphs(["Cu3Au"], [221, 123], rng=np.random.default_rng(0))
>>> [(a.info["id"], a.info["spacegroup"], round(a.info["formation_energy"], 3))
...  for a in structures]  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import spglib
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT
from ase.data import atomic_numbers, covalent_radii, reference_states
from tqdm.auto import tqdm

from .._threads import single_threaded_blas
from ..structures import as_rng, composition_amounts, min_distance

__all__ = [
    "DEFAULT_COMPOSITIONS",
    "DEFAULT_MAX_ATOMS",
    "DEFAULT_MIN_ATOMS",
    "DEFAULT_SPACEGROUPS",
    "EMT_ELEMENTS",
    "default_synthetic_set",
    "fcc_chemical_potentials",
    "formation_energy",
    "generate_polymorphs",
    "random_polymorph",
    "relax_polymorph",
    "write_synthetic_set",
]

#: Metals parametrised by ASE's EMT. EMT also has H, C, N and O, but only as a rough fit meant
#: for adsorbates on these metals, so they are left out of the data sets.
EMT_ELEMENTS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")

#: Relaxed structures with two atoms closer than this (Å) are discarded.
MIN_DISTANCE = 1.5

#: Relaxed structures with a volume above this multiple of the summed elemental atomic volumes
#: are discarded: EMT has a finite cutoff, so layers pulled apart stop feeling each other and a
#: cell relaxation happily "converges" with vacuum in it.
MAX_VOLUME_RATIO = 3.0

#: info keys of a structure that a relaxation invalidates.
_DERIVED_KEYS = ("formation_energy", "spacegroup", "energy_per_atom", "converged", "n_steps")

_PYXTAL_MISSING = "pyxtal is needed for synthetic polymorphs: pip install 'ase_crystalgen[synthetic]'"

CalculatorFactory = Callable[[], Calculator]


# --------------------------------------------------------------------------------------- checks


def _check_rng(rng) -> np.random.Generator:
    return as_rng(rng, seeds=False)


def _check_spacegroup(spacegroup) -> int:
    if isinstance(spacegroup, bool) or not isinstance(spacegroup, (int, np.integer)):
        raise ValueError(f"space group must be an integer, got {spacegroup!r}")
    if not 1 <= spacegroup <= 230:
        raise ValueError(f"space group {spacegroup} is outside 1-230")
    return int(spacegroup)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_positive_float(value, name: str) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_known_element(symbol: str) -> None:
    if symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}")


def _check_emt_element(symbol: str) -> None:
    if symbol not in EMT_ELEMENTS:
        raise ValueError(
            f"element {symbol!r} is not supported by EMT; choose from {', '.join(EMT_ELEMENTS)}"
        )


def _formula(counts: Mapping[str, int]) -> str:
    return "".join(f"{symbol}{n if n > 1 else ''}" for symbol, n in counts.items())


def _reduced_formula(counts: Mapping[str, int]) -> str:
    # pymatgen's convention (electronegativity order, "Cu3Au", "AlNi") so that polymorph groups
    # line up with Materials Project / AFLOW style data sets
    from pymatgen.core import Composition

    return Composition(dict(counts)).reduced_formula


# ------------------------------------------------------------------------------------ references


def _fcc_guess(symbol: str) -> float:
    state = reference_states[atomic_numbers[symbol]]
    if state is not None and state.get("symmetry") == "fcc":
        return float(state["a"])
    # touching spheres of covalent radius: only a starting point for the cell relaxation
    return 2.0 * np.sqrt(2.0) * float(covalent_radii[atomic_numbers[symbol]])


def _reference_volume(symbol: str) -> float:
    """Experimental fcc atomic volume (Å^3) from ase.data, for the exploding-volume check."""
    return _fcc_guess(symbol) ** 3 / 4.0


def fcc_chemical_potentials(
    elements: Iterable[str], calculator_factory: CalculatorFactory = EMT
) -> dict[str, float]:
    """Energy per atom of the relaxed fcc crystal of each element.

    The one-atom fcc cell is relaxed (cell and positions, fcc symmetry kept) with
    :class:`ase.filters.FrechetCellFilter` and BFGS to ``fmax = 1e-4`` eV/Å. Each distinct
    element is computed once per call; nothing is cached between calls, since the calculator
    may differ.

    fcc is EMT's fitting structure and the reference for all seven metals, although EMT puts hcp
    0.5-4 meV/atom lower for Al, Cu, Ni, Pd and Pt: their hcp polymorphs get slightly negative
    formation energies.

    Parameters
    ----------
    elements : iterable of str
        Chemical symbols; repeats are allowed. With the default EMT calculator they must be in
        :data:`EMT_ELEMENTS`.
    calculator_factory : callable, optional
        Returns a fresh ASE calculator; default :class:`ase.calculators.emt.EMT`.

    Returns
    -------
    dict of str to float
        Chemical potential ``mu`` (eV/atom) per element, in first-seen order.

    Raises
    ------
    ValueError
        For an unknown element, or one EMT does not support when EMT is the calculator.
    RuntimeError
        If a reference relaxation does not converge.
    """
    from ase.build import bulk

    unique = list(dict.fromkeys(elements))
    if not unique:
        raise ValueError("elements is empty")
    for symbol in unique:
        _check_known_element(symbol)
        if calculator_factory is EMT:
            _check_emt_element(symbol)
    mu = {}
    with single_threaded_blas():
        for symbol in unique:
            crystal = bulk(symbol, "fcc", a=_fcc_guess(symbol))
            relaxed = relax_polymorph(crystal, calculator_factory, fmax=1e-4, steps=500)
            if not relaxed.info["converged"]:
                raise RuntimeError(f"the fcc {symbol} reference did not converge in 500 steps")
            mu[symbol] = float(relaxed.info["energy_per_atom"])
    return mu


def formation_energy(atoms: Atoms, references: Mapping[str, float]) -> float:
    """Formation energy per atom, ``E/N - sum_i x_i mu_i``.

    Parameters
    ----------
    atoms : ase.Atoms
        A structure with ``info["energy_per_atom"]`` (eV), as returned by :func:`relax_polymorph`.
    references : dict of str to float
        Chemical potential (eV/atom) of every element in ``atoms``, e.g. from
        :func:`fcc_chemical_potentials`.

    Returns
    -------
    float
        Formation energy in eV/atom; negative means stable against phase separation into the
        elemental references.

    Raises
    ------
    ValueError
        Without ``info["energy_per_atom"]`` or without a reference for one of the elements.
    """
    if "energy_per_atom" not in atoms.info:
        raise ValueError("atoms.info has no 'energy_per_atom'; relax the structure with relax_polymorph")
    counts = Counter(atoms.get_chemical_symbols())
    missing = [symbol for symbol in counts if symbol not in references]
    if missing:
        raise ValueError(f"references has no energy for {', '.join(map(repr, missing))}")
    n_atoms = len(atoms)
    return float(atoms.info["energy_per_atom"]) - sum(
        n / n_atoms * float(references[symbol]) for symbol, n in counts.items()
    )


# ------------------------------------------------------------------------------------ generation


@functools.cache
def _group(spacegroup: int):
    # building a pyxtal Group parses its Wyckoff tables (~50 ms); the table is immutable
    from pyxtal.symmetry import Group

    return Group(spacegroup)


@functools.cache
def _tolerances():
    # pyxtal builds this element-pair table (~5 ms) on every call unless given one; it is only read
    from pyxtal.tolerance import Tol_matrix

    return Tol_matrix(prototype="atomic")


def _pyxtal_counts(counts: Mapping[str, int], spacegroup: int) -> list[int]:
    """Atoms per species in pyxtal's conventional cell for ``counts`` in the primitive cell."""
    cellsize = _group(spacegroup).cellsize()
    return [n * cellsize for n in counts.values()]


def _compatible(counts: Mapping[str, int], spacegroup: int) -> bool:
    return bool(_group(spacegroup).check_compatible(_pyxtal_counts(counts, spacegroup))[0])


def random_polymorph(
    composition: Mapping[str, int] | str,
    spacegroup: int,
    rng: np.random.Generator,
    *,
    factor: float = 1.1,
    max_count: int = 10,
) -> Atoms | None:
    """One random crystal of a composition with the symmetry of a space group (pyxtal).

    pyxtal's ``from_random`` distributes the atoms over Wyckoff positions of the conventional
    cell with random free parameters and a random lattice of the right crystal system; the
    result is reduced to its primitive cell with spglib, so centred groups (F, I, C, R) cost no
    more atoms than primitive ones.

    Parameters
    ----------
    composition : dict of str to int, or str
        Atoms of each element in the primitive cell, e.g. ``{"Cu": 3, "Au": 1}`` or ``"Cu3Au"``.
        If the random crystal happens to have extra translational symmetry (two atoms of
        I-centred 229 make bcc, whose primitive cell has one) the returned cell is smaller, with
        the same reduced composition.
    spacegroup : int
        International space-group number, 1-230.
    rng : numpy.random.Generator
        Source of the seed handed to pyxtal; pyxtal does not touch global random state.
    factor : float, optional
        pyxtal's volume factor for the starting cell.
    max_count : int, optional
        pyxtal's number of attempts before it gives up.

    Returns
    -------
    ase.Atoms or None
        The primitive cell, periodic, with ``info["spacegroup_generated"]`` and
        ``info["wyckoff"]`` (pyxtal's conventional-cell Wyckoff letters per species); None when
        pyxtal cannot realise the composition in this group (Wyckoff multiplicities do not add
        up, or no placement met its distance tolerances).

    Raises
    ------
    ImportError
        Without pyxtal.
    ValueError
        For a bad composition or space group.
    """
    try:
        from pyxtal import pyxtal
        from pyxtal.msg import Comp_CompatibilityError
    except ImportError as err:
        raise ImportError(_PYXTAL_MISSING) from err

    counts = composition_amounts(composition)
    spacegroup = _check_spacegroup(spacegroup)
    rng = _check_rng(rng)
    max_count = _check_positive_int(max_count, "max_count")
    # drawn before the compatibility test so that a caller's stream advances the same way
    # whatever the outcome
    seed = int(rng.integers(2**63))
    if not _compatible(counts, spacegroup):
        return None

    crystal = pyxtal()
    with warnings.catch_warnings():
        # pyxtal warns each time it enlarges its volume guess; that is routine, not news
        warnings.simplefilter("ignore")
        try:
            crystal.from_random(
                3,
                spacegroup,
                list(counts),
                _pyxtal_counts(counts, spacegroup),
                factor=factor,
                max_count=max_count,
                tm=_tolerances(),
                random_state=seed,
            )
        except (Comp_CompatibilityError, RuntimeError):
            return None
    if not crystal.valid:
        return None
    conventional = crystal.to_ase()
    wyckoff = " ".join(f"{site.specie}:{site.wp.get_label()}" for site in crystal.atom_sites)

    cell = (conventional.cell[:], conventional.get_scaled_positions(), conventional.numbers)
    try:
        primitive = spglib.standardize_cell(cell, to_primitive=True, no_idealize=False, symprec=1e-3)
    except spglib.SpglibError:  # spglib >= 2.5 may raise instead of returning None
        primitive = None
    if primitive is None:  # not expected for an exactly symmetric crystal; keep what pyxtal made
        atoms = Atoms(conventional.numbers, cell=conventional.cell, pbc=True,
                      scaled_positions=conventional.get_scaled_positions())
    else:
        lattice, positions, numbers = primitive
        atoms = Atoms(numbers, cell=lattice, scaled_positions=positions, pbc=True)
    atoms.info["spacegroup_generated"] = spacegroup
    atoms.info["wyckoff"] = wyckoff
    return atoms


def relax_polymorph(
    atoms: Atoms,
    calculator_factory: CalculatorFactory = EMT,
    fmax: float = 0.02,
    steps: int = 300,
    keep_symmetry: bool = True,
    symprec: float = 0.01,
) -> Atoms:
    """Relax positions and cell of a crystal, by default under its own symmetry.

    A caller of :func:`ase_crystalgen.relaxation.relax_one` with BFGS:
    :class:`ase.constraints.FixSymmetry` (when ``keep_symmetry``) keeps the space group found at
    ``symprec``, :class:`ase.filters.FrechetCellFilter` exposes the cell. With the symmetry kept
    the result is a stationary point of that symmetry, not necessarily a minimum: that is what a
    polymorph of a given space group is.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic crystal; not modified.
    calculator_factory : callable, optional
        Returns a fresh ASE calculator; default EMT.
    fmax : float, optional
        Force criterion (eV/Å) for atoms and, through the filter, for the cell.
    steps : int, optional
        Largest number of optimiser steps.
    keep_symmetry : bool, optional
        Constrain the relaxation to the initial symmetry.
    symprec : float, optional
        spglib tolerance of :class:`~ase.constraints.FixSymmetry`.

    Returns
    -------
    ase.Atoms
        A new, plain Atoms (no constraint, no calculator) with the input ``info`` (less
        ``formation_energy`` and ``spacegroup``, which the relaxation may have changed) plus
        ``energy_per_atom`` (eV), ``converged`` (bool) and ``n_steps`` (int).

    Raises
    ------
    ValueError
        For an empty or non-periodic structure, or non-positive ``fmax`` / ``steps``.
    RuntimeError
        When the relaxation fails (the calculator raises, energies or forces turn non-finite,
        atoms come closer than 0.5 Å); the message says which.
    """
    from ..relaxation import relax_one

    if len(atoms) == 0:
        raise ValueError("atoms is empty")
    if not atoms.pbc.all():
        raise ValueError("relax_polymorph needs a crystal periodic in all three directions")
    fmax = _check_positive_float(fmax, "fmax")
    steps = _check_positive_int(steps, "steps")

    plain = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    result = relax_one(plain, calculator_factory, fmax=fmax, steps=steps, optimizer="BFGS",
                       fix_symmetry=keep_symmetry, symprec=symprec)
    if "relax_error" in result.info:
        raise RuntimeError(f"relaxation failed: {result.info['relax_error']}")

    relaxed = Atoms(result.numbers, positions=result.positions, cell=result.cell, pbc=True)
    relaxed.wrap()
    # what the relaxation may have changed is not carried over from the input
    relaxed.info.update({k: v for k, v in atoms.info.items() if k not in _DERIVED_KEYS})
    relaxed.info.update(energy_per_atom=result.info["energy_per_atom"],
                        converged=result.info["converged"], n_steps=result.info["relax_steps"])
    return relaxed


def _spacegroup_number(atoms: Atoms, symprec: float) -> int | None:
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    try:
        dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    except spglib.SpglibError:  # spglib >= 2.5 may raise instead of returning None
        return None
    return None if dataset is None else int(dataset.number)


def _min_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance including periodic images (inf for one atom alone)."""
    return min_distance(atoms, MIN_DISTANCE + 1.0)


def _rejection(relaxed: Atoms, reference_volume: float) -> str | None:
    if not relaxed.info["converged"]:
        return "failed relaxation"
    if not np.isfinite(relaxed.info["energy_per_atom"]) or not np.isfinite(relaxed.cell[:]).all():
        return "non-finite energy"
    if _min_distance(relaxed) < MIN_DISTANCE:
        return "overlapping atoms"
    if relaxed.get_volume() > MAX_VOLUME_RATIO * reference_volume:
        return "exploding volume"
    return None


def _is_duplicate(candidate: Atoms, kept: Sequence[Atoms], matcher) -> bool:
    """Same space group, energy and structure (pymatgen StructureMatcher) as a kept structure."""
    from pymatgen.io.ase import AseAtomsAdaptor

    others = [
        a for a in kept
        if a.info["spacegroup"] == candidate.info["spacegroup"]
        and abs(a.info["energy_per_atom"] - candidate.info["energy_per_atom"]) < 1e-3
    ]
    if not others:
        return False
    structure = AseAtomsAdaptor.get_structure(candidate)
    return any(matcher.fit(structure, AseAtomsAdaptor.get_structure(a)) for a in others)


def _expand(atoms: Atoms, min_atoms: int, max_atoms: int) -> Atoms | None:
    """The same crystal in a cell of ``min_atoms`` to ``max_atoms`` atoms, or None if none fits.

    The conventional cell when it is large enough (fcc: the 4-atom cube), otherwise the
    conventional or the given cell repeated along its shortest axis. Energy per atom, forces
    and space group are those of the input.
    """
    if len(atoms) >= min_atoms:
        return atoms
    base = atoms
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    try:
        conventional = spglib.standardize_cell(cell, to_primitive=False, no_idealize=True, symprec=1e-3)
    except spglib.SpglibError:
        conventional = None
    if conventional is not None:
        lattice, positions, numbers = conventional
        candidate = Atoms(numbers, cell=lattice, scaled_positions=positions, pbc=True)
        repeats = -(-min_atoms // len(candidate))
        if len(candidate) * repeats <= max_atoms:
            base = candidate
    repeats = [1, 1, 1]
    # rounded: a = b of a hexagonal cell must not be told apart by the last bits of a relaxation
    repeats[int(np.argmin(np.round(base.cell.lengths(), 6)))] = -(-min_atoms // len(base))
    if len(base) * max(repeats) > max_atoms:
        return None
    expanded = base.repeat(repeats)
    expanded.info.update(atoms.info)
    return expanded


def generate_polymorphs(
    compositions: Sequence[Mapping[str, int] | str] | str,
    spacegroups: Sequence[int] | int,
    n_per_group: int = 1,
    rng: np.random.Generator | None = None,
    max_atoms: int = 20,
    references: Mapping[str, float] | None = None,
    fmax: float = 0.02,
    steps: int = 300,
    progress: bool = True,
    symprec: float = 0.1,
    *,
    max_attempts: int | None = None,
    deduplicate: bool = True,
    min_atoms: int = 1,
) -> list[Atoms]:
    """Random relaxed polymorphs of EMT metals and alloys with formation energies.

    For every composition and every space group, up to ``n_per_group`` crystals are made with
    :func:`random_polymorph` (1 or more formula units in the primitive cell, up to ``max_atoms``,
    the number of formula units drawn among those that fit the group's Wyckoff multiplicities),
    relaxed with EMT under their symmetry (:func:`relax_polymorph`) and kept unless they

    - did not converge in ``steps`` (failed relaxation) or have a non-finite energy,
    - have two atoms closer than 1.5 Å (overlapping atoms),
    - have a volume above 3 times the summed experimental fcc atomic volumes (exploding volume),
    - repeat a structure already kept for the same formula (duplicate; ``deduplicate``).

    The discarded structures are counted and reported in one warning, and so are the
    composition / space-group pairs that no cell of up to ``max_atoms`` atoms can realise.

    Parameters
    ----------
    compositions : sequence of str or dict, or str
        Formula units, e.g. ``["Cu", "Cu3Au", {"Ni": 1, "Al": 1}]``; all elements must be in
        :data:`EMT_ELEMENTS`. Two entries with one reduced formula are an error.
    spacegroups : sequence of int, or int
        Space groups (1-230) to try for every composition.
    n_per_group : int, optional
        Polymorphs wanted per composition and space group.
    rng : numpy.random.Generator, optional
        Randomness; a fresh unseeded generator if None.
    max_atoms : int, optional
        Largest number of atoms in a (primitive) cell.
    references : dict of str to float, optional
        Elemental chemical potentials (eV/atom); by default :func:`fcc_chemical_potentials`.
    fmax, steps : optional
        Relaxation criterion (eV/Å) and largest number of steps.
    progress : bool, optional
        Show a tqdm progress bar over composition / space-group pairs.
    symprec : float, optional
        spglib tolerance (Å) for the space group of the relaxed structure.
    max_attempts : int, optional
        Random crystals tried per composition and space group; default ``3 * n_per_group``.
    deduplicate : bool, optional
        Drop structures that match (pymatgen StructureMatcher) one already kept for the formula.
    min_atoms : int, optional
        Smallest cell returned: relaxed crystals with fewer atoms come as their conventional
        cell or a supercell (same crystal, same energies), e.g. 4 for data-set pipelines that
        keep 4-60 atom cells as the paper does.

    Returns
    -------
    list of ase.Atoms
        Plain Atoms (no calculator). ``info`` holds ``formation_energy`` (eV/atom,
        ``E/N - sum_i x_i mu_i``), ``energy_per_atom`` (eV), ``spacegroup`` (spglib, relaxed),
        ``spacegroup_generated`` (requested), ``id`` (``"synthetic-Cu3Au-221-0"``), ``formula``
        (reduced), ``wyckoff``, ``converged`` and ``n_steps``.

    Raises
    ------
    ImportError
        Without pyxtal.
    ValueError
        For an element EMT does not support, a space group outside 1-230, a formula unit larger
        than ``max_atoms``, repeated compositions or space groups, or bad numeric settings.
    """
    rng = _check_rng(rng)
    if isinstance(compositions, (str, Mapping)):
        compositions = [compositions]
    if isinstance(spacegroups, (int, np.integer)):
        spacegroups = [spacegroups]
    compositions, spacegroups = list(compositions), list(spacegroups)
    if not compositions:
        raise ValueError("compositions is empty")
    if not spacegroups:
        raise ValueError("spacegroups is empty")
    n_per_group = _check_positive_int(n_per_group, "n_per_group")
    max_atoms = _check_positive_int(max_atoms, "max_atoms")
    fmax = _check_positive_float(fmax, "fmax")
    steps = _check_positive_int(steps, "steps")
    symprec = _check_positive_float(symprec, "symprec")
    max_attempts = _check_positive_int(3 * n_per_group if max_attempts is None else max_attempts,
                                       "max_attempts")
    min_atoms = _check_positive_int(min_atoms, "min_atoms")
    if min_atoms > max_atoms:
        raise ValueError(f"min_atoms={min_atoms} is larger than max_atoms={max_atoms}")

    units: dict[str, dict[str, int]] = {}
    given: dict[str, object] = {}
    for composition in compositions:
        counts = composition_amounts(composition)
        for symbol in counts:
            _check_emt_element(symbol)
        n_atoms = sum(counts.values())
        if n_atoms > max_atoms:
            raise ValueError(
                f"composition {_formula(counts)} has {n_atoms} atoms per formula unit, "
                f"more than max_atoms={max_atoms}"
            )
        formula = _reduced_formula(counts)
        if formula in units:
            raise ValueError(
                f"compositions {given[formula]!r} and {composition!r} share the reduced formula "
                f"{formula}; give each formula once"
            )
        units[formula], given[formula] = counts, composition
    groups = [_check_spacegroup(sg) for sg in spacegroups]
    for sg, n in Counter(groups).items():
        if n > 1:
            raise ValueError(f"space group {sg} is given {n} times")

    elements = list(dict.fromkeys(symbol for counts in units.values() for symbol in counts))
    if references is not None:
        mu = {}
        for symbol in elements:
            if symbol not in references:
                raise ValueError(f"references has no energy for {symbol!r}")
            if not np.isfinite(references[symbol]):
                raise ValueError(f"reference energy of {symbol!r} is not finite: {references[symbol]!r}")
            mu[symbol] = float(references[symbol])

    try:
        import pyxtal  # noqa: F401
    except ImportError as err:
        raise ImportError(_PYXTAL_MISSING) from err
    if references is None:
        mu = fcc_chemical_potentials(elements)

    matcher = None
    if deduplicate:
        from pymatgen.analysis.structure_matcher import StructureMatcher

        matcher = StructureMatcher()

    structures: list[Atoms] = []
    rejected: Counter[str] = Counter()
    n_tried = 0
    unrealisable: list[str] = []
    pairs = [(formula, sg) for formula in units for sg in groups]
    with single_threaded_blas(), tqdm(total=len(pairs), desc="synthetic polymorphs", unit="group",
                                      disable=not progress) as bar:
        for formula, sg in pairs:
            unit = units[formula]
            n_unit = sum(unit.values())
            multiples = [z for z in range(1, max_atoms // n_unit + 1)
                         if _compatible({s: n * z for s, n in unit.items()}, sg)]
            made = 0
            for _ in range(max_attempts if multiples else 0):
                if made == n_per_group:
                    break
                # small cells first (p ~ 1/z^2): the classic prototypes (B2, L1_2, L1_0, hcp)
                # live there, and a large random cell is slow and mostly a high-energy jumble
                weights = 1.0 / np.asarray(multiples, dtype=float) ** 2
                z = multiples[int(rng.choice(len(multiples), p=weights / weights.sum()))]
                atoms = random_polymorph({s: n * z for s, n in unit.items()}, sg, rng)
                n_tried += 1
                if atoms is None:
                    rejected["not placed by pyxtal"] += 1
                    continue
                try:
                    relaxed = relax_polymorph(atoms, EMT, fmax=fmax, steps=steps)
                except RuntimeError:
                    rejected["failed relaxation"] += 1
                    continue
                reason = _rejection(relaxed, sum(n * _reference_volume(s) for s, n in
                                                 Counter(relaxed.get_chemical_symbols()).items()))
                spacegroup = None if reason else _spacegroup_number(relaxed, symprec)
                if reason is None and spacegroup is None:
                    reason = "no space group from spglib"
                if reason:
                    rejected[reason] += 1
                    continue
                relaxed.info.update(
                    formation_energy=formation_energy(relaxed, mu),
                    spacegroup=spacegroup,
                    spacegroup_generated=sg,
                    formula=formula,
                )
                relaxed = _expand(relaxed, min_atoms, max_atoms)
                if relaxed is None:
                    rejected[f"no cell of {min_atoms}-{max_atoms} atoms"] += 1
                    continue
                if matcher is not None and _is_duplicate(
                    relaxed, [a for a in structures if a.info["formula"] == formula], matcher
                ):
                    rejected["duplicate"] += 1
                    continue
                relaxed.info["id"] = f"synthetic-{formula}-{sg}-{made}"
                structures.append(relaxed)
                made += 1
            if not multiples:
                unrealisable.append(f"{formula} in {sg}")
            bar.update()
            bar.set_postfix(kept=len(structures), discarded=sum(rejected.values()))

    if unrealisable:
        warnings.warn(
            f"{len(unrealisable)} composition / space-group pairs have no Wyckoff arrangement "
            f"with at most max_atoms={max_atoms} atoms: {', '.join(unrealisable)}",
            RuntimeWarning,
            stacklevel=2,
        )
    if rejected:
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items()))
        warnings.warn(f"discarded {sum(rejected.values())} of {n_tried} random structures ({detail})",
                      RuntimeWarning, stacklevel=2)
    return structures


#: The standard set: two pure metals, whose fcc polymorphs anchor the formation-energy scale,
#: and five binaries at the L1_2 (A3B), L1_0 and B2 (AB) stoichiometries.
DEFAULT_COMPOSITIONS = ("Cu", "Au", "CuAu", "Cu3Au", "CuAu3", "Ag3Pd", "NiAl")
#: Cubic, tetragonal, hexagonal, trigonal, monoclinic and triclinic groups of common metal and
#: intermetallic prototypes (fcc 225, B2/L1_2 221, bcc 229, hcp 194, L1_0 123/139, ...).
DEFAULT_SPACEGROUPS = (225, 221, 229, 194, 139, 123, 166, 191, 12, 1)
#: Largest cell of the standard set; 8 keeps it at about 20 s on one core.
DEFAULT_MAX_ATOMS = 8
#: Smallest cell of the standard set: the paper's data sets keep 4-60 atom cells, so 1-atom fcc
#: comes as the 4-atom cube rather than being filtered away downstream.
DEFAULT_MIN_ATOMS = 4


def default_synthetic_set(rng: np.random.Generator | None = None, progress: bool = True) -> list[Atoms]:
    """A small standard polymorph set for tests and demos.

    :data:`DEFAULT_COMPOSITIONS` x :data:`DEFAULT_SPACEGROUPS`, one structure per pair where the
    group admits the composition, cells of :data:`DEFAULT_MIN_ATOMS` to :data:`DEFAULT_MAX_ATOMS`
    atoms, relaxed with EMT and deduplicated, so that every formula has a polymorph group of
    several members.

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        Randomness; ``numpy.random.default_rng(0)`` if None, so that the default set is the same
        every time.
    progress : bool, optional
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        As :func:`generate_polymorphs`.
    """
    if rng is None:
        rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        # the standard grid contains pairs no small cell realises and random structures that
        # relax onto one already kept; both are expected here
        warnings.filterwarnings("ignore", message=r"\d+ composition / space-group pairs",
                                category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=r"discarded \d+ of \d+", category=RuntimeWarning)
        return generate_polymorphs(DEFAULT_COMPOSITIONS, DEFAULT_SPACEGROUPS, n_per_group=1, rng=rng,
                                   max_atoms=DEFAULT_MAX_ATOMS, min_atoms=DEFAULT_MIN_ATOMS,
                                   progress=progress)


def write_synthetic_set(structures: Sequence[Atoms], path: str | os.PathLike) -> None:
    """Write structures with their ``info`` to an extended XYZ file, atomically.

    The file is written next to ``path`` under a temporary name and moved into place with
    :func:`os.replace`, so a reader never sees half a file. ``ase.io.read(path, ":")`` gives
    the structures back with their ``info`` keys.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        Structures to write (e.g. from :func:`generate_polymorphs`).
    path : str or os.PathLike
        Destination file.

    Raises
    ------
    ValueError
        If ``structures`` is empty.
    """
    from ase.io import write

    structures = list(structures)
    if not structures:
        raise ValueError("no structures to write")
    from .._atomic import atomic_path

    with atomic_path(path) as tmp:
        write(tmp, structures, format="extxyz")

