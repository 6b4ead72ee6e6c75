"""Judging reduced training sets: do a few structures train a potential as well as the data
they replace?

* :mod:`.linear` -- :class:`LinearACEModel`, a linear ACE potential (energy and forces,
  ridge, per-species one-body term) and its ASE calculator: the downstream judge;
* :mod:`.metrics` -- :func:`coverage` (largest distance from a data-set environment to the
  selection) and :func:`hull_ratio` (GRS paper eq. 18);
* :mod:`.strategies` -- whole snapshots within an atom or ``N^3`` budget: baselines
  (random, farthest-point, k-means), :func:`moment_matching` (the GRS objective used
  to select) and :func:`d_optimal` (experimental design on the linear fit's rows);
* :mod:`.datasets` -- small labelled data sets: EMT (Cu; Cu-Au alloys) and a LAMMPS
  tensile test of bcc Fe (EAM);
* :mod:`.judge` -- :func:`judge_selection`, all of the above in one call;
* :mod:`.grs` -- :func:`reduce_dataset`, GRS of a data set with the settings measured for
  data-set reduction.
"""

from .grs import reduce_dataset
from .judge import judge_selection
from .linear import LinearACECalculator, LinearACEModel, reference_labels
from .metrics import coverage, hull_ratio
from .strategies import (
    budget,
    d_optimal,
    farthest_point,
    kmeans_snapshots,
    moment_matching,
    random_snapshots,
)

__all__ = [
    "LinearACECalculator",
    "LinearACEModel",
    "budget",
    "coverage",
    "d_optimal",
    "farthest_point",
    "hull_ratio",
    "judge_selection",
    "kmeans_snapshots",
    "moment_matching",
    "random_snapshots",
    "reduce_dataset",
    "reference_labels",
]
