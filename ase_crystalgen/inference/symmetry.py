"""Snap a generated crystal to the space group it was asked for.

A sample drawn with space group G is usually close to a G-symmetric structure but not on it:
the network's coordinates and lattice carry small errors. :func:`symmetrize` asks spglib for
the structure's symmetry at increasing tolerances and, at the first tolerance where spglib
finds G, replaces the cell and the positions by spglib's idealised ones (the lattice made
exactly that of G's crystal system, each atom moved onto its symmetrised Wyckoff position),
written back in the sample's own cell, so that the number and order of the atoms stay as
they were. When G is never found the sample comes back unchanged, and ``atoms.info`` says so.
The values put in ``info`` are numbers and booleans (no None), so that they survive extxyz.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..representation.spacegroups import _quiet_spglib, validate_spacegroup

#: Default spglib tolerances (Angstrom), tried in this order.
SYMPREC_LADDER: tuple[float, ...] = (1e-3, 1e-2, 0.03, 0.1, 0.2, 0.3, 0.5)

#: spglib tolerance (Angstrom) at which a symmetrised structure is checked.
CHECK_SYMPREC = 1e-4


def _dataset(cell: tuple, symprec: float):
    import spglib

    with _quiet_spglib():
        try:
            return spglib.get_symmetry_dataset(cell, symprec=symprec)
        except Exception:  # spglib >= 2.5 with its new error handling raises instead
            return None


def _validate_ladder(symprec_ladder: Sequence[float]) -> tuple[float, ...]:
    ladder = tuple(float(s) for s in symprec_ladder)
    if not ladder:
        raise ValueError("symprec_ladder is empty; give at least one tolerance")
    if any(not np.isfinite(s) or s <= 0 for s in ladder):
        raise ValueError(f"symprec_ladder must hold positive tolerances, got {ladder}")
    return ladder


def _idealised(cell: tuple, ds) -> tuple[np.ndarray, np.ndarray]:
    """The cell and fractional positions of ``cell`` with spglib's idealised symmetry ``ds``.

    spglib writes the standardised cell as ``x_std = P x + p`` with lattice rows
    ``L_std = P^-T L``; its idealised standard cell (``std_lattice``, ``std_positions``)
    is mapped back through the same P and p, so the atoms keep their cell and order.
    """
    lattice, frac, _ = cell
    P = np.asarray(ds.transformation_matrix, dtype=float)
    p = np.asarray(ds.origin_shift, dtype=float)
    # std_lattice is rotated into the standard orientation; rotate it back onto the input's
    std_lattice = np.asarray(ds.std_lattice, dtype=float) @ np.asarray(ds.std_rotation_matrix, dtype=float)
    new_lattice = P.T @ std_lattice
    std_pos = np.asarray(ds.std_positions, dtype=float)
    std_prim = np.asarray(ds.std_mapping_to_primitive)
    prim = np.asarray(ds.mapping_to_primitive)
    P_inv = np.linalg.inv(P)
    new_frac = np.empty_like(frac)
    for i, x in enumerate(frac):
        x_std = P @ x + p
        candidates = std_pos[std_prim == prim[i]]
        d = x_std - candidates
        d -= np.round(d)
        # nearest image in Cartesian terms of the standard cell
        j = int(np.argmin(np.linalg.norm(d @ std_lattice, axis=1)))
        ideal_std = x_std - d[j]
        new_frac[i] = P_inv @ (ideal_std - p)
    return new_lattice, new_frac


def symmetrize(
    atoms: Atoms,
    spacegroup: int | str,
    *,
    symprec_ladder: Sequence[float] = SYMPREC_LADDER,
    check_symprec: float = CHECK_SYMPREC,
) -> Atoms:
    """Snap ``atoms`` to ``spacegroup`` if spglib finds that group within a tolerance.

    Tolerances are tried in the order given. At the first one at which spglib's space group
    of ``atoms`` is ``spacegroup``, the lattice and the positions are replaced by spglib's
    idealised ones (its refined standard cell, transformed back into the cell of ``atoms``),
    and the result is checked with spglib at ``check_symprec``. The atoms keep their number,
    order and species; the cell keeps its setting (a primitive cell stays primitive), so
    the result is ``atoms`` with its symmetry made exact. When no tolerance gives
    ``spacegroup`` (or the idealised structure fails the check), a copy of ``atoms`` comes
    back unchanged.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic structure with at least one atom; it is not modified.
    spacegroup : int or str
        The space group to snap to: a number 1-230 or a Hermann-Mauguin symbol.
    symprec_ladder : sequence of float
        spglib tolerances in Angstrom, tried in this order; the default is
        ``SYMPREC_LADDER``, 0.001 to 0.5.
    check_symprec : float
        spglib tolerance (Angstrom) at which the snapped structure must show ``spacegroup``.

    Returns
    -------
    ase.Atoms
        A new structure. Its ``info`` holds the input's entries and:

        - ``symmetrized``: True when the structure was snapped, else False;
        - ``spacegroup_requested``: the space-group number asked for;
        - ``symprec_used``: the tolerance at which spglib found the group (NaN if never);
        - ``spacegroup_found``: the space group of the returned structure: the requested
          one when snapped, otherwise what spglib finds at the loosest tolerance of the
          ladder at which it finds one (0 if none);
        - ``symmetrize_shift``: the largest displacement of an atom (Angstrom, in the new
          cell; 0.0 when unchanged).

    Raises
    ------
    ValueError
        If ``spacegroup`` is not a space group, ``atoms`` has no atoms or no full periodic
        cell, or the ladder is empty or holds a tolerance that is not positive.

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    >>> atoms.positions[0] += [0.02, -0.01, 0.0]
    >>> snapped = symmetrize(atoms, 225)
    >>> snapped.info["symmetrized"], snapped.info["symprec_used"]
    (True, 0.1)
    """
    number = validate_spacegroup(spacegroup)
    ladder = _validate_ladder(symprec_ladder)
    if not np.isfinite(check_symprec) or check_symprec <= 0:
        raise ValueError(f"check_symprec must be positive, got {check_symprec}")
    if len(atoms) == 0:
        raise ValueError("cannot symmetrise an empty structure (no atoms)")
    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise ValueError(
            f"symmetrize needs a periodic structure with a full cell, got pbc={atoms.pbc.tolist()} "
            f"and a cell of rank {atoms.cell.rank}"
        )
    lattice = np.array(atoms.cell[:], dtype=float)
    frac = atoms.get_scaled_positions(wrap=False)
    cell = (lattice, frac, atoms.numbers.copy())
    out = atoms.copy()
    out.info.update(
        symmetrized=False,
        spacegroup_requested=number,
        symprec_used=float("nan"),
        spacegroup_found=0,
        symmetrize_shift=0.0,
    )
    found = 0
    for symprec in ladder:
        ds = _dataset(cell, symprec)
        if ds is None:
            continue
        found = int(ds.number)
        if found != number:
            continue
        new_lattice, new_frac = _idealised(cell, ds)
        check = _dataset((new_lattice, new_frac, cell[2]), check_symprec)
        if check is None or int(check.number) != number:
            continue
        d = new_frac - frac
        d -= np.round(d)
        # keep each atom's periodic image, so that positions move only by the snap
        out.set_cell(new_lattice, scale_atoms=False)
        out.set_scaled_positions(frac + d)
        out.info.update(
            symmetrized=True,
            symprec_used=symprec,
            spacegroup_found=number,
            symmetrize_shift=float(np.linalg.norm(d @ new_lattice, axis=1).max()),
        )
        return out
    out.info["spacegroup_found"] = found
    return out
