"""Reducing a data set to a few GRS: the one call with the settings measured for it.

:func:`~ase_crystalgen.optimize.generate_representative_structures` builds each member to
match the target on its own (``w_inter``) and the set jointly (``w_intra``). For a data
set that spans temperatures, strains or compositions the own term pulls every member to
the data set's average environment (and its average composition), so the set has little
spread; a linear ACE potential fitted on such members predicts held-out snapshots badly.
Here the data set is split by composition, each group is reduced on its own, and each
member minimises the joint term only, with the variance weighted like the mean
(``benchmarks/bench_reduction.py``, ``docs/benchmarks/reduction.md`` for what that buys
and what it does not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms

from ..build import composition_counts
from ..structures import as_rng, element_counts

__all__ = ["REDUCTION_DEFAULTS", "allocate", "composition_groups", "reduce_dataset"]

#: the settings of :func:`reduce_dataset` that differ from the one call's
REDUCTION_DEFAULTS = dict(weights=(1.0, 1.0), w_inter=0.0, w_intra=1.0, relax_steps=150)


def _fractions(atoms: Atoms) -> tuple:
    """The composition of ``atoms`` as sorted (element, fraction) pairs (a dict key)."""
    return tuple(sorted((s, c / len(atoms)) for s, c in element_counts(atoms).items()))


def composition_groups(data: Sequence[Atoms]) -> dict[tuple, list[int]]:
    """Indices of the data set's structures by composition (element fractions)."""
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(data):
        if len(a) == 0:
            raise ValueError(f"structure {i} of the data set has no atoms")
        groups.setdefault(_fractions(a), []).append(i)
    return groups


def allocate(weights: Sequence[float], n: int) -> list[int]:
    """``n`` members shared out in proportion to ``weights`` (largest remainders), every
    group getting one first while there are enough."""
    w = np.asarray(weights, float)
    if n >= len(w):
        base = np.ones(len(w), int)
        raw = w / w.sum() * (n - len(w))
    else:
        base = np.zeros(len(w), int)
        raw = w / w.sum() * n
    extra = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - extra), kind="stable")[: n - base.sum() - extra.sum()]:
        extra[i] += 1
    return [int(x) for x in base + extra]


def reduce_dataset(data: Sequence[Atoms], n_structures: int, n_atoms: int = 32, *,
                   descriptor=None, rng=None, progress: bool = False,
                   existing: Sequence[Atoms] = (), on_member: Callable | None = None,
                   **options) -> list[Atoms]:
    """``n_structures`` GRS of ``n_atoms`` atoms that stand for the data set ``data``.

    The data set is split by composition; each composition group gets members in
    proportion to its atoms (one each first, while there are enough), made by the one
    call with the group as the target, the group's composition and mean density.

    Parameters
    ----------
    data : the structures to reduce (a list of Atoms; at least two).
    n_structures, n_atoms : members and atoms per member (compositions are rounded to
        whole counts of ``n_atoms``).
    descriptor : an ``ACEDescriptor`` (default: the paper's basis over all the data set's
        elements, shared by every group).
    rng : generator or seed.
    progress : a tqdm bar over the members, showing the score of the latest.
    existing : members made earlier (``info["grs_group"]`` says which group); they count
        towards their group's share.
    on_member : called as ``on_member(members)`` after each new member.
    options : anything else of the one call,
        :func:`~ase_crystalgen.optimize.generate_representative_structures`;
        :data:`REDUCTION_DEFAULTS` unless given.

    Returns
    -------
    The members (``info`` as the one call's, plus ``grs_group``).
    """
    from ..descriptors import ACEDescriptor
    from ..optimize import generate_representative_structures

    data = [data] if isinstance(data, Atoms) else list(data)
    if len(data) < 2:
        raise ValueError(f"a data set to reduce needs at least two structures, got {len(data)}")
    if int(n_atoms) < 1 or int(n_structures) < 1:
        raise ValueError("n_structures and n_atoms must be positive")
    rng = as_rng(rng)
    kw = {**REDUCTION_DEFAULTS, **options}
    groups = composition_groups(data)
    keys = list(groups)
    if descriptor is None:
        descriptor = ACEDescriptor(sorted({s for k in keys for s, _ in k}))
    counts = allocate([sum(len(data[i]) for i in groups[k]) for k in keys], int(n_structures))
    existing = list(existing)
    members: list[Atoms] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(n_structures), desc="reduced set", unit="structure")
    for g in range(len(keys)):
        if counts[g] == 0:
            continue
        part = [data[i] for i in groups[keys[g]]]
        done = [m for m in existing if m.info.get("grs_group") == g][: counts[g]]
        density = float(np.mean([len(a) / a.get_volume() for a in part])) if all(
            a.pbc.all() for a in part) else None

        def hook(ms, g=g, before=members):
            for m in ms:
                m.info["grs_group"] = g
            if bar is not None:
                bar.update(1)
                bar.set_postfix(score=f"{ms[-1].info['grs_score']:.3g}",
                                formula=ms[-1].get_chemical_formula())
            if on_member is not None:
                on_member(before + list(ms))

        made = generate_representative_structures(
            part if len(part) > 1 else part[0], counts[g], int(n_atoms), descriptor=descriptor,
            composition=composition_counts(dict(keys[g]), int(n_atoms)),
            density=density, rng=rng,
            existing=done, on_member=hook, **kw)
        for m in made:
            m.info["grs_group"] = g
        if bar is not None:
            bar.update(len(done))  # members read back count as done
        members += made
    if bar is not None:
        bar.close()
    return members
