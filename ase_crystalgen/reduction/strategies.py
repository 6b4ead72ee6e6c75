"""Reducing a data set to whole snapshots within a budget: picked at random, by
farthest-point sampling, by k-means, so that their pooled descriptor moments match the
data set's (:func:`moment_matching`, the GRS objective used for selection), or so that they
give a linear ACE fit the most information (:func:`d_optimal`, experimental design on the
fit's force and energy rows).

A budget limits the total number of atoms, the sum of ``N^3`` over the picked structures
(the cost of a DFT calculation grows about as ``N^3``), or both. :func:`budget` gives the
size of any set, so a baseline can be held to the budget of a GRS set::

    b = budget(grs_members)
    random_snapshots(data, b["atoms"], rng)           # equal total atoms
    random_snapshots(data, None, rng, max_n3=b["n3"])  # equal sum of N^3

Every strategy returns structures of ``data`` itself (not copies), in the order picked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

__all__ = ["budget", "d_optimal", "farthest_point", "kmeans_snapshots", "moment_matching",
           "random_snapshots", "structure_features"]


def budget(structures: Sequence[Atoms]) -> dict:
    """Size of a set: ``n_structures``, ``atoms`` (sum of N) and ``n3`` (sum of N^3)."""
    sizes = np.array([len(a) for a in structures], dtype=float)
    return {"n_structures": int(len(sizes)), "atoms": int(sizes.sum()),
            "n3": float((sizes**3).sum())}


class _Budget:
    """Remaining allowance of atoms and of N^3."""

    def __init__(self, total_atoms, max_n3):
        if total_atoms is None and max_n3 is None:
            raise ValueError("give a budget: total_atoms, max_n3 or both")
        for name, v in (("total_atoms", total_atoms), ("max_n3", max_n3)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive, not {v}")
        self.atoms = np.inf if total_atoms is None else float(total_atoms)
        self.n3 = np.inf if max_n3 is None else float(max_n3)

    def fits(self, n: int) -> bool:
        return n <= self.atoms and n**3 <= self.n3

    def take(self, n: int) -> None:
        self.atoms -= n
        self.n3 -= n**3


def _check_data(data) -> list[Atoms]:
    data = list(data)
    if not data:
        raise ValueError("the data set is empty")
    for k, a in enumerate(data):
        if not isinstance(a, Atoms) or len(a) == 0:
            raise ValueError(f"data-set entry {k} is not a non-empty ase.Atoms")
    return data


def structure_features(data: Sequence[Atoms], descriptor) -> np.ndarray:
    """Mean descriptor row of each structure (n_structures, F), standardised over the set
    (features constant over the set keep unit scale). ``descriptor`` may also be such an
    array already (returned standardised)."""
    if isinstance(descriptor, np.ndarray):
        X = np.asarray(descriptor, dtype=float)
        if X.shape[0] != len(data):
            raise ValueError(f"{X.shape[0]} feature rows for {len(data)} structures")
    else:
        X = np.array([B.mean(0) for B in descriptor.compute_many(data)])
    std = X.std(0)
    std[std <= 1e-12 * max(float(std.max()), 1e-300)] = 1.0
    return (X - X.mean(0)) / std


def random_snapshots(data: Sequence[Atoms], total_atoms: float | None,
                     rng: np.random.Generator | None = None, *,
                     max_n3: float | None = None) -> list[Atoms]:
    """Whole snapshots in random order, each kept if it still fits the budget.

    Parameters
    ----------
    data : the data set.
    total_atoms : largest total number of atoms (None: no limit on atoms).
    rng : random generator (``numpy.random.default_rng()`` when None).
    max_n3 : largest sum of N^3 (None: no limit).
    """
    data = _check_data(data)
    left = _Budget(total_atoms, max_n3)
    rng = np.random.default_rng() if rng is None else rng
    picked = []
    for k in rng.permutation(len(data)):
        if left.fits(len(data[k])):
            left.take(len(data[k]))
            picked.append(data[k])
    return picked


def farthest_point(data: Sequence[Atoms], total_atoms: float | None, descriptor,
                   rng: np.random.Generator | None = None, *,
                   max_n3: float | None = None) -> list[Atoms]:
    """Farthest-point sampling on the structures' standardised mean descriptors.

    Starts from a random structure that fits the budget, then repeatedly adds the one
    farthest from all picked so far (largest distance to its nearest picked structure)
    among those that still fit; stops when none fits.
    ``descriptor`` is a descriptor object or a (n_structures, F) feature array.
    """
    data = _check_data(data)
    left = _Budget(total_atoms, max_n3)
    rng = np.random.default_rng() if rng is None else rng
    X = structure_features(data, descriptor)
    sizes = np.array([len(a) for a in data])
    available = np.ones(len(data), dtype=bool)
    fits = np.array([left.fits(n) for n in sizes])
    if not fits.any():
        return []
    first = int(rng.choice(np.flatnonzero(fits)))
    picked = [first]
    left.take(sizes[first])
    available[first] = False
    nearest = np.linalg.norm(X - X[first], axis=1)
    while True:
        ok = available & np.array([left.fits(n) for n in sizes])
        if not ok.any():
            break
        k = int(np.flatnonzero(ok)[np.argmax(nearest[ok])])
        picked.append(k)
        left.take(sizes[k])
        available[k] = False
        nearest = np.minimum(nearest, np.linalg.norm(X - X[k], axis=1))
    return [data[k] for k in picked]


def kmeans_snapshots(data: Sequence[Atoms], total_atoms: float | None, descriptor,
                     rng: np.random.Generator | None = None, *,
                     max_n3: float | None = None) -> list[Atoms]:
    """k-means on the structures' standardised mean descriptors; from each cluster (largest
    first) the member nearest its centre that still fits the budget is picked.

    ``k`` starts at the number of the smallest structures that the budget allows and
    decreases until every cluster gets a pick; with structures of mixed sizes part of the
    budget can remain unused. ``descriptor`` is a descriptor object or a (n_structures, F)
    feature array.
    """
    from sklearn.cluster import KMeans

    data = _check_data(data)
    _Budget(total_atoms, max_n3)  # validates the arguments
    rng = np.random.default_rng() if rng is None else rng
    X = structure_features(data, descriptor)
    sizes = np.array([len(a) for a in data])
    smallest = float(sizes.min())
    k = len(data)
    if total_atoms is not None:
        k = min(k, int(total_atoms // smallest))
    if max_n3 is not None:
        k = min(k, int(max_n3 // smallest**3))
    k = max(k, 1)
    seed = int(rng.integers(2**31 - 1))
    while True:
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(X)
        left, chosen = _Budget(total_atoms, max_n3), []
        for c in np.argsort(-np.bincount(km.labels_, minlength=k), kind="stable"):
            members = np.flatnonzero(km.labels_ == c)
            members = members[np.argsort(np.linalg.norm(X[members] - km.cluster_centers_[c],
                                                        axis=1), kind="stable")]
            fit = [m for m in members if left.fits(sizes[m])]
            if fit:
                left.take(sizes[fit[0]])
                chosen.append(int(fit[0]))
        if len(chosen) == k or k == 1:
            return [data[p] for p in chosen]
        k -= 1


def moment_matching(data: Sequence[Atoms], total_atoms: float | None, descriptor=None,
                    rng: np.random.Generator | None = None, *, max_n3: float | None = None,
                    weights=(1.0, 1.0), rank_weights="hierarchy", smoothing: float = 1e-2,
                    scale: str = "rms", swaps: bool = True, starts: str = "all",
                    return_score: bool = False):
    """Whole snapshots whose pooled descriptor moments best match the data set's.

    The GRS objective (:class:`~ase_crystalgen.grs.objective.GRSObjective`: scaled
    moment differences, ``weights`` per moment order, the same defaults as
    :func:`~ase_crystalgen.reduction.reduce_dataset`) measures the distance between the
    descriptor distribution of the picked structures, all their atoms pooled, and that
    of the whole data set. Structures are added greedily, each time the one that gives
    the pooled set the lowest distance among those that still fit the budget, until none
    fits. With ``swaps`` a picked structure is then exchanged for an unpicked one
    whenever that lowers the distance and fits the budget (best exchange first, until
    none helps), and the budget is filled again greedily. With ``starts="all"`` this is
    done once from every structure that fits as the first pick and the set of lowest
    distance is kept (the greedy first pick alone, a single structure closest to the
    whole data set, can lead to a set farther from it than farthest-point sampling's).

    Parameters
    ----------
    data : the data set.
    total_atoms : largest total number of atoms (None: no limit on atoms).
    descriptor : an ``ACEDescriptor`` (default: the paper's basis over the data set's
        elements).
    rng : unused (the selection is deterministic); accepted so that every strategy is
        called alike.
    max_n3 : largest sum of N^3 (None: no limit).
    weights, rank_weights, smoothing, scale : of the objective and its target.
    swaps : refine the greedy pick by exchanges.
    starts : ``"all"`` (every structure as the first pick) or ``"greedy"`` (one start).
    return_score : also return the final distance.

    Returns
    -------
    The picked structures of ``data`` (not copies), in the order picked; with
    ``return_score``, ``(picked, score)``.
    """
    from ..grs.objective import GRSObjective
    from ..grs.potential import make_target

    data = _check_data(data)
    _Budget(total_atoms, max_n3)  # validates the arguments
    if starts not in ("all", "greedy"):
        raise ValueError(f"starts must be 'all' or 'greedy', not {starts!r}")
    if descriptor is None:
        from ..descriptors import ACEDescriptor

        descriptor = ACEDescriptor(sorted({s for a in data for s in a.get_chemical_symbols()}))
    Bs = descriptor.compute_many(data)
    orders = sorted(int(p) for p in weights) if isinstance(weights, dict) else list(
        range(1, len(np.atleast_1d(weights)) + 1))
    target = make_target(np.concatenate(Bs, 0), descriptor, orders=orders, scale=scale)
    if isinstance(rank_weights, str) and rank_weights == "hierarchy" and not getattr(
            descriptor, "ranks_are_body_orders", False):
        rank_weights = None  # as the GRS potential: SNAP groups are not body orders
    objective = GRSObjective(target, weights=weights, smoothing=smoothing,
                             rank_weights=rank_weights)
    sums = np.array([objective.power_sums(B) for B in Bs])  # (n_structures, P, F)
    sizes = np.array([len(a) for a in data])

    def score(chosen):
        idx = list(chosen)
        return objective.score_from_sums(sums[idx].sum(0), int(sizes[idx].sum()))

    def fits(chosen):
        n = sizes[list(chosen)]
        return n.sum() <= (np.inf if total_atoms is None else total_atoms) and (
            (n.astype(float) ** 3).sum() <= (np.inf if max_n3 is None else max_n3))

    def fill(chosen):
        while True:
            best = None
            for k in range(len(data)):
                if k in chosen or not fits(chosen + [k]):
                    continue
                q = score(chosen + [k])
                if best is None or q < best[0]:
                    best = (q, k)
            if best is None:
                return chosen
            chosen = chosen + [best[1]]

    def refine(chosen):
        chosen = fill(chosen)
        current = score(chosen)
        while swaps:
            best = None
            for i in range(len(chosen)):
                for k in range(len(data)):
                    if k in chosen:
                        continue
                    trial = chosen[:i] + chosen[i + 1:] + [k]
                    if not fits(trial):
                        continue
                    q = score(trial)
                    if q < current - 1e-12 * max(abs(current), 1.0) and (
                            best is None or q < best[0]):
                        best = (q, trial)
            if best is None:
                break
            chosen = fill(best[1])  # swaps keep the count; filling only adds: this ends
            current = score(chosen)
        return chosen, current

    firsts = [k for k in range(len(data)) if fits([k])] if starts == "all" else [None]
    if not firsts:
        return ([], None) if return_score else []
    best = None
    for first in firsts:
        chosen, q = refine([] if first is None else [first])
        if best is None or q < best[1]:
            best = (chosen, q)
    chosen, current = best
    picked = [data[k] for k in chosen]
    return (picked, float(current)) if return_score else picked


def d_optimal(data: Sequence[Atoms], total_atoms: float | None, descriptor=None,
              rng: np.random.Generator | None = None, *, max_n3: float | None = None,
              alpha: float = 1e-3, energy_weight: float = 1.0, force_weight: float = 1.0,
              cover_compositions: bool = True, progress: bool = False,
              return_info: bool = False):
    """Whole snapshots that make the most informative training set for a linear ACE fit:
    greedy D-optimal design on the rows the fit would get (no labels needed).

    A linear model fitted by least squares to the rows ``X`` of the picked structures has
    parameter uncertainty ``(X^T X)^-1`` (times the noise); the D-optimal set maximises
    ``log det(alpha I + X^T X)``, i.e. shrinks the volume of that uncertainty. The rows are
    those of :class:`~.linear.LinearACEModel`: per structure, one energy-per-atom row
    (weight ``energy_weight``) and the ``3N`` force rows ``-sum_i dB_i/dR`` (weight
    ``force_weight``), in the model's coordinates (one-body energies and descriptor weights,
    features standardised per species over ``data``). Force rows dominate: a hot or
    strained snapshot adds information in every direction its atoms can move, a perfect
    crystal almost none.

    Structures are added one at a time, each time the one with the largest gain
    ``log det(I + R M^-1 R^T)`` (``M`` the information so far, ``R`` the structure's
    rows) per unit cost among those that still fit the budget, until none fits; the cost
    is the number of atoms, or ``N^3`` when only ``max_n3`` is given. Gains only fall as the
    set grows (the log-determinant is submodular), so they are re-evaluated lazily: the
    pick is exactly the greedy one. A picked structure's rows add to ``M`` whole, so a
    near copy of a picked structure gains little.

    With ``cover_compositions`` (the default) the set first takes one structure of every
    composition of the data set (the one of largest gain per cost among the compositions
    not yet picked from, while the budget allows). The criterion alone prefers mixed
    compositions, whose force rows inform every species block at once, and can leave out
    the pure ends of an alloy series; the one-body energies are then not determined and
    a fit's energies there are off by eV/atom (measured in ``docs/reduction.md``).

    Parameters
    ----------
    data : the data set (labels are not used).
    total_atoms : largest total number of atoms (None: no limit on atoms).
    descriptor : an ``ACEDescriptor`` (default: the paper's basis over the data set's
        elements); the model the set is designed for.
    rng : None: the greedy first pick (deterministic). A generator: the first structure
        is drawn at random among those that fit (as :func:`farthest_point` does), the rest
        are greedy.
    max_n3 : largest sum of N^3 (None: no limit).
    alpha : prior information per parameter in the standardised coordinates (keeps ``M``
        invertible before the set determines every parameter).
    energy_weight, force_weight : weights of the energy and force rows.
    cover_compositions : take one structure of every composition first.
    progress : a tqdm bar over the descriptor gradients of ``data`` (the slow part).
    return_info : also return a dict with ``gains`` (the log-det gain of each pick),
        ``log_det`` (of the final ``M``, relative to ``alpha I``) and ``indices``.

    Returns
    -------
    The picked structures of ``data`` (not copies), in the order picked; with
    ``return_info``, ``(picked, info)``.
    """
    import heapq

    from scipy.linalg import cho_factor, cho_solve

    from .linear import LinearACEModel

    data = _check_data(data)
    left = _Budget(total_atoms, max_n3)
    for name, v in (("alpha", alpha), ("energy_weight", energy_weight),
                    ("force_weight", force_weight)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, not {v}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, not {alpha}")
    if energy_weight == 0 and force_weight == 0:
        raise ValueError("energy_weight and force_weight are both zero: no rows to design")
    if descriptor is None:
        from ..descriptors import ACEDescriptor

        descriptor = ACEDescriptor(sorted({s for a in data for s in a.get_chemical_symbols()}))
    for k, a in enumerate(data):
        try:
            descriptor.species_of(a)
        except ValueError as err:
            raise ValueError(f"data-set entry {k}: {err}") from None
        if not np.all(np.isfinite(a.positions)):
            raise ValueError(f"data-set entry {k} has non-finite positions")
    model = LinearACEModel(descriptor)
    factors = []
    # standardised over data itself (reference=None): no second descriptor pass
    for xe, xf in model.design_matrices(data, progress=progress):
        A = np.vstack([np.sqrt(energy_weight) * xe[None], np.sqrt(force_weight) * xf])
        # thin triangular factor: same A^T A, at most (ns + F) rows
        factors.append(np.linalg.qr(A, mode="r") if len(A) > A.shape[1] else A)
    P = factors[0].shape[1]
    sizes = np.array([len(a) for a in data])
    cost = sizes.astype(float) ** 3 if total_atoms is None else sizes.astype(float)
    M = alpha * np.eye(P)

    def gain(k, chol):
        Z = cho_solve(chol, factors[k].T)  # M^-1 R^T
        return float(np.linalg.slogdet(np.eye(len(factors[k])) + factors[k] @ Z)[1])

    chol = cho_factor(M)
    fits = [k for k in range(len(data)) if left.fits(sizes[k])]
    if not fits:
        return ([], {"gains": [], "log_det": 0.0, "indices": []}) if return_info else []
    picked, gains = [], []
    first = None if rng is None else int(rng.choice(fits))
    group = np.zeros(len(data), dtype=int)
    if cover_compositions:
        from .grs import composition_groups

        for g_, members in enumerate(composition_groups(data).values()):
            group[members] = g_
    missing = set(group.tolist()) if cover_compositions else set()
    taken = np.zeros(len(data), dtype=bool)
    # heap of (-upper bound of gain per cost, index, stamp of the M it was computed with)
    heap = [(-gain(k, chol) / cost[k], k, 0) for k in fits]
    heapq.heapify(heap)
    stamp = 0
    while True:
        if first is None and missing:
            free = [k for k in np.flatnonzero(~taken) if left.fits(sizes[k])]
            open_groups = [k for k in free if group[k] in missing]
            if open_groups and len(open_groups) < len(free):
                # every composition first: the best structure of a group not yet picked from
                ratios = [gain(j, chol) / cost[j] for j in open_groups]
                first = int(open_groups[int(np.argmax(ratios))])
        if first is not None:
            k, g, first = first, gain(first, chol), None
            heap = [h for h in heap if h[1] != k]
            heapq.heapify(heap)
        else:
            k = None
            while heap:
                neg, j, s = heapq.heappop(heap)
                if not left.fits(sizes[j]):
                    continue  # never fits again: the budget only shrinks
                if s == stamp:
                    k, g = j, -neg * cost[j]
                    break
                heapq.heappush(heap, (-gain(j, chol) / cost[j], j, stamp))
            if k is None:
                break
        picked.append(k)
        taken[k] = True
        gains.append(g)
        missing.discard(int(group[k]))
        left.take(sizes[k])
        M = M + factors[k].T @ factors[k]
        chol = cho_factor(M)
        stamp += 1
    out = [data[k] for k in picked]
    if return_info:
        return out, {"gains": gains, "log_det": float(sum(gains)), "indices": picked}
    return out
