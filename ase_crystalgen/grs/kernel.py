"""A kernel distance between descriptor distributions (maximum mean discrepancy).

The moment distance of :mod:`~ase_crystalgen.grs.objective` compares a few moments of
each descriptor. Two moments can be matched by environments that no structure of the
target has (compressed pairs balancing stretched ones); what a training set needs is
environments *from* the target's distribution, spread over all of it. The maximum mean
discrepancy (MMD) with a Gaussian kernel compares whole distributions:

``MMD^2(X, Y) = mean_ij k(x_i, x_j) - 2 mean_ia k(x_i, y_a) + mean_ab k(y_a, y_b)``

with ``k(x, y) = exp(-|x - y|^2 / (2 h^2))``. It is zero only when the two distributions
are equal (the Gaussian kernel is characteristic). Minimised over ``X``, the cross term
pulls every environment towards the target's and the first term pushes the environments
apart: the points of ``X`` spread over the target in proportion to its density (kernel
herding; Chen, Welling and Smola, UAI 2010).

Coordinates ``x`` are the descriptors standardised by the target (mean, standard
deviation floored like the moment scales) and projected on the target's leading
principal components; the bandwidth ``h`` is the median distance between target
environments (the usual median heuristic). The gradient with respect to the descriptor
rows is exact.
"""

from __future__ import annotations

import numpy as np

from ..structures import as_rng
from .objective import PooledDistance

__all__ = ["KernelObjective", "KernelTarget"]


def _sq_distances(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    d2 = (X * X).sum(1)[:, None] + (Y * Y).sum(1)[None, :] - 2.0 * X @ Y.T
    return np.maximum(d2, 0.0)


class KernelTarget:
    """Target environments in the coordinates of the kernel distance.

    Parameters
    ----------
    descriptors : (n, F) per-atom descriptors of the target (all atoms pooled).
    variance : keep the fewest principal components of the standardised descriptors that
        explain this fraction of their variance ...
    max_components : ... but at most this many.
    max_points : target environments kept as the kernel's reference points (a random
        subset, drawn with ``rng``, when the target has more).
    bandwidth : the kernel width ``h`` in the projected coordinates, or ``"median"``
        (default): the median distance between reference points, times ``bandwidth_factor``.
    floor : standard deviations below ``floor`` times the median of the non-vanishing
        ones are raised to it (descriptors that vanish by symmetry do not blow up).
    """

    def __init__(self, descriptors: np.ndarray, *, variance: float = 0.99,
                 max_components: int = 64, max_points: int = 2000,
                 bandwidth: float | str = "median", bandwidth_factor: float = 1.0,
                 floor: float = 0.1, rng=0):
        B = np.asarray(descriptors, dtype=float)
        if B.ndim != 2 or B.shape[0] < 2:
            raise ValueError(f"a kernel target needs at least two environments as an (n, F) "
                             f"array, got shape {B.shape}")
        if not np.all(np.isfinite(B)):
            raise ValueError("target descriptors contain NaN or inf")
        if not 0 < variance <= 1:
            raise ValueError(f"variance must be in (0, 1], got {variance}")
        if int(max_components) != max_components or max_components < 1:
            raise ValueError(f"max_components must be a whole number >= 1, got {max_components}")
        if int(max_points) != max_points or max_points < 2:
            raise ValueError(f"max_points must be a whole number >= 2, got {max_points}")
        if not np.isfinite(bandwidth_factor) or bandwidth_factor <= 0:
            raise ValueError(f"bandwidth_factor must be > 0, got {bandwidth_factor}")
        self.n_samples, self.n_features = B.shape
        self.mean = B.mean(axis=0)
        s = B.std(axis=0)
        nz = s[s > 1e-8 * s.max()] if s.max() > 0 else s[:0]
        if not len(nz):
            raise ValueError("every target descriptor is constant: the target has one "
                             "kind of environment, nothing for a kernel distance to spread over")
        self.scale = np.maximum(s, floor * np.median(nz))
        Z = (B - self.mean) / self.scale
        _, S, Vt = np.linalg.svd(Z, full_matrices=False)
        explained = np.cumsum(S**2) / np.sum(S**2)
        d = int(min(np.searchsorted(explained, variance - 1e-12) + 1, max_components, len(S)))
        self.projection = Vt[:d].T.copy()  # (F, d)
        X = Z @ self.projection
        rng = as_rng(rng)
        if len(X) > max_points:
            X = X[np.sort(rng.choice(len(X), int(max_points), replace=False))]
        self.points = X
        if isinstance(bandwidth, str):
            if bandwidth != "median":
                raise ValueError(f"unknown bandwidth {bandwidth!r}; give 'median' or a number")
            d2 = _sq_distances(X, X)[np.triu_indices(len(X), 1)]
            h = float(np.sqrt(np.median(d2)))
            if h <= 0:
                raise ValueError("the target environments coincide: no bandwidth")
            h *= float(bandwidth_factor)
        else:
            h = float(bandwidth)
            if not np.isfinite(h) or h <= 0:
                raise ValueError(f"bandwidth must be a positive number, got {bandwidth}")
        self.bandwidth = h
        self.self_term = float(self.kernel(X, X).mean())

    @property
    def n_components(self) -> int:
        return self.projection.shape[1]

    def kernel(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Gaussian kernel matrix between projected rows ``X`` and ``Y``."""
        return np.exp(-_sq_distances(X, Y) / (2.0 * self.bandwidth**2))

    def project(self, B: np.ndarray) -> np.ndarray:
        """Descriptor rows (n, F) in the kernel's coordinates (n, d)."""
        return ((np.asarray(B, float) - self.mean) / self.scale) @ self.projection

    @classmethod
    def from_structures(cls, structures, descriptor, **kwargs) -> KernelTarget:
        """Target from a list of ``Atoms`` (all environments pooled)."""
        structures = list(structures)
        if not structures:
            raise ValueError("a kernel target needs at least one structure")
        return cls(np.concatenate(descriptor.compute_many(structures), 0), **kwargs)


class KernelObjective(PooledDistance):
    """MMD^2 between a structure's environments (pooled with ``context``) and a target.

    The same interface as :class:`~ase_crystalgen.grs.objective.GRSObjective` for gradient
    relaxation: ``score``, ``score_and_gradient`` (``w_inter`` times the structure's own
    distance plus ``w_intra`` times that of the structure pooled with ``context``),
    ``ensemble_score`` and ``set_context``. No power sums: the lattice searches, which
    update moments atom by atom, need the moment distance.
    """

    def __init__(self, target: KernelTarget, w_inter: float = 0.0, w_intra: float = 1.0,
                 context=None):
        for name, v in (("w_inter", w_inter), ("w_intra", w_intra)):
            if not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v}")
        self.target, self.w_inter, self.w_intra = target, float(w_inter), float(w_intra)
        self.set_context(context)

    def _mmd(self, X: np.ndarray, grad: bool):
        """MMD^2 of projected rows ``X`` and its gradient with respect to ``X``."""
        t = self.target
        Y, h2 = t.points, t.bandwidth**2
        n, m = len(X), len(Y)
        Kxx, Kxy = t.kernel(X, X), t.kernel(X, Y)
        Q = float(Kxx.mean() - 2.0 * Kxy.mean() + t.self_term)
        if not grad:
            return Q, None
        # d/dx_i of mean_jk k(x_j, x_k) = (2/n^2) sum_j k_ij (x_j - x_i) / h^2, and the
        # cross term's -(2/(n m)) sum_a k_ia (y_a - x_i) / h^2
        G = (2.0 / (n * n * h2)) * (Kxx @ X - Kxx.sum(1)[:, None] * X)
        G -= (2.0 / (n * m * h2)) * (Kxy @ Y - Kxy.sum(1)[:, None] * X)
        return Q, G

    def _distance(self, B: np.ndarray, grad: bool):
        """MMD^2 of pooled descriptor rows ``B`` and its gradient with respect to them."""
        Q, GX = self._mmd(self.target.project(B), grad)
        if not grad:
            return Q, None
        return Q, (GX @ self.target.projection.T) / self.target.scale

    def todict(self) -> dict:
        t = self.target
        return {"objective": "kernel", "bandwidth": t.bandwidth, "n_components": t.n_components,
                "n_points": len(t.points), "w_inter": self.w_inter, "w_intra": self.w_intra}
