"""Neutral judges of special quasirandom structures (SQS), independent of the GRS code.

Each judge takes an ``ase.Atoms`` on (or near) a lattice and returns plain numbers:

- :func:`warren_cowley`: Warren-Cowley short-range-order parameters per neighbour shell of
  the ideal lattice (periodic images included), ``alpha_s^{AB} = 1 - P_s(B | A) / c_B``.
- :class:`IcetJudge`: icet's own SQS objective against the cluster vector of the ideal
  random alloy (lower is better; its optimality term makes it negative once leading pair
  correlations match exactly).
- :func:`emt_energy` and :func:`random_alloy_energy`: ASE's EMT energy per atom, and that of
  large random cells of the same composition (an estimate of the random-alloy energy);
  :func:`emt_relax` relaxes positions and cell.
- :func:`site_displacements` and :func:`msd_from_sites`: how far atoms sit from the sites of
  their ideal lattice once the homogeneous strain and the mean translation are taken out.

Nothing here imports ``ase_crystalgen``; the GRS score (the package's own measure) is taken
by the benchmark script itself. icet is imported only by :class:`IcetJudge`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list


# --------------------------------------------------------------------------- lattice shells
def _group(distances: np.ndarray, tol: float) -> list[tuple[float, float]]:
    """Sorted distances grouped into shells: consecutive values closer than ``tol``."""
    d = np.unique(np.round(distances, 8))
    if d.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(d) > tol)
    lo = np.concatenate([[0], breaks + 1])
    hi = np.concatenate([breaks, [d.size - 1]])
    return [(float(d[a]), float(d[b])) for a, b in zip(lo, hi)]


def lattice_shells(ideal: Atoms, n_shells: int, tol: float = 0.05):
    """Pairs ``(i, j)`` of ``ideal`` (all periodic images) in its first ``n_shells`` distance
    shells.

    Returns ``(i, j, shell, radii)``: ``shell[k]`` is the 0-based shell of pair ``k`` and
    ``radii`` the mean distance of each shell. The cutoff grows until ``n_shells`` shells
    lie wholly inside it, so no shell is cut short.
    """
    if n_shells < 1:
        raise ValueError("n_shells must be >= 1")
    if not ideal.pbc.all():
        raise ValueError("lattice_shells needs a cell periodic in all directions")
    cutoff = 1.5 * (ideal.get_volume() / len(ideal)) ** (1 / 3)
    while True:
        i, j, d = neighbor_list("ijd", ideal, cutoff, self_interaction=False)
        shells = [s for s in _group(d, tol) if s[1] + tol < cutoff]
        if len(shells) >= n_shells:
            break
        cutoff *= 1.3
    shells = shells[:n_shells]
    bounds = np.array([s[1] + tol / 2 for s in shells])
    shell = np.searchsorted(bounds, d)  # index of the first bound >= d
    keep = shell < n_shells
    radii = np.array([np.mean(d[keep][shell[keep] == s]) for s in range(n_shells)])
    return i[keep], j[keep], shell[keep], radii


# --------------------------------------------------------------------------- Warren-Cowley
@dataclass
class WarrenCowley:
    """``alpha[s, a, b]`` for shell ``s`` (0-based), centre species ``species[a]`` and
    neighbour species ``species[b]``; ``radii[s]`` the shell distances (A)."""

    species: list[str]
    radii: np.ndarray
    alpha: np.ndarray

    def max_abs(self, shells: int = 3) -> float:
        """max |alpha| over the first ``shells`` shells and all ordered species pairs."""
        return float(np.max(np.abs(self.alpha[:shells])))

    def mean_abs(self, shells: int = 3) -> float:
        return float(np.mean(np.abs(self.alpha[:shells])))

    def pair(self, shell: int, a: str, b: str) -> float:
        """alpha of 1-based ``shell`` for centre ``a`` and neighbour ``b``."""
        return float(self.alpha[shell - 1, self.species.index(a), self.species.index(b)])

    def todict(self) -> dict:
        return {"species": list(self.species), "radii": [round(float(r), 5) for r in self.radii],
                "alpha": np.round(self.alpha, 6).tolist()}


def warren_cowley(atoms: Atoms, n_shells: int = 6, ideal: Atoms | None = None,
                  species: list[str] | None = None, tol: float = 0.05) -> WarrenCowley:
    """Warren-Cowley parameters ``alpha_s^{AB} = 1 - P_s(B | A) / c_B``.

    ``P_s(B | A)``: of all shell-``s`` neighbours of all A atoms (periodic images counted),
    the fraction that are B; ``c_B``: the fraction of B atoms in the cell. Shells are those
    of ``ideal`` (default: ``atoms`` itself), i.e. of the ideal lattice, so a structure with
    displaced atoms can be judged on the lattice it came from (same atom order).
    """
    ideal = atoms if ideal is None else ideal
    if len(ideal) != len(atoms):
        raise ValueError("ideal and atoms must have the same number of atoms")
    symbols = np.array(atoms.get_chemical_symbols())
    species = sorted(set(symbols)) if species is None else list(species)
    k = len(species)
    z = np.array([species.index(s) for s in symbols])
    conc = np.bincount(z, minlength=k) / len(z)
    i, j, shell, radii = lattice_shells(ideal, n_shells, tol)
    counts = np.zeros((n_shells, k, k))
    np.add.at(counts, (shell, z[i], z[j]), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / counts.sum(axis=2, keepdims=True)
        alpha = 1.0 - p / conc[None, None, :]
    return WarrenCowley(species=species, radii=radii, alpha=alpha)


# --------------------------------------------------------------------------- EMT
def emt_relax(atoms: Atoms, fmax: float = 0.01, steps: int = 500) -> tuple[Atoms, int, bool]:
    """A copy of ``atoms`` relaxed with ASE's EMT: positions and cell (FIRE on a
    ``FrechetCellFilter``). Returns ``(relaxed, steps taken, converged)``."""
    import warnings

    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    a = atoms.copy()
    a.calc = EMT()
    opt = FIRE(FrechetCellFilter(a), logfile=None)
    with warnings.catch_warnings():
        # scipy's logm warns at every step of a nearly unstrained cell (errors ~1e-13)
        warnings.filterwarnings("ignore", message=".*logm result may be inaccurate.*")
        converged = bool(opt.run(fmax=fmax, steps=steps))
    return a, int(opt.nsteps), converged


def emt_energy(atoms: Atoms, relax: bool = False, fmax: float = 0.01, steps: int = 500) -> float:
    """EMT energy per atom (eV). ``relax=True`` relaxes positions and cell first
    (:func:`emt_relax`); the input is not modified."""
    from ase.calculators.emt import EMT

    a = emt_relax(atoms, fmax, steps)[0] if relax else atoms.copy()
    a.calc = EMT()
    return float(a.get_potential_energy() / len(a))


# --------------------------------------------------------------------------- displacements
def site_displacements(atoms: Atoms, ideal: Atoms) -> np.ndarray:
    """Displacements (A) of the atoms of ``atoms`` from the sites of ``ideal`` (same atom
    order, same periodic cell up to a homogeneous strain).

    Fractional coordinates are compared, so a strain of the whole cell (a relaxed lattice
    parameter) is no displacement; the shortest periodic difference is taken and expressed
    in the cell of ``atoms``; the mean (a rigid translation) is removed.
    """
    if len(atoms) != len(ideal):
        raise ValueError("atoms and ideal must have the same number of atoms")
    ds = atoms.get_scaled_positions(wrap=False) - ideal.get_scaled_positions(wrap=False)
    ds -= np.round(ds)
    u = ds @ atoms.cell.array
    return u - u.mean(axis=0)


def msd_from_sites(atoms: Atoms, ideal: Atoms) -> float:
    """Mean squared displacement (A^2) from the ideal sites (:func:`site_displacements`)."""
    u = site_displacements(atoms, ideal)
    return float(np.mean(np.sum(u * u, axis=1)))


def random_occupation(lattice: Atoms, counts: dict[str, int], rng: np.random.Generator) -> Atoms:
    """``lattice`` with a random permutation of exactly ``counts`` atoms per species."""
    if sum(counts.values()) != len(lattice):
        raise ValueError(f"counts {counts} do not add up to {len(lattice)} sites")
    labels = np.repeat(list(counts), list(counts.values()))
    rng.shuffle(labels)
    atoms = lattice.copy()
    atoms.set_chemical_symbols(labels.tolist())
    return atoms


def random_alloy_energy(lattice: Atoms, fractions: dict[str, float], n_cells: int,
                        rng: np.random.Generator, relax: bool = False) -> np.ndarray:
    """EMT energies per atom of ``n_cells`` random occupations of ``lattice`` (a large cell)
    with the exact composition ``fractions``."""
    n = len(lattice)
    counts = {s: int(round(f * n)) for s, f in fractions.items()}
    return np.array([emt_energy(random_occupation(lattice, counts, rng), relax=relax)
                     for _ in range(n_cells)])


# --------------------------------------------------------------------------- icet
class IcetJudge:
    """icet's SQS objective of a structure: ``compare_cluster_vectors`` of its cluster vector
    and that of the infinite random alloy at ``concentrations`` (icet's
    ``_get_sqs_cluster_vector``), with optimality weight 1 and tolerance 1e-5 (the defaults
    of ``generate_sqs``). ``l1`` is the same without the optimality term."""

    def __init__(self, primitive: Atoms, cutoffs: list[float], symbols: list[str],
                 concentrations: dict[str, float]):
        from icet import ClusterSpace
        from icet.tools.structure_generation import _get_sqs_cluster_vector

        self.cluster_space = ClusterSpace(primitive, cutoffs=list(cutoffs),
                                          chemical_symbols=list(symbols))
        self.concentrations = dict(concentrations)
        self.target = np.asarray(_get_sqs_cluster_vector(self.cluster_space,
                                                         dict(concentrations)))

    def __call__(self, atoms: Atoms) -> dict:
        from mchammer.calculators import compare_cluster_vectors

        cv = np.asarray(self.cluster_space.get_cluster_vector(atoms))
        as_list = self.cluster_space.as_list
        score = compare_cluster_vectors(cv, self.target, as_list, optimality_weight=1.0, tol=1e-5)
        l1 = compare_cluster_vectors(cv, self.target, as_list, optimality_weight=0.0, tol=1e-5)
        return {"icet_objective": float(score), "icet_cv_l1": float(l1)}
