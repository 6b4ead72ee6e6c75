"""Energy above the convex hull, with references computed by the same calculator.

A generated crystal is *thermodynamically plausible* when its energy per atom is close to, or
below, the convex hull of the energies of the phases it could decompose into. Those reference
energies must come from the calculator that relaxed the candidate: differences between a CHGNet
energy and a DFT one are meaningless. :class:`PhaseDiagramReference` holds such references
(elemental phases from :func:`elemental_references` plus any known compounds) and answers with
pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram`.

Energies are total energies in eV; hull distances and formation energies are eV/atom.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers, covalent_radii, reference_states

from .._atomic import atomic_path
from .calculators import CalculatorSpec, get_calculator
from .relax import relax
from .store import RelaxationStore

if TYPE_CHECKING:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

#: Prototypes :func:`elemental_references` tries for each element.
PROTOTYPES = ("fcc", "bcc", "hcp", "sc", "diamond", "dimer")

#: Edge (Å) of the cubic periodic box around a dimer: wide enough that images do not interact.
DIMER_BOX = 12.0

__all__ = [
    "DIMER_BOX",
    "PROTOTYPES",
    "PhaseDiagramReference",
    "elemental_references",
    "energy_above_hull",
    "prototype",
    "to_entry",
]


def to_entry(atoms: Atoms, energy: float | None = None, name: str | None = None) -> PDEntry:
    """A pymatgen ``PDEntry`` of a structure.

    Parameters
    ----------
    atoms : Atoms
        The structure; its chemical symbols give the composition.
    energy : float, optional
        Total energy (eV). By default ``atoms.info["energy"]`` if present, else
        ``atoms.get_potential_energy()`` (the calculator :func:`relax` attaches).
    name : str, optional
        Entry name; the reduced formula by default.

    Raises
    ------
    ValueError
        When the structure's relaxation failed (``info["relax_error"]``) or it has no energy.
    """
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    formula = atoms.get_chemical_formula()
    if energy is None:
        if "relax_error" in atoms.info:
            raise ValueError(f"{formula} has no energy: its relaxation failed ({atoms.info['relax_error']})")
        if "energy" in atoms.info:
            energy = atoms.info["energy"]
        elif atoms.calc is not None:
            energy = atoms.get_potential_energy()
        else:
            raise ValueError(
                f"{formula} has no energy: no calculator, no info['energy'] and no energy= given"
            )
    energy = float(energy)
    if not np.isfinite(energy):
        raise ValueError(f"{formula} has a non-finite energy {energy}")
    composition = Composition(dict(Counter(atoms.get_chemical_symbols())))
    return PDEntry(composition, energy, name=name)


def prototype(symbol: str, structure: str) -> Atoms:
    """Starting cell of an element in a prototype structure, before relaxation.

    The nearest-neighbour distance comes from ASE's experimental reference state of the element
    when that is one of fcc, bcc, hcp, sc or diamond, else from twice its covalent radius; each
    prototype is built at that distance (hcp with the ideal c/a). ``"dimer"`` is a diatomic
    molecule of bond length twice the covalent radius in a periodic cubic box of
    :data:`DIMER_BOX` Å.
    """
    from ase.build import bulk

    if symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}")
    if structure not in PROTOTYPES:
        raise ValueError(f"unknown prototype {structure!r}: use one of {', '.join(PROTOTYPES)}")
    z = atomic_numbers[symbol]
    if structure == "dimer":
        bond = 2.0 * covalent_radii[z]
        c = DIMER_BOX / 2
        positions = [[c - bond / 2, c, c], [c + bond / 2, c, c]]
        return Atoms([symbol, symbol], positions=positions, cell=[DIMER_BOX] * 3, pbc=True)
    d = _nearest_neighbour_distance(z)
    if structure == "hcp":
        return bulk(symbol, "hcp", a=d, c=d * np.sqrt(8 / 3))
    # cubic lattice constant that puts nearest neighbours at distance d
    a = {"fcc": d * np.sqrt(2), "bcc": 2 * d / np.sqrt(3), "sc": d, "diamond": 4 * d / np.sqrt(3)}[structure]
    return bulk(symbol, structure, a=float(a))


def _nearest_neighbour_distance(z: int) -> float:
    state = reference_states[z] or {}
    a = state.get("a")
    factor = {"fcc": 1 / np.sqrt(2), "bcc": np.sqrt(3) / 2, "sc": 1.0, "diamond": np.sqrt(3) / 4, "hcp": 1.0}
    if a is not None and state.get("symmetry") in factor:
        return float(a * factor[state["symmetry"]])
    return float(2.0 * covalent_radii[z])


def elemental_references(
    elements: Iterable[str],
    calculator: CalculatorSpec = "chgnet",
    candidates: Sequence[str] = PROTOTYPES,
    fmax: float = 0.05,
    steps: int = 300,
    progress: bool = True,
    device: str = "cpu",
    store: RelaxationStore | None = None,
) -> list[Atoms]:
    """The lowest-energy relaxed prototype of each element.

    Every element is built in each of ``candidates`` (see :func:`prototype`), relaxed with
    :func:`~ase_crystalgen.relaxation.relax` (cell included, except for the dimer in its box),
    and the one of lowest energy per atom is kept. Failed relaxations are skipped.

    This is an **upper bound** on the element's true ground state under this calculator: many
    elements have ground states that are none of these prototypes (α-boron, α-gallium,
    black phosphorus, α-manganese, α-sulfur, solid halogens and chalcogens, ...), and an
    element whose true ground state is missing here makes every compound containing it look
    more stable than it is. Users with better references (the relaxed experimental structure
    of each element, computed with the same calculator) should pass them to
    :class:`PhaseDiagramReference` instead.

    Parameters
    ----------
    elements : iterable of str
        Chemical symbols (duplicates are ignored).
    calculator : calculator spec
        As for :func:`~ase_crystalgen.relaxation.get_calculator`; resolved once.
    candidates : sequence of str
        Prototype names from :data:`PROTOTYPES`.
    fmax, steps : float, int
        Relaxation settings.
    progress : bool
        Show progress bars.
    device : str
        Torch device of the named machine-learned potentials.
    store : RelaxationStore, optional
        Keep each relaxed prototype in it as it finishes (key ``"Cu:fcc"``, ...) and reuse the
        ones there, so an interrupted call resumes.

    Returns
    -------
    list of Atoms
        One relaxed structure per element, in the order given, with ``info["prototype"]``.

    Raises
    ------
    ValueError
        For an unknown element or prototype, or when every prototype of an element failed (the
        message names the element and the errors).
    """
    symbols = list(dict.fromkeys(elements))
    if not symbols:
        raise ValueError("elemental_references needs at least one element")
    candidates = tuple(candidates)
    if not candidates:
        raise ValueError("elemental_references needs at least one candidate prototype")
    for name in candidates:
        if name not in PROTOTYPES:
            raise ValueError(f"unknown prototype {name!r}: use one of {', '.join(PROTOTYPES)}")
    for symbol in symbols:
        if symbol not in atomic_numbers or symbol == "X":
            raise ValueError(f"unknown element {symbol!r}")
    calc = calculator if isinstance(calculator, str) else get_calculator(calculator, device)
    settings = dict(calculator=calc, fmax=fmax, steps=steps, device=device, progress=progress, store=store)

    references = []
    for symbol in symbols:
        names = [n for n in candidates if n != "dimer"]
        relaxed = []
        if names:
            relaxed = relax([prototype(symbol, n) for n in names], cell_filter=True,
                            keys=[f"{symbol}:{n}" for n in names], desc=f"reference {symbol}", **settings)
        if "dimer" in candidates:  # a molecule in a box: its cell stays
            names.append("dimer")
            relaxed.append(relax(prototype(symbol, "dimer"), cell_filter=False, keys=[f"{symbol}:dimer"],
                                 desc=f"reference {symbol} dimer", **settings))
        for name, atoms in zip(names, relaxed):
            atoms.info["prototype"] = name
        ok = [a for a in relaxed if "relax_error" not in a.info]
        if not ok:
            errors = "; ".join(f"{a.info['prototype']}: {a.info['relax_error']}" for a in relaxed)
            raise ValueError(f"every prototype of {symbol} failed to relax ({errors})")
        references.append(min(ok, key=lambda a: a.info["energy_per_atom"]))
    return references


class PhaseDiagramReference:
    """Reference phases with energies, and the convex hull they span.

    Parameters
    ----------
    references : iterable of Atoms or PDEntry
        Structures with energies (as for :func:`to_entry`) and/or pymatgen entries, all from one
        calculator. Every element that appears must have an elemental reference.

    Raises
    ------
    ValueError
        When a reference has no energy, or an element has no elemental reference (the message
        names it).

    Examples
    --------
    >>> refs = PhaseDiagramReference.from_calculator(["Cu", "Au"], "emt", progress=False)
    >>> e_hull = refs.e_above_hull(relax(candidate, "emt"))  # doctest: +SKIP
    """

    def __init__(self, references: Iterable[Atoms | PDEntry]):
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

        self._entries: list[PDEntry] = []
        self._structures: list[Atoms | None] = []
        for ref in references:
            if isinstance(ref, Atoms):
                entry = to_entry(ref, name=ref.info.get("reference_name"))
                atoms = ref.copy()
                atoms.info.pop("energy", None)  # the energy lives in the calculator from here on
                atoms.calc = SinglePointCalculator(atoms, energy=entry.energy)
                self._structures.append(atoms)
            elif isinstance(ref, PDEntry):
                entry = ref
                self._structures.append(None)
            else:
                raise TypeError(f"references must be ase.Atoms or pymatgen PDEntry, got {type(ref).__name__}")
            self._entries.append(entry)
        if not self._entries:
            raise ValueError("PhaseDiagramReference needs at least one reference")
        elements = {str(el) for e in self._entries for el in e.composition.elements}
        terminal = {str(e.composition.elements[0]) for e in self._entries if e.composition.is_element}
        missing = sorted(elements - terminal)
        if missing:
            raise ValueError(
                f"no elemental reference for {', '.join(missing)}: every element of the references needs one "
                "(see elemental_references)"
            )
        self._elements = tuple(sorted(elements))
        self._pd = PhaseDiagram(self._entries)

    # ----------------------------------------------------------------------------------------
    # construction
    # ----------------------------------------------------------------------------------------

    @classmethod
    def from_calculator(
        cls,
        elements: Iterable[str],
        calculator: CalculatorSpec = "chgnet",
        known_phases: Iterable[Atoms] = (),
        *,
        candidates: Sequence[str] = PROTOTYPES,
        fmax: float = 0.05,
        steps: int = 300,
        device: str = "cpu",
        progress: bool = True,
        store: RelaxationStore | None = None,
    ) -> PhaseDiagramReference:
        """Compute references with one calculator: elements from prototypes, plus known phases.

        Parameters
        ----------
        elements : iterable of str
            Elements the candidates contain; those of ``known_phases`` are added.
        calculator : calculator spec
            The calculator that relaxes (or relaxed) the candidates.
        known_phases : iterable of Atoms
            Known compounds (or better elemental structures) of the chemical system, relaxed
            here (cell included) with ``calculator``.
        candidates, fmax, steps, device, progress, store
            As for :func:`elemental_references` and :func:`~ase_crystalgen.relaxation.relax`;
            known phase ``i`` is ``"known:i"`` in the store.

        Raises
        ------
        ValueError
            When a known phase fails to relax: a hull without it would be too high and make
            candidates look more stable than they are.
        """
        known = list(known_phases)
        symbols = list(dict.fromkeys([*elements, *(s for a in known for s in a.get_chemical_symbols())]))
        calc = calculator if isinstance(calculator, str) else get_calculator(calculator, device)
        references = elemental_references(
            symbols, calc, candidates=candidates, fmax=fmax, steps=steps, progress=progress, device=device,
            store=store,
        )
        if known:
            relaxed = relax(known, calc, fmax=fmax, steps=steps, device=device, progress=progress,
                            store=store, keys=[f"known:{i}" for i in range(len(known))], desc="known phases")
            for atoms in relaxed:
                if "relax_error" in atoms.info:
                    formula = atoms.get_chemical_formula()
                    raise ValueError(f"known phase {formula} failed to relax: {atoms.info['relax_error']}")
            references += relaxed
        return cls(references)

    # ----------------------------------------------------------------------------------------
    # views
    # ----------------------------------------------------------------------------------------

    @property
    def elements(self) -> tuple[str, ...]:
        """Chemical symbols covered by the references, sorted."""
        return self._elements

    @property
    def entries(self) -> list[PDEntry]:
        """The pymatgen entries of the references."""
        return list(self._entries)

    @property
    def structures(self) -> list[Atoms]:
        """Copies of the reference structures with their energies (a ``SinglePointCalculator``);
        references given as PDEntry have none."""
        out = []
        for atoms in self._structures:
            if atoms is not None:
                copy = atoms.copy()
                copy.calc = SinglePointCalculator(copy, energy=atoms.get_potential_energy())
                out.append(copy)
        return out

    @property
    def phase_diagram(self) -> PhaseDiagram:
        """pymatgen's ``PhaseDiagram`` of the references."""
        return self._pd

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"PhaseDiagramReference({len(self)} references, elements {'-'.join(self._elements)})"

    # ----------------------------------------------------------------------------------------
    # queries
    # ----------------------------------------------------------------------------------------

    def e_above_hull(self, candidate: Atoms | PDEntry) -> float:
        """Energy above the hull (eV/atom); negative when the candidate lies below it.

        ``candidate`` is a structure with an energy (as for :func:`to_entry`) or a ``PDEntry``.
        A reference itself gives 0 (up to rounding).
        """
        entry = self._entry(candidate)
        _, e_hull = self._pd.get_decomp_and_e_above_hull(entry, allow_negative=True, check_stable=False)
        return float(e_hull)

    def formation_energy_per_atom(self, candidate: Atoms | PDEntry) -> float:
        """Formation energy (eV/atom) relative to the lowest elemental references."""
        return float(self._pd.get_form_energy_per_atom(self._entry(candidate)))

    def decomposition(self, candidate: Atoms | PDEntry) -> dict[str, float]:
        """Stable phases the candidate's composition decomposes into: name -> fraction of atoms."""
        entry = self._entry(candidate)
        decomp = self._pd.get_decomposition(entry.composition)
        out: dict[str, float] = {}
        for phase, amount in decomp.items():
            out[phase.name] = out.get(phase.name, 0.0) + float(amount)
        return out

    def _entry(self, candidate: Atoms | PDEntry) -> PDEntry:
        from pymatgen.analysis.phase_diagram import PDEntry

        if isinstance(candidate, Atoms):
            symbols = set(candidate.get_chemical_symbols())
            entry = None
        elif isinstance(candidate, PDEntry):
            symbols = {str(el) for el in candidate.composition.elements}
            entry = candidate
        else:
            raise TypeError(
                f"candidate must be ase.Atoms or pymatgen PDEntry, got {type(candidate).__name__}"
            )
        missing = sorted(symbols - set(self._elements))
        if missing:
            covered = ", ".join(self._elements)
            raise ValueError(f"no reference for element {', '.join(missing)}: the references cover {covered}")
        return entry if entry is not None else to_entry(candidate)

    # ----------------------------------------------------------------------------------------
    # persistence
    # ----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the references to an extended-XYZ file, atomically.

        Each frame carries its total energy and ``info["reference_name"]``; a reference given
        as a bare ``PDEntry`` is stored as its atoms without a cell (``info["entry_only"]``).
        """
        import ase.io

        frames = []
        for entry, atoms in zip(self._entries, self._structures):
            if atoms is None:
                atoms = _entry_frame(entry)
            else:
                atoms = atoms.copy()
            atoms.info["reference_name"] = entry.name
            atoms.calc = SinglePointCalculator(atoms, energy=float(entry.energy))
            frames.append(atoms)
        with atomic_path(path) as tmp:
            ase.io.write(tmp, frames, format="extxyz")

    @classmethod
    def load(cls, path: str | os.PathLike) -> PhaseDiagramReference:
        """Read references written by :meth:`save`."""
        import ase.io

        references: list[Atoms | PDEntry] = []
        for atoms in ase.io.read(path, index=":", format="extxyz"):
            if atoms.info.pop("entry_only", False):
                references.append(to_entry(atoms, name=atoms.info.get("reference_name")))
            else:
                references.append(atoms)
        return cls(references)


def _entry_frame(entry: PDEntry) -> Atoms:
    counts = entry.composition.get_el_amt_dict()
    if any(abs(n - round(n)) > 1e-8 for n in counts.values()):
        raise ValueError(f"cannot save entry {entry.name} with a fractional composition {counts}")
    symbols = [el for el, n in counts.items() for _ in range(int(round(n)))]
    # placeholder positions far apart: the frame records a composition, not a structure
    atoms = Atoms(symbols, positions=[[10.0 * i, 0.0, 0.0] for i in range(len(symbols))])
    atoms.info["entry_only"] = True
    return atoms


def energy_above_hull(
    structures: Iterable[Atoms | PDEntry], references: PhaseDiagramReference | Iterable[Atoms | PDEntry]
) -> np.ndarray:
    """Energies above the hull (eV/atom) of many candidates; NaN where a relaxation failed.

    ``references`` is a :class:`PhaseDiagramReference` or anything its constructor takes.
    """
    if not isinstance(references, PhaseDiagramReference):
        references = PhaseDiagramReference(references)
    values = [
        np.nan if isinstance(s, Atoms) and "relax_error" in s.info else references.e_above_hull(s)
        for s in structures
    ]
    return np.asarray(values, dtype=float)
