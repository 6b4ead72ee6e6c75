"""Settings records of resumable runs: a run refuses to continue one made with other settings.

A long job (``crystalgen screen``, ``relax``, ``grs``) writes what it was asked as JSON before
it writes any result, and a rerun compares its own settings with the record. Equal: it
resumes. Different: :class:`RunMismatch` names every field that differs, with both values,
so that two runs are never mixed in one output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._atomic import atomic_write_text

__all__ = ["RunMismatch", "check_settings", "differences", "read_settings", "write_settings"]


class RunMismatch(RuntimeError):
    """An output holds a run made with other settings, or its settings record is unreadable."""


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    # a round trip through JSON makes tuples lists and keys strings, as the record will hold them
    return json.loads(json.dumps(settings))


def differences(found: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``"key: A there, B now"`` for every key whose values differ, sorted by key."""
    found, wanted = _jsonable(found), _jsonable(wanted)
    missing = object()
    out = []
    for key in sorted(set(found) | set(wanted)):
        a, b = found.get(key, missing), wanted.get(key, missing)
        if a != b:
            a_text = "unset" if a is missing else json.dumps(a)
            b_text = "unset" if b is missing else json.dumps(b)
            out.append(f"{key}: {a_text} there, {b_text} now")
    return out


def read_settings(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record at ``path``, or None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunMismatch(f"settings record {path} is corrupt ({exc}); remove it, or start again") from None
    if not isinstance(found, dict):
        raise RunMismatch(f"settings record {path} is not a JSON object; remove it, or start again")
    return found


def write_settings(path: str | os.PathLike, settings: dict[str, Any]) -> None:
    """Write the record atomically."""
    atomic_write_text(path, json.dumps(_jsonable(settings), indent=2, sort_keys=True) + "\n")


def check_settings(
    found: dict[str, Any] | None, wanted: dict[str, Any], where: str, how: str, what: str = "a run"
) -> None:
    """Raise :class:`RunMismatch` when ``found`` (a record, or None) differs from ``wanted``.

    ``where`` names the output (``"screen-Cu3Au"``), ``how`` says how to start again
    (``"use --overwrite"``), ``what`` names the kind of run (``"a screen"``).
    """
    if found is None:
        return
    diff = differences(found, wanted)
    if diff:
        keys = ", ".join(d.split(":", 1)[0] for d in diff)
        raise RunMismatch(
            f"{where} holds {what} with other settings ({keys} differ: {'; '.join(diff)}); "
            f"{how}, or choose another output"
        )
