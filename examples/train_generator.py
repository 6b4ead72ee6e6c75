"""From crystals to a trained conditional generator, on CPU, end to end.

1. make a small data set of real, EMT-relaxed polymorphs (pyxtal + EMT);
2. encode it into a processed-data cache (the paper's 64x3 layout, here max_atoms = 8);
3. train a small flow-matching UNet (uniform noise on coordinates, the paper's best);
4. sample new structures for the compositions, space groups and energies of the set;
5. match them against the references and write them for ``ase gui``.

The same steps from the command line::

    crystalgen dataset build synthetic --out data/emt --max-atoms 8
    crystalgen train run.yaml            # data: data/emt, objective: flow-uniform, ...
    crystalgen evaluate runs/emt/model --data data/emt --split all -k 4

Run::

    python examples/train_generator.py            # a few minutes
    python examples/train_generator.py --quick    # seconds (a smoke test: nothing is learned)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(quick: bool = False, workdir: str | Path = "train-generator") -> dict:
    import ase.io

    from ase_crystalgen.datasets import build_dataset
    from ase_crystalgen.datasets.synthetic import (
        default_synthetic_set,
        generate_polymorphs,
        write_synthetic_set,
    )
    from ase_crystalgen.evaluation import evaluate_model
    from ase_crystalgen.training import TrainConfig, train

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if quick:
        structures = generate_polymorphs(
            ["Cu", "CuAu"], [225, 221, 123], rng=rng, max_atoms=4, min_atoms=4, progress=False
        )
    else:
        structures = default_synthetic_set(rng=rng, progress=True)
    write_synthetic_set(structures, work / "polymorphs.extxyz")

    data = build_dataset(
        work / "polymorphs.extxyz",
        work / "data",
        progress=not quick,
        max_atoms=8,
        min_fraction=0.0,
        split=(1.0, 0.0, 0.0),
    )
    print(f"{len(data)} structures in {data.meta['counts']['polymorph_groups']} polymorph groups")

    model = (
        {
            "model_channels": 16,
            "channel_mult": [1, 2],
            "num_res_blocks": 1,
            "attention_levels": [1],
            "groups": 8,
            "element_channels": 16,
            "spacegroup_channels": 16,
        }
        if quick
        else "small"
    )
    config = TrainConfig(
        data=str(work / "data"),
        out=str(work / "run"),
        objective="flow-uniform",
        model=model,
        batch_size=16,
        epochs=2000,
        max_steps=10 if quick else 3000,
        lr=1e-3,
        warmup_steps=5 if quick else 100,
        checkpoint_every=500,
        progress=not quick,
    )
    result = train(config)
    print(f"trained {result.step} steps; loss curve: {result.out / 'loss.png'}")

    summary = evaluate_model(
        result.model_dir,
        data,
        split="all",
        k=2 if quick else 4,
        steps=5 if quick else 100,
        out=work / "evaluation",
        progress=not quick,
    )
    field = summary["metrics"]["field"]
    best_k = max(field, key=lambda key: int(key.split("=")[1]))
    print(
        f"match rate (field tolerances): k=1 {100 * field['k=1']['match_rate']:.1f} %, "
        f"{best_k} {100 * field[best_k]['match_rate']:.1f} %; valid {100 * summary['validity']['rate']:.0f} %"
    )
    samples = (
        ase.io.read(work / "evaluation" / "samples.extxyz", ":") if summary["validity"]["n_valid"] else []
    )
    print(f"{len(samples)} valid samples in {work / 'evaluation' / 'samples.extxyz'} (ase gui opens it)")
    return summary


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
