"""ASE calculators for relaxation, from a name, a factory or an instance.

:func:`get_calculator` turns a *calculator spec* into one ASE calculator:

* an ASE calculator instance (VASP, Quantum ESPRESSO, MACE, ...) is used as it is;
* a zero-argument callable is called, so that a process that receives the spec (a Dask
  worker) builds its own calculator;
* ``"chgnet"``: the pretrained CHGNet universal potential (weights ship with the package);
* ``"m3gnet"``: matgl's pretrained ``M3GNet-MP-2021.2.8-PES``, looked up *only* in matgl's local
  cache, never downloaded;
* ``"m3gnet:PATH"``: a matgl potential saved in the directory ``PATH``;
* ``"emt"``: ASE's effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt, H, C, N, O), a fast stand-in
  for an expensive calculator in tests and examples.

Machine-learned potentials take seconds to load, so the named ones are built once per process
and device and then shared (:data:`_CACHE`). A shared calculator is not thread-safe: run
parallel relaxations in processes, one thread each.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

from ase.calculators.calculator import BaseCalculator

CalculatorSpec = BaseCalculator | str | Callable[[], BaseCalculator]

#: The names :func:`get_calculator` accepts (``PATH`` stands for a model directory).
CALCULATOR_NAMES = ("chgnet", "m3gnet", "m3gnet:PATH", "emt")

#: The matgl model that ``"m3gnet"`` means.
M3GNET_DEFAULT_MODEL = "M3GNet-MP-2021.2.8-PES"

# matgl >= 2 downloads from this Hugging Face organisation into its cache directory
_MATGL_HF_ORG = "materialyze"
_MATGL_FILES = ("model.pt", "state.pt", "model.json")

_CACHE: dict[tuple[str, str], BaseCalculator] = {}

__all__ = [
    "CALCULATOR_NAMES",
    "M3GNET_DEFAULT_MODEL",
    "CalculatorSpec",
    "CalculatorUnavailable",
    "calculator_name",
    "check_calculator",
    "get_calculator",
    "matgl_cache_dir",
]


class CalculatorUnavailable(RuntimeError):
    """A named calculator cannot be built here (for instance its weights are not on disk)."""


def get_calculator(spec: CalculatorSpec, device: str = "cpu") -> BaseCalculator:
    """Resolve a calculator spec into an ASE calculator.

    Parameters
    ----------
    spec : ase calculator, callable or str
        An ASE calculator (returned unchanged), a zero-argument factory returning one, or one of
        ``"chgnet"``, ``"m3gnet"``, ``"m3gnet:PATH"`` and ``"emt"`` (case-insensitive names).
    device : str
        Torch device of the machine-learned potentials (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        ``"mps"``); ignored for instances, factories and EMT.

    Returns
    -------
    ase.calculators.calculator.BaseCalculator
        For the named machine-learned potentials, the same object on every call in one process
        with the same ``device``.

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        When the package of a named potential is missing; the message names the extra to install.
    CalculatorUnavailable
        For ``"m3gnet"`` when the pretrained weights are not in matgl's local cache.
    TypeError
        When ``spec`` is none of the above, or a factory returns something else.
    """
    if isinstance(spec, BaseCalculator):
        return spec
    if isinstance(spec, str):
        return _named_calculator(spec, device)
    if callable(spec):
        calc = spec()
        if not isinstance(calc, BaseCalculator):
            raise TypeError(
                f"calculator factory {spec!r} returned {type(calc).__name__}, not an ASE calculator"
            )
        return calc
    raise TypeError(
        f"calculator must be an ASE calculator, a zero-argument factory or a name, got {type(spec).__name__}"
    )


def check_calculator(spec: CalculatorSpec) -> None:
    """Raise what :func:`get_calculator` would raise for ``spec``, without building a potential.

    Unknown names raise ValueError; ``"chgnet"`` and ``"m3gnet"`` raise ImportError when their
    package is missing; ``"m3gnet"`` and ``"m3gnet:PATH"`` raise CalculatorUnavailable when the
    weights are not on disk. Instances and factories pass (they are checked when used).
    """
    import importlib.util

    if not isinstance(spec, str):
        if isinstance(spec, BaseCalculator) or callable(spec):
            return
        raise TypeError(
            "calculator must be an ASE calculator, a zero-argument factory or a name, "
            f"got {type(spec).__name__}"
        )
    lower = spec.strip().lower()
    if lower == "emt":
        return
    if lower == "chgnet":
        if importlib.util.find_spec("chgnet") is None:
            raise ImportError("calculator 'chgnet' needs CHGNet: pip install 'ase_crystalgen[chgnet]'")
        return
    if lower == "m3gnet":
        _cached_m3gnet_dir()
        return
    if lower.startswith("m3gnet:"):
        path = spec.strip()[len("m3gnet:") :].strip()
        if not path:
            raise ValueError("calculator 'm3gnet:PATH' needs a model directory after the colon")
        _import_matgl()
        _matgl_directory(path)
        return
    raise ValueError(_unknown_name_message(spec))


def calculator_name(spec: CalculatorSpec, calculator: BaseCalculator | None = None) -> str:
    """A short name of a calculator spec for records (``atoms.info["calculator"]``).

    The spec string itself for a name, else the class name of the calculator. For a factory
    that is not a class, pass the ``calculator`` it already built, or it is called once here.
    """
    if isinstance(spec, str):
        return spec.strip()
    if isinstance(spec, BaseCalculator):
        return type(spec).__name__
    if calculator is not None:
        return type(calculator).__name__
    if isinstance(spec, type):
        return spec.__name__
    return type(get_calculator(spec)).__name__


def _unknown_name_message(spec: str) -> str:
    names = ", ".join(repr(n) for n in CALCULATOR_NAMES)
    return (
        f"unknown calculator {spec!r}: accepted names are {names}; "
        "or pass an ASE calculator instance or a zero-argument factory returning one"
    )


def _named_calculator(spec: str, device: str) -> BaseCalculator:
    name = spec.strip()
    lower = name.lower()
    if lower == "emt":
        from ase.calculators.emt import EMT

        return EMT()  # cheap, so not cached: EMT keeps per-structure state
    if lower == "chgnet":
        key = ("chgnet", device)
        if key not in _CACHE:
            _CACHE[key] = _chgnet(device)
        return _CACHE[key]
    if lower == "m3gnet":
        key = ("m3gnet", device)
        if key not in _CACHE:
            _CACHE[key] = _matgl_calculator(_cached_m3gnet_dir(), device)
        return _CACHE[key]
    if lower.startswith("m3gnet:"):
        directory = _matgl_directory(name[len("m3gnet:") :])
        key = (f"m3gnet:{directory}", device)
        if key not in _CACHE:
            _CACHE[key] = _matgl_calculator(directory, device)
        return _CACHE[key]
    raise ValueError(_unknown_name_message(spec))


def _matgl_directory(path: str) -> Path:
    """The saved matgl model directory named after ``m3gnet:``, checked for its files."""
    path = path.strip()
    if not path:
        raise ValueError("calculator 'm3gnet:PATH' needs a model directory after the colon")
    directory = Path(path).expanduser().resolve()
    missing = [f for f in _MATGL_FILES if not (directory / f).is_file()]
    if missing:
        raise CalculatorUnavailable(
            f"{directory} is not a saved matgl model: missing {', '.join(missing)} "
            "(a model directory holds model.pt, state.pt and model.json, as written by "
            "matgl's Potential.save)"
        )
    return directory


def _chgnet(device: str) -> BaseCalculator:
    try:
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as exc:
        raise ImportError(
            f"calculator 'chgnet' needs CHGNet: pip install 'ase_crystalgen[chgnet]' ({exc})"
        ) from None
    import warnings

    # CHGNet's own code turns a tensor that requires grad into a number on every call; torch
    # warns about it each run, and users can do nothing about it
    warnings.filterwarnings(
        "ignore", message="Converting a tensor with requires_grad=True to a scalar",
        category=UserWarning, module=r"chgnet\.",
    )
    # CHGNet prints its version and device on construction; batch logs do not want that
    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNetCalculator(use_device=device)


def _import_matgl():
    try:
        import matgl
        import matgl.config
        from matgl.ext.ase import PESCalculator
    except ImportError as exc:
        raise ImportError(
            f"calculator 'm3gnet' needs matgl: pip install 'ase_crystalgen[matgl]' ({exc})"
        ) from None
    return matgl, PESCalculator


def matgl_cache_dir() -> Path:
    """matgl's cache directory (``matgl.config.MATGL_CACHE``, ``~/.cache/matgl`` by default)."""
    matgl, _ = _import_matgl()
    return Path(matgl.config.MATGL_CACHE)


def _cached_m3gnet_dir() -> Path:
    """The local directory of the default M3GNet model, or CalculatorUnavailable.

    Looks in matgl's cache only, in the two layouts matgl has used: ``CACHE/NAME/`` (matgl 1.x,
    and what a user gets by copying a model directory there) and the Hugging Face cache layout
    ``CACHE/models--materialyze--NAME/snapshots/REVISION/`` of matgl >= 2. Nothing is downloaded.
    """
    cache = matgl_cache_dir()
    candidates = [cache / M3GNET_DEFAULT_MODEL]
    snapshots = cache / f"models--{_MATGL_HF_ORG}--{M3GNET_DEFAULT_MODEL}" / "snapshots"
    if snapshots.is_dir():
        # newest revision first
        candidates += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for directory in candidates:
        if all((directory / f).is_file() for f in _MATGL_FILES):
            return directory
    raise CalculatorUnavailable(
        f"the pretrained matgl model {M3GNET_DEFAULT_MODEL} is not in matgl's local cache "
        f"(searched {cache}; downloads are never attempted). To fix: on a machine with internet run "
        f"`python -c \"import matgl; matgl.load_model('{M3GNET_DEFAULT_MODEL}')\"` and copy the model "
        f"directory (the three files {', '.join(_MATGL_FILES)}) to {cache / M3GNET_DEFAULT_MODEL}; "
        "or pass calculator='m3gnet:PATH' with the directory of a saved model; "
        "or use calculator='chgnet', whose weights ship with the package"
    )


def _matgl_calculator(directory: Path, device: str) -> BaseCalculator:
    matgl, PESCalculator = _import_matgl()
    potential = matgl.load_model(directory)
    if device != "cpu":
        # matgl's Potential moves each graph to the device of its own parameters
        potential = potential.to(device)
    # ASE optimisers and cell filters want stress in eV/A^3; matgl's default is GPa
    return PESCalculator(potential, stress_unit="eV/A3")
