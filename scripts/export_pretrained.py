"""Copy a trained model into the package as a shipped model (half-precision weights + card).

    python scripts/export_pretrained.py RUN/model NAME --description "..." \
        [--data-name "Perov-5 val.csv"] [--evaluation EVAL_DIR/evaluation.json ...]

Writes ``ase_crystalgen/data/models/NAME/{model.json,weights.pt}``. The card keeps the
training data, counts, configuration and hardware of the run, drops machine-specific paths,
and gains ``name``, ``description`` and ``metrics`` (match rates and RMSE from ``crystalgen
evaluate`` runs, each with its command). Metrics must be re-measured on the exported
(half-precision) weights: pass the evaluation of the exported model, not of the run.

``--keep-from DIR`` re-ships a model that replaces the one in ``DIR`` (a further-trained
version): the card fields that belong to the data and the sampling rather than to the weights
(:data:`KEPT`) come from ``DIR``'s card, its default sampler and steps
(:data:`KEPT_OBJECTIVE`) from its objective, and its ``ranker.npz`` is copied with its SHA-256.
The conversion to float16 is deterministic, so exporting twice (once to evaluate, once with
``--evaluation``) gives the same weights file. The kept ``sampling_note`` holds figures of the
old weights: re-measure them (``benchmarks/bench_sampling.py``) and pass ``--sampling-note``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from ase_crystalgen._atomic import atomic_write_text
from ase_crystalgen.datasets import load_dataset
from ase_crystalgen.inference.pipeline import load_model
from ase_crystalgen.inference.pretrained import MODELS_DIR
from ase_crystalgen.models.io import _sha256, save_pretrained
from ase_crystalgen.training.trainer import energy_change_range

#: card fields ``--keep-from`` takes from the model being replaced
KEPT = ("data", "condition_statistics", "min_sites", "sampling_note")
#: objective fields ``--keep-from`` takes from it (the default sampler and steps)
KEPT_OBJECTIVE = ("inference_sampler", "inference_steps")


def _strip_paths(card: dict) -> dict:
    card = json.loads(json.dumps(card))
    training = card.get("training", {}).get("config", {})
    for key in ("data", "out", "init_from"):
        if training.get(key):
            training[key] = Path(training[key]).name
    if card.get("data", {}).get("path"):
        card["data"]["path"] = Path(card["data"]["path"]).name
    return card


def _metrics(paths: list[str]) -> dict:
    out = {}
    for p in paths:
        summary = json.loads(Path(p).read_text())
        run = summary["run"]
        key = f"{Path(run['data']).name}:{run['split']} k={run['k']}"
        if run.get("method"):
            key += f" {run['method']}"
        if (run.get("candidates") or 1) > 1:
            key += f", best of {run['candidates']} candidates (ranker.npz)"
        if run.get("steps"):
            key += f", {run['steps']} steps"
        out[key] = {
            tol: {kk: {m: v[m] for m in ("match_rate", "rmse", "n")} for kk, v in by_k.items()}
            for tol, by_k in summary["metrics"].items()
        }
        out[key]["validity"] = summary["validity"]["rate"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("name")
    parser.add_argument("--description", required=True)
    parser.add_argument("--data-name")
    parser.add_argument("--evaluation", nargs="*", default=[])
    parser.add_argument("--note", help="free text for the card (how it was trained, caveats)")
    parser.add_argument("--sampling-note", help="why the default sampler and steps (default: kept "
                        "with --keep-from, else none)")
    parser.add_argument("--float32", action="store_true", help="keep full-precision weights")
    parser.add_argument("--keep-from", help="model directory this one replaces: keep its data card, "
                        "statistics, sampling note and ranker (default: none)")
    args = parser.parse_args()
    kept = json.loads((Path(args.keep_from) / "model.json").read_text()) if args.keep_from else None
    loaded = load_model(args.model)
    meta = loaded.meta
    training = meta.get("card", {}).get("training", {}).get("config", {})
    if loaded.task == "modification" and "energy_change_range" not in meta.get("card", {}):
        data = load_dataset(training["data"])  # models trained before the card had it
        meta["card"]["energy_change_range"] = energy_change_range(data, training.get("train_split", "train"))
    card = _strip_paths(meta.get("card", {}))
    objective = dict(meta["objective"])
    if kept is not None:
        card.update({k: kept["card"][k] for k in KEPT if k in kept["card"]})
        objective.update({k: kept["objective"][k] for k in KEPT_OBJECTIVE if k in kept["objective"]})
    card.update(name=args.name, description=args.description)
    if args.data_name:
        card.setdefault("data", {})["name"] = args.data_name
    if args.evaluation:
        card["metrics"] = _metrics(args.evaluation)
    if args.note:
        card["note"] = args.note
    if args.sampling_note:
        card["sampling_note"] = args.sampling_note
    out = save_pretrained(
        MODELS_DIR / args.name, loaded.model, objective=objective, scaler=meta["scaler"],
        data_schema=meta["data_schema"], card=card, weights_dtype=None if args.float32 else torch.float16,
    )
    if kept is not None and (Path(args.keep_from) / "ranker.npz").is_file():
        source = Path(args.keep_from) / "ranker.npz"
        if source.resolve() != (out / "ranker.npz").resolve():
            shutil.copyfile(source, out / "ranker.npz")
        described = json.loads((out / "model.json").read_text())
        described["ranker_sha256"] = _sha256(out / "ranker.npz")
        atomic_write_text(out / "model.json", json.dumps(described, indent=2) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
