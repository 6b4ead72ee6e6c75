"""Command line: ``crystalgen demo``, GRS (``descriptors``, ``score``, ``grs``), data and models
(``dataset``, ``train``, ``evaluate``) and generation (``models``, ``sample``, ``relax``, ``screen``).

Exit codes: 0 success; 2 usage errors (argparse) and errors in the inputs or the environment
(a missing or unreadable file, an unknown element, an output format ASE cannot write, a corrupt
model, a calculator whose weights are missing, an output that holds a run with other settings),
each reported as one line, ``crystalgen: error: ...``, on stderr; 1 when a command ran but
produced nothing usable (``relax`` or ``screen`` where no structure converged or relaxed);
130 on Ctrl-C. Anything else is a bug and keeps its traceback.

The long commands (``grs``, ``relax``, ``sample --calculator``, ``screen``) keep each finished
structure as it finishes and resume when rerun with the same output; they record their settings
and refuse to resume with others (``--overwrite`` starts again). See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence

from . import __version__

PROG = "crystalgen"


class InputError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


class NothingUsable(Exception):
    """The command ran but produced nothing usable: reported in one line, exit code 1."""


def _read_all(path: str, what: str) -> list:
    """All frames of an ASE-readable file, or an :class:`InputError` naming the file and frame."""
    from .structures import read_frames

    return read_frames(path, what, error=InputError, missing=InputError)


def _check_output_file(path: str, what: str = "output", many: bool = True) -> None:
    """Refuse, before any work, an output that ASE cannot write (and read back) as asked."""
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    hint = "use .extxyz, .traj or .db"
    if os.path.isdir(path):
        raise InputError(f"{what} {path} is a directory; give a file name ({hint})")
    parent = os.path.dirname(os.path.abspath(path))
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"{what} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise InputError(f"{what} {path}: directory {existing} is not writable")
    try:
        fmt = filetype(path, read=False)
    except UnknownFileTypeError:
        raise InputError(f"{what} file {path}: ASE cannot tell the format from the name; {hint}") from None
    io = ioformats.get(fmt)
    if io is None:
        raise InputError(f"{what} file {path}: ASE knows no format {fmt!r} (from the suffix); {hint}")
    if not (io.can_write and io.can_read):
        raise InputError(f"{what} file {path}: ASE cannot write and read back the {fmt} format; {hint}")
    if many and io.single:
        raise InputError(f"{what} file {path}: the {fmt} format holds one structure and this command "
                         f"may write several; {hint}")


def _progress_store(out: str) -> str:
    """The store of finished relaxations kept beside an output file."""
    return f"{out}.progress.db"


def _check_device(device: str | None) -> None:
    if device in (None, "cpu"):
        return
    from .inference.generator import check_device

    check_device(device)


def _descriptor(elements, nmax=None, lmax=None, cutoff=None):
    from .descriptors import PAPER_LMAX, PAPER_NMAX, ACEDescriptor

    nmax = tuple(nmax) if nmax else PAPER_NMAX
    lmax = tuple(lmax) if lmax else PAPER_LMAX
    if len(nmax) != len(lmax):
        raise InputError(f"--nmax {list(nmax)} and --lmax {list(lmax)} must have the same length "
                         "(one entry per rank)")
    return ACEDescriptor(elements, nmax=nmax, lmax=lmax, cutoffs=cutoff)


# --------------------------------------------------------------------------- commands
def _cmd_demo(args) -> int:
    from .demos.grs import run_demo

    if args.part in ("all", "grs"):
        run_demo(args.out, seed=args.seed, quick=args.quick, progress=args.progress)
    if args.part in ("all", "generation"):
        try:
            import chgnet  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise InputError(f"the generation demo needs torch and CHGNet: pip install "
                             f"'ase_crystalgen[ml,chgnet]' ({exc})") from None
        from .demos.generation import run_generation_demo

        run_generation_demo(args.out, seed=args.seed, quick=args.quick, progress=args.progress)
    return 0


def _cmd_descriptors(args) -> int:
    import numpy as np

    from .structures import element_order

    frames = _read_all(args.file, "structure")
    elements = args.elements or element_order(frames)
    desc = _descriptor(elements, args.nmax, args.lmax, args.cutoff)
    arrays = desc.compute_many(frames, progress=args.progress)
    B = np.concatenate(arrays, axis=0)

    ranks = Counter(inv.rank for inv in desc.basis.invariants)
    n_atoms = sum(len(a) for a in frames)
    print(f"{args.file}: {len(frames)} frame(s), {n_atoms} atoms, elements {desc.elements}")
    print(f"ACE nmax={list(desc.nmax)} lmax={list(desc.lmax)}: {desc.n_per_species} descriptors "
          f"per centre element, {desc.n_features} features per atom")
    print("rank  per element")
    for rank in sorted(ranks):
        print(f"{rank:>4}  {ranks[rank]:>11}")
    if args.out:
        np.save(args.out, B)
        print(f"wrote {B.shape} array (atoms of all frames in order x features) to {args.out}")
    return 0


def _cmd_score(args) -> int:
    from .calculators import GRSCalculator
    from .structures import element_order

    candidates = _read_all(args.candidate, "candidate")
    targets = _read_all(args.target, "target")
    elements = element_order(targets + candidates)
    weights = tuple(args.weights)
    if not 1 <= len(weights) <= 4:
        raise InputError(f"--weights takes 1 to 4 moment weights, got {len(weights)}")
    try:
        calc = GRSCalculator(target=targets, descriptor=_descriptor(elements, cutoff=args.cutoff),
                             weights=weights, core_repulsion=False)
    except ValueError as exc:
        raise InputError(f"target file {args.target}: {exc}") from None
    n_target = sum(len(a) for a in targets)
    print(f"target {args.target}: {len(targets)} frame(s), {n_target} atoms; "
          f"weights {list(weights)}")
    bad = 0
    for k, atoms in enumerate(candidates):
        label = args.candidate if len(candidates) == 1 else f"{args.candidate}@{k}"
        try:
            score = calc.score(atoms)
        except ValueError as exc:  # one bad frame: name it and score the others
            bad += 1
            print(f"{PROG}: error: {label} (frame {k} of {args.candidate}): {exc}", file=sys.stderr)
            continue
        print(f"{label}: {atoms.get_chemical_formula()}  score {score:.8g}")
    return 2 if bad else 0


def _write_atomic(path: str, frames) -> None:
    """Write all frames to ``path`` through a temporary file and a rename."""
    from ase.io import write

    from ._atomic import atomic_path

    clean = []
    for a in frames:
        if "grs_history" in a.info:  # copy only then: a copy would drop a relaxation's energies
            a = a.copy()
            a.info.pop("grs_history")
        clean.append(a)
    with atomic_path(path) as tmp:  # keeps the suffix, so ASE picks the format from it
        write(tmp, clean)


def _file_sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _cmd_grs(args) -> int:
    import numpy as np

    from .optimize import generate_representative_structures
    from .structures import element_order

    target = _read_all(args.target, "target")
    _check_output_file(args.out)
    elements = element_order(target)
    descriptor = _descriptor(elements, args.nmax, args.lmax, args.cutoff)
    # everything that decides the members; --n-structures may grow on a rerun (the set extends)
    settings = {
        "target_sha256": _file_sha256(args.target), "n_atoms": args.n_atoms, "candidates": args.candidates,
        "weights": list(args.weights), "w_intra": args.w_intra, "anneal_steps": args.anneal_steps,
        "relax_steps": args.relax_steps, "fmax": args.fmax, "fixed_cell": args.fixed_cell,
        "nmax": list(descriptor.nmax), "lmax": list(descriptor.lmax), "cutoff": args.cutoff,
        "seed": args.seed,
    }
    existing = _resume_record(args, settings, "a GRS run")
    if existing:
        print(f"resuming: {len(existing)} of {args.n_structures} structures already in {args.out}")
    histories: dict[int, list] = {}

    def checkpoint(members):
        member = members[-1]
        history = member.info.get("grs_history", [])
        histories[len(members) - 1] = history
        _write_atomic(args.out, members)
        # the optimiser's observers run once before the first step and once after each step
        steps = max(len(history) - 2, 0)
        limit = ", stopped at the step limit before reaching --fmax" if (
            args.relax_steps > 0 and steps >= args.relax_steps) else ""
        _note(f"structure {member.info['grs_index']}: score {member.info['grs_score']:.4g} after "
              f"{steps} relaxation steps{limit}; written to {args.out}", args.progress)

    members = generate_representative_structures(
        target, args.n_structures, args.n_atoms, descriptor=descriptor,
        candidates=args.candidates, weights=args.weights, w_intra=args.w_intra,
        anneal_steps=args.anneal_steps, relax_steps=args.relax_steps, fmax=args.fmax,
        relax_cell=not args.fixed_cell, rng=np.random.default_rng(args.seed),
        progress=args.progress, existing=existing, on_member=checkpoint)
    if not histories and members:  # everything was already there
        _write_atomic(args.out, members)
    for m in members:
        print(f"structure {m.info['grs_index']}: {len(m)} atoms {m.get_chemical_formula()}, "
              f"score {m.info['grs_score']:.4g}, joint score {m.info['grs_ensemble_score']:.4g}")
    print(f"wrote {args.out} (open with: ase gui {args.out})")
    if histories:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for k, h in sorted(histories.items()):
            ax.semilogy(np.maximum(np.asarray(h, float), 1e-12), label=f"structure {k}")
        ax.set_xlabel("relaxation step")
        ax.set_ylabel("effective energy (score + core)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        png = os.path.splitext(args.out)[0] + "_scores.png"
        fig.savefig(png, dpi=120)
        plt.close(fig)
        print(f"wrote {png}")
    return 0


def _cmd_reduce(args) -> int:
    import numpy as np

    from .reduction import reduce_dataset
    from .relaxation import check_calculator, get_calculator
    from .structures import element_order

    data = _read_all(args.data, "data set")
    if len(data) < 2:
        raise InputError(f"{args.data} holds {len(data)} structure(s); a data set to reduce "
                         "needs at least two")
    _check_output_file(args.out)
    if args.label:
        check_calculator(args.label)
    elements = element_order(data)
    descriptor = _descriptor(elements, args.nmax, args.lmax, args.cutoff)
    if args.strategy != "grs":
        return _reduce_by_selection(args, data, descriptor)
    settings = {
        "data_sha256": _file_sha256(args.data), "n_atoms": args.n_atoms,
        "relax_steps": args.relax_steps, "nmax": list(descriptor.nmax),
        "lmax": list(descriptor.lmax), "cutoff": args.cutoff, "seed": args.seed,
        "label": args.label, "objective": args.objective, "build": args.build,
    }
    # records written before --objective and --build existed used the defaults
    existing = _resume_record(args, settings, "a reduction",
                              {"objective": "moments", "build": "sequential"})
    if existing:
        print(f"resuming: {len(existing)} of {args.n_structures} structures already in {args.out}")
    calc = get_calculator(args.label) if args.label else None

    def checkpoint(members):
        # one new member (sequential build) or a whole composition group (the others)
        for m in members:
            m.info.pop("grs_history", None)  # not written; writing it would copy away the label
            if calc is not None and "label_energy" not in m.info:
                from ase.calculators.singlepoint import SinglePointCalculator

                b = m.copy()
                b.calc = calc
                e, f = b.get_potential_energy(), b.get_forces()
                m.info["label_energy"] = float(e)
                m.calc = SinglePointCalculator(m, energy=e, forces=f)
        m = members[-1]
        # the members so far, and the earlier ones of groups not reached yet
        seen = {x.info.get("grs_group") for x in members}
        done = list(members) + [e for e in existing if e.info.get("grs_group") not in seen]
        _write_atomic(args.out, done)
        _note(f"structure {len(members) - 1}: {m.get_chemical_formula()}, score "
              f"{m.info['grs_score']:.4g}; written to {args.out}", args.progress)

    # the members returned include the earlier ones read back from --out
    members = reduce_dataset(data, args.n_structures, args.n_atoms, descriptor=descriptor,
                             rng=np.random.default_rng(args.seed), relax_steps=args.relax_steps,
                             progress=args.progress, existing=existing, on_member=checkpoint,
                             objective=args.objective, build=args.build)
    _write_atomic(args.out, members)
    print(f"reduced {len(data)} structures ({sum(map(len, data))} atoms) to {len(members)} of "
          f"{args.n_atoms} atoms; wrote {args.out}")
    png = os.path.splitext(args.out)[0] + "_vs_data.png"
    _plot_reduction(data, members, descriptor, png)
    print(f"wrote {png}")
    return 0


def _resume_record(args, settings: dict, what: str, defaults: dict | None = None) -> list:
    """The structures a rerun of ``crystalgen grs`` or ``reduce`` keeps from ``--out`` (none
    with ``--overwrite``), after checking its settings record against ``settings`` (keys the
    record lacks take ``defaults``); then records ``settings``. ``what`` names the run."""
    from ._runrecord import check_settings, read_settings, write_settings

    record = f"{args.out}.settings.json"
    existing = []
    if os.path.exists(args.out) and not args.overwrite:
        found = read_settings(record)
        if found is None:
            raise InputError(f"{args.out} exists but has no settings record ({record}), so a "
                             "resumed run could mix two runs; use --overwrite to start again, "
                             "or another --out")
        check_settings({**(defaults or {}), **found}, settings, args.out,
                       "use --overwrite to start again", what=what)
        existing = _read_all(args.out, "existing output")
    write_settings(record, settings)
    return existing


def _reduce_by_selection(args, data, descriptor) -> int:
    """``crystalgen reduce --strategy d-optimal|random|farthest|kmeans``: whole structures
    of the data set within a budget of atoms (and of sum N^3), labelled one at a time."""
    import numpy as np

    from .reduction import d_optimal, farthest_point, kmeans_snapshots, random_snapshots
    from .relaxation import get_calculator

    total = args.total_atoms if args.total_atoms is not None else args.n_structures * args.n_atoms
    if total <= 0 or (args.max_n3 is not None and args.max_n3 <= 0):
        raise InputError(f"the budget must be positive (total atoms {total}, max N^3 "
                         f"{args.max_n3})")
    if min(len(a) for a in data) > total:
        raise InputError(f"no structure of {args.data} fits in {total} atoms (the smallest "
                         f"has {min(len(a) for a in data)}); raise --total-atoms")
    settings = {
        "data_sha256": _file_sha256(args.data), "strategy": args.strategy, "total_atoms": total,
        "max_n3": args.max_n3, "nmax": list(descriptor.nmax), "lmax": list(descriptor.lmax),
        "cutoff": args.cutoff, "seed": args.seed, "label": args.label,
    }
    existing = _resume_record(args, settings, "a reduction", {"strategy": "grs"})
    rng = np.random.default_rng(args.seed)
    if args.strategy == "d-optimal":
        # the greedy first pick: deterministic, so --seed does not change it
        picks = d_optimal(data, total, descriptor, None, max_n3=args.max_n3,
                          progress=args.progress)
    elif args.strategy == "random":
        picks = random_snapshots(data, total, rng, max_n3=args.max_n3)
    else:
        f = farthest_point if args.strategy == "farthest" else kmeans_snapshots
        picks = f(data, total, descriptor, rng, max_n3=args.max_n3)
    index = {id(a): k for k, a in enumerate(data)}
    done = existing[:len(picks)]
    for a, b in zip(done, picks):
        if len(a) != len(b) or not np.allclose(a.positions, b.positions, atol=1e-6):
            raise InputError(f"{args.out} holds structures this selection did not pick; use "
                             "--overwrite to start again, or another --out")
    if done:
        print(f"resuming: {len(done)} of {len(picks)} structures already in {args.out}")
    calc = get_calculator(args.label) if args.label else None
    out = list(done)
    bar = None
    if args.progress and len(picks) > len(done):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(picks), initial=len(done), desc="labelled", unit="structure")
    from ase.calculators.singlepoint import SinglePointCalculator

    for a in picks[len(done):]:
        b = a.copy()
        b.info["data_index"] = index[id(a)]
        b.info["reduce_strategy"] = args.strategy
        if calc is not None:
            c = b.copy()
            c.calc = calc
            e, f = c.get_potential_energy(), c.get_forces()
            b.calc = SinglePointCalculator(b, energy=e, forces=f)
        elif a.calc is not None:  # keep the data set's own labels
            b.calc = SinglePointCalculator(b, **{k: v for k, v in a.calc.results.items()
                                                 if k in ("energy", "free_energy", "forces",
                                                          "stress")})
        out.append(b)
        _write_atomic(args.out, out)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    n = sum(map(len, out))
    print(f"reduced {len(data)} structures ({sum(map(len, data))} atoms) to {len(out)} of them "
          f"({n} atoms, sum N^3 {sum(len(a) ** 3 for a in out):.3g}) by {args.strategy}; "
          f"wrote {args.out}")
    png = os.path.splitext(args.out)[0] + "_vs_data.png"
    _plot_reduction(data, out, descriptor, png)
    print(f"wrote {png}")
    return 0


def _plot_reduction(data, members, descriptor, png: str) -> None:
    """The set against the data: PCA of atomic environments, shortest distances and (when
    both carry energies) energies per atom."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    D = np.concatenate(descriptor.compute_many(data), 0)
    S = np.concatenate(descriptor.compute_many(members), 0)
    mu, sd = D.mean(0), D.std(0)
    sd[sd == 0] = 1.0
    _, _, vt = np.linalg.svd((D - mu) / sd, full_matrices=False)
    pd, ps = ((D - mu) / sd) @ vt[:2].T, ((S - mu) / sd) @ vt[:2].T

    def shortest(structures):
        return [float((a.get_all_distances(mic=True) + 1e3 * np.eye(len(a))).min())
                for a in structures if len(a) > 1]

    def energies(structures):
        out = []
        for a in structures:
            try:
                out.append(a.get_potential_energy() / len(a))
            except Exception:  # noqa: BLE001 - unlabelled structures have no energy
                return None
        return out

    ed, es = energies(data), energies(members)
    fig, axes = plt.subplots(1, 3 if ed and es else 2, figsize=(13 if ed and es else 9, 4))
    axes[0].scatter(pd[:, 0], pd[:, 1], s=4, alpha=0.3, label="data set")
    axes[0].scatter(ps[:, 0], ps[:, 1], s=10, label="reduced set")
    axes[0].set_xlabel("PC 1 (atomic environments)")
    axes[0].set_ylabel("PC 2")
    axes[0].legend(fontsize=8)
    axes[1].hist(shortest(data), bins=20, alpha=0.6, density=True, label="data set")
    axes[1].hist(shortest(members), bins=20, alpha=0.6, density=True, label="reduced set")
    axes[1].set_xlabel("shortest interatomic distance per structure (A)")
    axes[1].legend(fontsize=8)
    if ed and es:
        axes[2].hist(ed, bins=20, alpha=0.6, density=True, label="data set")
        axes[2].hist(es, bins=20, alpha=0.6, density=True, label="reduced set")
        axes[2].set_xlabel("energy per atom (eV)")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _note(text: str, progress: bool) -> None:
    """A line for the user that does not break a progress bar."""
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _split_fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--split {text!r}: give three fractions like 0.9,0.05,0.05") from None
    parts += [0.0] * (3 - len(parts))
    if len(parts) != 3:
        raise InputError(f"--split {text!r}: give at most three fractions (train,val,test)")
    return tuple(parts)


def _cmd_dataset_build(args) -> int:
    import json

    from .datasets.cache import BuildSettings, build_dataset

    source = args.source
    if source == "synthetic":
        from .datasets.synthetic import default_synthetic_set, write_synthetic_set

        os.makedirs(args.out, exist_ok=True)
        source = os.path.join(args.out, "synthetic.extxyz")
        if not os.path.exists(source):
            import numpy as np

            structures = default_synthetic_set(rng=np.random.default_rng(args.seed),
                                               progress=args.progress)
            write_synthetic_set(structures, source)
            print(f"wrote {len(structures)} synthetic EMT polymorphs to {source}")
    elif not os.path.exists(source):
        raise InputError(f"data source not found: {source}")
    energy_range = tuple(args.energy_range) if args.energy_range else None
    settings = BuildSettings(
        max_atoms=args.max_atoms, min_sites=args.min_sites, max_sites=args.max_sites,
        min_fraction=args.min_fraction, symprec=args.symprec, order=args.order,
        niggli=not args.no_niggli, split=_split_fractions(args.split), seed=args.seed,
        energy_range=energy_range, format=args.format, energy_column=args.energy_column,
        deduplicate=args.deduplicate, split_by=args.split_by,
    )
    data = build_dataset(source, args.out, settings, progress=args.progress, force=args.force)
    c = data.meta["counts"]
    print(f"{c['structures']} structures ({c['polymorph_groups']} polymorph groups) from "
          f"{c['rows_read']} rows: train {c['train']}, val {c['val']}, test {c['test']}")
    if c.get("duplicates"):
        print(f"removed {c['duplicates']} duplicate structures")
    if c["skipped"] or c["removed_by_frequency"]:
        print(f"skipped: {json.dumps(c['skipped'])}; removed as rare: {c['removed_by_frequency']} "
              f"(elements {', '.join(data.meta['rare_elements']) or '-'}; "
              f"space groups {', '.join(map(str, data.meta['rare_spacegroups'])) or '-'})")
    print(f"wrote {os.path.join(args.out, 'data.npz')}, meta.json, summary.md, summary.png")
    return 0


def _cmd_dataset_info(args) -> int:
    from .datasets.cache import CacheError, load_dataset
    from .datasets.summary import dataset_summary, summary_markdown

    try:
        data = load_dataset(args.directory)
    except CacheError as exc:
        raise InputError(str(exc)) from None
    print(summary_markdown(dataset_summary(data), f"Processed data set: {args.directory}"))
    return 0


def _cmd_train(args) -> int:
    try:
        from .training import load_config, train
    except ImportError as exc:
        raise InputError(f"training needs torch: pip install 'ase_crystalgen[ml]' ({exc})") from None
    overrides = list(args.set or [])
    if args.out:
        overrides.append(f"out={args.out}")
    if args.device:
        _check_device(args.device)
        overrides.append(f"device={args.device}")
    if not args.progress:
        overrides.append("progress=false")
    config = load_config(args.config, overrides)
    result = train(config)
    last = next((h for h in reversed(result.history) if "loss" in h), None)
    if result.model_dir is not None:
        loss = f", last loss {last['loss']:.4f}" if last else ""
        print(f"trained {result.step} steps ({result.epoch} epochs){loss}; model in {result.model_dir}, "
              f"loss curve in {result.out / 'loss.png'}")
    return 0


def _cmd_evaluate(args) -> int:
    try:
        from .evaluation.evaluate import evaluate_model
    except ImportError as exc:
        raise InputError(f"evaluation needs torch: pip install 'ase_crystalgen[ml]' ({exc})") from None
    _check_device(args.device)
    summary = evaluate_model(
        args.model, args.data, split=args.split, k=args.k, method=args.method, steps=args.steps,
        batch_size=args.batch_size, seed=args.seed, tolerances=tuple(args.tolerances), limit=args.limit,
        train_data=args.train_data, n_jobs=args.jobs, out=args.out, device=args.device,
        progress=args.progress, symmetrize=args.symmetrize, candidates=args.candidates, ranker=args.ranker,
    )
    if "ranking" in summary:
        print(f"kept the best of {args.candidates} candidates by the energy ranker for each sample")
    if "symmetrize" in summary:
        s = summary["symmetrize"]
        print(f"symmetrised {s['n_symmetrized']} of {s['n_samples']} valid samples to their space group")
    for tol, by_k in summary["metrics"].items():
        for kk, m in by_k.items():
            rms = f", RMSE {m['rmse']:.4f}" if m.get("rmse") is not None else ""
            print(f"{tol} tolerances, {kk}: match {100 * m['match_rate']:.2f} %{rms} ({m['n']} structures)")
    v = summary["validity"]
    print(f"valid samples: {100 * v['rate']:.1f} % of {v['n_samples']}")
    if args.out:
        print(f"wrote {os.path.join(args.out, 'evaluation.json')}, evaluation.md, samples.extxyz")
    return 0


def _cmd_ranker(args) -> int:
    from .datasets.cache import ProcessedDataset
    from .inference.ranking import EnergyRanker

    if os.path.isdir(args.out) or not args.out.endswith(".npz"):
        raise InputError(f"--out {args.out}: give a file name ending in .npz")
    data = ProcessedDataset.load(args.data)
    idx = data.indices(args.split)
    if len(idx) < 10:
        raise InputError(f"split {args.split!r} of {args.data} has {len(idx)} structures; a ranker needs 10")
    calculator = None if args.calculator in (None, "", "none") else args.calculator
    if calculator is not None:
        from .relaxation import check_calculator

        check_calculator(calculator)
    if args.noisy_copies < 0:
        raise InputError(f"--noisy-copies {args.noisy_copies}: give 0 or more")
    ranker = EnergyRanker.fit([data.atoms(i) for i in idx], data.arrays["energy"][idx], calculator=calculator,
                              n_components=args.components, progress=args.progress,
                              noisy_copies=args.noisy_copies, crystal_features=args.crystal_features)
    ranker.card["data"] = os.path.basename(os.path.normpath(args.data))
    ranker.card["split"] = args.split
    ranker.save(args.out)
    mae = ranker.card["holdout_mae"]
    print(f"fitted on {len(idx)} structures; held-out MAE {mae:.4f} eV/atom "
          f"(energy spread {ranker.card['energy_std']:.4f}); wrote {args.out}")
    return 0


def _spacegroups_arg(text: str | None) -> list | None:
    if text is None:
        return None
    return [int(t) if t.strip().isdigit() else t.strip() for t in text.split(",") if t.strip()]


def _cmd_models(args) -> int:
    from .inference import available_models

    models = available_models()
    if not models:
        print("no shipped models found")
        return 0
    for name, m in models.items():
        print(f"{name:<26} {m['task']:<12} {m['objective']:<18} max {m['max_atoms']} atoms, "
              f"{m['n_parameters']:,} parameters")
        if m["description"]:
            print(f"{'':<26} {m['description']}")
        if m.get("ranker"):
            print(f"{'':<26} has an energy ranker (ranker.npz): sample --candidates M picks the best of M")
        for where, by_tol in (m["metrics"] or {}).items():
            parts = [f"{tol} {kk} {100 * v['match_rate']:.1f} %" for tol, by_k in by_tol.items()
                     if isinstance(by_k, dict) for kk, v in by_k.items()]
            print(f"{'':<26} match rate on {where}: {', '.join(parts)}")
    return 0


def _cmd_sample(args) -> int:
    from .inference import CrystalGenerator, parse_energy_grid

    _check_output_file(args.out)
    _check_device(args.device)
    store = None
    if args.calculator:
        from .relaxation import check_calculator

        check_calculator(args.calculator)
        store = _progress_store(args.out)
        if args.overwrite and os.path.exists(store):
            os.unlink(store)
    gen = CrystalGenerator.from_pretrained(args.model, device=args.device)
    structures = gen.sample(
        args.composition, spacegroup=_spacegroups_arg(args.spacegroups),
        formation_energy=None if args.energies is None else parse_energy_grid(args.energies), n=args.n,
        method=args.method, steps=args.steps, seed=args.seed, strict=args.strict, progress=args.progress,
        # another thread count adds in another order (samples move by ~1e-6 A); relaxations resumed
        # from the store must belong to the samples made now
        threads=args.threads if args.threads is not None or not args.calculator else 1,
        candidates=args.candidates,
    )
    valid = [a for a in structures if "invalid" not in a.info]
    if args.calculator:
        from .relaxation import relax

        # how the inputs of the relaxations were made: another sample must not resume them
        record = {"model": args.model, "composition": args.composition, "spacegroups": args.spacegroups,
                  "energies": args.energies, "n": args.n, "method": args.method,
                  "sampling_steps": args.steps, "seed": args.seed, "strict": args.strict,
                  "candidates": args.candidates}
        valid = relax(valid, calculator=args.calculator, fmax=args.fmax, steps=args.relax_steps,
                      progress=args.progress, store=store, record=record,
                      keys=[f"sample {k}" for k, a in enumerate(structures) if "invalid" not in a.info])
    _write_atomic(args.out, valid)
    dropped = len(structures) - len(valid)
    print(f"wrote {len(valid)} structures to {args.out}"
          + (f" ({dropped} invalid samples dropped)" if dropped else ""))
    return 0


def _cmd_relax(args) -> int:
    from .relaxation import RelaxationStore, check_calculator, relax

    structures = _read_all(args.input, "structures")
    _check_output_file(args.out)
    check_calculator(args.calculator)
    store = _progress_store(args.out)
    if args.overwrite and os.path.exists(store):
        os.unlink(store)
    if os.path.exists(store):
        done = len(RelaxationStore(store))
        if done:
            print(f"resuming: {done} of {len(structures)} structures already relaxed in {store}")
    out = relax(structures, calculator=args.calculator, fmax=args.fmax, steps=args.relax_steps,
                cell_filter=not args.fixed_cell, optimizer=args.optimizer, progress=args.progress,
                store=store, keys=[f"frame {k}" for k in range(len(structures))])
    _write_atomic(args.out, out)
    failed = [(k, a) for k, a in enumerate(out) if "relax_error" in a.info]
    converged = sum(bool(a.info.get("converged")) for a in out)
    print(f"relaxed {len(out)} structures with {args.calculator}: {converged} converged to fmax {args.fmax} "
          f"eV/A, {len(out) - converged - len(failed)} stopped at the step limit, {len(failed)} failed; "
          f"wrote {args.out}")
    for k, a in failed:
        print(f"  failed: {args.input}@{k} ({a.get_chemical_formula()}): {a.info['relax_error']}")
    if not converged:
        raise NothingUsable(f"none of the {len(out)} structures of {args.input} converged "
                            f"({len(failed)} failed); see {args.out}")
    return 0


def _cmd_screen(args) -> int:
    from .inference import parse_energy_grid
    from .inference.screen import ScreenSettings, screen

    _check_device(args.device)
    settings = ScreenSettings(
        model=args.model, composition=args.composition, energies=parse_energy_grid(args.energies),
        spacegroups=_spacegroups_arg(args.spacegroups), n=args.n, method=args.method, steps=args.steps,
        seed=args.seed, calculator=args.calculator, fmax=args.fmax, relax_steps=args.relax_steps,
        known_phases=args.known_phases, references=args.references,
    )
    if settings.spacegroups is not None:
        from .representation.spacegroups import validate_spacegroup

        settings.spacegroups = [validate_spacegroup(s) for s in settings.spacegroups]
    rows = screen(settings, args.out, workers=args.workers, scheduler=args.scheduler, device=args.device,
                  force=args.overwrite, progress=args.progress)
    relaxed = [r for r in rows if r["status"] == "relaxed"]
    best = min((r for r in relaxed if r["e_above_hull"] is not None), key=lambda r: r["e_above_hull"],
               default=None)
    n_unique = sum(bool(r["unique"]) for r in relaxed)
    lowest = ""
    if best:
        lowest = f"; lowest energy above hull {best['e_above_hull']:.3f} eV/atom (cid {best['cid']})"
    print(f"{len(rows)} candidates, {len(relaxed)} relaxed, {n_unique} unique{lowest}")
    print(f"wrote {os.path.join(args.out, 'screen.db')}, summary.csv, summary.md, screen.png")
    if not relaxed:
        summary = os.path.join(args.out, "summary.md")
        raise NothingUsable(f"none of the {len(rows)} candidates relaxed; see {summary}")
    return 0


# --------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option's help, except where the default is "not
    given" (None), a switch that is off, or the help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)


def _descriptor_options(p: argparse.ArgumentParser, basis: bool = True) -> None:
    """--nmax and --lmax (with ``basis``) and --cutoff of the ACE descriptor (see
    :func:`_descriptor`)."""
    if basis:
        p.add_argument("--nmax", nargs="+", type=int, metavar="N",
                       help="radial limits per rank (default: 8 2 2 1)")
        p.add_argument("--lmax", nargs="+", type=int, metavar="L",
                       help="angular limits per rank (default: 0 2 2 1)")
    p.add_argument("--cutoff", type=float, help="one cutoff in A for all element pairs "
                   "(default: twice the sum of van der Waals radii)")


def _progress_option(p: argparse.ArgumentParser, default: bool = True) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=default,
                   help=f"progress bars on stderr (default: {'on' if default else 'off'})")


def _relax_options(p: argparse.ArgumentParser, steps_default: int, calculator_default: str | None,
                   steps_aliases: tuple[str, ...] = ()) -> None:
    """The relaxation options, named alike in sample, relax and screen."""
    calcs = "chgnet, m3gnet, m3gnet:PATH (a saved matgl model) or emt (ASE's EMT, metals only)"
    if calculator_default is None:
        p.add_argument("--calculator", "--relax", dest="calculator", metavar="CALC",
                       help=f"relax the samples with {calcs} (default: no relaxation)")
    else:
        p.add_argument("--calculator", default=calculator_default, metavar="CALC", help=f"{calcs}")
    p.add_argument("--fmax", type=float, default=0.05,
                   help="relaxation converges when every force is below this (eV/A)")
    p.add_argument("--relax-steps", *steps_aliases, dest="relax_steps", type=int, default=steps_default,
                   metavar="N", help="most optimiser steps per relaxation")


def _sampling_options(p: argparse.ArgumentParser, screen: bool = False) -> None:
    sg_help = "space-group numbers or symbols, comma-separated (e.g. 221,P4mm)"
    energy_help = "formation energies in eV/atom: a value, a comma list or START:STOP:STEP"
    if screen:
        sg_help += (" (default: every space group of the model's training data that fits the "
                    "composition, often dozens)")
    else:
        sg_help += (" (default: each sample draws one the model saw for cells of this size, by "
                    "training frequency, that the composition can fill)")
        energy_help += (" (default: a low energy, the 0.1 quantile of the training energies of "
                        "this chemistry)")
    p.add_argument("--spacegroups", "--spacegroup", dest="spacegroups", metavar="SG", help=sg_help)
    p.add_argument("--energies", "--energy", dest="energies", metavar="E", required=screen,
                   help=energy_help)
    p.add_argument("-n", type=int, default=1, help="samples per space group and energy")
    if not screen:
        p.add_argument("--threads", type=int,
                       help="torch threads (default: 1 with --calculator, so that a resumed run "
                            "relaxes the same samples; else OMP_NUM_THREADS, else the cores not busy)")
    p.add_argument("--method", help="sampler: ddim or ddpm (diffusion models), flow (Euler), heun or "
                                    "midpoint (flow-matching models) (default: the model's)")
    p.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler's random generator")
    p.add_argument("--device", default="cpu",
                   help="torch device for sampling: cpu, cuda, cuda:1, mps or auto")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_HelpFormatter,
        description="Representative and generated crystal structures for ASE.",
        epilog="Exit codes: 0 done, 1 nothing usable came out, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description, formatter_class=_HelpFormatter)

    p = command("demo", "GRS of a Cu3Au alloy and generated perovskites (files and figures)",
                "Build a GRS of an EMT-relaxed random Cu3Au alloy, then generate perovskites with the "
                "shipped perov5-flow model and relax them with CHGNet.")
    p.add_argument("--out", default="demo-output", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quick", action="store_true", help="few steps, for a smoke test")
    p.add_argument("--part", choices=("all", "grs", "generation"), default="all",
                   help="the GRS of Cu3Au, perovskites generated and relaxed with CHGNet, or both")
    _progress_option(p)
    p.set_defaults(func=_cmd_demo)

    p = command("descriptors", "per-atom ACE descriptors of a structure file",
                "Per-atom ACE descriptors of all frames of FILE.")
    p.add_argument("file", metavar="FILE", help="any structure file ASE reads (all frames)")
    p.add_argument("--elements", nargs="+", metavar="EL",
                   help="elements of the descriptor, in order (default: those in FILE)")
    _descriptor_options(p)
    p.add_argument("--out", metavar="OUT.npy", help="save the (atoms, features) array (default: not saved)")
    _progress_option(p, default=False)
    p.set_defaults(func=_cmd_descriptors)

    p = command("score", "GRS score of a candidate against a target",
                "GRS score (moment distance of ACE descriptors) of each frame of CANDIDATE against "
                "all frames of TARGET pooled. A frame that cannot be scored is named on stderr and "
                "the others are still scored (exit code 2).")
    p.add_argument("candidate", metavar="CANDIDATE", help="structure file (each frame scored)")
    p.add_argument("target", metavar="TARGET", help="structure file (all frames pooled)")
    p.add_argument("--weights", nargs="+", type=float, default=[1.0, 0.01], metavar="W",
                   help="weights of mean, variance, ... (the package default: 1 0.01)")
    _descriptor_options(p, basis=False)
    p.set_defaults(func=_cmd_score)

    p = command("grs", "generalized representative structures of a target",
                "A set of small structures that together reproduce the ACE descriptor distribution "
                "of TARGET (all frames pooled). Each finished structure is written at once; rerunning "
                "with the same --out resumes (a larger --n-structures extends the set). The settings "
                "are recorded in OUT.settings.json and a rerun with others is refused.")
    p.add_argument("target", metavar="TARGET", help="structure file (all frames pooled)")
    p.add_argument("--n-structures", type=int, default=1, help="members of the set")
    p.add_argument("--n-atoms", type=int, default=32, help="atoms per member")
    p.add_argument("--out", default="grs.extxyz", help="output file, any ASE format with several frames "
                   "(extxyz, traj, db)")
    p.add_argument("--candidates", choices=["packing"], default="packing",
                   help="starting cells: random dense packings at the target's density")
    p.add_argument("--weights", nargs="+", type=float, default=[1.0, 0.01], metavar="W",
                   help="weights of mean, variance, ... (the package default: 1 0.01)")
    p.add_argument("--w-intra", type=float, default=1.0, help="weight of the joint term over the set")
    p.add_argument("--anneal-steps", type=int, default=0,
                   help="simulated-annealing steps per member before relaxing")
    p.add_argument("--relax-steps", type=int, default=300,
                   help="most relaxation steps per member (BFGSLineSearch)")
    p.add_argument("--fmax", type=float, default=1e-3, help="relaxation force limit (score units/A)")
    p.add_argument("--fixed-cell", action="store_true", help="relax positions only")
    _descriptor_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--overwrite", action="store_true", help="start again; do not resume from --out")
    _progress_option(p)
    p.set_defaults(func=_cmd_grs)

    p = command("reduce", "reduce a training set to a few small representative structures",
                "K GRS of N atoms that stand for the structures of DATA (a training set): the "
                "data set is split by composition and each group reduced with the joint GRS term "
                "(ase_crystalgen.reduction.reduce_dataset). Each finished structure is written at "
                "once (with --label, with reference energy and forces); rerunning with the same "
                "--out resumes, and a rerun with other settings is refused. Writes OUT_vs_data.png "
                "(PCA of the environments, shortest distances, energies).")
    p.add_argument("data", metavar="DATA", help="structure file of the data set (all frames)")
    p.add_argument("--n-structures", type=int, default=8, help="structures of the reduced set")
    p.add_argument("--n-atoms", type=int, default=32, help="atoms per structure")
    p.add_argument("--out", default="reduced.extxyz", help="output file (extxyz, traj, db)")
    p.add_argument("--label", metavar="CALC",
                   help="label the structures with this calculator (emt, chgnet, ...; "
                   "default: unlabelled)")
    p.add_argument("--relax-steps", type=int, default=150,
                   help="most relaxation steps per structure")
    _descriptor_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--objective", choices=["moments", "kernel"], default="moments",
                   help="what the members match: the descriptor moments (mean, variance) or the "
                        "whole distribution (maximum mean discrepancy) (default: moments)")
    p.add_argument("--build", choices=["sequential", "joint", "alternating"], default="sequential",
                   help="members one after another, or each composition group at once "
                        "(joint/alternating; these resume by whole groups) (default: sequential)")
    p.add_argument("--strategy", choices=["grs", "d-optimal", "random", "farthest", "kmeans"],
                   default="grs",
                   help="grs: K new structures of N atoms (the default); the others pick whole "
                        "structures of DATA within --total-atoms: d-optimal (the most information "
                        "for a linear ACE fit's force and energy rows, one structure of every "
                        "composition first; measured in docs/reduction.md), random, farthest "
                        "(farthest-point sampling), kmeans")
    p.add_argument("--total-atoms", type=int, default=None,
                   help="budget of the picking strategies (default: N-STRUCTURES x N-ATOMS)")
    p.add_argument("--max-n3", type=float, default=None,
                   help="also cap the sum of N^3 of the picked structures, a DFT cost (default: no cap)")
    p.add_argument("--overwrite", action="store_true", help="start again; do not resume from --out")
    _progress_option(p)
    p.set_defaults(func=_cmd_reduce)

    p = command("dataset", "build and inspect processed data sets for the generative models",
                "Processed data sets for the generative models.")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    dsub.required = True
    b = dsub.add_parser("build", help="read, encode, filter, group and split a data source",
                        formatter_class=_HelpFormatter,
                        description="Encode SOURCE (CDVAE CSV, AFLOW CSV, ASE file or database, or "
                                    "'synthetic' for EMT polymorphs made on the spot) into DIR. "
                                    "Resumes an interrupted build; does nothing when DIR is up to date.")
    b.add_argument("source", metavar="SOURCE", help="data file, or 'synthetic'")
    b.add_argument("--out", required=True, metavar="DIR", help="output directory")
    b.add_argument("--format", default="auto", choices=["auto", "cdvae", "aflow", "ase", "db"],
                   help="source format (default: from extension and CSV header)")
    b.add_argument("--energy-column",
                   help="column / info key of the energy condition in eV/atom (default: the first of "
                        "formation_energy_per_atom, heat_ref, energy_per_atom, formation_energy found)")
    b.add_argument("--max-atoms", type=int, default=60, help="atom rows of the layout")
    b.add_argument("--min-sites", type=int, default=4, help="smallest cell kept")
    b.add_argument("--max-sites", type=int, help="largest cell kept (default: --max-atoms)")
    b.add_argument("--min-fraction", type=float, default=0.01,
                   help="drop elements and space groups in fewer than this fraction of structures "
                        "(default: 0.01, the paper; 0 keeps all)")
    b.add_argument("--symprec", type=float, default=0.1, help="spglib tolerance in A")
    b.add_argument("--order", default="formula", choices=["formula", "z", "input"],
                   help="atom-row order (default: formula order, as the paper)")
    b.add_argument("--no-niggli", action="store_true", help="keep cells as given (no Niggli reduction)")
    b.add_argument("--split", default="0.9,0.05,0.05",
                   help="train,val,test fractions, split by reduced formula")
    b.add_argument("--energy-range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help="keep energies in this open interval (the paper: -5 5; default: all)")
    b.add_argument("--deduplicate", action="store_true",
                   help="drop repeated crystals (StructureMatcher 0.2/0.3/5 among equal formula, energy "
                        "within 0.01 eV/atom and volume within 10 %%)")
    b.add_argument("--split-by", default="formula", choices=["formula", "structure"],
                   help="keep polymorph groups whole (formula) or split single structures (Carbon-24)")
    b.add_argument("--seed", type=int, default=0, help="seed of the split")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    _progress_option(b)
    b.set_defaults(func=_cmd_dataset_build)
    i = dsub.add_parser("info", help="summary of a processed data set", formatter_class=_HelpFormatter,
                        description="Counts, elements, space groups, energies and sizes of a data set "
                                    "made by 'crystalgen dataset build', as markdown.")
    i.add_argument("directory", metavar="DIR", help="directory written by 'crystalgen dataset build'")
    i.set_defaults(func=_cmd_dataset_info)

    p = command("train", "train a generative model from a YAML config",
                "Train (or resume) a generative model. Re-running the same command continues an "
                "interrupted run from its last checkpoint. For several GPUs: torchrun "
                "--nproc_per_node N -m ase_crystalgen train CONFIG.")
    p.add_argument("config", metavar="CONFIG.yaml", help="training configuration (docs/training.md)")
    p.add_argument("--out", help="run directory (default: the config's out)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: the config's, auto)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config option; repeat for several (default: none)")
    _progress_option(p)
    p.set_defaults(func=_cmd_train)

    p = command("evaluate", "match rate and RMSE of a model on a processed data set",
                "Draw K samples per test structure with its conditions and match them with "
                "pymatgen's StructureMatcher.")
    p.add_argument("model", metavar="MODEL", help="model directory (RUN/model) or RUN/checkpoint.pt")
    p.add_argument("--data", required=True, help="processed data set directory")
    p.add_argument("--split", default="test", help="train, val, test or all")
    p.add_argument("-k", type=int, default=1, help="samples per test structure")
    p.add_argument("--method", help="sampler: ddim or ddpm (diffusion models), flow (Euler), heun or "
                                    "midpoint (flow-matching models) (default: the model's)")
    p.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    p.add_argument("--batch-size", type=int, default=256, help="structures sampled together")
    p.add_argument("--tolerances", nargs="+", default=["paper", "field"],
                   help="named StructureMatcher tolerances (paper, field, loose, looser)")
    p.add_argument("--limit", type=int,
                   help="evaluate a random subset of this many structures (default: all)")
    p.add_argument("--train-data", help="training data set: report seen and unseen compositions apart "
                                        "(default: not split)")
    p.add_argument("--jobs", type=int, default=1, help="processes for matching")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of --limit's subset")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps or auto")
    p.add_argument("--out", help="directory for evaluation.json, evaluation.md, samples.extxyz "
                                 "(default: print only)")
    p.add_argument("--symmetrize", action="store_true",
                   help="snap each sample to the space group it was drawn with (spglib, tolerances "
                        "0.001-0.5 A) before matching; generation models only (default: off)")
    p.add_argument("--candidates", type=int, default=1,
                   help="draw this many candidates per sample and keep the one the energy ranker "
                        "predicts closest to the requested energy (default: 1, no ranking)")
    p.add_argument("--ranker", help="energy ranker file for --candidates (default: MODEL/ranker.npz)")
    _progress_option(p)
    p.set_defaults(func=_cmd_evaluate)

    p = command("ranker", "fit the energy ranker that picks among candidate samples",
                "Fit an EnergyRanker on the structures and energies of a processed data set (its "
                "training split by default): per-element reference energies, optionally a "
                "calculator's energy, and kernel ridge regression on an environment fingerprint "
                "(with CHGNet's crystal features when the calculator is chgnet), also fitted on "
                "noisy copies of the structures so that it reads unrelaxed samples. "
                "Put it in a model directory as ranker.npz to use --candidates.")
    p.add_argument("data", metavar="DATA", help="processed data set directory")
    p.add_argument("--out", required=True, help="ranker file to write (.npz), e.g. MODEL/ranker.npz")
    p.add_argument("--split", default="train", help="train, val, test or all (default: train)")
    p.add_argument("--calculator", default="chgnet",
                   help="calculator whose energy per atom the ranker uses: chgnet, emt, m3gnet:PATH, or "
                        "none (default: chgnet)")
    p.add_argument("--components", type=int, default=128,
                   help="principal components of the fingerprint kept (default: 128)")
    p.add_argument("--noisy-copies", type=int, default=2,
                   help="randomly displaced and strained copies of every structure fitted with its energy "
                        "(default: 2; 0 when the energies are those of the exact geometries)")
    p.add_argument("--crystal-features", action=argparse.BooleanOptionalAction, default=None,
                   help="add CHGNet's crystal features to the kernel's inputs "
                        "(default: with --calculator chgnet)")
    _progress_option(p)
    p.set_defaults(func=_cmd_ranker)

    p = command("models", "list the shipped pretrained models",
                "The models that ship with the package: name, task, objective, largest cell, size, "
                "and the match rates measured on their test sets. Give a name to sample, screen or "
                "CrystalGenerator.from_pretrained.")
    p.set_defaults(func=_cmd_models)

    p = command("sample", "generate crystals with a trained model",
                "Sample N structures per space group and energy with a shipped model or a model "
                "directory; optionally relax them (--calculator). Relaxations are kept in "
                "OUT.progress.db as they finish, so an interrupted run resumes when rerun; a rerun "
                "with other settings is refused (--overwrite starts again).")
    p.add_argument("model", metavar="MODEL", help="shipped model name (crystalgen models) or directory")
    p.add_argument("--composition", required=True, help="atoms of one cell, e.g. SrTiO3 or Ta1W1B6")
    _sampling_options(p)
    p.add_argument("--candidates", type=int, default=1,
                   help="draw this many candidates per structure and keep the one whose energy, as the "
                        "model's ranker.npz predicts it, is closest to the requested one (default: 1)")
    p.add_argument("--strict", action="store_true",
                   help="refuse conditions outside the model's training data instead of warning")
    _relax_options(p, steps_default=300, calculator_default=None)
    p.add_argument("--out", default="samples.extxyz", help="output file (extxyz, traj or db)")
    p.add_argument("--overwrite", action="store_true",
                   help="start the relaxations again (forget OUT.progress.db)")
    _progress_option(p)
    p.set_defaults(func=_cmd_sample)

    p = command("relax", "relax structures with CHGNet, M3GNet or EMT",
                "Relax every structure of INPUT (positions and cell) and report energy, convergence "
                "and symmetry. Each finished relaxation is kept in OUT.progress.db at once, so an "
                "interrupted run (Ctrl-C, a killed job) resumes when rerun; a rerun with other "
                "settings or another INPUT is refused (--overwrite starts again). Exit code 1 when "
                "no structure converged.")
    p.add_argument("input", metavar="INPUT", help="any ASE-readable file (all frames)")
    _relax_options(p, steps_default=500, calculator_default="chgnet", steps_aliases=("--steps",))
    p.add_argument("--optimizer", default="FIRE", help="FIRE, BFGS, LBFGS or BFGSLineSearch")
    p.add_argument("--fixed-cell", action="store_true", help="relax positions only")
    p.add_argument("--out", default="relaxed.extxyz", help="output file (extxyz, traj or db)")
    p.add_argument("--overwrite", action="store_true", help="start again (forget OUT.progress.db)")
    _progress_option(p)
    p.set_defaults(func=_cmd_relax)

    p = command("screen", "generate, relax, deduplicate and rank against the convex hull",
                "The paper's inference pipeline over a grid of space groups and formation energies, "
                "writing an ASE database. Each relaxation (candidates and references) is committed "
                "as it finishes: an interrupted screen resumes when rerun with the same --out; a rerun "
                "with other settings is refused (--overwrite starts again). The number of candidates "
                "is (space groups) x (energies) x N, each one relaxation.")
    p.add_argument("--model", required=True, help="shipped model name or model directory")
    p.add_argument("--composition", required=True, help="atoms of one cell, e.g. Ta1W1B6")
    _sampling_options(p, screen=True)
    _relax_options(p, steps_default=300, calculator_default="chgnet")
    p.add_argument("--known-phases", metavar="FILE",
                   help="known compounds, relaxed with --calculator and added to the hull "
                        "(default: the hull holds only the elements)")
    p.add_argument("--references", metavar="FILE",
                   help="reference structures with energies (same calculator), used as given "
                        "(default: elements computed with --calculator)")
    p.add_argument("--workers", type=int, default=1, help="local relaxation processes (Dask when > 1)")
    p.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                       "(default: relax in this process or local workers)")
    p.add_argument("--out", default="screen", help="output directory")
    p.add_argument("--overwrite", "--force", dest="overwrite", action="store_true",
                   help="start over in an existing directory (deletes its results)")
    _progress_option(p)
    p.set_defaults(func=_cmd_screen)
    return parser


#: options whose values may start with a minus sign that argparse would take for an option
_SIGNED_OPTIONS = ("--energy", "--energies")


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--energies -0.1:-0.3:-0.1`` -> ``--energies=-0.1:-0.3:-0.1`` (argparse only knows plain
    negative numbers)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _SIGNED_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _known_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe a problem with the input or the environment, not a bug.

    The package's own types are looked up only in modules already imported (an error of a
    module can only come from it once it is loaded), so that this costs no imports.
    """
    from ._runrecord import RunMismatch

    known: list[type[BaseException]] = [InputError, ValueError, OSError, RunMismatch]
    for module, name in (
        ("ase_crystalgen.models.io", "CheckpointError"),
        ("ase_crystalgen.relaxation.calculators", "CalculatorUnavailable"),
        ("ase_crystalgen.datasets.cache", "CacheError"),
        ("ase_crystalgen.datasets.sources.aflow", "AflowError"),
        ("ase.io.formats", "UnknownFileTypeError"),
        ("sqlite3", "Error"),  # a store that cannot be opened or written (disk full, read-only)
    ):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None:
            known.append(cls)
    return tuple(known)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crystalgen`` command line.

    Parameters
    ----------
    argv : arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 on success, 1 when a command produced nothing usable, 2 for usage errors
        and bad inputs, 130 when interrupted. Set ``CRYSTALGEN_TRACEBACK=1`` to see the
        traceback behind a one-line error.
    """
    parser = build_parser()
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; keep main() returning
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except BrokenPipeError:
        # output piped into e.g. `head`: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except NothingUsable as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except ImportError as exc:
        # a missing optional package: the package's messages name the extra to install
        if "pip install" not in str(exc) or os.environ.get("CRYSTALGEN_TRACEBACK"):
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not isinstance(exc, _known_errors()) or os.environ.get("CRYSTALGEN_TRACEBACK"):
            raise
        # ValueError and the package's own errors carry messages written for users (unknown
        # element, a file and frame that cannot be read, a run with other settings, ...)
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
