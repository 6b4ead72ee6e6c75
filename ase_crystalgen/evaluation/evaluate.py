"""``crystalgen evaluate``: sample k structures per test structure and match them.

Generation models draw k samples with each test structure's conditions (composition,
space group, formation energy); modification models start from the initial structure of
each lowest-energy validation pair and are matched against its target. Matching, RMSE and
validity come from :mod:`ase_crystalgen.evaluation.metrics`; sampling is the inference pipeline
(:mod:`ase_crystalgen.inference.pipeline`), the same that ``CrystalGenerator`` runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_path, atomic_write_text
from ..datasets.cache import ProcessedDataset
from ..inference.pipeline import decode, load_model, sample_tensors


def _conditions(dataset, indices: list[int]) -> dict[str, torch.Tensor]:
    out = dataset.batch_conditions(np.asarray(indices, dtype=np.int64))
    out["energy"] = torch.as_tensor(dataset.data.arrays["energy"][indices], dtype=torch.float32)
    return out


def evaluate_model(
    model_path: str | Path,
    data: str | Path | ProcessedDataset,
    split: str = "test",
    k: int = 1,
    method: str | None = None,
    steps: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
    tolerances: tuple[str, ...] = ("paper", "field"),
    ks: tuple[int, ...] | None = None,
    limit: int | None = None,
    train_data: str | Path | None = None,
    n_jobs: int = 1,
    out: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    symmetrize: bool = False,
    candidates: int = 1,
    ranker: Any = None,
) -> dict[str, Any]:
    """Evaluate a model on a split of a processed data set; returns the summary dict.

    ``limit`` evaluates the first ``limit`` structures of the split (in a fixed shuffled
    order, so a subset is representative); ``train_data`` splits the figures into
    compositions seen in that data set and unseen ones. With ``out`` the JSON, markdown and
    the sampled structures (extxyz) are written there. ``symmetrize`` snaps each valid sample
    of a generation model to the space group it was drawn with
    (:func:`ase_crystalgen.inference.symmetry.symmetrize`) before matching; the raw samples
    are the same as without it for the same seed, and ``summary["symmetrize"]`` counts the
    samples snapped.
    """
    from tqdm.auto import tqdm

    from ..datasets.torch_datasets import CrystalDataset, ModificationDataset
    from ..inference.symmetry import symmetrize as snap
    from .metrics import match_samples

    loaded = load_model(model_path, device)
    candidates = int(candidates)
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")
    chooser = None
    if candidates > 1:
        if loaded.task != "generation":
            raise ValueError("candidates apply to generation models; this one is a modification model")
        from ..inference.ranking import load_ranker

        chooser = load_ranker(ranker, model_path)
    if symmetrize and loaded.task != "generation":
        raise ValueError("symmetrize applies to generation models; this one is a modification model")
    data = data if isinstance(data, ProcessedDataset) else ProcessedDataset.load(data)
    if data.max_atoms != loaded.max_atoms:
        raise ValueError(
            f"data set has max_atoms={data.max_atoms} but the model was trained with {loaded.max_atoms}; "
            "rebuild the data set with --max-atoms"
        )
    generator = torch.Generator(device=loaded.device)
    generator.manual_seed(seed)
    if loaded.task == "generation":
        ds = CrystalDataset(data, split)
        targets_idx = list(ds.index)
        init_idx = None
    else:
        ds = ModificationDataset(data, split, resample=False)
        targets_idx = [int(t) for t in ds.pairs[:, 1]]
        init_idx = [int(i) for i in ds.pairs[:, 0]]
    order = np.random.default_rng(seed).permutation(len(targets_idx))
    if limit is not None:
        order = order[:limit]
    targets_idx = [targets_idx[o] for o in order]
    if init_idx is not None:
        init_idx = [init_idx[o] for o in order]
    if not targets_idx:
        raise ValueError(f"split {split!r} of {data.path} has nothing to evaluate")

    jobs = [(t, r) for t in range(len(targets_idx)) for r in range(k) for _ in range(candidates)]
    samples: list[list] = [[] for _ in targets_idx]
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="sampling", unit="structures", disable=not progress)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        idx = [targets_idx[t] for t, _ in chunk]
        cond = _conditions(ds, idx)
        x_init = None
        if init_idx is not None:
            x_init = torch.as_tensor(data.arrays["x"][[init_idx[t] for t, _ in chunk]], dtype=torch.float32)
        x = sample_tensors(loaded, cond, x_init=x_init, sampler=method, steps=steps, generator=generator)
        numbers = [data.arrays["numbers"][i, : data.arrays["n_sites"][i]] for i in idx]
        for (t, _), atoms in zip(chunk, decode(x, numbers)):
            samples[t].append(atoms)
        bar.update(len(chunk))
    bar.close()
    sampling_seconds = time.perf_counter() - t0
    ranking = None
    if chooser is not None:
        t0 = time.perf_counter()
        wanted = [float(data.arrays["energy"][targets_idx[t]]) for t in range(len(samples)) for _ in range(k)]
        flat = [a for group in samples for a in group]
        chosen = chooser.best_of(flat, candidates, wanted, progress=progress)
        samples = [chosen[t * k : (t + 1) * k] for t in range(len(samples))]
        ranking = {"candidates": candidates, "ranker": chooser.card, "seconds": time.perf_counter() - t0}

    snapped = {"n_samples": 0, "n_symmetrized": 0, "seconds": 0.0} if symmetrize else None
    if symmetrize:
        t0 = time.perf_counter()
        for t, group in enumerate(samples):
            sg = int(data.arrays["spacegroup"][targets_idx[t]])
            for r, atoms in enumerate(group):
                if "invalid" in atoms.info:
                    continue
                group[r] = snap(atoms, sg)
                snapped["n_samples"] += 1
                snapped["n_symmetrized"] += int(group[r].info["symmetrized"])
        snapped["seconds"] = time.perf_counter() - t0

    targets = [data.atoms(i) for i in targets_idx]
    ks = tuple(sorted({1, k} | set(ks or ())))
    result = match_samples(samples, targets, tolerances=tolerances, ks=ks, n_jobs=n_jobs, progress=progress)
    subsets = None
    if train_data is not None:
        train = ProcessedDataset.load(train_data)
        seen_formulas = set(train.arrays["formula"].tolist())
        seen = [n for n, i in enumerate(targets_idx) if data.arrays["formula"][i] in seen_formulas]
        unseen = sorted(set(range(len(targets_idx))) - set(seen))
        subsets = {"seen composition": seen, "unseen composition": unseen}
    summary = result.summary(subsets)
    summary["run"] = {
        "model": str(model_path),
        "data": str(data.path),
        "split": split,
        "k": k,
        "method": method,
        "steps": steps,
        "seed": seed,
        "n_targets": len(targets_idx),
        "sampling_seconds": sampling_seconds,
        "structures_per_second": len(jobs) / sampling_seconds,
        "device": str(loaded.device),
        "symmetrize": bool(symmetrize),
        "candidates": candidates,
    }
    if ranking is not None:
        summary["ranking"] = ranking
    if snapped is not None:
        summary["symmetrize"] = snapped
    if out is not None:
        import ase.io

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "evaluation.json", json.dumps(summary, indent=2, default=float) + "\n")
        atomic_write_text(out / "evaluation.md", result.to_markdown(subsets))
        flat = []
        for t, group in enumerate(samples):
            for r, atoms in enumerate(group):
                if "invalid" in atoms.info:
                    continue
                atoms.info.update(target=str(data.arrays["ids"][targets_idx[t]]), sample=r)
                flat.append(atoms)
        with atomic_path(out / "samples.extxyz") as tmp:
            ase.io.write(tmp, flat, format="extxyz")
    return summary
