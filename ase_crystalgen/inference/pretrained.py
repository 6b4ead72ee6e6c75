"""The models shipped with the package, and finding a model by name or path.

Each shipped model is a model directory (``model.json`` + ``weights.pt``, see
:mod:`ase_crystalgen.models.io`; some also hold the ``ranker.npz`` of
:mod:`ase_crystalgen.inference.ranking`) under ``ase_crystalgen/data/models/NAME``; its
``card`` says what it was trained on, how well it does and on what hardware it was made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"


def available_models() -> dict[str, dict[str, Any]]:
    """Shipped models: name -> short description (task, objective, data, metrics, path)."""
    out: dict[str, dict[str, Any]] = {}
    if not MODELS_DIR.is_dir():
        return out
    for directory in sorted(p for p in MODELS_DIR.iterdir() if (p / "model.json").is_file()):
        try:
            meta = json.loads((directory / "model.json").read_text())
        except json.JSONDecodeError:
            continue  # reported when someone loads it
        card = meta.get("card", {})
        out[directory.name] = {
            "task": meta.get("data_schema", {}).get("task", "generation"),
            "objective": meta.get("objective", {}).get("name"),
            "description": card.get("description", ""),
            "data": card.get("data", {}).get("name") or card.get("data", {}).get("path"),
            "metrics": card.get("metrics", {}),
            "max_atoms": meta.get("data_schema", {}).get("max_atoms"),
            "n_parameters": meta.get("n_parameters"),
            "path": str(directory),
            "ranker": (directory / "ranker.npz").is_file(),
        }
    return out


def resolve_model(name_or_path: str | Path) -> Path:
    """A model directory or training checkpoint from a shipped model's name or a path.

    A path that exists wins over a shipped name; an unknown name raises a ValueError that
    lists the shipped models.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    shipped = MODELS_DIR / str(name_or_path)
    if isinstance(name_or_path, str) and "/" not in name_or_path and (shipped / "model.json").is_file():
        return shipped
    names = ", ".join(available_models()) or "none"
    raise ValueError(
        f"no model {str(name_or_path)!r}: not a path that exists and not a shipped model (shipped: {names})"
    )


__all__ = ["MODELS_DIR", "available_models", "resolve_model"]
