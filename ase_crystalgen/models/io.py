"""Self-describing model directories and training checkpoints (needs torch).

Two formats:

* **Model directory** (``RUN/model/``, what ``CrystalGenerator.from_pretrained`` reads and
  what the package ships): ``model.json`` (format, format version, package version, model
  class name and constructor arguments, training method, scaler, data schema, card) and
  ``weights.pt`` (a plain ``state_dict``, loaded with ``weights_only=True``). Written by
  :func:`save_pretrained`, read by :func:`from_pretrained` (network + description) or
  :func:`read_pretrained` (description + weights).
* **Training checkpoint** (``RUN/checkpoint.pt``, one file written atomically): everything
  needed to continue a run exactly (weights, EMA weights, optimizer, learning-rate
  scheduler, gradient scaler, random-number states, step, epoch, position in the epoch,
  history) plus the same description. :func:`save_checkpoint` / :func:`load_checkpoint`.

The model class is looked up by name in a small registry (:func:`register_model`;
``CrystalUNet`` is registered), so a directory names the class that rebuilds it. Every
problem (missing, truncated or corrupt file, another format version, an unknown class,
weights that do not fit the described network) raises :class:`CheckpointError` saying
what is wrong; nothing is swallowed.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_write_bytes, atomic_write_text

FORMAT = "ase_crystalgen-model"
FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "ase_crystalgen-checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint or model directory is missing, corrupt or incompatible."""


# class name -> (network class, config class with to_dict/from_dict); filled on first use so
# that importing this module does not build the networks' module
_REGISTRY: dict[str, tuple[type[torch.nn.Module], Any]] = {}


def register_model(model_class: type[torch.nn.Module], config_class: Any) -> type[torch.nn.Module]:
    """Make ``model_class`` loadable by name: it is built as ``model_class(config_class.from_dict(d))``
    and must keep its config as ``model.config`` (with ``to_dict``)."""
    _REGISTRY[model_class.__name__] = (model_class, config_class)
    return model_class


def model_classes() -> dict[str, tuple[type[torch.nn.Module], Any]]:
    """The registered model classes by name."""
    if "CrystalUNet" not in _REGISTRY:
        from .unet1d import CrystalUNet, UNetConfig

        register_model(CrystalUNet, UNetConfig)
    return dict(_REGISTRY)


def build_model(model_class: str, model_config: dict[str, Any]) -> torch.nn.Module:
    """A registered network from its class name and constructor arguments (random weights)."""
    registry = model_classes()
    if model_class not in registry:
        raise CheckpointError(
            f"unknown model class {model_class!r}; registered: {', '.join(sorted(registry))}"
        )
    cls, config_cls = registry[model_class]
    return cls(config_cls.from_dict(model_config))


def _atomic_torch_save(obj: Any, path: Path) -> None:
    # through a buffer: torch names the zip archive after the file, and the temporary name
    # would make identical weights differ byte for byte (and in their SHA-256)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_pretrained(
    directory: str | Path,
    model: torch.nn.Module,
    *,
    objective: dict[str, Any],
    scaler: dict[str, Any],
    data_schema: dict[str, Any],
    card: dict[str, Any] | None = None,
    weights_dtype: torch.dtype | None = None,
) -> Path:
    """Write a model directory (``model.json`` + ``weights.pt``); the JSON is written last.

    ``model`` is a registered network (its class name and ``model.config.to_dict()`` are
    recorded); ``objective`` is the training method's ``to_dict()`` and ``scaler`` the
    :class:`~ase_crystalgen.generative.StructureScaler` state. ``weights_dtype=torch.float16``
    stores floating-point weights at half size (the shipped models); they load back into a
    float32 model. ``model.json`` records the SHA-256 of ``weights.pt`` so that a corrupt or
    swapped file is named on loading.
    """
    from .. import __version__

    name = type(model).__name__
    if name not in model_classes():
        raise CheckpointError(f"model class {name!r} is not registered (register_model)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if weights_dtype is not None:
        state = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in state.items()}
    _atomic_torch_save(state, directory / "weights.pt")
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "torch_version": torch.__version__,
        "model_class": name,
        "model_config": model.config.to_dict(),
        "objective": objective,
        "scaler": scaler,
        "data_schema": data_schema,
        "card": card or {},
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "weights_dtype": str(weights_dtype or torch.float32).replace("torch.", ""),
        "weights_sha256": _sha256(directory / "weights.pt"),
    }
    atomic_write_text(directory / "model.json", json.dumps(description, indent=2) + "\n")
    return directory


def read_pretrained(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read and check a model directory; returns (description, state_dict)."""
    directory = Path(directory)
    meta_path, weights_path = directory / "model.json", directory / "weights.pt"
    if not directory.is_dir():
        raise CheckpointError(f"model directory {directory} does not exist")
    if not meta_path.exists():
        raise CheckpointError(f"{directory} has no model.json: not an ase_crystalgen model directory")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path} is corrupt: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not an ase_crystalgen model description")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} was written in model format {meta.get('format_version')} by ase_crystalgen "
            f"{meta.get('package_version')}; this version reads format {FORMAT_VERSION}"
        )
    if not weights_path.exists():
        raise CheckpointError(f"{directory} has no weights.pt")
    expected = meta.get("weights_sha256")
    if expected is not None and _sha256(weights_path) != expected:
        raise CheckpointError(
            f"{weights_path} does not match the SHA-256 recorded in model.json: the file is corrupt "
            "or belongs to another model"
        )
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad archive; all mean "corrupt"
        raise CheckpointError(
            f"{weights_path} is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from None
    return meta, state


def load_weights(
    meta: dict[str, Any], state: dict[str, torch.Tensor], source: str | Path
) -> torch.nn.Module:
    """The network ``meta`` describes (``model_class``, ``model_config``) with ``state`` loaded."""
    model_class = meta.get("model_class")
    if model_class not in model_classes():
        raise CheckpointError(
            f"{source}: unknown model class {model_class!r}; registered: {', '.join(sorted(model_classes()))}"
        )
    try:
        model = build_model(model_class, meta["model_config"])
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{source}: weights do not fit the described model ({exc})") from None
    return model


def from_pretrained(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of a model directory in eval mode on ``device``, and its description."""
    meta, state = read_pretrained(directory)
    model = load_weights(meta, state, directory)
    return model.to(device).eval(), meta


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write a training checkpoint atomically (temporary file, fsync, rename)."""
    from .. import __version__

    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        **state,
    }
    _atomic_torch_save(state, Path(path))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint, with clear errors for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        # our own file, but it holds optimizer state and numpy RNG state; trusted local file
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a bad archive; all mean "corrupt"
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an ase_crystalgen training checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state.get('format_version')}; this ase_crystalgen "
            f"reads version {FORMAT_VERSION}"
        )
    return state


__all__ = [
    "CheckpointError",
    "build_model",
    "from_pretrained",
    "load_checkpoint",
    "model_classes",
    "read_pretrained",
    "register_model",
    "save_checkpoint",
    "save_pretrained",
]
