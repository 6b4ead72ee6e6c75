"""``CrystalGenerator`` and ``CrystalModifier``: trained models as ``ase.Atoms`` in, ``ase.Atoms`` out.

Both wrap a loaded model (:func:`.pipeline.load_model`) and its card. They check the user's
conditions against what the model supports and what it saw in training (:mod:`.conditions`),
then run the one pipeline (:mod:`.pipeline`: condition tensors, the method's sampler in
batches with one ``torch.Generator`` seeded from ``seed``, decoding) to ``ase.Atoms`` that
carry their conditions, the model and the seed in ``atoms.info``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from .._threads import torch_threads
from ..structures import CONTACT_FRACTION, flag_close_contacts
from .conditions import (
    DEFAULT_ENERGY_QUANTILE,
    ModelDomain,
    energy_list,
    formula_of,
    parse_composition,
    spacegroup_list,
)
from .pretrained import resolve_model


def check_device(device: str | None) -> str:
    """The torch device to use for ``device`` (``None``/``"auto"``: CUDA when available).

    Raises ValueError, naming the device, for one that is not a torch device or that this
    machine or this torch build lacks (instead of torch's assertion deep inside sampling).
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(str(device))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device (cpu, cuda, cuda:1, mps or auto): "
                         f"{exc}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {device!r}: {build} (torch {torch.__version__}); use device 'cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here; use device 'cpu'")
    return str(device)


_device = check_device


def _whole(value: Any, name: str) -> int:
    """``value`` as a whole number of at least 1, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    if not float(value).is_integer() or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


class _Ticking:
    """The network, advancing a progress bar by one on each call (one sampler step)."""

    def __init__(self, model: Any, bar: Any):
        self.model, self.bar = model, bar

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.model(*args, **kwargs)
        self.bar.update(1)
        return out


class _ModelUser:
    """Shared loading, method choice and condition tensors of the generator and modifier."""

    task = "generation"

    def __init__(self, loaded: Any, name: str | None = None, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        if loaded.task != self.task:
            other = "CrystalModifier" if loaded.task == "modification" else "CrystalGenerator"
            raise ValueError(
                f"{name or 'this model'} is a {loaded.task} model ({loaded.method.name}); use {other}"
            )
        self.loaded = loaded
        self.name = name or str(loaded.meta.get("card", {}).get("name", "model"))
        self.domain = ModelDomain(loaded.meta, self.name)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str | None = "cpu"):
        """Load a shipped model by name (see :func:`available_models`) or a model directory.

        ``device`` is ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"`` or ``"auto"``. A training
        run's ``checkpoint.pt`` (or its directory) loads too, with its EMA weights.
        """
        from .pipeline import load_model

        path = resolve_model(name_or_path)
        loaded = load_model(path, _device(device))
        shipped = not Path(str(name_or_path)).expanduser().exists()
        return cls(loaded, str(name_or_path) if shipped else str(path), path=path)

    @property
    def card(self) -> dict[str, Any]:
        """The model card (training data, metrics, hardware)."""
        return self.loaded.meta.get("card", {})

    @property
    def max_atoms(self) -> int:
        return self.loaded.max_atoms

    @property
    def methods(self) -> tuple[str, ...]:
        """Samplers this model's generative method declares (``method=`` of :meth:`sample`)."""
        return tuple(self.loaded.method.samplers)

    def _sampler(self, method: str | None) -> str:
        if method is None:
            return self.loaded.method.default_sampler
        if method not in self.methods:
            raise ValueError(
                f"{self.name} was trained with {self.loaded.method.name}; its samplers are "
                f"{', '.join(self.methods)}, not {method!r}"
            )
        return method

    def _cond(self, rows: list[np.ndarray], spacegroups: list[int], energies: list[float]):
        from .pipeline import condition_tensors

        return condition_tensors(rows, spacegroups, energies, self.max_atoms)

    def _generator(self, seed: int):
        import torch

        generator = torch.Generator(device=self.loaded.device)
        generator.manual_seed(int(seed))
        return generator

    def _info(self, sampler: str, steps: int | None, seed: int) -> dict[str, Any]:
        default_steps = getattr(self.loaded.method, "inference_steps", 1)
        return {
            "model": self.name,
            "objective": self.loaded.method.name,
            "method": sampler,
            "steps": int(default_steps if steps is None else steps),
            "seed": int(seed),
        }


class CrystalGenerator(_ModelUser):
    """Generate crystals of a composition with a space group and a formation energy.

    Examples
    --------
    >>> gen = CrystalGenerator.from_pretrained("perov5-flow")            # doctest: +SKIP
    >>> structures = gen.sample("SrTiO3", spacegroup=221, formation_energy=-0.1, n=4)  # doctest: +SKIP
    """

    task = "generation"

    def sample(
        self,
        composition: Any,
        spacegroup: Any = None,
        formation_energy: Any = None,
        n: int = 1,
        method: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        strict: bool = False,
        progress: bool = False,
        energy_quantile: float = DEFAULT_ENERGY_QUANTILE,
        close_contacts: str = "flag",
        contact_fraction: float = CONTACT_FRACTION,
        threads: int | None = None,
        symmetrize: bool = False,
        candidates: int = 1,
        ranker: Any = None,
    ) -> list[Atoms]:
        """Sample ``n`` structures for every (space group, formation energy) pair.

        Parameters
        ----------
        composition
            The atoms of one cell: a formula (``"SrTiO3"``, ``"Ta1W1B6"``), a dict of element
            counts, a pymatgen ``Composition``, ``Atoms`` or a list of elements.
        spacegroup
            A number or Hermann-Mauguin symbol, or a list of them (``n`` samples each). Default
            (``None``): each sample draws its own from the space groups the model saw in
            training for cells of this many atoms, weighted by how often it saw them, less those
            whose Wyckoff positions the composition cannot fill
            (:meth:`~.ModelDomain.default_spacegroups`).
        formation_energy
            eV/atom, or a list (the paper's energy grid). For models trained on total energies
            per atom (Carbon-24) this is that energy. Default (``None``): a low-energy structure,
            the ``energy_quantile`` of the training energies of this chemical system, else of
            cells of this size, else of all (:meth:`~.ModelDomain.default_energy`).
        n
            Samples per (space group, energy) pair; a whole number of at least 1.
        method, steps
            Sampler and number of steps: ``"ddim"`` (default) or ``"ddpm"`` for diffusion
            models, ``"flow"`` (Euler), ``"heun"`` or ``"midpoint"`` for flow-matching models;
            both default to the model's.
        seed
            Seed of the ``torch.Generator`` and of the space groups drawn; the same call with
            the same seed and batch size gives the same structures.
        strict
            Refuse (ValueError) instead of warning when a condition lies outside what the model
            saw in training (elements, space group, energy range, cell size, Wyckoff
            compatibility).
        energy_quantile
            Quantile of the training energies asked for when ``formation_energy`` is None.
        close_contacts
            ``"flag"`` (default): samples with two atoms closer than ``contact_fraction`` times
            the sum of their covalent radii get ``info["close_contact"] = True``; ``"drop"``:
            such samples are left out of the result (which may then hold fewer than asked).
        threads
            Torch threads while sampling (restored afterwards). Default: ``OMP_NUM_THREADS``
            when set, else the cores not busy with other work (at least 1). The same seed gives
            bit-identical samples only with the same thread count: torch adds in another order
            on another count, which moves coordinates by about 1e-6 Å. Give ``threads`` when
            runs must repeat exactly.
        symmetrize
            Snap each valid sample to the space group it was drawn with
            (:func:`~ase_crystalgen.inference.symmetry.symmetrize`: spglib at tolerances up to
            0.5 Å; a sample whose group is not found stays as it is, ``info["symmetrized"]``
            says which). Measured on Perov-5 it makes matches tighter (RMSE -13 %) without
            raising the match rate (docs/benchmarks/generation.md).
        candidates
            Draw this many candidates for each structure returned and keep the one whose energy,
            as an :class:`~ase_crystalgen.inference.ranking.EnergyRanker` predicts it, is closest
            to the requested one (candidates with close contacts only when all have them). Costs
            ``candidates`` times the sampling plus the ranker (CHGNet energies for the shipped
            rankers). Default 1: no ranking. On Perov-5, 8 candidates raise the k = 1 match rate
            (docs/benchmarks/generation.md).
        ranker
            The :class:`~ase_crystalgen.inference.ranking.EnergyRanker` or its file; default the
            model directory's ``ranker.npz``.

        Returns
        -------
        list of ase.Atoms
            In the order space group x energy x sample. ``info`` holds ``composition``,
            ``spacegroup_condition`` and ``formation_energy_condition`` (with
            ``spacegroup_source`` / ``formation_energy_source`` saying where a default came
            from), ``model``, ``objective``, ``method``, ``steps``, ``seed``, ``sample``,
            ``min_contact_ratio`` (the smallest distance over covalent-radius sum, 1.0 when no
            pair is closer than the sum) and ``close_contact``; a sample the sampler could not
            turn into a cell has NaN positions and ``info["invalid"]``.
        """
        n = _whole(n, "n")
        steps = None if steps is None else _whole(steps, "steps")
        batch_size = _whole(batch_size, "batch_size")
        candidates = _whole(candidates, "candidates")
        chooser = self._ranker(ranker) if candidates > 1 else None
        if close_contacts not in ("flag", "drop"):
            raise ValueError(f"close_contacts must be 'flag' or 'drop', not {close_contacts!r}")
        counts, rows = self._composition(composition, strict)
        formula = formula_of(counts)
        if formation_energy is None:
            energy, energy_source = self.domain.default_energy(counts, energy_quantile)
            energies = [energy]
        else:
            energies, energy_source = energy_list(formation_energy), "given"
            for e in energies:
                self.domain.check_energy(e, strict)
        if spacegroup is None:
            allowed, weights, sg_source = self.domain.default_spacegroups(counts)
            rng = np.random.default_rng(int(seed))
            drawn = [[int(s) for s in rng.choice(allowed, size=n, p=weights)] for _ in energies]
        else:
            spacegroups, sg_source = spacegroup_list(spacegroup), "given"
            for sg in spacegroups:
                self.domain.check_spacegroup(counts, sg, strict)
        jobs = []
        if spacegroup is None:  # n draws per energy
            for e, sgs in zip(energies, drawn):
                jobs += [(rows, self._job_info(formula, sg, e, r, sg_source, energy_source))
                         for r, sg in enumerate(sgs)]
        else:
            jobs = [
                (rows, self._job_info(formula, sg, e, r, sg_source, energy_source))
                for sg, e in itertools.product(spacegroups, energies)
                for r in range(n)
            ]
        if chooser is not None:
            jobs = [job for job in jobs for _ in range(candidates)]
        out = self._run(jobs, method, steps, seed, batch_size, progress, threads)
        if chooser is not None:
            out = self._choose(out, candidates, chooser, contact_fraction, progress)
        if symmetrize:
            from .symmetry import symmetrize as snap

            out = [a if "invalid" in a.info else snap(a, a.info["spacegroup_condition"]) for a in out]
        flag_close_contacts(out, contact_fraction)
        if close_contacts == "drop":
            out = [a for a in out if not a.info["close_contact"]]
        return out

    def _ranker(self, ranker: Any):
        from .ranking import load_ranker

        return load_ranker(ranker, self.path)

    @staticmethod
    def _choose(out: list[Atoms], candidates: int, chooser: Any, fraction: float,
                progress: bool) -> list[Atoms]:
        """Keep, of every run of ``candidates`` samples, the one the ranker picks."""
        wanted = [a.info["formation_energy_condition"] for a in out[::candidates]]
        return chooser.best_of(out, candidates, wanted, fraction, progress=progress)

    @staticmethod
    def _job_info(formula: str, sg: int, e: float, r: int, sg_source: str, e_source: str) -> dict[str, Any]:
        return {
            "composition": formula,
            "spacegroup_condition": int(sg),
            "spacegroup_source": sg_source,
            "formation_energy_condition": float(e),
            "formation_energy_source": e_source,
            "sample": r,
        }

    def sample_batch(
        self,
        conditions: Sequence[tuple[Any, Any, float]],
        method: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        strict: bool = False,
        progress: bool = False,
        threads: int | None = None,
        candidates: int = 1,
        ranker: Any = None,
    ) -> list[Atoms]:
        """One structure per ``(composition, spacegroup, formation_energy)``, batched together.

        Many different compositions in one call (a test set, a screen over formulas) run as
        full batches instead of one small batch per composition. Checks and ``info`` as in
        :meth:`sample` (``sample`` is the index in ``conditions``); ``candidates`` and
        ``ranker`` as there: each structure is the ranker's pick of ``candidates`` draws.
        """
        jobs = []
        for k, (composition, spacegroup, energy) in enumerate(conditions):
            counts, rows = self._composition(composition, strict)
            (sg,) = spacegroup_list(spacegroup)
            (e,) = energy_list(energy)
            self.domain.check_spacegroup(counts, sg, strict)
            self.domain.check_energy(e, strict)
            info = {
                "composition": formula_of(counts),
                "spacegroup_condition": sg,
                "formation_energy_condition": e,
                "sample": k,
            }
            jobs.append((rows, info))
        if not jobs:
            raise ValueError("no conditions given")
        steps = None if steps is None else _whole(steps, "steps")
        candidates = _whole(candidates, "candidates")
        chooser = self._ranker(ranker) if candidates > 1 else None
        if chooser is not None:
            jobs = [job for job in jobs for _ in range(candidates)]
        out = self._run(jobs, method, steps, seed, _whole(batch_size, "batch_size"), progress, threads)
        if chooser is not None:
            out = self._choose(out, candidates, chooser, CONTACT_FRACTION, progress)
        return flag_close_contacts(out)

    def _composition(self, composition: Any, strict: bool) -> tuple[dict[int, int], np.ndarray]:
        from ..representation.tensors import composition_rows

        counts = parse_composition(composition)
        self.domain.check_composition(counts, strict)
        numbers = np.concatenate([np.full(c, z) for z, c in counts.items()])
        order = self.loaded.meta["data_schema"].get("order", "formula")
        return counts, composition_rows(numbers, self.max_atoms, order)

    def _run(self, jobs, method, steps, seed, batch_size, progress, threads=None) -> list[Atoms]:
        """Sample ``jobs`` = [(atom rows, info)] in batches with one seeded generator."""
        with torch_threads(threads if self.loaded.device.type == "cpu" else 1):
            return self._run_batches(jobs, method, steps, seed, batch_size, progress)

    def _run_batches(self, jobs, method, steps, seed, batch_size, progress) -> list[Atoms]:
        from tqdm.auto import tqdm

        from .pipeline import decode, sample_tensors

        sampler = self._sampler(method)
        generator = self._generator(seed)
        base = self._info(sampler, steps, seed)
        out: list[Atoms] = []
        # the bar counts network evaluations (sampler steps) of every batch, so that a batch of
        # hundreds of structures does not sit at 0 % until it is done
        n_batches = -(-len(jobs) // batch_size)
        per_batch = int(base["steps"])
        bar = tqdm(total=n_batches * per_batch, desc=f"sampling {len(jobs)} structures", unit="step",
                   disable=not progress)
        loaded = dataclasses.replace(self.loaded, model=_Ticking(self.loaded.model, bar))
        try:
            for b, start in enumerate(range(0, len(jobs), batch_size)):
                chunk = jobs[start : start + batch_size]
                rows = [r for r, _ in chunk]
                sgs = [info["spacegroup_condition"] for _, info in chunk]
                energies = [info["formation_energy_condition"] for _, info in chunk]
                x = sample_tensors(
                    loaded,
                    self._cond(rows, sgs, energies),
                    sampler=sampler,
                    steps=steps,
                    generator=generator,
                )
                out.extend(decode(x, rows, [{**base, **info} for _, info in chunk]))
                bar.n = (b + 1) * per_batch  # a sampler may call the network more or less often
                bar.refresh()
        finally:
            bar.close()
        return out


class CrystalModifier(_ModelUser):
    """Move a structure toward a more stable polymorph (the paper's modification task).

    The model was trained on pairs (a polymorph, one of the most stable polymorphs of the same
    formula) conditioned on the energy change ``E(target) - E(initial)`` (eV/atom, negative)
    and the target's space group.
    """

    task = "modification"

    def modify(
        self,
        atoms: Atoms | Sequence[Atoms],
        energy_change: Any,
        spacegroup: Any = None,
        method: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        strict: bool = False,
        symprec: float = 0.1,
    ) -> Atoms | list[Atoms]:
        """The structure the model proposes for ``atoms`` after ``energy_change`` (eV/atom).

        Parameters
        ----------
        atoms
            A periodic structure of at most ``max_atoms`` atoms, or a list of them (then a list
            is returned).
        energy_change
            ``E(target) - E(initial)`` in eV/atom (negative: more stable); one value, or one per
            structure.
        spacegroup
            Space group of the target; default the input's own (spglib at ``symprec``).

        Returns
        -------
        ase.Atoms or list of ase.Atoms
            Same atoms (in the model's row order), new positions and cell. ``info`` holds
            ``energy_change_condition``, ``spacegroup_condition``, ``initial_spacegroup``,
            ``initial_formula``, ``model``, ``objective``, ``method``, ``steps`` and ``seed``.
        """
        import torch

        from ..representation.spacegroups import validate_spacegroup
        from ..representation.tensors import atoms_to_tensors
        from .pipeline import decode, sample_tensors

        single = isinstance(atoms, Atoms)
        structures = [atoms] if single else list(atoms)
        if not structures:
            raise ValueError("no structures to modify")
        changes = energy_list(energy_change, "energy_change")
        if len(changes) == 1:
            changes = changes * len(structures)
        if len(changes) != len(structures):
            raise ValueError(f"{len(changes)} energy changes for {len(structures)} structures")
        schema = self.loaded.meta["data_schema"]
        encoded, targets_sg = [], []
        for k, a in enumerate(structures):
            label = f"structure {k} ({a.get_chemical_formula()})"
            if len(a) > self.max_atoms:
                raise ValueError(f"{label} has {len(a)} atoms; {self.name} supports at most {self.max_atoms}")
            counts = parse_composition(a)
            self.domain.check_composition(counts, strict)
            try:
                t = atoms_to_tensors(
                    a,
                    max_atoms=self.max_atoms,
                    formation_energy=0.0,
                    spacegroup=None,
                    symprec=symprec,
                    order=schema.get("order", "formula"),
                    niggli=schema.get("niggli", True),
                )
            except ValueError as exc:
                raise ValueError(f"{label}: {exc}") from None
            sg = t.spacegroup if spacegroup is None else validate_spacegroup(spacegroup)
            self.domain.check_spacegroup(counts, sg, strict)
            self.domain.check_energy(changes[k], strict, change=True)
            encoded.append(t)
            targets_sg.append(sg)
        sampler = self._sampler(method)
        generator = self._generator(seed)
        base = self._info(sampler, steps, seed)
        out: list[Atoms] = []
        for start in range(0, len(encoded), batch_size):
            idx = range(start, min(start + batch_size, len(encoded)))
            rows = [encoded[i].numbers for i in idx]
            cond = self._cond(rows, [targets_sg[i] for i in idx], [changes[i] for i in idx])
            x_init = torch.as_tensor(np.stack([encoded[i].x for i in idx]), dtype=torch.float32)
            x = sample_tensors(
                self.loaded, cond, x_init=x_init, sampler=sampler, steps=steps, generator=generator
            )
            info = [
                {
                    **base,
                    "energy_change_condition": float(changes[i]),
                    "spacegroup_condition": int(targets_sg[i]),
                    "initial_spacegroup": int(encoded[i].spacegroup),
                    "initial_formula": structures[i].get_chemical_formula(),
                }
                for i in idx
            ]
            out.extend(decode(x, rows, info))
        return out[0] if single else out


__all__ = ["CrystalGenerator", "CrystalModifier"]
