"""Reverse GRS: structures pushed away from a random alloy (GRS paper, section IV.4, Fig. 6).

With negative moment weights the GRS score rewards dissimilarity, so minimising it walks a
structure away from the target in descriptor space. The paper sets both weights to -0.01
for a random bcc Fe0.35Cr0.35Si0.15V0.15 alloy and obtains structures with more chemical
order and larger distortions than the target, seen in a PCA of the descriptors (Fig. 6a).

Here the target is a 4x4x5 bcc conventional supercell (160 sites, so the composition is
exact: Fe56 Cr56 Si24 V24), randomly occupied and rattled by 0.05 Å. Each reverse GRS starts
as a 20-site random bcc supercell (Fe7 Cr7 Si3 V3, also exact), rattled the same way. It
is annealed with swaps and single-atom displacements under weights (-0.01, -0.01) and the
core repulsion, then relaxed with FIRE at fixed cell (no atom collapses onto another: the
repulsion keeps the pairs apart). The script reports, before and after, for every
structure: the ordinary (positive-weight, (1, 1)) GRS score against the target, which
must rise; the distance of the structure's mean descriptor from the target's in the PCA
plane of the target's per-atom descriptors and in the full standardised descriptor space;
the Warren-Cowley short-range order ``mean |alpha|`` of the first two bcc shells; and the
root-mean-square displacement from the starting sites.

The descriptor is the paper's four-element basis (truncated at 4-body, nmax (8, 2, 2),
lmax (0, 2, 2)) with a 5.5 Å cutoff for every pair (five bcc shells, inside the paper's
4-7). The package's default cutoffs come from van der Waals radii: 8.4 Å for Si-Si and
9.1-9.8 Å for the other pairs here, 13-16 bcc shells, with about five times as
many neighbours to sum over.

Run ``python examples/grs_reverse.py --out docs/figures`` (about a minute) or with
``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.geometry import find_mic
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE

from ase_crystalgen import ACEDescriptor, GRSCalculator
from ase_crystalgen._threads import single_threaded_blas
from ase_crystalgen.build import parent_lattice, random_lattice_candidate, random_occupation
from ase_crystalgen.optimize import Displace, SimulatedAnnealing, Swap

COMPOSITION = {"Fe": 0.35, "Cr": 0.35, "Si": 0.15, "V": 0.15}
A_BCC = 2.88  # Angstrom
CUTOFF = 5.5  # Angstrom, every pair
SHELL_CUT = 3.5  # between the second (a) and third (a sqrt 2) bcc shells


def warren_cowley(atoms: Atoms, cutoff: float = SHELL_CUT) -> float:
    """Mean ``|alpha_ab|`` over ordered species pairs, ``alpha_ab = 1 - p(b | a) / c_b``
    with ``p(b | a)`` the fraction of ``b`` among the neighbours of ``a`` atoms closer than
    ``cutoff``: about 0 for a random alloy, larger for ordered or segregated ones."""
    i, j = neighbor_list("ij", atoms, cutoff)
    Z = atoms.numbers
    species = np.unique(Z)
    conc = {z: np.mean(Z == z) for z in species}
    alphas = []
    for za in species:
        around = Z[j[Z[i] == za]]
        if len(around) == 0:
            continue
        for zb in species:
            alphas.append(1.0 - np.mean(around == zb) / conc[zb])
    return float(np.mean(np.abs(alphas)))


def rms_displacement(start: Atoms, end: Atoms) -> float:
    """RMS displacement (minimum image, mean shift removed) between two states of one cell."""
    d, _ = find_mic(end.positions - start.positions, start.cell, start.pbc)
    d -= d.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(d**2, axis=1))))


def fold(B: np.ndarray, n_species: int) -> np.ndarray:
    """Per-atom descriptors without the centre-species block layout: ``(N, n_species K)``
    rows, one non-zero block each, summed to ``(N, K)``. Neighbour species stay resolved;
    the centre species, fixed by the composition here, no longer splits the atoms into one
    cluster per element in the PCA."""
    return B.reshape(len(B), n_species, -1).sum(axis=1)


class _PCA:
    """Principal components of the target's standardised per-atom descriptors."""

    def __init__(self, rows: np.ndarray, n_components: int = 2):
        from sklearn.decomposition import PCA

        self.mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        std[std < 1e-12 * max(std.max(), 1e-300)] = 1.0
        self.std = std
        self.pca = PCA(n_components=n_components).fit(self.z(rows))

    def z(self, rows):
        return (rows - self.mean) / self.std

    def __call__(self, rows):
        return self.pca.transform(self.z(rows))

    def distances(self, rows) -> tuple[float, float]:
        """Distance of the mean of ``rows`` from the target's mean: in the PCA plane and
        (root mean square per descriptor) in the full standardised space."""
        m = rows.mean(axis=0, keepdims=True)
        plane = float(np.linalg.norm(self(m)[0] - self(self.mean[None])[0]))
        full = float(np.sqrt(np.mean(self.z(m) ** 2)))
        return plane, full


def main(quick: bool = False, out_dir=None, seed: int = 0) -> dict:
    """Generate reverse GRS of a random bcc Fe-Cr-Si-V alloy and measure how far they move.

    Parameters
    ----------
    quick : two structures, a small basis and few steps (for the tests).
    out_dir : folder for ``grs_reverse.png`` (no figure when ``None``).
    seed : seed of every random number.

    Returns
    -------
    dict
        ``weights``, ``basis``, ``n_target``, ``n_atoms``, and per structure lists
        ``score_before``/``score_after`` (positive-weight score), ``pca_before``/
        ``pca_after`` (distance in the PCA plane), ``full_before``/``full_after``
        (standardised descriptor space), ``sro_before``/``sro_after`` (Warren-Cowley),
        ``rms_displacement`` (Å), ``min_distance`` (Å, after) and its ``closest_pair``,
        ``core_energy`` (eV, after),
        ``target_sro``, ``explained_variance`` of the two components, ``seconds``,
        ``figure``.
    """
    # the linear algebra here is small: BLAS threads only contend for the cores
    with single_threaded_blas():
        return _main(quick, out_dir, seed)


def _main(quick: bool, out_dir, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if quick:
        n_structures, sa_steps, fire_steps, nmax, lmax = 2, 300, 30, (3, 2, 1), (0, 2, 2)
    else:
        n_structures, sa_steps, fire_steps, nmax, lmax = 6, 1500, 300, (8, 2, 2), (0, 2, 2)
    weights = (-0.01, -0.01)
    n_atoms = 20

    target = random_occupation(bulk("Fe", "bcc", a=A_BCC, cubic=True).repeat((4, 4, 5)),
                               COMPOSITION, rng)
    target.rattle(0.05, rng=rng)
    desc = ACEDescriptor(list(COMPOSITION), nmax=nmax, lmax=lmax, cutoffs=CUTOFF)
    # the paper's distance: every feature alike and (almost) the plain |x|, so that the
    # push away from the target does not fade near it as the pseudo-Huber default does
    paper = dict(rank_weights=None, smoothing=1e-4)
    reverse = GRSCalculator(target, descriptor=desc, weights=weights, **paper)
    forward = GRSCalculator(reverse.target, descriptor=desc, weights=(1.0, 1.0),
                            core_repulsion=None, **paper)
    n_species = len(COMPOSITION)
    T_rows = fold(desc.compute(target), n_species)
    pca = _PCA(T_rows)
    parent = parent_lattice("bcc", A_BCC)

    keys = ("score_before", "score_after", "pca_before", "pca_after", "full_before",
            "full_after", "sro_before", "sro_after", "rms_displacement", "min_distance",
            "core_energy")
    out = {k: [] for k in keys}
    out.update(rows_before=[], rows_after=[], structures=[], closest_pair=[])
    for _ in range(n_structures):
        start = random_lattice_candidate(parent, n_atoms, COMPOSITION, rng, rattle=0.05)
        atoms = start.copy()
        atoms.calc = reverse
        sa = SimulatedAnnealing(atoms, moves={Swap(): 0.5, Displace(step=0.1): 0.5},
                                temperature=(0.1, 1e-3), relative=True, n_steps=sa_steps,
                                rng=rng,
                                tolerance=-np.inf)
        sa.run()
        atoms = sa.best_atoms.copy()
        atoms.calc = reverse
        FIRE(atoms, logfile=None, maxstep=0.1).run(fmax=1e-4, steps=fire_steps)
        out["core_energy"].append(float(reverse.get_property("core_energy", atoms)))
        atoms.calc = None
        B0, B1 = desc.compute(start), desc.compute(atoms)
        for tag, B, a in (("before", B0, start), ("after", B1, atoms)):
            plane, full = pca.distances(fold(B, n_species))
            out[f"score_{tag}"].append(float(forward.objective.score(B)))
            out[f"pca_{tag}"].append(plane)
            out[f"full_{tag}"].append(full)
            out[f"sro_{tag}"].append(warren_cowley(a))
            out[f"rows_{tag}"].append(fold(B, n_species))
        out["rms_displacement"].append(rms_displacement(start, atoms))
        dist = atoms.get_all_distances(mic=True) + np.diag(np.full(len(atoms), np.inf))
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        out["min_distance"].append(float(dist[i, j]))
        out["closest_pair"].append("-".join(sorted((atoms[i].symbol, atoms[j].symbol))))
        out["structures"].append(atoms)

    out.update(
        weights=weights, n_target=len(target), n_atoms=n_atoms, target_sro=warren_cowley(target),
        basis={"nmax": nmax, "lmax": lmax, "cutoff": CUTOFF, "n_features": desc.n_features},
        explained_variance=[float(v) for v in pca.pca.explained_variance_ratio_],
        sa_steps=sa_steps, fire_steps=fire_steps, seconds=time.perf_counter() - t0,
        figure=None,
    )
    print(f"target {target.get_chemical_formula()} (random bcc, {len(target)} sites), "
          f"Warren-Cowley mean|alpha| {out['target_sro']:.3f}; reverse GRS of {n_atoms} atoms, "
          f"weights {weights}")
    print(f"{'':3s} {'score(+1,+1)':>19s} {'PCA-plane dist':>17s} {'full-space dist':>17s} "
          f"{'mean|alpha_WC|':>15s} {'rms disp':>9s} {'min d':>6s}")
    for k in range(n_structures):
        print(f"{k:3d} {out['score_before'][k]:8.3f} -> {out['score_after'][k]:6.3f} "
              f"{out['pca_before'][k]:7.2f} -> {out['pca_after'][k]:6.2f} "
              f"{out['full_before'][k]:7.3f} -> {out['full_after'][k]:6.3f} "
              f"{out['sro_before'][k]:6.2f} -> {out['sro_after'][k]:5.2f} "
              f"{out['rms_displacement'][k]:9.2f} {out['min_distance'][k]:6.2f} "
              f"{out['closest_pair'][k]}")
    print(f"largest core-repulsion energy after FIRE: {max(out['core_energy']):.2e} eV; "
          f"basis nmax={nmax} lmax={lmax}, cutoff {CUTOFF} A ({desc.n_features} descriptors); "
          f"{out['seconds']:.0f} s")
    if out_dir is not None:
        out["figure"] = plot(out, pca, T_rows, Path(out_dir))
    return out


def plot(res: dict, pca: _PCA, T_rows: np.ndarray, out_dir: Path) -> Path:
    """Fig. 6a analogue (PCA of per-atom descriptors) plus the scores and the order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    P = pca(T_rows)
    ax.scatter(P[:, 0], P[:, 1], s=10, c="0.6", label=f"target atoms ({len(T_rows)})")
    before = pca(np.concatenate(res["rows_before"]))
    after = pca(np.concatenate(res["rows_after"]))
    ax.scatter(before[:, 0], before[:, 1], s=12, c="C0", alpha=0.6, label="GRS atoms, start")
    ax.scatter(after[:, 0], after[:, 1], s=12, c="C3", alpha=0.6,
               label="GRS atoms, after reverse GRS")
    t = pca(pca.mean[None])[0]
    ax.plot(*t, "k*", ms=16, label="target mean")
    for i, (b, a) in enumerate(zip(res["rows_before"], res["rows_after"])):
        mb, ma = pca(b.mean(0, keepdims=True))[0], pca(a.mean(0, keepdims=True))[0]
        ax.annotate("", xy=ma, xytext=mb, arrowprops={"arrowstyle": "->", "color": "k"})
        ax.plot(*mb, "s", color="C0", mec="k", ms=7, label="structure means" if i == 0 else None)
        ax.plot(*ma, "s", color="C3", mec="k", ms=7)
    ev = res["explained_variance"]
    ax.set(xlabel=f"PC 1 ({ev[0]:.0%})", ylabel=f"PC 2 ({ev[1]:.0%})",
           title="(a) target PCA of per-atom descriptors\n(arrows: structure means)")
    ax.legend(fontsize=7)

    ax = axes[1]
    k = np.arange(len(res["score_before"]))
    ax.bar(k - 0.2, res["score_before"], 0.4, color="C0", label="start (random bcc)")
    ax.bar(k + 0.2, res["score_after"], 0.4, color="C3", label="after reverse GRS")
    ax.set(xlabel="structure", ylabel="GRS score with weights (1, 1)",
           title="(b) dissimilarity from the target")
    ax.set_xticks(k)
    ax.legend(fontsize=8)

    ax = axes[2]
    for i in k:
        ax.annotate("", xy=(res["rms_displacement"][i], res["sro_after"][i]),
                    xytext=(0.0, res["sro_before"][i]),
                    arrowprops={"arrowstyle": "->", "color": "0.5"})
    ax.scatter(np.zeros(len(k)), res["sro_before"], c="C0", label="start")
    ax.scatter(res["rms_displacement"], res["sro_after"], c="C3", label="after")
    ax.axhline(res["target_sro"], color="k", ls=":", label="target (160 sites)")
    ax.set(xlabel="RMS displacement from the starting sites (Å)",
           ylabel=r"Warren-Cowley mean $|\alpha|$ (first two shells)",
           title="(c) chemical order and distortion")
    ax.legend(fontsize=8)
    fig.suptitle(f"Reverse GRS of random bcc Fe$_{{0.35}}$Cr$_{{0.35}}$Si$_{{0.15}}$V$_{{0.15}}$,"
                 f" weights {res['weights']}", fontsize=10)
    fig.tight_layout()
    path = out_dir / "grs_reverse.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two structures, few steps")
    parser.add_argument("--out", default="docs/figures", help="folder for the PNG")
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out)
