"""Small labelled data sets made with ASE's EMT potential, for judging data-set reduction.

Each structure carries its EMT energy and forces in a
:class:`~ase.calculators.singlepoint.SinglePointCalculator` (read back with
``atoms.get_potential_energy()`` / ``atoms.get_forces()``), plus ``info`` on how it was
made. The generators are deterministic for a given ``rng`` seed.

The Cu set follows the one of ``examples/grs_dataset_reduction.py`` (Langevin snapshots of
strained fcc Cu supercells); here the frames are labelled and the defaults are smaller.
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

__all__ = ["A_CU", "emt_cu_snapshots", "emt_cuau_snapshots", "label"]

#: fcc lattice constant of Cu (Angstrom), close to EMT's (as in the reduction example)
A_CU = 3.6


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
    defaults give 48 structures (1,536 atoms) in about 5 s.

    Returns
    -------
    list of Atoms with a SinglePointCalculator (energy, forces) and ``info`` keys
    ``temperature``, ``x_au`` and ``arrangement`` (index of the random occupation).
    """
    rng = as_rng(rng)
    _check_common(n_snapshots, equilibration, interval, timestep, temperatures)
    if n_arrangements < 1 or repeat < 1:
        raise ValueError("need n_arrangements >= 1 and repeat >= 1")
    frames = []
    n_sites = 4 * repeat**3
    for x in compositions:
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"Au fraction {x} is outside [0, 1]")
        n_au = int(round(x * n_sites))
        counts = {"Cu": n_sites - n_au, "Au": n_au}
        a = vegard_lattice_constant(counts)
        # the pure ends have a single arrangement
        for arrangement in range(n_arrangements if 0 < n_au < n_sites else 1):
            atoms = random_fcc_alloy(counts, a, repeat, rng)
            for T in temperatures:
                for f in _langevin_frames(atoms, rng, T, n_snapshots, equilibration,
                                          interval, timestep):
                    f.info.update(x_au=n_au / n_sites, arrangement=arrangement)
                    frames.append(f)
    return frames
