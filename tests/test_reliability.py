"""Interruptions, resumes, refusals and one-line errors of the long commands (docs/reliability.md).

The interruption tests run the real command line in a subprocess (``python -m ase_crystalgen``),
wait until some relaxations are committed, send SIGINT or SIGKILL, and count what the store
kept; a rerun must finish the job without redoing any kept relaxation (same row id and mtime).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from ase_crystalgen.cli import main
from ase_crystalgen.relaxation import RelaxationStore, relax

MODEL = "synthetic-alloys-flow"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
DEADLINE = 600.0  # seconds a subprocess may take to reach a state; a safety net, not a timing


# one torch thread in this process (tests/conftest.py); the subprocesses get OMP_NUM_THREADS=1
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _default_sigint() -> None:
    # a test run started in the background of a non-interactive shell inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler: Ctrl-C would be lost
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ase_crystalgen", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=_default_sigint)


def _rows(db: Path) -> dict[int, tuple]:
    """id -> (creation time, energy) of the committed rows: a row relaxed again would be a new
    row or a new creation time (later updates of derived columns change only the mtime)."""
    if not db.exists():
        return {}
    for _ in range(100):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
                rows = con.execute("SELECT id, ctime, energy FROM systems").fetchall()
            return {i: (c, e) for i, c, e in rows}
        except sqlite3.OperationalError:  # created but not yet initialised
            time.sleep(0.05)
    raise AssertionError(f"cannot read {db}")


def _wait_for(proc: subprocess.Popen, db: Path, n: int) -> None:
    start = time.monotonic()
    while len(_rows(db)) < n:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"finished (rc {proc.returncode}) before {n} rows in {db}:\n{out}\n{err}")
        assert time.monotonic() - start < DEADLINE, f"no {n} rows in {db}"
        time.sleep(0.02)


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, out, err


# --------------------------------------------------------------------------- screen
SCREEN = ("screen", "--model", MODEL, "--composition", "Cu3Au", "--spacegroups", "221,123",
          "--energies", "-0.06,0.0", "-n", "5", "--steps", "20", "--calculator", "emt",
          "--no-progress")
N_CANDIDATES = 2 * 2 * 5


def test_screen_survives_sigint_and_sigkill_and_resumes_without_redoing(tmp_path):
    out = tmp_path / "scr"
    db, refs = out / "screen.db", out / "references.db"
    args = (*SCREEN, "--out", str(out))

    proc = _start(*args)
    _wait_for(proc, db, 3)
    rc, _, err = _stop(proc, signal.SIGINT)
    assert rc == 130 and err.endswith("crystalgen: interrupted\n"), err
    after_int = _rows(db)
    assert 3 <= len(after_int) < N_CANDIDATES  # Ctrl-C kept every finished relaxation
    assert not (out / "summary.csv").exists()

    proc = _start(*args)
    _wait_for(proc, db, len(after_int) + 3)
    rc, _, err = _stop(proc, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert f"resuming: {len(after_int)} of {N_CANDIDATES} candidates already relaxed" in err
    after_kill = _rows(db)
    assert len(after_int) + 3 <= len(after_kill) < N_CANDIDATES
    assert {i: after_kill[i] for i in after_int} == after_int  # nothing relaxed twice

    proc = _start(*args)  # now killed while it relaxes the hull's references
    _wait_for(proc, refs, 2)
    rc, _, _ = _stop(proc, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    refs_kept = _rows(refs)
    assert len(refs_kept) >= 2
    assert len(_rows(db)) == N_CANDIDATES

    done = subprocess.run([sys.executable, "-m", "ase_crystalgen", *args], capture_output=True, text=True,
                          env=ENV, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert f"{N_CANDIDATES} candidates" in done.stdout
    final = _rows(db)
    assert len(final) == N_CANDIDATES
    assert {i: final[i] for i in after_kill} == after_kill
    final_refs = _rows(refs)
    assert len(final_refs) == 2 * 6  # Cu and Au, six prototypes each
    assert {i: final_refs[i] for i in refs_kept} == refs_kept
    assert len(ase.io.read(out / "references.extxyz", ":")) == 2


def test_screen_checks_its_inputs_before_any_work(tmp_path, capsys):
    out = tmp_path / "scr"
    bad = tmp_path / "known.extxyz"
    bad.write_text("2\nnot an extxyz comment line = \"\nCu 0 0 0\n")
    base = [*SCREEN, "--out", str(out)]
    assert main([*base, "--known-phases", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"crystalgen: error: could not read known phases file {bad}: ")
    assert err.count("\n") == 1
    assert not out.exists()  # nothing generated, no settings recorded

    refs = tmp_path / "refs.extxyz"
    ase.io.write(refs, bulk("Cu"))  # no energy
    assert main([*base, "--references", str(refs)]) == 2
    assert capsys.readouterr().err == (
        f"crystalgen: error: references file {refs}, frame 0: Cu has no energy: no calculator, no "
        "info['energy'] and no energy= given\n"
    )
    assert not out.exists()

    assert main([*base, "--calculator", "lj"]) == 2
    assert "unknown calculator 'lj'" in capsys.readouterr().err
    assert not out.exists()

    (tmp_path / "afile").write_text("")
    assert main([*SCREEN, "--out", str(tmp_path / "afile")]) == 2
    assert "is a file; give a directory" in capsys.readouterr().err


def test_a_screen_rejected_by_the_model_records_no_settings(tmp_path, capsys):
    """A condition only the model can judge (too many atoms for it) fails after the model is
    loaded: the record written for the run is taken back, so the corrected command is not refused."""
    out = tmp_path / "scr"
    args = [*SCREEN, "--out", str(out)]
    args[args.index("Cu3Au")] = "Cu300Au100"
    assert main(args) == 2
    assert "supports at most" in capsys.readouterr().err
    assert not (out / "settings.json").exists()


# --------------------------------------------------------------------------- relax
def _rattled_inputs(path: Path, n: int) -> list:
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(2)
        atoms.symbols[::4] = "Au"
        atoms.rattle(0.15, rng=np.random.default_rng(k))
        frames.append(atoms)
    ase.io.write(path, frames)
    return ase.io.read(path, ":")


def test_relax_survives_sigint_and_sigkill_and_resumes_to_the_uninterrupted_result(tmp_path):
    n = 12
    inputs = _rattled_inputs(tmp_path / "in.extxyz", n)
    out = tmp_path / "relaxed.extxyz"
    store = tmp_path / "relaxed.extxyz.progress.db"
    args = ("relax", str(tmp_path / "in.extxyz"), "--calculator", "emt", "--fmax", "0.01",
            "--out", str(out), "--no-progress")

    proc = _start(*args)
    _wait_for(proc, store, 2)
    rc, _, err = _stop(proc, signal.SIGINT)
    assert rc == 130 and err.endswith("crystalgen: interrupted\n"), err
    after_int = _rows(store)
    assert 2 <= len(after_int) < n and not out.exists()

    proc = _start(*args)
    _wait_for(proc, store, len(after_int) + 2)
    rc, out_text, _ = _stop(proc, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert f"resuming: {len(after_int)} of {n} structures already relaxed" in out_text
    after_kill = _rows(store)
    assert len(after_int) + 2 <= len(after_kill) < n
    assert {i: after_kill[i] for i in after_int} == after_int

    done = subprocess.run([sys.executable, "-m", "ase_crystalgen", *args], capture_output=True, text=True,
                          env=ENV, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(after_kill)} of {n} structures" in done.stdout
    final = _rows(store)
    assert len(final) == n and {i: final[i] for i in after_kill} == after_kill

    resumed = ase.io.read(out, ":")
    straight = relax(inputs, "emt", fmax=0.01, steps=500, progress=False)
    ase.io.write(tmp_path / "straight.extxyz", straight)
    straight = ase.io.read(tmp_path / "straight.extxyz", ":")
    assert len(resumed) == n
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
        assert a.get_potential_energy() == b.get_potential_energy()
        assert a.info == b.info


def test_a_lock_file_left_by_a_killed_run_does_not_stop_the_resume(tmp_path):
    # ASE's database lock file has no timeout: one left behind by a run killed while it wrote
    # made the resumed run wait for ever. SQLite locks and journals the file itself.
    _rattled_inputs(tmp_path / "in.extxyz", 3)
    out = tmp_path / "relaxed.extxyz"
    store = tmp_path / "relaxed.extxyz.progress.db"
    args = ("relax", str(tmp_path / "in.extxyz"), "--calculator", "emt", "--out", str(out),
            "--no-progress")
    RelaxationStore(store)  # an empty store, as a run killed at its first write leaves it
    Path(f"{store}.lock").write_text("")
    done = subprocess.run([sys.executable, "-m", "ase_crystalgen", *args], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(_rows(store)) == 3 and len(ase.io.read(out, ":")) == 3


def test_relax_refuses_to_resume_with_other_settings_or_inputs(tmp_path, capsys):
    inputs = _rattled_inputs(tmp_path / "in.extxyz", 2)
    out = tmp_path / "r.extxyz"
    base = ["relax", str(tmp_path / "in.extxyz"), "--calculator", "emt", "--out", str(out), "--no-progress"]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--fmax", "0.02"]) == 2
    store = f"{out}.progress.db"
    assert capsys.readouterr().err == (
        f"crystalgen: error: {store} holds a run with other settings (fmax differ: fmax: 0.05 there, "
        "0.02 now); use --overwrite (overwrite=True) to start again, or choose another output\n"
    )
    moved = [a.copy() for a in inputs]
    moved[1].positions[0] += 0.1
    ase.io.write(tmp_path / "in.extxyz", moved)
    assert main(base) == 2
    assert capsys.readouterr().err == (
        f"crystalgen: error: relaxation store {store} holds another input structure for 'frame 1': "
        "the inputs changed since the run began; use --overwrite (overwrite=True) to start again\n"
    )
    assert main([*base, "--overwrite"]) == 0
    assert "relaxed 2 structures with emt: 2 converged" in capsys.readouterr().out
    assert len(RelaxationStore(store)) == 2


def test_relax_exits_1_when_nothing_converged_and_names_failed_frames(tmp_path, capsys):
    frames = _rattled_inputs(tmp_path / "in.extxyz", 2)
    frames[1].positions[1] = frames[1].positions[0] + 0.1  # overlapping atoms
    ase.io.write(tmp_path / "in.extxyz", frames)
    out = tmp_path / "r.extxyz"
    assert main(["relax", str(tmp_path / "in.extxyz"), "--calculator", "emt", "--relax-steps", "1",
                 "--out", str(out), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "relaxed 2 structures with emt: 0 converged to fmax 0.05 eV/A, 1 stopped at the step limit, " \
           "1 failed" in captured.out
    assert f"  failed: {tmp_path / 'in.extxyz'}@1 (Au8Cu24): overlapping atoms" in captured.out
    assert captured.err == (f"crystalgen: error: none of the 2 structures of {tmp_path / 'in.extxyz'} "
                            f"converged (1 failed); see {out}\n")
    assert len(ase.io.read(out, ":")) == 2  # written anyway, for a look


def test_sample_relaxations_resume_and_refuse_another_sample(tmp_path, capsys):
    out = tmp_path / "s.extxyz"
    args = ["sample", MODEL, "--composition", "Cu3Au", "--spacegroups", "221", "--energies", "-0.05",
            "-n", "2", "--steps", "20", "--calculator", "emt", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    store = _rows(Path(f"{out}.progress.db"))
    first = ase.io.read(out, ":")
    assert len(store) == 2
    assert main(args) == 0  # the same samples: both relaxations come from the store
    assert _rows(Path(f"{out}.progress.db")) == store
    again = ase.io.read(out, ":")
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.positions, b.positions)
    capsys.readouterr()
    assert main([*args, "--seed", "1"]) == 2
    assert capsys.readouterr().err == (
        f"crystalgen: error: {out}.progress.db holds a run with other settings (seed differ: seed: 0 there, "
        "1 now); use --overwrite (overwrite=True) to start again, or choose another output\n"
    )


# --------------------------------------------------------------------------- grs
def test_grs_interrupted_keeps_finished_members_and_resumes(tmp_path):
    target = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(2)
    target.symbols[::4] = "Au"
    ase.io.write(tmp_path / "t.extxyz", target)
    out = tmp_path / "g.extxyz"
    args = ("grs", str(tmp_path / "t.extxyz"), "--n-structures", "6", "--n-atoms", "8", "--relax-steps", "40",
            "--nmax", "2", "1", "--lmax", "0", "1", "--out", str(out), "--no-progress")
    proc = _start(*args)
    start = time.monotonic()
    while not out.exists():  # written by rename, so a reader sees whole files only
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < DEADLINE
        time.sleep(0.02)
    rc, _, err = _stop(proc, signal.SIGINT)
    assert rc == 130 and err.endswith("crystalgen: interrupted\n"), err
    kept = ase.io.read(out, ":")
    assert 1 <= len(kept) < 6
    done = subprocess.run([sys.executable, "-m", "ase_crystalgen", *args], capture_output=True, text=True,
                          env=ENV, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(kept)} of 6 structures already in {out}" in done.stdout
    final = ase.io.read(out, ":")
    assert len(final) == 6
    for a, b in zip(kept, final):
        np.testing.assert_array_equal(a.positions, b.positions)  # kept members were not made again


def test_grs_refuses_to_resume_with_other_settings(tmp_path, capsys):
    target = bulk("Cu", "fcc", a=3.75, cubic=True)
    target.symbols[0] = "Au"
    ase.io.write(tmp_path / "t.extxyz", target)
    out = tmp_path / "g.extxyz"
    args = ["grs", str(tmp_path / "t.extxyz"), "--n-atoms", "4", "--relax-steps", "3", "--nmax", "2", "1",
            "--lmax", "0", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "structure 0: score" in err and "after 3 relaxation steps, stopped at the step limit" in err
    assert main([*args[:-3], "--n-atoms", "8", "--seed", "2", *args[-3:]]) == 2
    assert capsys.readouterr().err == (
        f"crystalgen: error: {out} holds a GRS run with other settings (n_atoms, seed differ: n_atoms: 4 "
        "there, 8 now; seed: 0 there, 2 now); use --overwrite to start again, or choose another output\n"
    )
    assert len(ase.io.read(out, ":")) == 1  # untouched
    assert main([*args, "--n-structures", "2"]) == 0  # the same settings: the set extends
    assert "resuming: 1 of 2 structures" in capsys.readouterr().out
    assert len(ase.io.read(out, ":")) == 2


# --------------------------------------------------------------------------- one-line errors
@pytest.mark.parametrize("suffix, message", [
    (".xyzz", "ASE knows no format 'xyzz' (from the suffix); use .extxyz, .traj or .db"),
    ("", "ASE cannot tell the format from the name; use .extxyz, .traj or .db"),
])
def test_outputs_are_checked_before_any_work(tmp_path, capsys, suffix, message):
    target = bulk("Cu", "fcc", a=3.6)
    ase.io.write(tmp_path / "t.extxyz", target)
    out = tmp_path / f"out{suffix}"
    for argv in (["grs", str(tmp_path / "t.extxyz"), "--out", str(out)],
                 ["sample", MODEL, "--composition", "Cu3Au", "--spacegroups", "221", "--energies", "0",
                  "--out", str(out)],
                 ["relax", str(tmp_path / "t.extxyz"), "--calculator", "emt", "--out", str(out)]):
        assert main(argv) == 2
        assert capsys.readouterr().err == f"crystalgen: error: output file {out}: {message}\n"
    assert main(["relax", str(tmp_path / "t.extxyz"), "--out", str(tmp_path / "POSCAR")]) == 2
    assert "the vasp format holds one structure" in capsys.readouterr().err


def test_corrupt_model_missing_weights_and_devices_are_one_line(tmp_path, capsys):
    import shutil

    from ase_crystalgen.inference.pretrained import MODELS_DIR

    model = tmp_path / "model"
    shutil.copytree(MODELS_DIR / MODEL, model)
    (model / "weights.pt").write_bytes(b"not a torch file")
    sample = ["sample", str(model), "--composition", "Cu3Au", "--spacegroups", "221", "--energies", "0",
              "--out", str(tmp_path / "s.extxyz"), "--no-progress"]
    assert main(sample) == 2
    err = capsys.readouterr().err
    assert err.startswith("crystalgen: error: ") and str(model) in err and err.count("\n") == 1

    import torch

    if not torch.cuda.is_available():
        sample[1] = MODEL
        assert main([*sample, "--device", "cuda"]) == 2
        assert capsys.readouterr().err.startswith("crystalgen: error: device 'cuda': ")
    assert main([*sample, "--device", "gpu0"]) == 2
    assert capsys.readouterr().err.startswith("crystalgen: error: device 'gpu0' is not a torch device")
    assert main([*sample, "--calculator", f"m3gnet:{tmp_path}"]) == 2  # no saved matgl model there
    err = capsys.readouterr().err
    assert err.startswith("crystalgen: error: ") and err.count("\n") == 1
    assert f"{tmp_path} is not a saved matgl model" in err or "pip install 'ase_crystalgen[matgl]'" in err


def test_score_names_the_file_and_frame_of_a_bad_frame_and_scores_the_rest(tmp_path, capsys):
    target = bulk("Cu", "fcc", a=3.6, cubic=True)
    good = target.copy()
    bad = target.copy()
    bad.positions[1] = bad.positions[0]  # two atoms on one site
    ase.io.write(tmp_path / "c.extxyz", [good, bad, good])
    ase.io.write(tmp_path / "t.extxyz", target)
    assert main(["score", str(tmp_path / "c.extxyz"), str(tmp_path / "t.extxyz")]) == 2
    captured = capsys.readouterr()
    assert captured.out.count(" score ") == 2
    path = tmp_path / "c.extxyz"
    # the message after the colon is the GRS calculator's own
    assert captured.err.startswith(f"crystalgen: error: {path}@1 (frame 1 of {path}): ")
    assert "overlap" in captured.err and captured.err.count("\n") == 1


def test_a_binary_file_given_as_csv_is_named(tmp_path, capsys):
    bad = tmp_path / "data.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert main(["dataset", "build", str(bad), "--out", str(tmp_path / "d"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"crystalgen: error: {bad}: not a UTF-8 text CSV file")


def test_a_corrupt_frame_is_named_with_its_index(tmp_path, capsys):
    path = tmp_path / "in.extxyz"
    ase.io.write(path, [bulk("Cu"), bulk("Cu")])
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:3] + ["5", "garbage"]) + "\n")
    assert main(["relax", str(path), "--calculator", "emt", "--out", str(tmp_path / "r.extxyz")]) == 2
    assert capsys.readouterr().err.startswith(f"crystalgen: error: could not read frame 1 of structures "
                                              f"file {path}: ")


def test_a_real_bug_keeps_its_traceback(tmp_path, monkeypatch):
    import ase_crystalgen.cli as cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_cmd_models", broken)
    with pytest.raises(KeyError):
        cli.main(["models"])


# --------------------------------------------------------------------------- help and names
def _commands():
    import argparse

    from ase_crystalgen.cli import build_parser

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from walk(sub, f"{name} {sub_name}".strip())
        yield name, parser

    return list(walk(build_parser(), ""))


def test_every_option_has_help_and_says_its_default():
    import argparse

    from ase_crystalgen.cli import _HelpFormatter

    formatter = _HelpFormatter("crystalgen")
    for name, parser in _commands():
        assert parser.description or not name, f"crystalgen {name} has no description"
        for action in parser._actions:
            skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
            if isinstance(action, skip):
                continue
            where = f"crystalgen {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help != argparse.SUPPRESS, f"{where} has no help"
            if action.option_strings and not action.required and action.default is not False:
                text = formatter._get_help_string(action)
                assert "default" in text, f"{where}: help does not say the default"


def test_one_naming_scheme_with_the_old_spellings_kept():
    from ase_crystalgen.cli import build_parser

    parser = build_parser()
    old = parser.parse_args(["sample", MODEL, "--composition", "Cu3Au", "--spacegroup", "221",
                             "--energy=-0.1", "--relax", "emt"])
    new = parser.parse_args(["sample", MODEL, "--composition", "Cu3Au", "--spacegroups", "221",
                             "--energies=-0.1", "--calculator", "emt"])
    assert vars(old) == vars(new)
    assert parser.parse_args(["relax", "x.extxyz", "--steps", "7"]).relax_steps == 7
    assert parser.parse_args(["relax", "x.extxyz", "--relax-steps", "7"]).relax_steps == 7
    assert parser.parse_args(["screen", "--model", MODEL, "--composition", "Cu3Au", "--energies", "0",
                              "--force"]).overwrite is True
    for name, parser_ in _commands():
        options = {s for a in parser_._actions for s in a.option_strings}
        if "--no-progress" in options:
            assert "--progress" in options, name
