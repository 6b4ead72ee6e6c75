"""The GRS objective: moments of descriptor distributions and the distance between them.

Nothing here knows about ASE calculators; it works on descriptor arrays. The calculator,
the annealer and the genetic algorithm all call :class:`GRSObjective`.

Definitions
-----------
For descriptor rows ``B`` (n, F) of one structure (or of several pooled together):

* ``M_1 = mean_i B_i``; for ``p >= 2`` the central moments ``M_p = mean_i (B_i - M_1)^p``
  (variance, third and fourth central moments);
* per-descriptor scales ``s_f`` (from the target) make the differences dimensionless:
  ``D_p = (M_p(B) - M_p(target)) / s^p``;
* the score ``Q = sum_p alpha_p * mean_f |D_{p,f}|`` (eq. 13 of the GRS paper, averaged
  over descriptors so that weights mean the same whatever the basis size). ``|x|`` may be
  smoothed as ``sqrt(x^2 + delta^2) - delta`` (exactly 0 at 0, differentiable
  everywhere). Negative ``alpha_p`` turn matching into avoiding ("reverse GRS").

The gradient with respect to row ``i`` is exact:
``dM_1/dB_i = 1/n`` and ``dM_p/dB_i = p/n [(B_i - M_1)^(p-1) - M_(p-1)]`` (``M_1`` taken
as 0 inside the bracket).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..descriptors import _kernels

#: ``rank_weights="hierarchy"``: each rank weighs this times the one below it. Measured
#: on fcc Cu-Au SQS (docs/grs-search.md): 0.1 still lets the 3- and 4-body terms pull the
#: pair correlations of shells 1-3 off by up to 0.33; 0.01 reproduces them exactly.
HIERARCHY_RATIO = 0.01

MOMENT_NAMES = {1: "mean", 2: "variance", 3: "third central moment", 4: "fourth central moment"}


def central_moments(B: np.ndarray, orders=(1, 2)) -> dict[int, np.ndarray]:
    """Mean (order 1) and central moments (orders >= 2) over rows of ``B``."""
    B = np.asarray(B, dtype=float)
    if B.ndim != 2 or B.shape[0] == 0:
        raise ValueError(f"need a non-empty (n, F) descriptor array, got shape {B.shape}")
    mean = B.mean(axis=0)
    out = {}
    dev = B - mean
    for p in orders:
        out[p] = mean if p == 1 else np.mean(dev**p, axis=0)
    return out


def read_structures(path) -> list:
    """All frames of a file ASE can read, with clear errors for missing or corrupt files."""
    from ase.io import read

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"target file {path} does not exist")
    try:
        frames = read(path, index=":")
    except Exception as exc:  # ASE raises many kinds for corrupt files
        raise ValueError(f"could not read target file {path}: {exc}") from exc
    if not frames:
        raise ValueError(f"target file {path} holds no structures")
    return frames


class DescriptorTarget:
    """Moments of a target descriptor distribution.

    Parameters
    ----------
    descriptors : (n, F) per-atom descriptors of the target (all atoms pooled).
    orders : which moments to keep (1 = mean, 2 = variance, 3, 4 central moments).
    scale : per-descriptor scales (F,), or a rule. ``"rms"`` (default): each descriptor's
        own root mean square over the target, pooled over centre-species blocks when
        ``block_size`` is given. Descriptors that vanish by symmetry in a crystal target
        then weigh as much as the others, which makes distortions stiff: best for
        gradient relaxation of positions and cell. ``"group"``: one root-mean-square scale
        per group of descriptors (for ACE, per rank), pooled over the target's atoms and
        the group's descriptors, so each rank weighs alike while descriptors keep their
        natural relative size within it: a smoother landscape for chemical (flip/swap)
        searches on a lattice. Either is floored at ``floor`` times the median of the
        scales that are not zero to round-off.
    block_size : descriptors per centre species (``ACEDescriptor.n_per_species``).
    groups : (F,) integer group label per descriptor (``ACEDescriptor.feature_ranks()``).

    Use :meth:`from_structures` (one ``Atoms``, a list, a trajectory or any file ASE reads)
    or :meth:`from_arrays` rather than the constructor in most cases.
    """

    def __init__(
        self,
        descriptors: np.ndarray,
        orders: Sequence[int] = (1, 2, 3, 4),
        scale: str | np.ndarray = "rms",
        block_size: int | None = None,
        groups: np.ndarray | None = None,
        floor: float = 0.1,
        elements: Sequence[str] | None = None,
    ):
        B = np.asarray(descriptors, dtype=float)
        if B.ndim != 2 or B.shape[0] == 0:
            raise ValueError(f"target descriptors must be a non-empty (n, F) array, got {B.shape}")
        if not np.all(np.isfinite(B)):
            raise ValueError("target descriptors contain NaN or inf")
        orders = tuple(sorted(set(int(p) for p in orders)))
        if not orders or min(orders) < 1 or max(orders) > 4:
            raise ValueError(f"moment orders must be within 1..4, got {orders}")
        self.orders = orders
        self.n_samples, self.n_features = B.shape
        self.moments = central_moments(B, orders)
        self.block_size = block_size
        self.elements = list(elements) if elements is not None else None
        self.groups = None
        if groups is not None:
            groups = np.asarray(groups, dtype=int)
            if groups.shape != (self.n_features,):
                raise ValueError(f"groups needs one label per descriptor ({self.n_features}), "
                                 f"got shape {groups.shape}")
            self.groups = groups
        if isinstance(scale, str):
            if scale == "group":
                if groups is None or len(groups) != self.n_features:
                    raise ValueError("scale='group' needs one group label per descriptor")
                self.scale = self._group_scale(B, np.asarray(groups), floor)
            elif scale == "rms":
                self.scale = self._rms_scale(B, block_size, floor)
            else:
                raise ValueError(f"unknown scale {scale!r}; use 'group', 'rms' or an array")
        else:
            s = np.asarray(scale, dtype=float)
            if s.shape != (self.n_features,) or np.any(s <= 0) or not np.all(np.isfinite(s)):
                raise ValueError("scale must be a positive finite array of length n_features")
            self.scale = s

    @staticmethod
    def _floored(s, floor):
        # descriptors that vanish by symmetry come out at round-off level: not a scale
        nz = s[s > 1e-8 * s.max()] if s.max() > 0 else s[:0]
        ref = np.median(nz) if len(nz) else 1.0
        return np.maximum(s, floor * ref)

    @classmethod
    def _group_scale(cls, B, groups, floor):
        ms = np.mean(B**2, axis=0)
        s = np.empty(B.shape[1])
        for g in np.unique(groups):
            sel = groups == g
            s[sel] = np.sqrt(ms[sel].mean())
        return cls._floored(s, floor)

    @classmethod
    def _rms_scale(cls, B, block_size, floor):
        F = B.shape[1]
        ms = np.mean(B**2, axis=0)
        if block_size:
            if F % block_size:
                raise ValueError(f"{F} features are not a whole number of blocks of {block_size}")
            pooled = ms.reshape(-1, block_size).sum(axis=0)
            ms = np.tile(pooled, F // block_size)
        return cls._floored(np.sqrt(ms), floor)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_structures(cls, structures, descriptor, orders=(1, 2, 3, 4), progress=False,
                        **kwargs) -> DescriptorTarget:
        """Target from one ``Atoms``, a list of them, or a file/trajectory path (all frames).

        ``descriptor`` is an object with ``compute(atoms)`` (e.g. ``ACEDescriptor``).
        """
        from ase import Atoms

        if isinstance(structures, (str, os.PathLike)):
            structures = read_structures(structures)
        if isinstance(structures, Atoms):
            structures = [structures]
        structures = list(structures)
        if not structures:
            raise ValueError("target needs at least one structure")
        Bs = descriptor.compute_many(structures, progress=progress)
        B = np.concatenate(Bs, axis=0)
        kwargs.setdefault("block_size", getattr(descriptor, "n_per_species", None))
        if hasattr(descriptor, "feature_ranks"):
            kwargs.setdefault("groups", descriptor.feature_ranks())
        kwargs.setdefault("elements", getattr(descriptor, "elements", None))
        return cls(B, orders=orders, **kwargs)

    @classmethod
    def from_arrays(cls, arrays, orders=(1, 2, 3, 4), **kwargs) -> DescriptorTarget:
        """Target from one (n, F) array or a list of them (pooled)."""
        if isinstance(arrays, np.ndarray):
            arrays = [arrays]
        return cls(np.concatenate([np.asarray(a, float) for a in arrays], 0), orders, **kwargs)

    def save(self, path) -> None:
        """Write the moments and scales to an ``.npz`` file (atomically)."""
        from .._atomic import atomic_open

        with atomic_open(path, "wb") as fh:  # a file object: np.savez adds no ".npz" suffix
            np.savez(
                fh, orders=np.array(self.orders), scale=self.scale, n_samples=self.n_samples,
                block_size=-1 if self.block_size is None else self.block_size,
                elements=np.array(self.elements or [], dtype=str),
                groups=np.zeros(0, int) if self.groups is None else self.groups,
                **{f"m{p}": m for p, m in self.moments.items()},
            )

    @classmethod
    def load(cls, path) -> DescriptorTarget:
        try:
            with np.load(path) as z:
                obj = cls.__new__(cls)
                obj.orders = tuple(int(p) for p in z["orders"])
                obj.scale = z["scale"]
                obj.n_samples = int(z["n_samples"])
                obj.n_features = len(obj.scale)
                bs = int(z["block_size"])
                obj.block_size = None if bs < 0 else bs
                els = [str(e) for e in z["elements"]]
                obj.elements = els or None
                obj.moments = {p: z[f"m{p}"] for p in obj.orders}
                groups = z["groups"] if "groups" in z.files else np.zeros(0, int)
                obj.groups = groups if len(groups) == obj.n_features else None
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path} is not a valid DescriptorTarget file: {exc}") from exc
        return obj


class PooledDistance:
    """What a distance between descriptor distributions shares: the single-structure and
    joint terms (GRS eq. 15) from a ``_distance(rows, grad)`` of pooled rows.

    Subclasses set ``target`` (with ``n_features``), ``w_inter``, ``w_intra`` and
    ``context`` (pooled rows of the other ensemble members, or ``None``) and define
    ``_distance``.
    """

    def set_context(self, context) -> None:
        """Descriptors of the other structures of an ensemble (list of (n_k, F) arrays)."""
        if context is None or len(context) == 0:
            self.context = None
        else:
            self.context = np.concatenate([np.asarray(c, float) for c in context], 0)
            self._check(self.context)

    def _check(self, B):
        if B.ndim != 2 or B.shape[1] != self.target.n_features:
            raise ValueError(f"descriptor array has shape {B.shape}; the target has "
                             f"{self.target.n_features} features")
        if B.shape[0] == 0:
            raise ValueError("no descriptor rows: the structure has no atoms")
        if not np.all(np.isfinite(B)):
            raise ValueError("descriptors contain NaN or inf")

    def score(self, B: np.ndarray) -> float:
        """Total objective ``w_inter Q(B) + w_intra Q(B + context)``."""
        return self.score_and_gradient(B, grad=False)[0]

    def score_and_gradient(self, B: np.ndarray, grad: bool = True):
        """``(Q, dQ/dB)`` of one structure's descriptor rows ``B`` (n, F)."""
        B = np.asarray(B, float)
        self._check(B)
        Q, G = 0.0, (np.zeros_like(B) if grad else None)
        if self.w_inter:
            q, g = self._distance(B, grad)
            Q += self.w_inter * q
            if grad:
                G += self.w_inter * g
        if self.w_intra:
            # with no context the ensemble is this structure alone
            pooled = B if self.context is None else np.concatenate([B, self.context], 0)
            q, g = self._distance(pooled, grad)
            Q += self.w_intra * q
            if grad:
                G += self.w_intra * g[: len(B)]
        return Q, G

    def ensemble_score(self, Bs: Sequence[np.ndarray], grad: bool = True):
        """Joint (intra) score of several structures pooled (eq. 14) and the gradient
        with respect to each structure's rows."""
        Bs = [np.asarray(b, float) for b in Bs]
        for b in Bs:
            self._check(b)
        Q, G = self._distance(np.concatenate(Bs, 0), grad)
        if not grad:
            return Q, None
        return Q, np.split(G, np.cumsum([len(b) for b in Bs])[:-1])


class GRSObjective(PooledDistance):
    """Distance between descriptor moments and a target (GRS eq. 13-15).

    ``Q = sum_p alpha_p sum_f w_f |D_{p,f}|`` with ``D_p`` the scaled moment differences
    and ``w_f`` feature weights that sum to one (see ``rank_weights``).

    Parameters
    ----------
    target : :class:`DescriptorTarget`.
    weights : ``{order: alpha}`` (or a sequence, ``alpha_1, alpha_2, ...``). Orders must be
        among the target's. Negative weights push away from the target.
    smoothing : ``delta`` of the smooth absolute value ``sqrt(x^2 + delta^2) - delta``:
        quadratic within ``|D| < delta``, linear outside (a pseudo-Huber distance). The
        default 0.01 (a 1 % moment difference in units of the target's scale) rounds
        the kink of ``|x|`` at the minimum enough for BFGS with a cell filter to
        converge (it oscillates or crawls at 1e-4 and 1e-3; docs/grs-core.md);
        ``0`` gives the plain ``|x|`` of the paper.
    rank_weights : how the features share the weight. ``"hierarchy"``: each group of
        the target (for ACE, each rank, lowest first) weighs :data:`HIERARCHY_RATIO`
        (1/100) times the one before, so pair terms are matched first and higher body
        orders break the ties, as a cluster expansion orders its clusters. ``"equal"``:
        each group weighs alike. ``None``: all features alike (``w_f = 1/F``; the rank
        with most invariants then dominates). A sequence or dict ``{rank: weight}``: the
        groups in that proportion. Needs ``target.groups``.
    w_inter, w_intra : weights of the single-structure term and of the joint (ensemble)
        term against ``context`` (eq. 15).
    context : descriptor arrays of other structures already in the ensemble; the intra
        term pools them with the candidate.
    """

    def __init__(self, target: DescriptorTarget, weights=(1.0, 1.0), smoothing: float = 1e-2,
                 w_inter: float = 1.0, w_intra: float = 0.0, context=None, rank_weights=None):
        if isinstance(weights, dict):
            w = {int(k): float(v) for k, v in weights.items()}
        else:
            w = {p + 1: float(v) for p, v in enumerate(np.atleast_1d(weights))}
        if not w:
            raise ValueError("give at least one moment weight")
        bad = {p: v for p, v in w.items() if not np.isfinite(v)}
        if bad:
            raise ValueError(f"moment weights must be finite numbers, got {bad}")
        missing = [p for p in w if p not in target.orders]
        if missing:
            raise ValueError(f"weights for moment orders {missing} but the target keeps only "
                             f"orders {target.orders}")
        if not np.isfinite(smoothing) or smoothing < 0:
            raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing}")
        for name, v in (("w_inter", w_inter), ("w_intra", w_intra)):
            if not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v}")
        self.target, self.weights, self.smoothing = target, w, float(smoothing)
        self.w_inter, self.w_intra = float(w_inter), float(w_intra)
        self.rank_weights = rank_weights
        self.feature_weights = self._feature_weights(target, rank_weights)
        self._compiled_args = None  # the arrays of the compiled score, made on first use
        self.set_context(context)

    @staticmethod
    def _feature_weights(target, rank_weights) -> np.ndarray:
        F = target.n_features
        if rank_weights is None:
            return np.full(F, 1.0 / F)
        groups = getattr(target, "groups", None)
        if groups is None:
            raise ValueError("rank_weights needs a target with group labels (ACE ranks): "
                             "build it with DescriptorTarget.from_structures")
        labels = np.unique(groups)
        if isinstance(rank_weights, str):
            if rank_weights == "equal":
                per = {int(g): 1.0 for g in labels}
            elif rank_weights == "hierarchy":
                per = {int(g): HIERARCHY_RATIO**k for k, g in enumerate(labels)}
            else:
                raise ValueError(f"unknown rank_weights {rank_weights!r}; use 'hierarchy', "
                                 "'equal', a sequence or a dict {rank: weight}")
        elif isinstance(rank_weights, dict):
            per = {int(k): float(v) for k, v in rank_weights.items()}
        else:
            vals = [float(v) for v in rank_weights]
            per = {int(g): vals[k] if k < len(vals) else 0.0 for k, g in enumerate(labels)}
        if any(not np.isfinite(v) or v < 0 for v in per.values()):
            raise ValueError(f"rank_weights must be finite and >= 0, got {per}")
        w = np.zeros(F)
        for g in labels:
            sel = groups == g
            w[sel] = per.get(int(g), 0.0) / sel.sum()
        if w.sum() <= 0:
            raise ValueError("rank_weights give every feature zero weight")
        return w / w.sum()

    def set_context(self, context) -> None:
        """Descriptors of the other structures of an ensemble (list of (n_k, F) arrays)."""
        super().set_context(context)
        self._context_sums = None if self.context is None else self.power_sums(self.context)

    def _abs(self, x):
        d = self.smoothing
        if d == 0:
            return np.abs(x), np.sign(x)
        s = np.sqrt(x * x + d * d)
        return s - d, x / s

    @property
    def max_order(self) -> int:
        return max(self.weights)

    def differences(self, B: np.ndarray) -> dict[int, np.ndarray]:
        """Scaled moment differences ``D_p`` (F,) of rows ``B`` against the target."""
        B = np.asarray(B, float)
        self._check(B)
        m = central_moments(B, tuple(self.weights))
        s = self.target.scale
        return {p: (m[p] - self.target.moments[p]) / s**p for p in self.weights}

    def _q(self, moments: dict) -> float:
        """The distance from given moments ``{p: M_p}``."""
        s, wf = self.target.scale, self.feature_weights
        Q = 0.0
        for p, alpha in self.weights.items():
            D = (moments[p] - self.target.moments[p]) / s**p
            Q += alpha * float(self._abs(D)[0] @ wf)
        return Q

    def _distance(self, B: np.ndarray, grad: bool):
        """Single-distribution score of the pooled rows ``B`` and its gradient."""
        n, F = B.shape
        mean = B.mean(axis=0)
        dev = B - mean
        s, wf = self.target.scale, self.feature_weights
        Q = 0.0
        G = np.zeros_like(B) if grad else None
        for p, alpha in self.weights.items():
            if p == 1:
                Mp = mean
            else:
                Mp = np.mean(dev**p, axis=0)
            D = (Mp - self.target.moments[p]) / s**p
            a, da = self._abs(D)
            Q += alpha * float(a @ wf)
            if grad:
                coef = alpha * da * wf / s**p  # dQ/dM_p
                if p == 1:
                    G += coef / n
                else:
                    lower = 0.0 if p == 2 else np.mean(dev ** (p - 1), axis=0)
                    G += (p / n) * (dev ** (p - 1) - lower) * coef
        return Q, G

    # ------------------------------------------------------------ power sums (local updates)
    @property
    def shift(self) -> np.ndarray:
        """Power sums are taken about the target mean (no cancellation near the target)."""
        return self.target.moments[1] if 1 in self.target.moments else np.zeros(
            self.target.n_features)

    def power_sums(self, B: np.ndarray) -> np.ndarray:
        """``S[p - 1] = sum_i (B_i - shift)^p`` for ``p = 1..max_order`` (P, F)."""
        y = np.asarray(B, float) - self.shift
        out = np.empty((self.max_order, y.shape[1]))
        yp = np.ones_like(y)
        for p in range(self.max_order):
            yp = yp * y
            out[p] = yp.sum(axis=0)
        return out

    def _moments_from_sums(self, S: np.ndarray, n: int) -> dict:
        m = S[0] / n  # mean of y
        raw = [None] + [S[p] / n for p in range(self.max_order)]
        out = {}
        for p in self.weights:
            if p == 1:
                out[1] = self.shift + m
            elif p == 2:
                out[2] = raw[2] - m * m
            elif p == 3:
                out[3] = raw[3] - 3 * m * raw[2] + 2 * m**3
            else:
                out[4] = raw[4] - 4 * m * raw[3] + 6 * m * m * raw[2] - 3 * m**4
        return out

    def score_from_sums(self, S: np.ndarray, n: int) -> float:
        """The objective of a structure of ``n`` atoms given its :meth:`power_sums`
        (the context, if any, is pooled here); equal to :meth:`score` to round-off."""
        if n <= 0:
            raise ValueError("no descriptor rows: the structure has no atoms")
        Q = 0.0
        if self.w_inter:
            Q += self.w_inter * self._q_sums(S, n)
        if self.w_intra:
            if self.context is not None:
                Q += self.w_intra * self._q_sums(S + self._context_sums, n + len(self.context))
            else:
                Q += self.w_intra * self._q_sums(S, n)
        return Q

    def _q_sums(self, S: np.ndarray, n: int) -> float:
        """The distance of the moments of power sums ``S`` of ``n`` rows (compiled when
        numba is there: a Monte Carlo trial's score without temporary arrays)."""
        if not _kernels.enabled() or self.max_order > 4:
            return self._q(self._moments_from_sums(S, n))
        if self._compiled_args is None:
            P, F = self.max_order, self.target.n_features
            tmom, invs, alpha = np.zeros((P, F)), np.ones((P, F)), np.zeros(P)
            for p, a in self.weights.items():
                tmom[p - 1] = self.target.moments[p]
                invs[p - 1] = 1.0 / self.target.scale**p
                alpha[p - 1] = a
            self._compiled_args = (np.ascontiguousarray(self.shift, dtype=float), tmom, invs,
                                   np.ascontiguousarray(self.feature_weights, dtype=float),
                                   alpha)
        shift, tmom, invs, wf, alpha = self._compiled_args
        return _kernels.moment_distance(np.ascontiguousarray(S), n, shift, tmom, invs, wf,
                                        alpha, self.smoothing)

    def todict(self) -> dict:
        return {"weights": self.weights, "smoothing": self.smoothing,
                "rank_weights": self.rank_weights,
                "w_inter": self.w_inter, "w_intra": self.w_intra}
