"""Choosing among candidate samples by the energy they were asked for.

A conditional generator draws structures for a requested formation energy, but it does not
always honour the request: on Perov-5 most misses of ``perov5-flow`` have the right geometry
and space group with the two cations on each other's sites, and the energy is what tells the
two orders apart (docs/benchmarks/generation.md). :class:`EnergyRanker` predicts the
conditioning energy of a structure; with ``candidates=m`` the generator draws ``m`` samples per
requested structure and returns the one whose predicted energy is closest to the request.
This is best-of-``m`` selection by a learned verifier: it costs ``m`` times the sampling plus
the ranker, and it never sees a target structure.

The ranker, fitted on the generator's training structures and their energies:

1. a linear term: a per-element reference energy (composition fractions) plus, when a
   ``calculator`` is given, a multiple of its energy per atom (a universal potential such as
   CHGNet knows which site a cation prefers; the per-element terms absorb the difference
   between its reference energies and the data set's);
2. kernel ridge regression (Gaussian kernel) of the residual on an environment fingerprint
   (:func:`environment_fingerprint`: element properties times coordination channels), with
   CHGNet's crystal features when the calculator is CHGNet, standardised and reduced to
   principal components, and the calculator's energy.

The structures it is fitted on are relaxed ones; the candidates it ranks are a generator's
unrelaxed samples. So by default it also learns from two noisy copies of every training
structure (atoms displaced by 0.1 A, the cell strained by 1.5 %, both Gaussian) with the
energy of the structure they were made from: it learns that a slightly wrong geometry of a
crystal still means that crystal's energy.

Saved as one ``.npz`` (``ranker.npz`` in a model directory is picked up by
``CrystalGenerator``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

#: file name a model directory's ranker has
RANKER_FILE = "ranker.npz"
_FORMAT = 2
#: formats :meth:`EnergyRanker.load` reads (format 1 has no crystal features)
_READS = (1, 2)
#: Gaussian displacement (Angstrom) and strain of the noisy copies :meth:`EnergyRanker.fit` adds
NOISE = (0.1, 0.015)
_CENTRES = np.array([0.8, 0.95, 1.1, 1.25, 1.4, 1.6])
_WIDTH = 0.1
_XMAX = 1.9
_SHELL = 1.2
_Z_MAX = 103


def environment_fingerprint(atoms: Atoms) -> np.ndarray:
    """A fixed-length description of a structure's chemistry and local environments.

    For every atom, pair distances are measured in units of the sum of the two covalent
    radii (``x = d / (r_i + r_j)``, up to x = 1.9) and counted in six Gaussian channels
    (centres 0.8-1.6, width 0.1); with the first-shell count and mean ``x`` (neighbours within
    1.2 times the nearest distance) and a bond-valence-like sum ``sum exp((r_i + r_j - d) /
    0.37)`` they form the atom's environment vector ``e_i``. The fingerprint averages over
    atoms: the standardised element properties ``p_i`` (22), ``e_i`` times ``p_i`` (outer
    product), the mean and spread of ``e_i``, ``p_i`` times the channel-weighted mean
    properties of its neighbours, ``p_i`` times and minus the first shell's mean properties,
    and the log of the volume over the covalent-sphere volume. Invariant to rotations,
    translations, atom order and the choice of cell (415 numbers).
    """
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    from ..representation.elements import property_table

    z = np.asarray(atoms.numbers)
    if len(z) == 0:
        raise ValueError("environment_fingerprint: the structure has no atoms")
    if np.any(z < 1) or np.any(z > _Z_MAX):
        raise ValueError(f"environment_fingerprint: atomic numbers must be 1-{_Z_MAX}, "
                         f"got {sorted(set(z.tolist()))}")
    if not np.all(np.isfinite(atoms.positions)) or not np.all(np.isfinite(atoms.cell.array)):
        raise ValueError("environment_fingerprint: the structure has NaN or infinite positions or cell")
    table = property_table(True)
    n = len(z)
    r = covalent_radii[z]
    i, j, d = neighbor_list("ijd", atoms, float(_XMAX * 2 * r.max()))
    x = d / (r[i] + r[j])
    keep = x < _XMAX
    i, j, x, d = i[keep], j[keep], x[keep], d[keep]
    w = np.exp(-0.5 * ((x[:, None] - _CENTRES) / _WIDTH) ** 2)
    g = np.zeros((n, len(_CENTRES)))
    np.add.at(g, i, w)
    p = table[z - 1]
    q = np.zeros((n, len(_CENTRES), p.shape[1]))
    np.add.at(q, i, w[:, :, None] * p[j][:, None, :])
    q /= np.maximum(g[:, :, None], 1e-6)
    dmin = np.full(n, np.inf)
    np.minimum.at(dmin, i, d)
    first = d < _SHELL * dmin[i]
    n1 = np.bincount(i[first], minlength=n).astype(float)
    x1 = np.bincount(i[first], weights=x[first], minlength=n) / np.maximum(n1, 1)
    bvs = np.bincount(i, weights=np.exp((1 - x) * (r[i] + r[j]) / 0.37), minlength=n)
    q1 = np.zeros((n, p.shape[1]))
    np.add.at(q1, i[first], p[j[first]])
    q1 /= np.maximum(n1, 1)[:, None]
    e = np.column_stack([g, n1, x1, np.log(bvs + 1e-9)])
    volume = abs(float(np.linalg.det(atoms.cell.array)))
    parts = [
        p.mean(0),
        (e[:, :, None] * p[:, None, :]).mean(0).ravel(),
        e.mean(0),
        e.std(0),
        (p[:, None, :] * q * (g[:, :, None] > 1e-3)).mean(0).ravel(),
        (p * q1).mean(0),
        np.abs(p - q1).mean(0),
        [np.log(max(volume, 1e-12) / np.sum(4.0 / 3.0 * np.pi * r**3))],
    ]
    return np.concatenate([np.ravel(a) for a in parts])


def _rattled(structures: Sequence[Atoms], rng: np.random.Generator) -> list[Atoms]:
    """Copies with Gaussian displacements and a random strain of the cell (:data:`NOISE`)."""
    sigma, strain = NOISE
    out = []
    for atoms in structures:
        a = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell[:], pbc=True)
        a.set_cell(a.cell[:] @ (np.eye(3) + rng.normal(0.0, strain, (3, 3))), scale_atoms=True)
        a.positions += rng.normal(0.0, sigma, a.positions.shape)
        out.append(a)
    return out


def _kernel_features(fingerprints: np.ndarray, crystal_features: np.ndarray | None = None) -> np.ndarray:
    """The kernel's inputs before standardisation: the fingerprints, and CHGNet's crystal
    features counted twice (they carry more than as many fingerprint numbers)."""
    if crystal_features is None:
        return fingerprints
    return np.column_stack([fingerprints, crystal_features, crystal_features])


def _fractions(structures: Sequence[Atoms]) -> np.ndarray:
    out = np.zeros((len(structures), _Z_MAX))
    for k, atoms in enumerate(structures):
        np.add.at(out[k], np.asarray(atoms.numbers) - 1, 1.0 / len(atoms))
    return out


def calculator_energies(
    structures: Sequence[Atoms], calculator: Any, progress: bool = False, batch_size: int = 64,
    crystal_features: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Energy per atom of every structure under ``calculator`` (a name or an ASE calculator).

    Names are those of :func:`ase_crystalgen.relaxation.calculators.get_calculator`
    (``"chgnet"``, ``"emt"``, ...). CHGNet evaluates in batches of ``batch_size`` through its
    own ``predict_structure`` (the same energies as its ASE calculator, several times faster).
    With ``crystal_features`` (CHGNet only) it returns ``(energies, features)``, the features
    being CHGNet's pooled crystal representation (one row per structure), which comes with
    the energy at no extra cost.
    """
    from tqdm.auto import tqdm

    from ..relaxation.calculators import get_calculator

    calc = calculator if hasattr(calculator, "get_potential_energy") else get_calculator(calculator)
    model = getattr(calc, "model", None)
    is_chgnet = type(calc).__name__ == "CHGNetCalculator" and hasattr(model, "predict_structure")
    if crystal_features and not is_chgnet:
        raise ValueError(f"crystal features come from CHGNet; the calculator is {type(calc).__name__}")
    if is_chgnet:
        from pymatgen.io.ase import AseAtomsAdaptor

        out, feats = [], []
        bar = tqdm(total=len(structures), desc="calculator energies", unit="structures", disable=not progress)
        for start in range(0, len(structures), batch_size):
            chunk = [AseAtomsAdaptor.get_structure(Atoms(a.numbers, a.positions, cell=a.cell[:], pbc=True))
                     for a in structures[start : start + batch_size]]
            pred = model.predict_structure(chunk, task="e", batch_size=batch_size,
                                           return_crystal_feas=crystal_features)
            pred = pred if isinstance(pred, list) else [pred]
            out += [float(np.ravel(r["e"])[0]) for r in pred]
            if crystal_features:
                feats += [np.asarray(r["crystal_fea"], dtype=float).ravel() for r in pred]
            bar.update(len(chunk))
        bar.close()
        return (np.array(out), np.array(feats)) if crystal_features else np.array(out)
    out = []
    for atoms in tqdm(structures, desc="calculator energies", unit="structures", disable=not progress):
        a = atoms.copy()
        a.calc = calc
        out.append(a.get_potential_energy() / len(a))
    return np.array(out)


class EnergyRanker:
    """Predicts a structure's conditioning energy (eV/atom); picks the candidate closest to a request.

    Build with :meth:`fit`, store with :meth:`save`, read with :meth:`load`. ``card`` holds what it
    was fitted on and its error on a held-out part of that data.
    """

    def __init__(self, arrays: dict[str, np.ndarray], card: dict[str, Any]):
        self.arrays = arrays
        self.card = card

    @property
    def calculator(self) -> str | None:
        """Name of the calculator whose energy the ranker uses, or None."""
        return self.card.get("calculator")

    @classmethod
    def fit(
        cls,
        structures: Sequence[Atoms],
        energies: Sequence[float],
        calculator: str | None = None,
        n_components: int = 128,
        alpha: float = 0.01,
        holdout: float = 0.1,
        seed: int = 0,
        progress: bool = False,
        calculator_values: Sequence[float] | None = None,
        noisy_copies: int = 2,
        crystal_features: bool | None = None,
    ) -> EnergyRanker:
        """Fit on ``structures`` and their conditioning ``energies`` (eV/atom).

        ``calculator`` (a name such as ``"chgnet"``; None: no calculator term) adds its energy per
        atom to the linear term and the kernel's inputs; ``calculator_values`` gives those
        energies when they are already known (then without noisy copies or crystal features,
        which need the calculator). ``noisy_copies`` copies of every structure, displaced and
        strained at random by :data:`NOISE` (``seed``), are fitted with its energy too (0: none;
        use 0 when the energies belong to the exact geometries given, not to relaxed crystals).
        ``crystal_features`` adds CHGNet's crystal features to the kernel's inputs (None: when
        ``calculator`` is ``"chgnet"``). ``holdout`` of the structures (at random, ``seed``) is
        first left out, with their copies, to measure the error on them reported in
        ``card["holdout_mae"]``; the ranker is then refitted on all of them.
        """
        structures = list(structures)
        y = np.asarray(energies, dtype=float)
        if len(structures) < 10:
            raise ValueError(f"EnergyRanker.fit needs at least 10 structures, got {len(structures)}")
        if y.shape != (len(structures),):
            raise ValueError(f"{len(structures)} structures but energies of shape {y.shape}")
        if not np.all(np.isfinite(y)):
            bad = np.flatnonzero(~np.isfinite(y))[:5].tolist()
            raise ValueError(f"energies contain NaN or infinity (at {bad})")
        noisy_copies = int(noisy_copies)
        if noisy_copies < 0:
            raise ValueError(f"noisy_copies must be 0 or more, got {noisy_copies}")
        if crystal_features is None:
            crystal_features = calculator is not None and str(calculator).lower() == "chgnet"
        if crystal_features and (calculator is None
                                 or isinstance(calculator, str) and calculator.lower() != "chgnet"):
            raise ValueError(f"crystal_features need calculator='chgnet', not {calculator!r}")
        if calculator_values is not None and (crystal_features or noisy_copies):
            raise ValueError("calculator_values are the energies of the structures given; with noisy copies "
                             "or crystal features the calculator is needed: pass noisy_copies=0 and "
                             "crystal_features=False, or leave calculator_values out")
        from tqdm.auto import tqdm

        rng = np.random.default_rng(seed)
        copies = [_rattled(structures, rng) for _ in range(noisy_copies)]
        everything = structures + [a for c in copies for a in c]
        fp = np.array([environment_fingerprint(a) for a in tqdm(
            everything, desc="fingerprints", unit="structures", disable=not progress)])
        if calculator is None:
            calc = None
        elif calculator_values is not None:
            calc = np.asarray(calculator_values, dtype=float)
            if calc.shape != y.shape:
                raise ValueError(f"calculator_values has shape {calc.shape}, energies {y.shape}")
        elif crystal_features:
            calc, features = calculator_energies(everything, calculator, progress=progress,
                                                 crystal_features=True)
            fp = _kernel_features(fp, features)
        else:
            calc = calculator_energies(everything, calculator, progress=progress)
        comp = np.concatenate([_fractions(structures)] * (1 + noisy_copies))
        labels = np.concatenate([y] * (1 + noisy_copies))
        test = np.zeros(len(y), dtype=bool)
        if holdout > 0:
            test[rng.permutation(len(y))[: max(1, int(round(holdout * len(y))))]] = True
        train = ~np.concatenate([test] * (1 + noisy_copies))
        clean_test = np.concatenate([test, np.zeros(len(y) * noisy_copies, dtype=bool)])
        trial = cls._solve(fp[train], comp[train], None if calc is None else calc[train], labels[train],
                           n_components, alpha)
        mae = None
        if test.any():
            pred = trial._predict(fp[clean_test], comp[clean_test],
                                  None if calc is None else calc[clean_test])
            mae = float(np.mean(np.abs(pred - y[test])))
        ranker = cls._solve(fp, comp, calc, labels, n_components, alpha)
        ranker.card.update(
            calculator=None if calculator is None else str(calculator),
            crystal_features=bool(crystal_features),
            noisy_copies=noisy_copies,
            noise=list(NOISE) if noisy_copies else None,
            n_structures=len(y),
            holdout_fraction=float(holdout),
            holdout_mae=mae,
            energy_std=float(np.std(y)),
            elements=sorted({int(z) for a in structures for z in a.numbers}),
        )
        return ranker

    @classmethod
    def _solve(cls, fp, comp, calc, y, n_components, alpha) -> EnergyRanker:
        from sklearn.linear_model import Ridge

        lin_x = comp if calc is None else np.column_stack([comp, calc])
        lin = Ridge(alpha=1e-3, fit_intercept=False).fit(lin_x, y)
        residual = y - lin.predict(lin_x)
        mean, std = fp.mean(0), fp.std(0)
        std = np.where(std > 1e-8, std, 1.0)
        zs = (fp - mean) / std
        k = int(min(n_components, zs.shape[0] - 1, zs.shape[1]))
        _, _, vt = np.linalg.svd(zs - zs.mean(0), full_matrices=False)
        components = vt[:k]
        z_mean = zs.mean(0)
        calc_mean = float(calc.mean()) if calc is not None else 0.0
        calc_std = float(calc.std()) if calc is not None and calc.std() > 0 else 1.0
        arrays = {
            "coef": lin.coef_.astype(np.float64),
            "fp_mean": mean,
            "fp_std": std,
            "z_mean": z_mean,
            "components": components,
            "calc_scale": np.array([calc_mean, calc_std]),
        }
        ranker = cls(arrays, {"format": _FORMAT, "alpha": float(alpha), "n_components": k,
                              "uses_calculator": calc is not None})
        inputs = ranker._kernel_inputs(fp, calc)
        gamma = 0.3 / inputs.shape[1]
        gram = np.exp(-gamma * _sqdist(inputs, inputs))
        dual = np.linalg.solve(gram + alpha * np.eye(len(gram)), residual)
        arrays.update(train_inputs=inputs.astype(np.float32), dual=dual, gamma=np.array(gamma))
        return ranker

    def _kernel_inputs(self, fp: np.ndarray, calc: np.ndarray | None) -> np.ndarray:
        a = self.arrays
        z = ((fp - a["fp_mean"]) / a["fp_std"] - a["z_mean"]) @ a["components"].T
        if calc is None:
            return z
        # the calculator energy counts as three standardised components: it carries more than
        # any single principal component of the fingerprint
        return np.column_stack([z, 3.0 * (calc - a["calc_scale"][0]) / a["calc_scale"][1]])

    def _predict(self, fp, comp, calc) -> np.ndarray:
        a = self.arrays
        lin = comp @ a["coef"][:_Z_MAX] + (0.0 if calc is None else calc * a["coef"][_Z_MAX])
        inputs = self._kernel_inputs(fp, calc)
        kernel = np.exp(-float(a["gamma"]) * _sqdist(inputs, a["train_inputs"].astype(np.float64)))
        return lin + kernel @ a["dual"]

    def predict(self, structures: Sequence[Atoms], progress: bool = False,
                calculator_values: Sequence[float] | None = None) -> np.ndarray:
        """Predicted conditioning energy (eV/atom) of every structure."""
        structures = list(structures)
        if not structures:
            return np.zeros(0)
        known = set(self.card.get("elements", []))
        unseen = sorted({int(z) for a in structures for z in a.numbers} - known) if known else []
        if unseen:
            import warnings

            from ase.data import chemical_symbols

            warnings.warn(
                f"the energy ranker was fitted without {', '.join(chemical_symbols[z] for z in unseen)}: "
                "its energies for structures with them are extrapolations (no reference energy)",
                RuntimeWarning, stacklevel=2,
            )
        fp = np.array([environment_fingerprint(a) for a in structures])
        calc = None
        if self.card.get("crystal_features"):
            if calculator_values is not None:
                raise ValueError("this ranker uses CHGNet's crystal features: leave calculator_values out")
            calc, features = calculator_energies(structures, self.calculator, progress=progress,
                                                 crystal_features=True)
            fp = _kernel_features(fp, features)
        elif self.card.get("uses_calculator"):
            calc = (np.asarray(calculator_values, dtype=float) if calculator_values is not None
                    else calculator_energies(structures, self.calculator, progress=progress))
        return self._predict(fp, _fractions(structures), calc)

    def choose(self, groups: Sequence[Sequence[Atoms]], energies: Sequence[float],
               progress: bool = False) -> list[int]:
        """For each group of candidates, the index of the one to keep for its requested energy.

        Candidates that are invalid (``info["invalid"]``) or have a close contact
        (``info["close_contact"]``) are passed over while the group has others; among the rest
        the one whose predicted energy is closest to the request wins. Each chosen structure
        gets ``info["ranker_energy"]``.
        """
        if len(groups) != len(energies):
            raise ValueError(f"{len(groups)} candidate groups but {len(energies)} energies")
        flat = [(g, r) for g, group in enumerate(groups)
                for r, a in enumerate(group) if "invalid" not in a.info]
        pred = self.predict([groups[g][r] for g, r in flat], progress=progress) if flat else np.zeros(0)
        table: dict[int, list[tuple[int, float]]] = {}
        for (g, r), e in zip(flat, pred):
            table.setdefault(g, []).append((r, float(e)))
        chosen = []
        for g, group in enumerate(groups):
            options = table.get(g, [])
            if not options:
                chosen.append(0)
                continue
            clean = [o for o in options if not group[o[0]].info.get("close_contact", False)] or options
            r, e = min(clean, key=lambda o: abs(o[1] - float(energies[g])))
            group[r].info["ranker_energy"] = e
            chosen.append(r)
        return chosen

    def best_of(self, structures: Sequence[Atoms], candidates: int, energies: Sequence[float],
                fraction: float | None = None, progress: bool = False) -> list[Atoms]:
        """Of every consecutive run of ``candidates`` structures, the one :meth:`choose` keeps.

        ``energies`` holds one requested energy per run. Close contacts are flagged first
        (:func:`~ase_crystalgen.structures.flag_close_contacts` at ``fraction``, default its
        own); each kept structure gets ``info["candidates"]`` and ``info["candidate"]`` (its
        index in the run).
        """
        from ..structures import CONTACT_FRACTION, flag_close_contacts

        structures = list(structures)
        flag_close_contacts(structures, CONTACT_FRACTION if fraction is None else fraction)
        groups = [structures[i : i + candidates] for i in range(0, len(structures), candidates)]
        chosen = []
        for group, r in zip(groups, self.choose(groups, energies, progress=progress)):
            group[r].info.update(candidates=int(candidates), candidate=int(r))
            chosen.append(group[r])
        return chosen

    def save(self, path: str | Path) -> Path:
        """Write the ranker to ``path`` (``.npz``) atomically."""
        from .._atomic import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, card=np.array(json.dumps(self.card)), **self.arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EnergyRanker:
        """Read a ranker written by :meth:`save`; ValueError naming the file if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no energy ranker at {path}")
        need = {"card", "coef", "fp_mean", "fp_std", "z_mean", "components", "calc_scale",
                "train_inputs", "dual", "gamma"}
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            card = json.loads(str(arrays.pop("card")))
        except Exception as exc:  # zip, npy and JSON errors all mean the same to a user
            raise ValueError(
                f"{path} is not a readable energy ranker ({type(exc).__name__}: {exc})"
            ) from None
        missing = need - set(arrays) - {"card"}
        if missing:
            raise ValueError(f"{path} is not an energy ranker: missing {', '.join(sorted(missing))}")
        if card.get("format") not in _READS:
            raise ValueError(
                f"{path}: energy ranker format {card.get('format')!r}, this version reads "
                f"{', '.join(map(str, _READS))}"
            )
        if arrays["dual"].shape[0] != arrays["train_inputs"].shape[0] or not all(
            np.all(np.isfinite(v)) for v in arrays.values()
        ):
            raise ValueError(f"{path}: energy ranker arrays are inconsistent or not finite")
        return cls(arrays, card)


def load_ranker(ranker: Any, model_path: str | Path | None = None) -> EnergyRanker:
    """``ranker`` as an :class:`EnergyRanker`: itself, a file, or (None) the model
    directory's ``ranker.npz``."""
    if isinstance(ranker, EnergyRanker):
        return ranker
    if ranker is not None:
        return EnergyRanker.load(ranker)
    if model_path is None:
        raise ValueError("candidates > 1 needs an energy ranker: pass ranker=")
    directory = Path(model_path)
    directory = directory if directory.is_dir() else directory.parent
    path = directory / RANKER_FILE
    if not path.is_file():
        raise ValueError(
            f"candidates > 1 needs an energy ranker, and {directory} has no {RANKER_FILE}; fit one with "
            f"'crystalgen ranker DATA --out {path}' or pass ranker="
        )
    expected = _recorded_sha256(directory)
    if expected is not None:
        import hashlib

        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise ValueError(
                f"{path} does not match the SHA-256 recorded in {directory / 'model.json'} (ranker_sha256): "
                "the file is corrupt or belongs to another model"
            )
    return EnergyRanker.load(path)


def _recorded_sha256(directory: Path) -> str | None:
    """The ``ranker_sha256`` a model directory's ``model.json`` records (shipped models do)."""
    try:
        return json.loads((directory / "model.json").read_text()).get("ranker_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


__all__ = ["RANKER_FILE", "EnergyRanker", "calculator_energies", "environment_fingerprint", "load_ranker"]
