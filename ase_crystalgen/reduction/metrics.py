"""How much of a data set's descriptor space a selection covers.

Two complementary numbers:

* :func:`coverage` asks the worst case: the largest distance from any atomic environment
  of the data set to its nearest environment in the selection (and the mean). A reduced set
  that leaves a region out reads large here however well it fills the rest.
* :func:`hull_ratio` is the GRS paper's eq. 18 (the volume of the selection's convex hull
  over the data set's, in the data set's principal components); it is the existing
  :func:`ase_crystalgen.grs.analysis.pca_hull_volume_ratio`, re-exported with the
  argument order of this module.

Both take lists of ``Atoms`` (with a descriptor) or per-atom descriptor arrays (n, F).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ase_crystalgen.grs.analysis import pca_hull_volume_ratio

__all__ = ["coverage", "environment_rows", "hull_ratio"]


def environment_rows(structures, descriptor=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom descriptor rows (n, F) of ``structures`` and, for each row, the index of its
    structure (all 0 when an array is given)."""
    if isinstance(structures, np.ndarray):
        if structures.ndim != 2:
            raise ValueError(f"descriptor rows must be 2-D (n, F), not shape {structures.shape}")
        return structures.astype(float), np.zeros(len(structures), dtype=int)
    if isinstance(structures, Atoms):
        structures = [structures]
    structures = list(structures)
    if not structures:
        raise ValueError("no structures")
    if descriptor is None:
        raise ValueError("a descriptor is needed to describe structures (or pass arrays)")
    rows = descriptor.compute_many(structures)
    owner = np.concatenate([np.full(len(r), k) for k, r in enumerate(rows)])
    return np.concatenate(rows, axis=0), owner


def coverage(selected, data, descriptor=None) -> dict:
    """Distance from each data-set environment to the nearest selected environment.

    Distances are Euclidean in the descriptor space with every feature divided by its
    standard deviation over the data set (features constant over the data keep unit scale).
    With the species-block layout, environments of different centre species are never close.

    Parameters
    ----------
    selected, data : lists of ``Atoms`` or per-atom descriptor arrays (n, F).
    descriptor : e.g. ``ACEDescriptor``; needed unless arrays are given.

    Returns
    -------
    dict with ``max_distance``, ``mean_distance``, ``median_distance``,
    ``p95_distance``, ``n_data_environments``, ``n_selected_environments`` and
    ``worst`` = (structure index, atom index) of the data-set environment farthest from the
    selection (structure index 0 for arrays).
    """
    from scipy.spatial import cKDTree

    D, owner = environment_rows(data, descriptor)
    S, _ = environment_rows(selected, descriptor)
    if len(S) == 0 or len(D) == 0:
        raise ValueError("coverage needs at least one selected and one data-set environment")
    if S.shape[1] != D.shape[1]:
        raise ValueError(f"the data set has {D.shape[1]} descriptors, the selection "
                         f"{S.shape[1]}")
    if not (np.all(np.isfinite(D)) and np.all(np.isfinite(S))):
        raise ValueError("descriptor rows contain NaN or inf")
    std = D.std(0)
    std[std <= 1e-12 * max(float(std.max()), 1e-300)] = 1.0
    dist, _ = cKDTree(S / std).query(D / std, k=1)
    worst = int(np.argmax(dist))
    first = np.searchsorted(owner, owner[worst])  # rows of one structure are contiguous
    return {
        "max_distance": float(dist[worst]),
        "mean_distance": float(dist.mean()),
        "median_distance": float(np.median(dist)),
        "p95_distance": float(np.quantile(dist, 0.95)),
        "n_data_environments": int(len(D)),
        "n_selected_environments": int(len(S)),
        "worst": (int(owner[worst]), int(worst - first)),
    }


def hull_ratio(selected, data, descriptor=None, **kwargs) -> dict:
    """GRS paper eq. 18: the selection's convex-hull volume over the data set's in the data
    set's principal components; see :func:`~ase_crystalgen.grs.analysis.pca_hull_volume_ratio`
    for ``variance`` and ``max_components`` and the returned keys."""
    return pca_hull_volume_ratio(selected, data, descriptor, **kwargs)
