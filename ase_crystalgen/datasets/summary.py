"""Counts and pictures of a processed data set: per split, space group, element and size."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..representation.elements import ELEMENT_SYMBOLS
from .processing import SPLIT_NAMES


def dataset_summary(dataset) -> dict[str, Any]:
    """Counts per split, space group, element (structures containing it) and size."""
    a = dataset.arrays
    elements = Counter()
    for row in a["numbers"]:
        elements.update({ELEMENT_SYMBOLS[z - 1] for z in row[row > 0]})
    group_sizes = Counter(Counter(a["group"].tolist()).values())
    energy = a["energy"]
    return {
        "structures": int(len(energy)),
        "splits": {name: int((a["split"] == s).sum()) for s, name in enumerate(SPLIT_NAMES)},
        "polymorph_groups": int(len(set(a["group"].tolist()))),
        "group_sizes": {int(k): int(v) for k, v in sorted(group_sizes.items())},
        "spacegroups": {int(k): int(v) for k, v in sorted(Counter(a["spacegroup"].tolist()).items())},
        "elements": dict(sorted(elements.items(), key=lambda kv: (-kv[1], kv[0]))),
        "sizes": {int(k): int(v) for k, v in sorted(Counter(a["n_sites"].tolist()).items())},
        "energy": {
            "min": float(energy.min()),
            "max": float(energy.max()),
            "mean": float(energy.mean()),
            "std": float(energy.std()),
        },
    }


def summary_markdown(summary: dict[str, Any], title: str = "Processed data set") -> str:
    lines = [f"# {title}", ""]
    s = summary
    lines.append(
        f"{s['structures']} structures in {s['polymorph_groups']} polymorph groups; "
        + ", ".join(f"{k} {v}" for k, v in s["splits"].items())
        + "."
    )
    e = s["energy"]
    lines += [
        "",
        f"Energy (eV/atom): min {e['min']:.3f}, max {e['max']:.3f}, "
        f"mean {e['mean']:.3f}, std {e['std']:.3f}.",
        "",
    ]
    for key, label in (("spacegroups", "space group"), ("elements", "element"), ("sizes", "sites")):
        lines += [f"| {label} | structures |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in s[key].items()]
        lines.append("")
    return "\n".join(lines)


def plot_summary(dataset, path: str | Path) -> Path:
    """Histogram PNG: space groups, elements, sizes, energies, fractional coordinates
    (the paper's Figure 3) and polymorph-group sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = dataset_summary(dataset)
    a = dataset.arrays
    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    sg = s["spacegroups"]
    ax[0, 0].bar([str(k) for k in sg], list(sg.values()), color="tab:blue")
    ax[0, 0].set(title="space groups", xlabel="number", ylabel="structures")
    ax[0, 0].tick_params(axis="x", labelrotation=90, labelsize=7)
    el = dict(list(s["elements"].items())[:40])
    ax[0, 1].bar(list(el), list(el.values()), color="tab:orange")
    ax[0, 1].set(title="elements (structures containing; top 40)", ylabel="structures")
    ax[0, 1].tick_params(axis="x", labelrotation=90, labelsize=7)
    sizes = s["sizes"]
    ax[0, 2].bar(list(sizes), list(sizes.values()), color="tab:green")
    ax[0, 2].set(title="sites per cell", xlabel="sites", ylabel="structures")
    ax[1, 0].hist(a["energy"], bins=50, color="tab:red")
    ax[1, 0].set(title="energy condition", xlabel="eV/atom", ylabel="structures")
    mask = np.arange(dataset.max_atoms)[None, :] < a["n_sites"][:, None]
    frac = a["x"][:, : dataset.max_atoms][mask]
    for k, label in enumerate("XYZ"):
        ax[1, 1].hist(frac[:, k], bins=50, histtype="step", label=label, linewidth=1.5)
    ax[1, 1].set(title="fractional coordinates (paper Fig. 3)", xlabel="value", ylabel="atoms")
    ax[1, 1].legend()
    gs = s["group_sizes"]
    ax[1, 2].bar(list(gs), list(gs.values()), color="tab:purple")
    ax[1, 2].set(title="polymorph-group sizes", xlabel="structures per formula", ylabel="groups")
    fig.suptitle(f"{s['structures']} structures, {s['polymorph_groups']} polymorph groups")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_summary(dataset, directory: str | Path) -> dict[str, Any]:
    """Write ``summary.json``, ``summary.md`` and ``summary.png`` into ``directory``."""
    from .._atomic import atomic_write_text

    directory = Path(directory)
    s = dataset_summary(dataset)
    atomic_write_text(directory / "summary.json", json.dumps(s, indent=2) + "\n")
    source = dataset.meta.get("source", {}).get("path", "")
    atomic_write_text(
        directory / "summary.md", summary_markdown(s, f"Processed data set: {Path(source).name}")
    )
    plot_summary(dataset, directory / "summary.png")
    return s


#: largest number of energies stored per group in :func:`condition_statistics`; bigger groups
#: store their 0th-100th percentiles instead (101 values)
MAX_STORED_ENERGIES = 101


def chemical_system(numbers) -> str:
    """``"O-Sr-Ti"``: the distinct elements of a structure, by symbol, joined by ``-``."""
    return "-".join(sorted({ELEMENT_SYMBOLS[int(z) - 1] for z in numbers if int(z) > 0}))


def _energy_summary(values: np.ndarray) -> list[float]:
    values = np.sort(np.asarray(values, dtype=float))
    if len(values) > MAX_STORED_ENERGIES:
        values = np.percentile(values, np.linspace(0.0, 100.0, MAX_STORED_ENERGIES))
    return [round(float(v), 6) for v in values]


def condition_statistics(dataset, split: str | None = "train") -> dict[str, Any]:
    """What a model trained on ``split`` of ``dataset`` saw, for default conditions at sampling.

    Returns a JSON-able dict with

    * ``split`` and ``structures``: the split and its number of structures;
    * ``min_sites`` / ``max_sites``: smallest and largest cell;
    * ``spacegroups_by_size``: ``{n_atoms: {spacegroup: count}}``, the space groups seen per
      cell size, with their frequencies;
    * ``energies_by_system``: ``{"O-Sr-Ti": [sorted energies]}`` per chemical system,
      ``energies_by_size``: the same per cell size and ``energies``: all of them (eV/atom, the
      data set's energy column). A group of more than :data:`MAX_STORED_ENERGIES` energies
      stores its percentiles 0, 1, ..., 100 instead, which keeps quantiles to within a
      percentile.

    ``split=None`` uses every structure.
    """
    a = dataset.arrays
    idx = np.arange(len(a["energy"])) if split is None else dataset.indices(split)
    if len(idx) == 0:
        raise ValueError(f"the data set has no {split!r} structures")
    sizes = a["n_sites"][idx]
    by_size: dict[int, Counter] = {}
    energies_by_size: dict[int, list[float]] = {}
    energies_by_system: dict[str, list[float]] = {}
    for i, n in zip(idx.tolist(), sizes.tolist()):
        by_size.setdefault(int(n), Counter())[int(a["spacegroup"][i])] += 1
        energy = float(a["energy"][i])
        energies_by_size.setdefault(int(n), []).append(energy)
        energies_by_system.setdefault(chemical_system(a["numbers"][i]), []).append(energy)
    return {
        "split": split or "all",
        "structures": int(len(idx)),
        "min_sites": int(sizes.min()),
        "max_sites": int(sizes.max()),
        "spacegroups_by_size": {
            str(n): {str(sg): c for sg, c in sorted(counts.items())} for n, counts in sorted(by_size.items())
        },
        "energies_by_system": {k: _energy_summary(v) for k, v in sorted(energies_by_system.items())},
        "energies_by_size": {str(n): _energy_summary(v) for n, v in sorted(energies_by_size.items())},
        "energies": _energy_summary(a["energy"][idx]),
    }
