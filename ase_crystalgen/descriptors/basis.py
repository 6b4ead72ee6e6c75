"""Enumeration of a complete, linearly independent set of ACE invariants.

An ACE invariant of rank ``N`` contracts ``N`` atomic-base functions
``A_{mu n l m}`` with a generalised Clebsch-Gordan tensor. For a multiset of channels
``(mu_k, n_k, l_k)`` every ordering of the channels and every intermediate coupling of
the coupling tree gives an invariant; together they span the space of rotation-invariant
polynomials of that multiset, but they are linearly dependent whenever channels repeat
(and through recoupling). Each candidate is written as a vector over canonical
(permutation-sorted) monomials of ``A``; a greedy rank-revealing selection keeps a subset
that spans the same space with no dependence. Since distinct monomials of the atomic base
are linearly independent functions of the neighbour density, independence of these
coefficient vectors is independence of the descriptors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from math import pi, sqrt

import numpy as np

from . import _kernels
from .angular import coupling_trees, real_coupling


@dataclass(frozen=True)
class Invariant:
    """Label of one descriptor: its rank, channels ``((mu, n, l), ...)`` in coupling
    order and the intermediate couplings ``Ls`` of the left-coupled tree."""

    rank: int
    channels: tuple[tuple[int, int, int], ...]
    Ls: tuple[int, ...]


@cache
def _select_for_shape(shape: tuple[tuple[int, int], ...]):
    """Independent couplings for a multiset pattern.

    ``shape`` is a sorted tuple of ``(l, class)``; equal classes are the same channel.
    Returns a list of ``(ordering, Ls, monomials)`` where ``ordering`` permutes the
    positions of ``shape`` and ``monomials`` is a list of ``(coef, ((pos, m), ...))``
    with ``pos`` a position in ``shape`` (canonical representative of its class).
    """
    r = len(shape)
    ls = [s[0] for s in shape]
    first_pos = {}
    for pos, (_, c) in enumerate(shape):
        first_pos.setdefault(c, pos)
    orderings = sorted(set(itertools.permutations(range(r), r)), key=lambda p: p)
    # keep one ordering per distinct sequence of classes
    seen, distinct = set(), []
    for p in orderings:
        key = tuple(shape[k] for k in p)
        if key not in seen:
            seen.add(key)
            distinct.append(p)
    candidates = []
    for p in distinct:
        lp = tuple(ls[k] for k in p)
        for Ls in coupling_trees(lp):
            G = real_coupling(lp, Ls)
            mono: dict[tuple, float] = {}
            for flat in np.flatnonzero(G):
                ms = np.unravel_index(flat, G.shape)
                key = tuple(
                    sorted((first_pos[shape[p[k]][1]], int(ms[k]) - lp[k]) for k in range(r))
                )
                mono[key] = mono.get(key, 0.0) + G.flat[flat]
            candidates.append((p, Ls, mono))
    # rank-revealing greedy selection (modified Gram-Schmidt on the monomial vectors)
    keys = sorted({k for _, _, mono in candidates for k in mono})
    kidx = {k: i for i, k in enumerate(keys)}
    basis: list[np.ndarray] = []
    selected = []
    for p, Ls, mono in candidates:
        v = np.zeros(len(keys))
        for k, c in mono.items():
            v[kidx[k]] = c
        norm0 = np.linalg.norm(v)
        if norm0 < 1e-10:
            continue
        w = v.copy()
        for b in basis:
            w -= (b @ w) * b
        for b in basis:  # re-orthogonalise once for stability
            w -= (b @ w) * b
        if np.linalg.norm(w) > 1e-8 * norm0:
            basis.append(w / np.linalg.norm(w))
            terms = [(c, k) for k, c in mono.items() if abs(c) > 1e-14]
            selected.append((p, Ls, terms))
    return selected


def invariant_space_dimension(ls: tuple[int, ...], classes: tuple[int, ...]) -> int:
    """Number of independent invariants for channels with degrees ``ls`` where equal
    ``classes`` denote identical channels (the size of the selected set)."""
    shape = tuple(sorted(zip(ls, classes)))
    return len(_select_for_shape(_canonical_shape(shape)))


def _canonical_shape(items):
    """Relabel classes in order of first appearance after sorting by (l, class)."""
    items = sorted(items)
    relabel, out = {}, []
    for l, c in items:  # noqa: E741
        relabel.setdefault(c, len(relabel))
        out.append((l, relabel[c]))
    return tuple(out)


class ACEBasis:
    """The compiled descriptor basis for ``n_species`` neighbour species.

    Parameters
    ----------
    n_species : number of chemical species.
    nmax, lmax : per-rank radial and angular limits; ``len(nmax) == len(lmax)`` is the
        maximal rank (rank ``N`` is an ``N+1``-body function). ``lmax[0]`` must be 0.

    Attributes
    ----------
    a_n, a_l, a_m : (n_a,) radial index (0-based), degree and order of each atomic-base
        function of one neighbour species; the full atomic base of an atom is
        ``n_species * n_a`` long, species-major.
    invariants : list of :class:`Invariant`, the descriptor labels (``K`` of them).
    terms : dict rank -> (idx (T, rank) int, coef (T,), out (T,) int) polynomial of the
        descriptors in the flat atomic base.
    """

    def __init__(self, n_species: int, nmax, lmax):
        nmax, lmax = tuple(int(n) for n in nmax), tuple(int(l) for l in lmax)
        if len(nmax) != len(lmax) or len(nmax) == 0:
            raise ValueError("nmax and lmax need one entry per rank (same length, >= 1)")
        if lmax[0] != 0:
            raise ValueError("rank-1 descriptors are radial: lmax[0] must be 0")
        if min(nmax) < 1 or min(lmax) < 0:
            raise ValueError("nmax entries must be >= 1 and lmax entries >= 0")
        self.n_species, self.nmax, self.lmax = n_species, nmax, lmax
        self.max_rank = len(nmax)
        # radial functions needed per degree l
        n_for_l = {}
        for rank, (nm, lm) in enumerate(zip(nmax, lmax), start=1):
            for l in range(lm + 1):  # noqa: E741
                n_for_l[l] = max(n_for_l.get(l, 0), nm)
        self.lmax_all = max(n_for_l)
        self.nmax_all = max(n_for_l.values())
        a_n, a_l, a_m, offset = [], [], [], {}
        for l in range(self.lmax_all + 1):  # noqa: E741
            for n in range(n_for_l[l]):
                offset[(n, l)] = len(a_n)
                for m in range(-l, l + 1):
                    a_n.append(n)
                    a_l.append(l)
                    a_m.append(m)
        self.a_n, self.a_l, self.a_m = np.array(a_n), np.array(a_l), np.array(a_m)
        self.n_a = len(a_n)
        self._offset = offset
        self._build()

    def a_index(self, mu: int, n: int, l: int, m: int) -> int:  # noqa: E741
        return mu * self.n_a + self._offset[(n, l)] + m + l

    def _build(self):
        invariants: list[Invariant] = []
        terms: dict[int, list] = {}
        # rank 1: B = sum_j g_n(r_ij) = sqrt(4 pi) A_{mu n 0 0}
        for mu in range(self.n_species):
            for n in range(self.nmax[0]):
                k = len(invariants)
                invariants.append(Invariant(1, ((mu, n, 0),), ()))
                terms.setdefault(1, []).append((sqrt(4 * pi), (self.a_index(mu, n, 0, 0),), k))
        for rank in range(2, self.max_rank + 1):
            nm, lm = self.nmax[rank - 1], self.lmax[rank - 1]
            channels = sorted(
                (l, mu, n)
                for mu in range(self.n_species)
                for n in range(nm)
                for l in range(lm + 1)  # noqa: E741
            )
            for combo in itertools.combinations_with_replacement(channels, rank):
                ls = [c[0] for c in combo]
                if sum(ls) % 2:  # odd parity: not invariant under inversion
                    continue
                if 2 * max(ls) > sum(ls):  # cannot couple to zero
                    continue
                # combo is sorted by (l, mu, n); classes by first appearance
                cls, labels = {}, []
                for c in combo:
                    cls.setdefault(c, len(cls))
                    labels.append(cls[c])
                shape = tuple(zip(ls, labels))
                for p, Ls, mono in _select_for_shape(shape):
                    k = len(invariants)
                    chans = tuple((combo[q][1], combo[q][2], combo[q][0]) for q in p)
                    invariants.append(Invariant(rank, chans, Ls))
                    for coef, key in mono:
                        idx = tuple(
                            self.a_index(combo[pos][1], combo[pos][2], combo[pos][0], m)
                            for pos, m in key
                        )
                        terms.setdefault(rank, []).append((coef, idx, k))
        self.invariants = invariants
        self.n_descriptors = len(invariants)
        self.terms = {}
        for rank, lst in terms.items():
            coef = np.array([t[0] for t in lst])
            idx = np.array([t[1] for t in lst], dtype=np.intp).reshape(len(lst), rank)
            out = np.array([t[2] for t in lst], dtype=np.intp)
            self.terms[rank] = (idx, coef, out)
        width = self.n_species * self.n_a
        # transposed (width, T) scatter matrices: S_T @ P.T sums columns of P
        self._s_out = {r: _scatter_matrix(o, self.n_descriptors) for r, (_, _, o) in self.terms.items()}
        self._s_idx = {
            r: [_scatter_matrix(idx[:, k], width) for k in range(r)]
            for r, (idx, _, _) in self.terms.items()
        }

    def counts_per_rank(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for inv in self.invariants:
            out[inv.rank] = out.get(inv.rank, 0) + 1
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, A: np.ndarray) -> np.ndarray:
        """Descriptors ``B`` (n, K) from flat atomic bases ``A`` (n, n_species * n_a)."""
        n = A.shape[0]
        B = np.zeros((n, self.n_descriptors))
        if _kernels.enabled():
            return _kernels.polynomial(A, list(self.terms.values()), self.n_descriptors)
        for rank, (idx, coef, _out) in self.terms.items():
            P = np.broadcast_to(coef, (n, len(coef))).copy()
            for k in range(rank):
                P *= A[:, idx[:, k]]
            B += (self._s_out[rank] @ P.T).T
        return B

    def evaluate_t(self, AT: np.ndarray) -> np.ndarray:
        """:meth:`evaluate` of bases stored transposed, ``AT`` (n_species * n_a, n);
        returns ``B`` transposed, (K, n) (the layout of the compiled loops)."""
        if _kernels.enabled():
            return _kernels.polynomial_t(AT, list(self.terms.values()), self.n_descriptors)
        return np.ascontiguousarray(self.evaluate(AT.T).T)

    def vjp(self, A: np.ndarray, G: np.ndarray) -> np.ndarray:
        """``dL/dA`` given ``G = dL/dB`` (n, K)."""
        dA = np.zeros_like(A)
        if _kernels.enabled():
            return _kernels.polynomial_vjp(A, G, list(self.terms.values()))
        for r, (idx, coef, out) in self.terms.items():
            Gt = G[:, out] * coef  # (n, T)
            factors = [A[:, idx[:, k]] for k in range(r)]
            for k in range(r):
                prod = Gt.copy()
                for kk in range(r):
                    if kk != k:
                        prod *= factors[kk]
                dA += (self._s_idx[r][k] @ prod.T).T
        return dA

    def jacobian(self, A: np.ndarray) -> np.ndarray:
        """Dense ``dB/dA`` (n, K, n_species * n_a)."""
        n = A.shape[0]
        J = np.zeros((n, self.n_descriptors, A.shape[1]))
        for _rank, (idx, coef, out) in self.terms.items():
            r = idx.shape[1]
            factors = [A[:, idx[:, k]] for k in range(r)]
            for k in range(r):
                prod = np.broadcast_to(coef, (n, len(coef))).copy()
                for kk in range(r):
                    if kk != k:
                        prod *= factors[kk]
                np.add.at(J, (slice(None), out, idx[:, k]), prod)
        return J


def _scatter_matrix(cols: np.ndarray, width: int):
    """Sparse (width, T) matrix ``S`` with ``S @ P.T`` summing the T columns of ``P`` into
    the ``width`` columns ``cols``."""
    from scipy.sparse import csr_matrix

    T = len(cols)
    return csr_matrix((np.ones(T), (cols, np.arange(T))), shape=(width, T))
