"""Reducing a training set to a few small representative structures (GRS paper, section
IV.3, Fig. 5).

The paper reduces the 373-structure Ta training set of a SNAP potential to sets of ``k``
GRS of a few atoms each and measures how much of the data set's descriptor space a set
spans: the volume of the convex hull of the GRS descriptors over that of the data set, in
the data set's principal components (eq. 18). Larger sets and larger structures span more,
and sets of larger structures approach 100 % sooner.

Here the data set is made with ASE's EMT potential: Langevin snapshots of fcc Cu in 32- and
108-atom cells at 300-1500 K and -3 % to +3 % linear strain, 200 structures. In these short
runs every frame stays fcc (thermal and strain disorder only). For each GRS size (4, 8 and
16 atoms) one call to ``generate_representative_structures`` builds ``k_max`` members in
turn, each minimising its own score plus the joint score with the members before it (eq.
15); the first ``k`` members are the set of ``k``. For every ``k`` the script reports the
hull-volume ratio (``pca_hull_volume_ratio`` in 3 principal components, see
``N_COMPONENTS``), the same ratio for as many environments drawn at random from the data
set, the joint score of the set, and, as a guard against a false success, the volume that
the GRS environments add outside the data set's hull (the ratio of the hull of data set
and GRS together, minus 1).

Run ``python examples/grs_dataset_reduction.py --out docs/figures`` (a few minutes) or with
``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from ase_crystalgen import ACEDescriptor
from ase_crystalgen._threads import single_threaded_blas
from ase_crystalgen.grs.analysis import pca_hull_volume_ratio
from ase_crystalgen.optimize import generate_representative_structures

A_CU = 3.6  # Angstrom, close to EMT's lattice constant of Cu
#: principal components of the hull volumes. The paper keeps 99 % of the variance; here that
#: takes 11 components, and the hull of a few hundred points in more than 3-4 dimensions has
#: almost no volume, so every set would read 0 %. The 6-component (capped 99 %) ratio is
#: reported as well.
N_COMPONENTS = 3


def make_dataset(rng: np.random.Generator, temperatures, strains, repeats,
                 n_snapshots: int, equilibration: int = 25, interval: int = 10,
                 timestep: float = 4.0) -> list[Atoms]:
    """EMT Langevin snapshots of strained fcc Cu supercells.

    One trajectory per (cell size, strain, temperature): ``repeat**3`` conventional cells
    with the lattice constant scaled by ``1 + strain``, velocities at ``2 T``,
    ``equilibration`` steps, then ``n_snapshots`` frames ``interval`` steps apart.
    Each frame's ``info`` holds ``temperature`` and ``strain``.
    """
    frames = []
    for repeat in repeats:
        for strain in strains:
            for T in temperatures:
                atoms = bulk("Cu", "fcc", a=A_CU * (1 + strain), cubic=True).repeat(repeat)
                atoms.calc = EMT()
                thermalize_momenta(atoms, temperature_K=2 * T, rng=rng)
                md = Langevin(atoms, timestep * units.fs, temperature_K=T,
                              friction=0.02 / units.fs, fixcm=False, rng=rng)
                md.run(equilibration)
                for _ in range(n_snapshots):
                    md.run(interval)
                    frame = atoms.copy()
                    frame.wrap()
                    frame.info.update(temperature=float(T), strain=float(strain))
                    frames.append(frame)
    return frames


def main(quick: bool = False, out_dir=None, seed: int = 0) -> dict:
    """Build the data set, reduce it to GRS sets of several sizes, measure the coverage.

    Parameters
    ----------
    quick : a dozen 32-atom structures, GRS of 4 and 8 atoms, ``k <= 4``, few steps.
    out_dir : folder for ``grs_dataset_reduction.png`` (no figure when ``None``).
    seed : seed of every random number.

    Returns
    -------
    dict
        ``n_structures`` and ``n_environments`` of the data set, ``basis``, ``sizes``,
        ``ks``, ``ratio[size]`` and ``outside[size]`` (lists over ``ks``, in
        :data:`N_COMPONENTS` principal components; ``outside`` is the hull volume the GRS
        add outside the data set's, as a fraction of it), ``ratio6[size]`` (the same ratio
        in 6 components), ``random_envs[size]`` (the ratio of as many environments drawn at
        random from the data set),
        ``ensemble_score[size]`` (joint score of the first ``k`` members),
        ``n_components`` and ``explained_variance`` of the PCA, ``capped``, and the same
        for 6 components (``n_components6``, ``explained_variance6``),
        ``seconds`` and ``figure``.
    """
    # the linear algebra here is small: BLAS threads only contend for the cores
    with single_threaded_blas():
        return _main(quick, out_dir, seed)


def _main(quick: bool, out_dir, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if quick:
        temperatures, strains, repeats, n_snap = (300, 1200), (-0.03, 0.03), (2,), 3
        sizes, k_max, relax_steps, nmax = (4, 8), 4, 40, (4, 2, 2, 1)
    else:
        temperatures = (300, 600, 900, 1200, 1500)
        strains = (-0.03, -0.015, 0.0, 0.015, 0.03)
        repeats, n_snap = (2, 3), 4
        sizes, k_max, relax_steps, nmax = (4, 8, 16), 32, 150, (8, 2, 2, 1)
    lmax = (0, 2, 2, 1)
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= k_max]
    timings = {}

    data = make_dataset(rng, temperatures, strains, repeats, n_snap)
    timings["dataset"] = time.perf_counter() - t0
    desc = ACEDescriptor(["Cu"], nmax=nmax, lmax=lmax)
    T_rows = np.concatenate(desc.compute_many(data), axis=0)
    print(f"data set: {len(data)} structures, {len(T_rows)} atomic environments "
          f"({timings['dataset']:.0f} s of EMT MD)")

    def hull(rows, cap=N_COMPONENTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the cap is reported in the result
            return pca_hull_volume_ratio(rows, T_rows, max_components=cap)

    out = {"ratio": {}, "outside": {}, "ratio6": {}, "random_envs": {}, "ensemble_score": {},
           "members": {}}
    t1 = time.perf_counter()
    info = info6 = None
    for n in sizes:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            members = generate_representative_structures(
                data, k_max, n, descriptor=desc, candidates="packing", weights=(1.0, 1.0),
                w_inter=1.0, w_intra=1.0, relax_steps=relax_steps, fmax=1e-3, rng=rng)
        rows = [desc.compute(m) for m in members]
        ratios, outside, ratio6, rand = [], [], [], []
        for k in ks:
            S = np.concatenate(rows[:k], axis=0)
            info = hull(S)
            ratios.append(info["ratio"])
            outside.append(hull(np.concatenate([T_rows, S], axis=0))["ratio"] - 1.0)
            info6 = hull(S, cap=6)
            ratio6.append(info6["ratio"])
            # reference: as many environments drawn at random from the data set itself
            pick = rng.choice(len(T_rows), size=len(S), replace=False)
            rand.append(hull(T_rows[pick])["ratio"])
        out["ratio"][n], out["outside"][n] = ratios, outside
        out["ratio6"][n], out["random_envs"][n] = ratio6, rand
        out["ensemble_score"][n] = [m.info["grs_ensemble_score"] for m in members]
        out["members"][n] = members
        print(f"GRS of {n:2d} atoms (hull volume / data set's, %): " + ", ".join(
            f"k={k}: {100 * r:.3g} (+{100 * o:.2g} outside; random envs {100 * b:.3g})"
            for k, r, o, b in zip(ks, ratios, outside, rand)))
        print("    joint score of the first k: " + ", ".join(
            f"{out['ensemble_score'][n][k - 1]:.3f}" for k in ks))
    timings["grs"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    out.update(
        n_structures=len(data), n_environments=len(T_rows), sizes=list(sizes), ks=ks,
        basis={"nmax": nmax, "lmax": lmax, "n_features": desc.n_features},
        n_components=info["n_components"], explained_variance=info["explained_variance"],
        capped=info["capped"], n_components6=info6["n_components"],
        explained_variance6=info6["explained_variance"], seconds=timings, figure=None,
    )
    print(f"PCA: {info['n_components']} components, {info['explained_variance']:.1%} of the "
          f"variance (6 components: {info6['explained_variance']:.1%}; ratios in % "
          + "; ".join(f"{n} atoms {', '.join(f'{100 * r:.2g}' for r in out['ratio6'][n])}"
                      for n in sizes)
          + f"); basis nmax={nmax} lmax={lmax}; {timings['total']:.0f} s")
    if out_dir is not None:
        out["figure"] = plot(out, Path(out_dir))
    return out


def plot(res: dict, out_dir: Path) -> Path:
    """Fig. 5 analogue: hull-volume ratio against the number of GRS, one line per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    ks = res["ks"]

    def percent(values):  # a zero volume has no place on a log axis
        v = np.array(values, dtype=float) * 100
        return np.where(v > 0, v, np.nan)

    for i, n in enumerate(res["sizes"]):
        axes[0].plot(ks, percent(res["ratio"][n]), "o-", color=f"C{i}",
                     label=f"{n}-atom GRS")
        axes[0].plot(ks, percent(res["random_envs"][n]), ":", color=f"C{i}", lw=1,
                     label=f"{n}k random data-set environments")
        joint = [res["ensemble_score"][n][k - 1] for k in ks]
        axes[1].plot(ks, joint, "s-", color=f"C{i}", label=f"{n}-atom GRS")
    axes[0].axhline(100, color="0.5", lw=0.8, ls=":")
    positive = [100 * v for key in ("ratio", "random_envs") for vals in res[key].values()
                for v in vals if v > 0]
    axes[0].set_yscale("log")
    axes[0].set_ylim(min(positive) / 3, 1e4)  # room for the legend above the curves
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("number of GRS in the set (k)")
    axes[0].legend(fontsize=7, ncol=2, loc="upper left")
    axes[1].legend(fontsize=8)
    outside = max(max(v) for v in res["outside"].values())
    axes[0].set(ylabel="hull volume / data set's (%)  [0 not shown]",
                title=f"(a) descriptor-space volume spanned (eq. 18)\n"
                      f"largest volume added outside the data set's hull: {outside:.1%}")
    axes[1].set(ylabel="joint score of the first k members (eq. 14)",
                title="(b) how well the set matches the data set's moments")
    fig.suptitle(f"EMT Cu data set: {res['n_structures']} structures, "
                 f"{res['n_environments']} environments; hulls in {res['n_components']} "
                 f"principal components ({res['explained_variance']:.1%} of the variance)",
                 fontsize=10)
    fig.tight_layout()
    path = out_dir / "grs_dataset_reduction.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data set and sets")
    parser.add_argument("--out", default="docs/figures", help="folder for the PNG")
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out)
