"""The README's code blocks run as written.

Python blocks run in one namespace per ``##`` section, in order (a ``###`` block continues its
section). Where the README shows a setting that takes minutes, :data:`SMALLER` swaps in a small
one; each swap must find its text, so a README that changes fails here rather than going
untested. ``crystalgen`` shell lines either run for real (:data:`RUN`) or, where they need data
or a config that a reader supplies, are parsed by the real argument parser.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import ase.io
import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


# one torch thread in this process (tests/conftest.py); the subprocesses get OMP_NUM_THREADS=1
pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: (section, text in the README, what the test runs instead)
SMALLER = [
    ("Generating crystals", "n=4, seed=0", "n=1, seed=0"),
    # six prototypes per element take minutes with CHGNet; simple cubic alone keeps the test short
    ("Generating crystals", '["Sr", "Ti", "O"], "chgnet")',
     '["Sr", "Ti", "O"], "chgnet", candidates=("sc",))'),
]

#: shell sections whose crystalgen lines run for real (cheap: small models, few relaxations)
RUN = {"Generating crystals"}

def _blocks() -> list[tuple[str, str, str, str]]:
    """(section, heading, language, code) of every fenced block, in order."""
    out, section, heading, lang, code = [], "", "", None, []
    for line in README.read_text(encoding="utf-8").splitlines():
        if lang is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
                if line.startswith("## "):
                    section = heading
            elif line.startswith("```"):
                lang, code = line[3:].strip(), []
        elif line.startswith("```"):
            out.append((section, heading, lang, "\n".join(code) + "\n"))
            lang = None
        else:
            code.append(line)
    return out


def _python_blocks() -> list[tuple[str, str]]:
    return [(s, h) for s, h, lang, _ in _blocks() if lang == "python"]


def _shell_commands(code: str) -> list[list[str]]:
    """crystalgen command lines of a shell block, continuation lines joined, comments dropped."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "crystalgen":
            commands.append(words[1:])
    return commands


def _shrunk(section: str, code: str) -> str:
    for where, old, new in SMALLER:
        if where == section and old in code:
            code = code.replace(old, new)
    return code


def test_every_swap_finds_its_text():
    text = {s: "".join(c for s2, _, _, c in _blocks() if s2 == s) for s, _, _ in SMALLER}
    for section, old, _ in SMALLER:
        assert old in text[section], f"README section {section!r} no longer shows {old!r}"


@pytest.mark.parametrize("section, heading", _python_blocks(), ids=[h for _, h in _python_blocks()])
def test_python_block_runs(section, heading, tmp_path, monkeypatch):
    """The block under ``heading``, after the blocks before it in its section."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for s, h, lang, code in _blocks():
        if s != section or lang != "python":
            continue
        exec(compile(_shrunk(section, code), f"README.md: {h}", "exec"), namespace)
        if h == heading:
            break
    _check_results(heading, namespace)


def _check_results(heading: str, ns: dict) -> None:
    """What the README's comments promise."""
    if heading == "GRS in five lines":
        from ase_crystalgen import GRSCalculator

        start = ns["target"].copy()
        start.rattle(0.05, seed=0)  # the block's starting point
        score = GRSCalculator(target=ns["target"]).score
        assert score(ns["atoms"]) < 0.1 * score(start)  # "the score goes back to ~0"
    elif heading == "Finding an ordering on a lattice":  # "stops when the score reaches 0: the L1_2 ordering"
        assert ns["sa"].best_score == pytest.approx(0.0, abs=1e-10)
        best, target = ns["sa"].best_atoms, ns["target"]
        assert sorted(best.get_chemical_symbols()) == sorted(target.get_chemical_symbols())
    elif heading == "Generating crystals":
        relaxed, refs = ns["relaxed"], ns["refs"]
        assert len(relaxed) == 2 and all("relax_error" not in a.info for a in relaxed)
        for a in relaxed:
            # elements only: the hull is flat at zero, so above-hull is the formation energy
            assert refs.e_above_hull(a) == pytest.approx(refs.formation_energy_per_atom(a), abs=1e-9)
            assert refs.e_above_hull(a) < -1.0
        better = ns["better"]
        assert sorted(better.get_chemical_symbols()) == ["Au", "Cu", "Cu", "Cu"]
        assert np.isfinite(better.positions).all()
    # any other block (the GRS sections are being rewritten): running without an error is the test


def _shell_blocks() -> list[tuple[str, list[list[str]]]]:
    return [(s, _shell_commands(c)) for s, _, lang, c in _blocks()
            if lang == "bash" and _shell_commands(c)]


@pytest.mark.parametrize("section", list(dict.fromkeys(s for s, _ in _shell_blocks())))
def test_shell_commands_are_valid(section):
    from ase_crystalgen.cli import _attach_negative_values, build_parser

    parser = build_parser()
    for _, commands in (b for b in _shell_blocks() if b[0] == section):
        for argv in commands:
            args = parser.parse_args(_attach_negative_values(argv))  # exits (fails) on a bad option
            assert callable(args.func)


def test_generation_commands_run_as_written(tmp_path, monkeypatch, capsys):
    from ase_crystalgen.cli import main

    monkeypatch.chdir(tmp_path)
    commands = [argv for s, cmds in _shell_blocks() if s in RUN for argv in cmds]
    assert [argv[0] for argv in commands] == ["sample", "relax", "screen"]
    for argv in commands:
        assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    # the relax line reads what the sample line wrote
    assert len(ase.io.read(tmp_path / "samples.extxyz", ":")) == 2
    assert "relaxed 2 structures with chgnet: 2 converged" in out
    grid = re.search(r"(\d+) candidates, (\d+) relaxed", out)
    assert grid and int(grid.group(1)) == 2 * 3  # "here 2 x 3 x 1"
    assert (tmp_path / "screen-Cu3Au" / "screen.db").exists()
