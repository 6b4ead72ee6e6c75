"""How well a set of structures covers a target's descriptor space (GRS paper eq. 18)."""

from __future__ import annotations

import warnings

import numpy as np


def _rows(structures, descriptor) -> np.ndarray:
    from ase import Atoms

    if isinstance(structures, np.ndarray):
        return structures
    if isinstance(structures, Atoms):
        structures = [structures]
    return np.concatenate(descriptor.compute_many(list(structures)), axis=0)


def pca_hull_volume_ratio(structures, target, descriptor=None, variance: float = 0.99,
                          max_components: int | None = 6) -> dict:
    """Volume of the convex hull of the structures' descriptors over that of the target,
    in the target's principal-component space (eq. 18).

    Parameters
    ----------
    structures, target : lists of ``Atoms`` (or (n, F) descriptor arrays).
    descriptor : an object with ``compute_many`` (e.g. ``ACEDescriptor``); needed unless
        arrays are given.
    variance : explained-variance fraction that fixes the number of components (the
        paper's 99 %).
    max_components : cap on the components (convex hulls beyond ~8 dimensions need
        more points and time than descriptor sets usually have); ``None`` for no cap.
        When the cap binds, the result says so.

    Returns
    -------
    dict with ``ratio``, ``n_components``, ``explained_variance`` (of the components used),
    ``capped`` (bool), ``target_volume`` and ``volume``.
    """
    from scipy.spatial import ConvexHull, QhullError
    from sklearn.decomposition import PCA

    if not 0 < variance <= 1:
        raise ValueError("variance must be within (0, 1]")
    T = _rows(target, descriptor)
    S = _rows(structures, descriptor)
    if T.shape[1] != S.shape[1]:
        raise ValueError(f"target has {T.shape[1]} descriptors, the structures {S.shape[1]}")
    mean = T.mean(0)
    std = T.std(0)
    std[std < 1e-12 * max(std.max(), 1e-300)] = 1.0
    pca = PCA().fit((T - mean) / std)
    cum = np.cumsum(pca.explained_variance_ratio_)
    k = int(np.searchsorted(cum, variance - 1e-12) + 1)
    capped = max_components is not None and k > max_components
    if capped:
        warnings.warn(f"{k} components reach {variance:.0%} of the variance; using "
                      f"{max_components}", stacklevel=2)
        k = max_components
    k = max(1, k)
    Tp = pca.transform((T - mean) / std)[:, :k]
    Sp = pca.transform((S - mean) / std)[:, :k]

    def volume(P):
        if k == 1:
            return float(P.max() - P.min())
        if len(P) <= k:
            return 0.0
        try:
            return float(ConvexHull(P).volume)
        except QhullError:  # flat point sets have no volume in k dimensions
            return 0.0

    vt, vs = volume(Tp), volume(Sp)
    if vt <= 0:
        raise ValueError("the target's descriptors span no volume in PCA space")
    return {"ratio": vs / vt, "n_components": k, "explained_variance": float(cum[k - 1]),
            "capped": bool(capped), "target_volume": vt, "volume": vs}
