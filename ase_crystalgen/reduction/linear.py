"""A linear ACE potential fitted by ridge regression: the judge of a reduced data set.

The model is the simplest potential the ACE descriptors define::

    E = sum_i [ e0(s_i) + w_{s_i} . B_i ]  =  sum_s n_s e0_s + w . sum_i B_i ,

with one weight vector per centre species (the descriptor's species-block layout puts
atom ``i``'s invariants in the block of its species, so one vector ``w`` over all
features holds them all) and a one-body energy ``e0`` per species. Forces are
``F_k = -w . sum_i dB_i / dR_k`` and the stress is ``w . dB / d eps / V``.

The weights minimise::

    energy_weight * mean_structures (E/N - E_ref/N)^2
    + force_weight * mean_components (F - F_ref)^2  +  alpha * |w * sigma|^2 ,

where ``sigma`` is the standard deviation of each feature over the training atoms of its
species: the penalty is on standardised weights and ``e0`` is not penalised. Features are
also centred per species before the solve; centring and scaling are an exact
reparametrisation, so with ``alpha = 0`` the least-squares answer is that of the raw
features, and data made by a linear ACE model are fitted exactly.

The solve is one ``numpy.linalg.lstsq`` on the stacked, weighted rows (Tikhonov rows
appended), not the normal equations, so the answer stays exact to ~1e-10 when the
problem is well posed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from scipy.sparse import csr_matrix

__all__ = ["FORMAT_VERSION", "LinearACECalculator", "LinearACEModel", "reference_labels"]

#: version of the ``.npz`` layout written by :meth:`LinearACEModel.save`
FORMAT_VERSION = 1
_KIND = "ase_crystalgen.LinearACEModel"


def reference_labels(atoms: Atoms, energy_key: str = "energy",
                     forces_key: str = "forces") -> tuple[float | None, np.ndarray | None]:
    """Reference energy and forces of ``atoms``, or ``None`` for what is absent.

    Explicit labels win: ``atoms.info[energy_key]`` and ``atoms.arrays[forces_key]``;
    otherwise the results stored in ``atoms.calc`` for these positions (a
    SinglePointCalculator, or any calculator that has already run). A calculator is never
    asked to compute.
    """
    energy = atoms.info.get(energy_key)
    forces = atoms.arrays.get(forces_key)
    calc = atoms.calc
    if calc is not None:
        if energy is None:
            energy = calc.get_property("energy", atoms, allow_calculation=False)
        if forces is None:
            forces = calc.get_property("forces", atoms, allow_calculation=False)
    if energy is not None:
        energy = float(np.asarray(energy).reshape(()))
    if forces is not None:
        forces = np.asarray(forces, dtype=float)
    return energy, forces


class LinearACEModel:
    """Linear ACE model of energy and forces with per-species one-body energies.

    Parameters
    ----------
    descriptor : a species-block descriptor with ``compute``, ``compute_with_gradients``
        and ``forward`` (e.g. :class:`~ase_crystalgen.descriptors.ace.ACEDescriptor`).
    alpha : ridge penalty on the standardised weights (0 for plain least squares), or a
        list of penalties to choose from by cross-validation over whole structures of the
        training set (``cv_folds`` folds; the chosen one is ``alpha_``).
    energy_weight, force_weight : weights of the mean squared per-atom energy error
        ((eV/atom)^2) and of the mean squared force-component error ((eV/A)^2).
        ``force_weight=0`` fits energies only and then needs no reference forces.
    energy_key, forces_key : names of explicit labels in ``atoms.info`` / ``atoms.arrays``
        (see :func:`reference_labels`).

    Attributes
    ----------
    weights : (n_features,) ``w`` in the descriptor's layout (eV per descriptor unit), set by :meth:`fit`.
    e0 : (n_species,) one-body energies in the order of ``descriptor.elements`` (eV).
    fit_info : sizes, rank, penalty (and cross-validation scores) of the last fit; the
        penalty used is also the attribute ``alpha_``.

    Examples
    --------
    >>> model = LinearACEModel(ACEDescriptor(["Cu"], nmax=(6, 2, 2), lmax=(0, 2, 2)))
    >>> model.fit(train).errors(test)["force_rmse"]                    # doctest: +SKIP
    >>> atoms.calc = model.as_calculator()                               # doctest: +SKIP
    """

    def __init__(self, descriptor, alpha: float | Sequence[float] = 1e-8,
                 energy_weight: float = 1.0, force_weight: float = 1.0,
                 energy_key: str = "energy", forces_key: str = "forces", cv_folds: int = 5):
        alphas = np.atleast_1d(np.asarray(alpha, dtype=float))
        if alphas.ndim != 1 or len(alphas) == 0:
            raise ValueError("alpha must be a number or a non-empty list of numbers")
        for name, value in [("alpha", a) for a in alphas] + [
                ("energy_weight", energy_weight), ("force_weight", force_weight)]:
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        if int(cv_folds) < 2:
            raise ValueError("cv_folds must be at least 2")
        if energy_weight == 0 and force_weight == 0:
            raise ValueError("energy_weight and force_weight cannot both be 0")
        self.descriptor = descriptor
        self.alpha = float(alphas[0]) if np.ndim(alpha) == 0 else alphas.tolist()
        self.cv_folds = int(cv_folds)
        self.alpha_: float | None = None
        self.energy_weight = float(energy_weight)
        self.force_weight = float(force_weight)
        self.energy_key, self.forces_key = energy_key, forces_key
        self.weights: np.ndarray | None = None
        self.e0: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.trained_species: np.ndarray | None = None
        self.fit_info: dict = {}

    # ------------------------------------------------------------------ features
    @property
    def elements(self) -> list[str]:
        return list(self.descriptor.elements)

    def _block_species(self) -> np.ndarray:
        """Species index of each feature column."""
        return np.repeat(np.arange(len(self.elements)), self.descriptor.n_per_species)

    def _validate(self, structures, need_forces: bool, what: str):
        """Structures as a list plus their labels; every problem named with its index."""
        if isinstance(structures, Atoms):
            structures = [structures]
        structures = list(structures)
        if not structures:
            raise ValueError(f"no structures to {what}")
        known = set(self.elements)
        energies, forces = [], []
        for k, atoms in enumerate(structures):
            if not isinstance(atoms, Atoms):
                raise TypeError(f"structure {k} is a {type(atoms).__name__}, not ase.Atoms")
            if len(atoms) == 0:
                raise ValueError(f"structure {k} has no atoms")
            missing = sorted(set(atoms.get_chemical_symbols()) - known)
            if missing:
                raise ValueError(f"structure {k} contains element(s) {', '.join(missing)} "
                                 f"that the descriptor lacks (it knows {self.elements})")
            e, f = reference_labels(atoms, self.energy_key, self.forces_key)
            if e is None:
                raise ValueError(
                    f"structure {k} has no reference energy (atoms.info[{self.energy_key!r}]"
                    " or a calculator's stored results)")
            if not np.isfinite(e):
                raise ValueError(f"structure {k} has a non-finite reference energy ({e})")
            if need_forces:
                if f is None:
                    raise ValueError(
                        f"structure {k} has no reference forces (atoms.arrays"
                        f"[{self.forces_key!r}] or a calculator's stored results); "
                        "use force_weight=0 to fit energies only")
                if f.shape != (len(atoms), 3):
                    raise ValueError(f"structure {k} has forces of shape {f.shape}, expected "
                                     f"{(len(atoms), 3)}")
                if not np.all(np.isfinite(f)):
                    raise ValueError(f"structure {k} has non-finite reference forces")
            energies.append(e)
            forces.append(f)
        return structures, np.array(energies), forces

    def _structure_features(self, atoms: Atoms, need_forces: bool):
        """Species counts (ns,), summed descriptors (F,), per-atom rows (N, F) and the
        force features ``-sum_i dB_i/dR_kc`` as (3N, F) rows (or None)."""
        d = self.descriptor
        species = d.species_of(atoms)
        counts = np.bincount(species, minlength=len(self.elements)).astype(float)
        if not need_forces:
            B = d.compute(atoms)
            return counts, B.sum(0), B, None
        B, grad = d.compute_with_gradients(atoms)
        N, P = len(atoms), len(grad.i)
        # sum_i dB_i/dR_k = sum_{pairs with j = k} dB_p - sum_{pairs with i = k} dB_p
        M = csr_matrix((np.r_[np.ones(P), -np.ones(P)],
                        (np.r_[grad.j, grad.i], np.r_[np.arange(P), np.arange(P)])),
                       shape=(N, P))
        G = np.asarray(M @ grad.dB.reshape(P, -1)).reshape(N, -1, 3)
        return counts, B.sum(0), B, -G.transpose(0, 2, 1).reshape(3 * N, -1)

    # ------------------------------------------------------------------ fitting
    def _standardisation(self, B: np.ndarray, species: np.ndarray):
        """Per-species mean and standard deviation of each feature column over the rows
        ``B`` (zero mean and unit scale for species without rows and for constant
        features)."""
        col_species = self._block_species()
        mean, scale = np.zeros(B.shape[1]), np.ones(B.shape[1])
        for s in range(len(self.elements)):
            rows = B[species == s]
            if len(rows):
                cols = col_species == s
                mean[cols] = rows[:, cols].mean(0)
                std = rows[:, cols].std(0)
                # constant features keep unit scale (their weight is then set by the penalty)
                std[std <= 1e-12 * max(float(std.max()), 1e-300)] = 1.0
                scale[cols] = std
        return mean, scale

    def _design_rows(self, feat, mean: np.ndarray, scale: np.ndarray):
        """A structure's rows of the least-squares problem in the standardised coordinates
        ``theta = [e0', w * scale]``: the energy-per-atom row (ns + F,) and the force rows
        (3N, ns + F) (None without force features). ``feat`` is the tuple of
        :meth:`_structure_features`; ``mean``, ``scale`` those of :meth:`_standardisation`."""
        counts, S, B, XF = feat
        ns = len(self.elements)
        xe = np.r_[counts, (S - counts[self._block_species()] * mean) / scale] / len(B)
        xf = None if XF is None else np.hstack([np.zeros((len(XF), ns)), XF / scale])
        return xe, xf

    def design_matrices(self, structures: Iterable[Atoms],
                        reference: Iterable[Atoms] | None = None, progress: bool = False):
        """The rows each structure adds to the fit (labels not needed), for experimental
        design: a list of ``(xe, xf)``, the energy-per-atom row (ns + F,) and the force rows
        (3N, ns + F) in the fit's standardised coordinates ``theta = [e0', w * scale]``.
        Features are standardised on ``reference`` (default: ``structures``), as
        :meth:`fit` does with the same argument."""
        structures = [structures] if isinstance(structures, Atoms) else list(structures)
        if not structures:
            raise ValueError("no structures")
        it = structures
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(structures, desc="descriptor gradients", unit="structure")
        feats = [self._structure_features(a, True) for a in it]
        if reference is None:
            Ball = np.concatenate([f[2] for f in feats])
            sp = np.concatenate([self.descriptor.species_of(a) for a in structures])
        else:
            reference = [reference] if isinstance(reference, Atoms) else list(reference)
            Ball = np.concatenate(self.descriptor.compute_many(reference))
            sp = np.concatenate([self.descriptor.species_of(a) for a in reference])
        mean, scale = self._standardisation(Ball, sp)
        return [self._design_rows(f, mean, scale) for f in feats]

    def fit(self, structures: Iterable[Atoms], reference: Iterable[Atoms] | None = None
            ) -> LinearACEModel:
        """Fit ``e0`` and ``w`` to the reference energies (and forces) of ``structures``.

        Parameters
        ----------
        structures : labelled structures.
        reference : structures (labels not needed) whose per-species feature means and
            standard deviations standardise the features instead of those of
            ``structures``: the full data set when several reductions of it are judged, so
            that ``alpha`` penalises the same weights for every selection.

        Returns the model, so ``LinearACEModel(d).fit(train).errors(test)`` reads in one line.
        """
        need_forces = self.force_weight > 0
        structures, energies, forces = self._validate(structures, need_forces, "fit")
        ns, F = len(self.elements), self.descriptor.n_features
        feats = [self._structure_features(a, need_forces) for a in structures]

        if reference is None:
            Ball = np.concatenate([B for _, _, B, _ in feats])
            sp_all = np.concatenate([self.descriptor.species_of(a) for a in structures])
        else:
            reference = [reference] if isinstance(reference, Atoms) else list(reference)
            if not reference:
                raise ValueError("the reference set for standardisation is empty")
            Ball = np.concatenate(self.descriptor.compute_many(reference))
            sp_all = np.concatenate([self.descriptor.species_of(a) for a in reference])
        mean, scale = self._standardisation(Ball, sp_all)
        col_species = self._block_species()
        trained = np.zeros(ns, dtype=bool)
        for a in structures:
            trained[self.descriptor.species_of(a)] = True

        # per-structure rows in standardised coordinates: theta = [e0', w * scale]
        n_atoms = np.array([len(a) for a in structures], dtype=float)
        rows = []
        for feat, e, f, n in zip(feats, energies, forces, n_atoms):
            xe, xf = self._design_rows(feat, mean, scale)
            rows.append((xe, e / n, xf, f.reshape(-1) if need_forces else None))

        alphas = np.atleast_1d(np.asarray(self.alpha, dtype=float))
        cv_scores = None
        if len(alphas) > 1:
            cv_scores = self._cross_validate(rows, alphas)
            alpha = float(alphas[int(np.argmin(cv_scores))])
        else:
            alpha = float(alphas[0])
        theta, rank, sv = self._solve(rows, np.arange(len(rows)), alpha)

        w = theta[ns:] / scale
        e0 = theta[:ns].copy()
        for s in range(ns):
            cols = col_species == s
            e0[s] -= w[cols] @ mean[cols]
        w[np.repeat(~trained, self.descriptor.n_per_species)] = 0.0
        e0[~trained] = 0.0
        self.weights, self.e0, self.mean, self.scale = w, e0, mean, scale
        self.trained_species = trained
        self.alpha_ = alpha
        self.fit_info = {
            "n_structures": len(structures), "n_atoms": int(n_atoms.sum()),
            "n_energy_rows": len(rows) if self.energy_weight > 0 else 0,
            "n_force_rows": int(3 * n_atoms.sum()) if need_forces else 0,
            "n_parameters": ns + F, "rank": int(rank), "alpha": alpha,
            "condition": float(sv[0] / sv[-1]) if len(sv) and sv[-1] > 0 else float("inf"),
        }
        if cv_scores is not None:
            self.fit_info["cv_alphas"] = alphas.tolist()
            self.fit_info["cv_scores"] = np.asarray(cv_scores).tolist()
        return self

    def _solve(self, rows, idx, alpha: float):
        """Least squares over the structures ``idx`` of ``rows``, with the Tikhonov rows."""
        ns, F = len(self.elements), self.descriptor.n_features
        blocks, targets = [], []
        if self.energy_weight > 0:
            we = np.sqrt(self.energy_weight / len(idx))
            blocks.append(we * np.array([rows[k][0] for k in idx]))
            targets.append(we * np.array([rows[k][1] for k in idx]))
        if self.force_weight > 0:
            wf = np.sqrt(self.force_weight / sum(len(rows[k][3]) for k in idx))
            blocks += [wf * rows[k][2] for k in idx]
            targets += [wf * rows[k][3] for k in idx]
        if alpha > 0:
            blocks.append(np.hstack([np.zeros((F, ns)), np.sqrt(alpha) * np.eye(F)]))
            targets.append(np.zeros(F))
        theta, _, rank, sv = np.linalg.lstsq(np.vstack(blocks), np.concatenate(targets),
                                             rcond=None)
        return theta, rank, sv

    def _cross_validate(self, rows, alphas) -> np.ndarray:
        """Mean held-out loss (the fit's loss without the penalty) of each ``alpha`` over
        ``min(cv_folds, n_structures)`` folds of whole structures (structure ``k`` in fold
        ``k mod K``)."""
        n = len(rows)
        if n < 2:
            raise ValueError("choosing alpha by cross-validation needs at least 2 structures")
        K = min(self.cv_folds, n)
        folds = np.arange(n) % K
        scores = np.zeros(len(alphas))
        for k in range(K):
            train, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            for a, alpha in enumerate(alphas):
                theta, _, _ = self._solve(rows, train, alpha)
                loss = 0.0
                if self.energy_weight > 0:
                    de = np.array([rows[j][0] @ theta - rows[j][1] for j in held])
                    loss += self.energy_weight * np.mean(de**2)
                if self.force_weight > 0:
                    df = np.concatenate([rows[j][2] @ theta - rows[j][3] for j in held])
                    loss += self.force_weight * np.mean(df**2)
                scores[a] += loss / K
        return scores

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self):
        if self.weights is None:
            raise RuntimeError("the model is not fitted: call fit(structures) or load a file")

    def evaluate(self, atoms: Atoms, stress: bool = True) -> dict:
        """``energy``, ``free_energy``, per-atom ``energies``, ``forces`` and (for a cell of
        full rank and ``stress=True``) Voigt ``stress`` in eV/A^3."""
        self._check_fitted()
        d = self.descriptor
        species = d.species_of(atoms)
        unseen = sorted({self.elements[s] for s in np.unique(species)
                         if not self.trained_species[s]})
        if unseen:
            raise ValueError(f"the model was fitted without {', '.join(unseen)}; it cannot "
                             "predict structures that contain it")
        B, backward = d.forward(atoms)
        energies = self.e0[species] + B @ self.weights
        dR, virial = backward(np.broadcast_to(self.weights, B.shape))
        out = {"energy": float(energies.sum()), "energies": energies, "forces": -dR}
        out["free_energy"] = out["energy"]
        if stress and atoms.pbc.all():
            sigma = 0.5 * (virial + virial.T) / atoms.get_volume()
            out["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return out

    def predict(self, atoms: Atoms) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (N, 3) (eV/A) of ``atoms``."""
        out = self.evaluate(atoms, stress=False)
        return out["energy"], out["forces"]

    def errors(self, structures: Iterable[Atoms], forces: bool = True) -> dict:
        """Errors against the reference labels of ``structures``.

        Returns
        -------
        dict with ``energy_rmse`` and ``energy_mae`` (per atom, eV/atom), ``force_rmse``
        and ``force_mae`` (over force components, eV/A; ``nan`` with ``forces=False``),
        ``force_std`` (standard deviation of the reference force components: the RMSE of
        predicting zero forces), ``n_structures`` and ``n_atoms``.
        """
        self._check_fitted()
        structures, energies, ref_forces = self._validate(structures, forces, "evaluate")
        de, df, fref = [], [], []
        for atoms, e, f in zip(structures, energies, ref_forces):
            e_pred, f_pred = self.predict(atoms)
            de.append((e_pred - e) / len(atoms))
            if forces:
                df.append((f_pred - f).ravel())
                fref.append(f.ravel())
        de = np.array(de)
        out = {"energy_rmse": float(np.sqrt(np.mean(de**2))),
               "energy_mae": float(np.mean(np.abs(de))),
               "force_rmse": float("nan"), "force_mae": float("nan"), "force_std": float("nan"),
               "n_structures": len(structures),
               "n_atoms": int(sum(len(a) for a in structures))}
        if forces:
            df, fref = np.concatenate(df), np.concatenate(fref)
            out.update(force_rmse=float(np.sqrt(np.mean(df**2))),
                       force_mae=float(np.mean(np.abs(df))), force_std=float(fref.std()))
        return out

    def as_calculator(self, **kwargs) -> LinearACECalculator:
        """An ASE calculator over this model."""
        self._check_fitted()
        return LinearACECalculator(self, **kwargs)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to an ``.npz`` file (the descriptor's settings included)."""
        self._check_fitted()
        path = Path(path)
        if not hasattr(self.descriptor, "todict"):
            raise TypeError("the descriptor has no todict(); it cannot be saved with the model")
        meta = {
            "kind": _KIND, "format_version": FORMAT_VERSION,
            "descriptor_class": type(self.descriptor).__name__,
            "descriptor": self.descriptor.todict(),
            "hyperparameters": {"alpha": self.alpha, "energy_weight": self.energy_weight,
                                "force_weight": self.force_weight, "cv_folds": self.cv_folds,
                                "energy_key": self.energy_key, "forces_key": self.forces_key},
            "fit_info": self.fit_info,
        }
        with open(path, "wb") as fh:  # np.savez would append ".npz" to other names
            np.savez(fh, meta=np.array(json.dumps(meta)), weights=self.weights, e0=self.e0,
                     mean=self.mean, scale=self.scale, trained_species=self.trained_species)
        return path

    @classmethod
    def load(cls, path: str | Path, descriptor=None) -> LinearACEModel:
        """Read a model written by :meth:`save`.

        ``descriptor`` overrides the saved one (needed for descriptor classes other than
        ``ACEDescriptor``); it must have the saved elements and number of features.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise
        except Exception as exc:  # zip, pickle and format errors all mean one thing here
            raise ValueError(f"{path} is not a readable LinearACEModel file (corrupt or not "
                             f"an .npz): {exc}") from exc
        need = ("meta", "weights", "e0", "mean", "scale", "trained_species")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise ValueError(f"{path} is not a LinearACEModel file: missing {', '.join(missing)}")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} has corrupt metadata: {exc}") from exc
        if meta.get("kind") != _KIND:
            raise ValueError(f"{path} holds {meta.get('kind')!r}, not a LinearACEModel")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} has format version {meta.get('format_version')}; this "
                             f"version of ase_crystalgen reads version {FORMAT_VERSION}")
        if descriptor is None:
            descriptor = _descriptor_from_dict(meta["descriptor_class"], meta["descriptor"])
        saved = meta["descriptor"]
        if list(descriptor.elements) != list(saved.get("elements", descriptor.elements)):
            raise ValueError(f"descriptor elements {list(descriptor.elements)} differ from the "
                             f"saved {saved['elements']}")
        F, ns = descriptor.n_features, len(descriptor.elements)
        shapes = {"weights": (F,), "mean": (F,), "scale": (F,), "e0": (ns,),
                  "trained_species": (ns,)}
        for k, shape in shapes.items():
            if arrays[k].shape != shape:
                raise ValueError(f"{path}: {k} has shape {arrays[k].shape}, expected {shape} "
                                 "for this descriptor")
        if not all(np.all(np.isfinite(arrays[k])) for k in ("weights", "e0", "mean", "scale")):
            raise ValueError(f"{path} holds non-finite weights")
        model = cls(descriptor, **meta["hyperparameters"])
        model.weights, model.e0 = arrays["weights"].astype(float), arrays["e0"].astype(float)
        model.mean, model.scale = arrays["mean"].astype(float), arrays["scale"].astype(float)
        model.trained_species = arrays["trained_species"].astype(bool)
        model.fit_info = dict(meta.get("fit_info", {}))
        model.alpha_ = model.fit_info.get("alpha")
        return model


def _descriptor_from_dict(name: str, d: dict):
    if name != "ACEDescriptor":
        raise ValueError(f"cannot rebuild a {name} descriptor from the file; pass descriptor=")
    from ase_crystalgen.descriptors.ace import ACEDescriptor

    cutoffs = {tuple(k.split("-")): float(v) for k, v in d["cutoffs"].items()}
    return ACEDescriptor(d["elements"], nmax=d["nmax"], lmax=d["lmax"], cutoffs=cutoffs,
                         lambda_fraction=d["lambda_fraction"])


class LinearACECalculator(Calculator):
    """ASE calculator of a fitted :class:`LinearACEModel`.

    ``E = sum_i [e0(s_i) + w . B_i]``; forces ``F_k = -w . sum_i dB_i/dR_k`` and stress
    ``sigma = w . sum_i dB_i/d eps / V`` come from one vector-Jacobian product of the
    descriptor (:meth:`ACEDescriptor.forward`). Stress needs a cell periodic in all
    directions.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    default_parameters: dict = {}

    def __init__(self, model: LinearACEModel, **kwargs):
        super().__init__(**kwargs)
        model._check_fitted()
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        if "stress" in properties and not self.atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all directions")
        self.results.update(self.model.evaluate(self.atoms, stress="stress" in properties))
