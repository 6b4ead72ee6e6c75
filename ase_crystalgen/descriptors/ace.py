"""Density-projected atomic cluster expansion (ACE) descriptors with analytic gradients.

For atom ``i`` of species ``mu_i`` the atomic base is

    A_{i, mu n l m} = sum_{j in neighbours of species mu} g_n^{mu_i mu}(r_ij) Y_lm(r_ij / |r_ij|)

(``g_n`` the Chebyshev-exponential-cosine radial functions, ``Y_lm`` real spherical
harmonics) and the rank-``N`` descriptors are contractions of ``N`` atomic-base functions
with generalised Clebsch-Gordan tensors (see :mod:`.basis`). Per-atom output is laid out in
blocks per centre species: ``B[i, mu_i * K:(mu_i + 1) * K]`` holds the ``K`` invariants of
atom ``i``; the other blocks are zero. The mean of that row over a structure therefore
carries the composition as well as the environments.

Gradients are analytic: a vector-Jacobian product gives forces and virial for any scalar
function of the descriptors in one backward pass (what a calculator needs), and per-pair
gradients give the full Jacobian with respect to positions and strain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from scipy.sparse import csr_matrix

from .angular import real_sph_harm
from .base import SpeciesBlockDescriptor
from .basis import ACEBasis
from .neighbors import neighbor_pairs
from .radial import cheb_exp_cos, default_cutoffs, validate_element

PAPER_NMAX = (8, 2, 2, 1)
PAPER_LMAX = (0, 2, 2, 1)


@dataclass
class _Forward:
    """Everything the backward pass needs, from one forward evaluation."""

    n_atoms: int
    species: np.ndarray  # (N,)
    i: np.ndarray  # (P,) centre
    j: np.ndarray  # (P,) neighbour
    vec: np.ndarray  # (P, 3) r_j + shift - r_i
    r: np.ndarray  # (P,)
    g: np.ndarray  # (P, nrad)
    dg: np.ndarray  # (P, nrad)
    Y: np.ndarray  # (P, nlm)
    dY: np.ndarray  # (P, nlm, 3) gradient wrt the unit vector (tangential)
    rows: np.ndarray  # (P,) i * n_species + species[j]
    A: np.ndarray  # (N, n_species * n_a)
    B_local: np.ndarray  # (N, K)


class DescriptorGradients:
    """Per-pair descriptor gradients ``dB_i / d r_ij`` (like LAMMPS' ``dgradflag``).

    Attributes
    ----------
    i, j : (P,) centre and neighbour of each pair (``r_ij = r_j + shift - r_i``).
    vectors : (P, 3) the pair vectors.
    dB : (P, F, 3) derivative of the centre's descriptor row with respect to ``r_ij``.
    """

    def __init__(self, n_atoms, i, j, vectors, dB):
        self.n_atoms, self.i, self.j, self.vectors, self.dB = n_atoms, i, j, vectors, dB

    def positions(self) -> np.ndarray:
        """Dense ``dB_{i,f} / dR_{k,c}`` of shape (N, F, N, 3)."""
        N, F = self.n_atoms, self.dB.shape[1]
        out = np.zeros((N, F, N, 3))
        np.add.at(out, (self.i, slice(None), self.j), self.dB)
        np.add.at(out, (self.i, slice(None), self.i), -self.dB)
        return out

    def strain(self) -> np.ndarray:
        """``dB_{i,f} / d eps_{ab}`` (N, F, 3, 3) for a homogeneous strain
        ``r -> (1 + eps) r`` applied to positions and cell."""
        N, F = self.n_atoms, self.dB.shape[1]
        out = np.zeros((N, F, 3, 3))
        np.add.at(out, self.i, np.einsum("pfa,pb->pfab", self.dB, self.vectors))
        return out


class ACEDescriptor(SpeciesBlockDescriptor):
    """Chemistry-aware ACE descriptors, ranks 1 to ``len(nmax)`` (up to 5-body by default).

    Parameters
    ----------
    elements : chemical symbols the descriptor knows (order fixes the feature layout).
    nmax, lmax : per-rank radial and angular limits. Defaults are the GRS paper's
        ``(8, 2, 2, 1)`` and ``(0, 2, 2, 1)``.
    cutoffs : per-pair cutoffs in Angstrom: a number for all pairs, or a dict
        ``{(a, b): rc}`` (symmetric; missing pairs take the default). The default is
        ``cutoff_scale * (r_vdw(a) + r_vdw(b))`` from tabulated van der Waals radii.
    cutoff_scale : factor of the default cutoffs (2.0 gives 4-5 fcc neighbour shells).
    lambda_fraction : scaled-distance parameter of the radial basis as a fraction of the
        cutoff (the paper's 5 %).

    Examples
    --------
    >>> from ase.build import bulk
    >>> d = ACEDescriptor(["Cu", "Au"])
    >>> B = d.compute(bulk("Cu", "fcc", a=3.6, cubic=True))
    >>> B.shape == (4, d.n_features)
    True
    """

    progress_label = "ACE descriptors"
    #: feature_ranks() are body orders minus one, so rank_weights="hierarchy" applies
    ranks_are_body_orders = True

    def __init__(
        self,
        elements: Sequence[str],
        nmax: Sequence[int] = PAPER_NMAX,
        lmax: Sequence[int] = PAPER_LMAX,
        cutoffs: float | dict | None = None,
        cutoff_scale: float = 2.0,
        lambda_fraction: float = 0.05,
    ):
        elements = [validate_element(e) for e in elements]
        if len(set(elements)) != len(elements) or not elements:
            raise ValueError(f"elements must be a non-empty list without repeats: {elements}")
        self.elements = list(elements)
        self.nmax, self.lmax = tuple(nmax), tuple(lmax)
        self.cutoff_scale = float(cutoff_scale)
        self.lambda_fraction = float(lambda_fraction)
        ns = len(elements)
        table = default_cutoffs(elements, cutoff_scale)
        if isinstance(cutoffs, (int, float)):
            table = {k: float(cutoffs) for k in table}
        elif isinstance(cutoffs, dict):
            for (a, b), rc in cutoffs.items():
                if a not in elements or b not in elements:
                    raise ValueError(f"cutoff given for pair ({a}, {b}) outside {elements}")
                table[(a, b)] = table[(b, a)] = float(rc)
        elif cutoffs is not None:
            raise TypeError("cutoffs must be a number, a dict {(a, b): rc} or None")
        self.rcut = np.array([[table[(a, b)] for b in elements] for a in elements])
        if not np.all(self.rcut > 0):
            raise ValueError("cutoffs must be positive")
        self.basis = ACEBasis(ns, self.nmax, self.lmax)
        self.n_per_species = self.basis.n_descriptors
        self.n_features = ns * self.n_per_species
        self._index = {e: k for k, e in enumerate(elements)}
        na = self.basis.n_a
        # atomic-base function f of a pair: g[:, a_n[f]] * Y[:, lm(f)]
        self._a_lm = self.basis.a_l**2 + self.basis.a_l + self.basis.a_m
        # (n_lm, na) and (n_rad, na) sums over atomic-base functions of one (l, m) / one n
        self._lm_matrix = csr_matrix(
            (np.ones(na), (self._a_lm, np.arange(na))), shape=((self.basis.lmax_all + 1) ** 2, na)
        )
        self._n_matrix = csr_matrix(
            (np.ones(na), (self.basis.a_n, np.arange(na))), shape=(self.basis.nmax_all, na)
        )

    # ------------------------------------------------------------------ public API
    @property
    def max_cutoff(self) -> float:
        return float(self.rcut.max())

    def todict(self) -> dict:
        return {
            "elements": self.elements,
            "nmax": list(self.nmax),
            "lmax": list(self.lmax),
            "cutoffs": {f"{a}-{b}": float(self.rcut[i, j])
                        for i, a in enumerate(self.elements) for j, b in enumerate(self.elements)},
            "lambda_fraction": self.lambda_fraction,
        }

    def feature_ranks(self) -> np.ndarray:
        """Rank (body order minus one) of each feature, shape (n_features,)."""
        ranks = np.array([inv.rank for inv in self.basis.invariants])
        return np.tile(ranks, len(self.elements))

    def feature_labels(self) -> list[str]:
        """Human-readable label of each feature: centre, rank, channels, couplings."""
        out = []
        for c in self.elements:
            for inv in self.basis.invariants:
                ch = ",".join(f"{self.elements[mu]}{n + 1}l{l}" for mu, n, l in inv.channels)
                L = f"|L{','.join(map(str, inv.Ls))}" if len(inv.Ls) and inv.rank > 3 else ""
                out.append(f"{c}:r{inv.rank}[{ch}]{L}")
        return out


    def compute(self, atoms: Atoms) -> np.ndarray:
        """Per-atom descriptors, shape (n_atoms, n_features)."""
        return self._expand(self._forward(atoms, need_grad=False))


    def compute_with_gradients(self, atoms: Atoms) -> tuple[np.ndarray, DescriptorGradients]:
        """Descriptors and their per-pair gradients (see :class:`DescriptorGradients`)."""
        fw = self._forward(atoms, need_grad=True)
        J = self.basis.jacobian(fw.A)  # (N, K, ns*na)
        na, ns, K = self.basis.n_a, len(self.elements), self.n_per_species
        sj = fw.species[fw.j]
        P = len(fw.i)
        # dphi_p/dr_p : (P, na, 3)
        dphi = self._dphi(fw)
        Jp = np.empty((P, K, na))
        for s in range(ns):
            sel = sj == s
            Jp[sel] = J[fw.i[sel]][:, :, s * na:(s + 1) * na]
        dB_local = np.einsum("pkf,pfc->pkc", Jp, dphi)
        dB = np.zeros((P, ns * K, 3))
        for s in range(ns):
            sel = fw.species[fw.i] == s
            dB[sel, s * K:(s + 1) * K] = dB_local[sel]
        return self._expand(fw), DescriptorGradients(fw.n_atoms, fw.i, fw.j, fw.vec, dB)

    def forward(self, atoms: Atoms):
        """Descriptors plus a closure for vector-Jacobian products.

        Returns ``(B, backward)`` where ``backward(G)`` with ``G = dL/dB`` (N, F) returns
        ``(dL/dR (N, 3), W (3, 3))`` with ``W = sum_pairs dL/dr_ij (x) r_ij``, so that the
        derivative with respect to a homogeneous strain is ``W`` (stress ``W / V``).
        """
        fw = self._forward(atoms, need_grad=True)

        def backward(G):
            return self._backward(fw, G)

        backward.pairs = (fw.i, fw.j, fw.vec)  # reusable by short-range terms
        return self._expand(fw), backward

    # ------------------------------------------------------------------ internals
    def _expand(self, fw: _Forward) -> np.ndarray:
        return self.expand(fw.B_local, fw.species)

    def _pairs(self, atoms: Atoms, species: np.ndarray):
        if np.any(atoms.pbc):
            cell = atoms.cell
            if cell.rank < int(np.sum(atoms.pbc)) or abs(np.linalg.det(cell.array)) < 1e-8:
                raise ValueError("periodic cell has zero volume (degenerate cell vectors)")
        pos = atoms.positions
        if not np.all(np.isfinite(pos)) or not np.all(np.isfinite(atoms.cell.array)):
            raise ValueError("atoms have non-finite (NaN or inf) positions or cell")
        i, j, vec = neighbor_pairs(atoms, self.max_cutoff)
        r = np.linalg.norm(vec, axis=1)
        rc = self.rcut[species[i], species[j]]
        keep = r < rc
        if np.any(r[keep] < 1e-8):
            k = np.flatnonzero(r < 1e-8)[0]
            raise ValueError(f"atoms {i[k]} and {j[k]} overlap (distance {r[k]:.2e} A)")
        return i[keep], j[keep], vec[keep], r[keep], rc[keep]

    def _forward(self, atoms: Atoms, need_grad: bool) -> _Forward:
        species = self.species_of(atoms)
        N = len(atoms)
        i, j, vec, r, rc = self._pairs(atoms, species)
        u = vec / r[:, None] if len(r) else np.zeros((0, 3))
        g, dg = cheb_exp_cos(r, rc, self.lambda_fraction * rc, self.basis.nmax_all)
        if need_grad:
            Y, dY = real_sph_harm(u, self.basis.lmax_all, grad=True)
        else:
            Y, dY = real_sph_harm(u, self.basis.lmax_all), None
        rows = i * len(self.elements) + species[j]
        A = self._assemble(g, Y, rows, N)
        B_local = self.basis.evaluate(A)
        return _Forward(N, species, i, j, vec, r, g, dg, Y, dY, rows, A, B_local)

    def _assemble(self, g, Y, rows, n_centres):
        """Sum pair functions ``g_n Y_lm`` into atomic bases (n_centres, ns * na);
        ``rows = centre * n_species + neighbour species``."""
        return self._sum_pairs(g[:, self.basis.a_n] * Y[:, self._a_lm], rows, n_centres)

    def _sum_pairs(self, phi, rows, n_centres):
        """Atomic bases (n_centres, ns * na) from pair functions ``phi`` (P, na)."""
        ns = len(self.elements)
        M = csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))),
                       shape=(n_centres * ns, len(rows)))
        return np.asarray(M @ phi).reshape(n_centres, ns * self.basis.n_a)

    def pair_functions(self, vec: np.ndarray, centre: int, neighbour: int) -> np.ndarray:
        """Atomic-base functions ``g_n(r) Y_lm(r^)`` (P, n_a) of pair vectors ``vec`` for a
        centre of species index ``centre`` and a neighbour of species index ``neighbour``
        (zero beyond their cutoff)."""
        vec = np.asarray(vec, dtype=float).reshape(-1, 3)
        r = np.linalg.norm(vec, axis=1)
        rc = np.full(len(r), self.rcut[centre, neighbour])
        g, _ = cheb_exp_cos(r, rc, self.lambda_fraction * rc, self.basis.nmax_all)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.where(r[:, None] > 0, vec / r[:, None], 0.0)
        Y = real_sph_harm(u, self.basis.lmax_all)
        return g[:, self.basis.a_n] * Y[:, self._a_lm]

    def lattice_bases(self, atoms: Atoms):
        """A :class:`~.local.LatticeBases` for ``atoms``: exact, cheap descriptor updates
        when sites change species at fixed positions (flips and swaps)."""
        from .local import LatticeBases

        return LatticeBases(self, atoms, self.species_of(atoms))

    def local_descriptors(self, centre_species, rows, vec, n_centres, expand: bool = True):
        """Descriptors of ``n_centres`` atoms from their pair vectors, for local updates.

        Parameters
        ----------
        centre_species : (n_centres,) species index of each centre.
        rows : (P,) ``local centre index * n_species + neighbour species`` of each pair.
        vec : (P, 3) pair vectors (pairs beyond their cutoff are dropped here).

        Returns
        -------
        (n_centres, n_features) rows in the block layout of :meth:`compute`, or the
        per-centre rows (n_centres, n_per_species) with ``expand=False``.
        """
        ns = len(self.elements)
        si, sj = centre_species[rows // ns], rows % ns
        r = np.linalg.norm(vec, axis=1)
        rc = self.rcut[si, sj]
        keep = r < rc
        r, rc, rows, vec = r[keep], rc[keep], rows[keep], vec[keep]
        if np.any(r < 1e-8):
            raise ValueError("overlapping atoms (distance below 1e-8 A)")
        g, _ = cheb_exp_cos(r, rc, self.lambda_fraction * rc, self.basis.nmax_all)
        Y = real_sph_harm(vec / r[:, None], self.basis.lmax_all) if len(r) else np.zeros(
            (0, (self.basis.lmax_all + 1) ** 2))
        B_local = self.basis.evaluate(self._assemble(g, Y, rows, n_centres))
        return self.expand(B_local, centre_species) if expand else B_local


    def _dphi(self, fw: _Forward) -> np.ndarray:
        """d phi_pf / d r_p, shape (P, na, 3)."""
        u = fw.vec / fw.r[:, None]
        an, alm = self.basis.a_n, self._a_lm
        radial = (fw.dg[:, an] * fw.Y[:, alm])[:, :, None] * u[:, None, :]
        angular = fw.g[:, an][:, :, None] * fw.dY[:, alm, :] / fw.r[:, None, None]
        return radial + angular

    def _backward(self, fw: _Forward, G: np.ndarray):
        G = np.asarray(G, dtype=float)
        N, ns, K, na = fw.n_atoms, len(self.elements), self.n_per_species, self.basis.n_a
        if G.shape != (N, ns * K):
            raise ValueError(f"gradient has shape {G.shape}, expected {(N, ns * K)}")
        G_local = G.reshape(N, ns, K)[np.arange(N), fw.species]  # (N, K)
        dA = self.basis.vjp(fw.A, G_local).reshape(N * ns, na)
        dphi = dA[fw.rows]  # (P, na)
        u = fw.vec / fw.r[:, None]
        # radial part: sum_f dphi_f dg_{n_f} Y_{lm_f}
        a = np.einsum("pn,pn->p", (self._n_matrix @ (dphi * fw.Y[:, self._a_lm]).T).T, fw.dg)
        # angular part: sum_f dphi_f g_{n_f} dY_{lm_f}
        W = (self._lm_matrix @ (dphi * fw.g[:, self.basis.a_n]).T).T  # (P, nlm)
        dvec = a[:, None] * u + np.einsum("pk,pkc->pc", W, fw.dY) / fw.r[:, None]
        dR = np.zeros((N, 3))
        for c in range(3):
            dR[:, c] = np.bincount(fw.j, dvec[:, c], N) - np.bincount(fw.i, dvec[:, c], N)
        virial = dvec.T @ fw.vec
        return dR, virial
