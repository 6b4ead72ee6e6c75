"""Add training statistics (space groups per cell size, energies per chemistry) to a model card.

Models trained since the statistics were introduced carry them already
(``card["condition_statistics"]``, written by ``crystalgen train``). This adds them to an
older model directory from the processed data set it was trained on, after checking that the
data set is that one (same source SHA-256 and the same number of training structures)::

    python scripts/add_condition_statistics.py ase_crystalgen/data/models/perov5-flow data/perov5-val-m12

``CrystalGenerator.sample`` draws its default space groups and energies from these statistics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ase_crystalgen._atomic import atomic_write_text
from ase_crystalgen.datasets.cache import ProcessedDataset
from ase_crystalgen.datasets.summary import condition_statistics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model directory (holds model.json)")
    parser.add_argument("data", help="processed data set directory the model was trained on")
    parser.add_argument("--split", default="train", help="split the model was trained on (default: train)")
    args = parser.parse_args(argv)

    path = Path(args.model) / "model.json"
    description = json.loads(path.read_text())
    card = description.setdefault("card", {})
    data = ProcessedDataset.load(args.data)
    source = data.meta.get("source", {})
    expected = card.get("data", {}).get("sha256")
    if expected and source.get("sha256") != expected:
        raise SystemExit(
            f"{args.data} was built from a file with SHA-256 {source.get('sha256')}, the model's card "
            f"says {expected}: not the model's training data"
        )
    stats = condition_statistics(data, args.split)
    trained_on = card.get("data_counts", {}).get(args.split)
    if trained_on is not None and trained_on != stats["structures"]:
        raise SystemExit(
            f"{args.data} has {stats['structures']} {args.split} structures, the card says {trained_on}: "
            "not the model's split"
        )
    card["condition_statistics"] = stats
    card["min_sites"] = stats["min_sites"]
    atomic_write_text(path, json.dumps(description, indent=2) + "\n")
    sizes = ", ".join(f"{n} atoms: {len(t)} groups" for n, t in stats["spacegroups_by_size"].items())
    print(f"{path}: statistics of {stats['structures']} {args.split} structures ({sizes})")


if __name__ == "__main__":
    main()
