"""Filtering, polymorph groups, splits by formula and modification pairs (paper section 2).

These functions work on plain arrays (atomic numbers per structure, space groups, energies,
reduced formulas) so that they apply equally to freshly read structures and to a cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class FilterReport:
    """What :func:`frequency_filter` / :func:`size_filter` removed, and why."""

    n_in: int
    n_out: int
    removed: dict[str, int] = field(default_factory=dict)
    rare_elements: list[str] = field(default_factory=list)
    rare_spacegroups: list[int] = field(default_factory=list)


def size_mask(n_sites: np.ndarray, min_sites: int = 4, max_sites: int = 60) -> np.ndarray:
    """True where ``min_sites <= n_sites <= max_sites`` (the paper: 4-60)."""
    if min_sites > max_sites:
        raise ValueError(f"min_sites={min_sites} is larger than max_sites={max_sites}")
    n_sites = np.asarray(n_sites)
    return (n_sites >= min_sites) & (n_sites <= max_sites)


def frequency_mask(
    elements: Sequence[Sequence[str]],
    spacegroups: Sequence[int],
    min_fraction: float = 0.01,
) -> tuple[np.ndarray, list[str], list[int]]:
    """Drop structures with an element or a space group seen in < ``min_fraction`` of them.

    The paper's rule, one pass: an element's frequency is the fraction of structures that
    contain it. Returns the keep-mask and the rare elements and space groups.
    """
    if not 0 <= min_fraction < 1:
        raise ValueError(f"min_fraction must be in [0, 1), got {min_fraction}")
    n = len(spacegroups)
    if n == 0:
        return np.zeros(0, dtype=bool), [], []
    element_counts = Counter(el for els in elements for el in set(els))
    sg_counts = Counter(int(s) for s in spacegroups)
    rare_el = sorted(el for el, c in element_counts.items() if c < min_fraction * n)
    rare_sg = sorted(sg for sg, c in sg_counts.items() if c < min_fraction * n)
    rare_el_set, rare_sg_set = set(rare_el), set(rare_sg)
    keep = np.array(
        [
            int(sg) not in rare_sg_set and not (set(els) & rare_el_set)
            for els, sg in zip(elements, spacegroups)
        ],
        dtype=bool,
    )
    return keep, rare_el, rare_sg


def polymorph_groups(formulas: Sequence[str], energies: Sequence[float]) -> dict[str, np.ndarray]:
    """Indices of each reduced formula's polymorphs, sorted by energy (lowest first).

    Ties in energy keep input order, so the result is deterministic.
    """
    energies = np.asarray(energies, dtype=float)
    by_formula: dict[str, list[int]] = {}
    for i, f in enumerate(formulas):
        by_formula.setdefault(str(f), []).append(i)
    return {
        f: np.array(sorted(idx, key=lambda i: (energies[i], i)), dtype=int) for f, idx in by_formula.items()
    }


def split_by_formula(
    formulas: Sequence[str],
    fractions: Mapping[str, float] | Sequence[float] = (0.9, 0.05, 0.05),
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Assign every structure to a split so that no reduced formula is in two splits.

    Formulas are shuffled and dealt greedily to the split that is furthest below its target
    share of *structures*, which keeps the structure fractions close to ``fractions`` even
    when group sizes differ. Returns an int array of split indices into ``SPLIT_NAMES`` order
    (0 train, 1 val, 2 test).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    if isinstance(fractions, Mapping):
        fractions = [float(fractions.get(name, 0.0)) for name in SPLIT_NAMES]
    frac = np.asarray(list(fractions), dtype=float)
    if len(frac) != len(SPLIT_NAMES) or np.any(frac < 0) or not np.isclose(frac.sum(), 1.0):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}"
        )
    formulas = [str(f) for f in formulas]
    groups = polymorph_groups(formulas, np.zeros(len(formulas)))
    names = sorted(groups)
    order = rng.permutation(len(names))
    total = len(formulas)
    filled = np.zeros(len(frac))
    split = np.zeros(total, dtype=np.int8)
    for k in order:
        members = groups[names[k]]
        deficit = frac * total - filled
        deficit[frac == 0] = -np.inf
        s = int(np.argmax(deficit))
        split[members] = s
        filled[s] += len(members)
    return split


def modification_pairs(groups: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The paper's pairs (initial, target) inside each polymorph group (sorted by energy).

    ``lowest``: (S_i, S_0) for every i >= 1, the target the group's most stable structure.
    ``nonlowest``: (S_i, S_j) for i > j > 0, a more stable target that is not the lowest.
    Returned as (n, 2) int arrays of structure indices.
    """
    lowest, nonlowest = [], []
    for members in groups.values():
        members = np.asarray(members)
        for i in range(1, len(members)):
            lowest.append((members[i], members[0]))
            for j in range(1, i):
                nonlowest.append((members[i], members[j]))
    as_array = lambda p: np.array(p, dtype=int).reshape(-1, 2)  # noqa: E731
    return as_array(lowest), as_array(nonlowest)


def sample_epoch_pairs(
    lowest: np.ndarray,
    nonlowest: np.ndarray,
    group_of: np.ndarray,
    cap_per_group: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One epoch of training pairs, re-sampled each epoch (paper section 2.2).

    From each polymorph group at most ``cap_per_group`` lowest-energy pairs and at most
    ``cap_per_group`` non-lowest pairs are drawn; the larger pool is then subsampled so that
    both kinds contribute equal numbers (when one kind is empty, the other is used alone).
    ``group_of[i]`` is the group index of structure i (pairs are grouped by their target).
    """
    if cap_per_group < 1:
        raise ValueError(f"cap_per_group must be at least 1, got {cap_per_group}")

    def capped(pairs: np.ndarray) -> np.ndarray:
        if len(pairs) == 0:
            return pairs
        order = rng.permutation(len(pairs))
        pairs = pairs[order]
        groups = group_of[pairs[:, 1]]
        rank = np.zeros(len(pairs), dtype=int)
        seen: Counter = Counter()
        for k, g in enumerate(groups.tolist()):
            rank[k] = seen[g]
            seen[g] += 1
        return pairs[rank < cap_per_group]

    a, b = capped(np.asarray(lowest).reshape(-1, 2)), capped(np.asarray(nonlowest).reshape(-1, 2))
    if len(a) and len(b):
        n = min(len(a), len(b))
        a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    pairs = np.concatenate([a, b])
    return pairs[rng.permutation(len(pairs))]


def duplicate_mask(
    structures: Sequence,
    formulas: Sequence[str],
    energies: Sequence[float],
    ltol: float = 0.2,
    stol: float = 0.3,
    angle_tol: float = 5.0,
    energy_tol: float = 0.01,
    volume_tol: float = 0.1,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Find repeated crystals with pymatgen's StructureMatcher (e.g. in Carbon-24).

    Two structures are compared only when they share a reduced formula and their energies
    (eV/atom) differ by at most ``energy_tol`` and their volumes per atom by at most
    ``volume_tol`` (relative): a duplicate has the same energy and density, and the pre-filter
    keeps the number of matcher calls near linear. Within a cluster of matches the first
    structure is kept.

    Parameters
    ----------
    structures
        ``ase.Atoms`` (or pymatgen structures), one per entry.

    Returns
    -------
    keep, representative
        ``keep[i]`` is False for a duplicate; ``representative[i]`` is the index it repeats
        (``i`` itself when kept).
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor
    from tqdm.auto import tqdm

    n = len(structures)
    energies = np.asarray(energies, dtype=float)
    pmg = [s if hasattr(s, "lattice") else AseAtomsAdaptor.get_structure(s) for s in structures]
    vpa = np.array([s.volume / len(s) for s in pmg])
    matcher = StructureMatcher(ltol=ltol, stol=stol, angle_tol=angle_tol)
    representative = np.arange(n)
    by_formula: dict[str, list[int]] = {}
    for i, f in enumerate(formulas):
        by_formula.setdefault(str(f), []).append(i)
    for members in tqdm(list(by_formula.values()), desc="duplicates", disable=not progress):
        kept: list[int] = []
        for i in sorted(members):
            for j in kept:
                if abs(energies[i] - energies[j]) > energy_tol or abs(vpa[i] - vpa[j]) > volume_tol * vpa[j]:
                    continue
                if matcher.fit(pmg[i], pmg[j]):
                    representative[i] = j
                    break
            else:
                kept.append(i)
    return representative == np.arange(n), representative
