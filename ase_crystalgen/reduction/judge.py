"""One call that judges a reduced data set: fit on it, test elsewhere, measure coverage."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from .linear import LinearACEModel
from .metrics import coverage, hull_ratio
from .strategies import budget

__all__ = ["DEFAULT_ALPHAS", "judge_selection"]

#: ridge penalties the judge chooses from by cross-validation on the selection itself
DEFAULT_ALPHAS = (1e-8, 1e-6, 1e-4, 1e-2)


def judge_selection(selected: Sequence[Atoms], test: Sequence[Atoms], descriptor,
                    data: Sequence[Atoms] | None = None, *,
                    alpha: float | Sequence[float] = DEFAULT_ALPHAS,
                    energy_weight: float = 1.0, force_weight: float = 1.0,
                    hull_components: int | None = 3, model_descriptor=None) -> dict:
    """Fit a :class:`~.linear.LinearACEModel` on ``selected``, report its errors on ``test``,
    and (with ``data``) how well ``selected`` covers the data set it replaces.

    Parameters
    ----------
    selected : labelled structures to fit on (a reduced set: GRS, baseline picks, ...).
    test : labelled structures to measure errors on (held out from ``data``).
    descriptor : descriptor of the coverage measures, and of the model unless
        ``model_descriptor`` is given.
    data : the full data set the selection stands for (unlabelled is fine). It also
        standardises the model's features, so that ``alpha`` means the same for every
        selection of one data set. Without it the coverage keys are absent.
    alpha, energy_weight, force_weight : of the model. By default the penalty is chosen
        from :data:`DEFAULT_ALPHAS` by cross-validation over the selection's own structures
        (never the test set), so that tiny selections are not judged at a penalty tuned
        for large ones; a selection of one structure gets the largest penalty.
    hull_components : cap on the principal components of eq. 18 (the cap's warning is
        silenced; ``hull["capped"]`` reports it). ``None`` keeps the 99 %-variance count.

    Returns
    -------
    dict with ``test`` and ``train`` (:meth:`LinearACEModel.errors`), ``budget`` of the
    selection (:func:`~.strategies.budget`), ``fit`` (the model's ``fit_info``), the
    ``model`` itself and, with ``data``, ``coverage`` (:func:`~.metrics.coverage`) and
    ``hull`` (:func:`~.metrics.hull_ratio`).
    """
    selected = [selected] if isinstance(selected, Atoms) else list(selected)
    if np.ndim(alpha) and len(selected) < 2:
        alpha = max(alpha)  # no cross-validation on one structure: the most cautious penalty
    model = LinearACEModel(model_descriptor or descriptor, alpha=alpha,
                           energy_weight=energy_weight, force_weight=force_weight)
    model.fit(selected, reference=data)
    forces = force_weight > 0
    out = {"test": model.errors(test, forces=forces), "train": model.errors(selected, forces=forces),
           "budget": budget(selected), "fit": dict(model.fit_info), "model": model}
    if data is not None:
        out["coverage"] = coverage(selected, data, descriptor)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*components reach.*")
            out["hull"] = hull_ratio(selected, data, descriptor, max_components=hull_components)
    return out
