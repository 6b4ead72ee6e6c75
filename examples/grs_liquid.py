"""Small representative structures of a liquid metal (GRS paper, section IV.2, Fig. 4).

The paper melts Ta at 4000 K with an interatomic potential, takes a 2000-atom snapshot as the
target and generates single GRS of increasing size: the larger the cell, the smaller the
residual of the mean term and of the variance term, while the projected DFT cost (N^3
scaling) stays orders of magnitude below that of the snapshot.

Here the liquid is Cu with ASE's EMT potential: an 8x8x8 fcc conventional cell (2048 atoms)
expanded to the liquid volume, melted at 7500 K and equilibrated at 2500 K with Langevin
dynamics. The script checks that the snapshot is liquid (the fcc structure factor, the mean
squared displacement and the first-shell coordination), then builds one GRS per size (16,
32, 64, 128 atoms): a random packing at the liquid density,
FIRE to clear the close contacts, then a line-search BFGS of positions and cell on the GRS
effective potential (weights (1, 1), as the paper's Fig. 4). It reports the residual of
the mean term and of the variance term separately, ``mean_f |D_1,f|`` and
``mean_f |D_2,f|`` from ``GRSObjective.differences``, against two baselines of the same
size: random packings that are not relaxed, and small liquid cells run with the same EMT
molecular dynamics. The third and fourth central moments, which the GRS does not fit,
are reported as a held-out check.

Run ``python examples/grs_liquid.py --out docs/figures`` (a few minutes) or with
``--quick`` (a 256-atom liquid, GRS of 8 and 16 atoms, seconds).
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
from ase.constraints import FixCom
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE, BFGSLineSearch

from ase_crystalgen import ACEDescriptor, DescriptorTarget, GRSCalculator, GRSObjective
from ase_crystalgen._threads import single_threaded_blas
from ase_crystalgen.build import random_packing
from ase_crystalgen.structures import radial_distribution

#: volume per atom of the liquid (A^3): close to EMT's zero-pressure volume of liquid Cu at
#: 2500 K (a short NPT run of 256 atoms gave about 15.3 A^3); 1.28 times the fcc volume
VOLUME_PER_ATOM = 15.0
FCC_A = 3.61  # room-temperature lattice constant of Cu, only sets the starting crystal


def fcc_order(positions: np.ndarray, a: float) -> float:
    """Mean ``|rho(G)|^2 / N^2`` over the {111} and {200} reciprocal vectors of the initial
    fcc lattice: about 1 for the crystal, about ``1/N`` for a liquid."""
    G = [(s1, s2, s3) for s1 in (1, -1) for s2 in (1, -1) for s3 in (1,)]  # 4 x {111} (+-)
    G += [(2, 0, 0), (0, 2, 0), (0, 0, 2)]
    G = 2 * np.pi / a * np.array(G, dtype=float)
    rho = np.exp(1j * positions @ G.T).sum(axis=0)
    return float(np.mean(np.abs(rho) ** 2) / len(positions) ** 2)


def coordination_12(atoms: Atoms, a: float) -> float:
    """Fraction of atoms with exactly 12 neighbours closer than the midpoint between the
    first two fcc shells (``a / sqrt(2)`` and ``a``); 1 in a perfect fcc crystal."""
    cut = 0.5 * (a / np.sqrt(2) + a)
    i = neighbor_list("i", atoms, cut)
    counts = np.bincount(i, minlength=len(atoms))
    return float(np.mean(counts == 12))


def make_liquid(repeat: int, temperature: float, hot_steps: int, steps: int,
                rng: np.random.Generator, timestep: float = 4.0,
                hot_temperature: float | None = None) -> tuple[Atoms, dict]:
    """Melt an fcc Cu supercell with EMT Langevin dynamics at fixed liquid volume.

    The crystal is expanded to :data:`VOLUME_PER_ATOM`, given velocities at twice
    ``hot_temperature`` (default ``3 T``; half the kinetic energy goes into potential
    energy), run ``hot_steps`` at ``hot_temperature`` so that the superheated lattice
    breaks up quickly, then ``steps`` at ``T``. The second half of the run at ``T``
    measures the mean squared displacement.

    Returns
    -------
    atoms : the final snapshot (no calculator), wrapped into the cell.
    checks : ``fcc_order`` before and after, ``msd`` (A^2 over the last half of the run at
        ``T``, centre-of-mass motion removed), ``msd_time_fs``, ``coordination_12`` before
        and after, ``temperature`` (K, mean over the last half) and ``pressure`` (GPa, at
        the final frame).
    """
    a = (4 * VOLUME_PER_ATOM) ** (1 / 3)
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    checks = {"fcc_order_initial": fcc_order(atoms.positions, a),
              "coordination_12_initial": coordination_12(atoms, a)}
    atoms.calc = EMT()
    atoms.set_constraint(FixCom())
    hot_temperature = hot_temperature or 3 * temperature
    thermalize_momenta(atoms, temperature_K=2 * hot_temperature, rng=rng)
    dt = timestep * units.fs
    hot = Langevin(atoms, dt, temperature_K=hot_temperature, friction=0.05 / units.fs,
                   fixcm=False, rng=rng)
    hot.run(hot_steps)
    md = Langevin(atoms, dt, temperature_K=temperature, friction=0.02 / units.fs,
                  fixcm=False, rng=rng)
    md.run(steps - steps // 2)
    start = atoms.positions.copy()  # ASE dynamics do not wrap: positions are unwrapped
    temps = []
    md.attach(lambda: temps.append(atoms.get_temperature()), interval=5)
    md.run(steps // 2)
    disp = atoms.positions - start
    disp -= disp.mean(axis=0)
    checks.update(
        fcc_order=fcc_order(atoms.positions, a),
        msd=float(np.mean(np.sum(disp**2, axis=1))),
        msd_time_fs=(steps // 2) * timestep,
        temperature=float(np.mean(temps)),
        pressure=float(-atoms.get_stress()[:3].mean() / units.GPa),
    )
    atoms.calc = None
    atoms.set_constraint()
    atoms.wrap()
    checks["coordination_12"] = coordination_12(atoms, a)
    return atoms, checks


def small_md_liquid(n_atoms: int, temperature: float, steps: int, rng) -> Atoms:
    """An ``n_atoms`` EMT liquid at the same volume and temperature (the obvious way to
    make a small liquid cell): a random packing run ``steps`` of Langevin dynamics."""
    atoms = random_packing({"Cu": n_atoms}, rng=rng, volume_per_atom=VOLUME_PER_ATOM)
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    # strong friction first: the random packing starts with close contacts
    Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.2 / units.fs,
             fixcm=False, rng=rng).run(20)
    Langevin(atoms, 4 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
             fixcm=False, rng=rng).run(steps)
    atoms.calc = None
    atoms.wrap()
    return atoms


def residuals(objective: GRSObjective, B: np.ndarray) -> dict[str, float]:
    """Residuals of each moment term: ``D<p> = mean_f |D_p,f|`` for the orders the
    objective weighs."""
    return {f"D{p}": float(np.mean(np.abs(D))) for p, D in objective.differences(B).items()}


def relax_grs(atoms: Atoms, calc: GRSCalculator, fire_steps: int, bfgs_steps: int,
              fmax: float = 1e-4) -> int:
    """FIRE to clear the close contacts of a random packing, then BFGS with a line search,
    both on positions and cell (``FrechetCellFilter``). Returns the number of steps."""
    atoms.calc = calc
    with single_threaded_blas(), warnings.catch_warnings():
        # scipy's logm in the cell filter warns about round-off-sized errors
        warnings.filterwarnings("ignore", message="logm result may be inaccurate")
        fire = FIRE(FrechetCellFilter(atoms), logfile=None, maxstep=0.1)
        fire.run(fmax=1e-2, steps=fire_steps)
        bfgs = BFGSLineSearch(FrechetCellFilter(atoms), logfile=None)
        bfgs.run(fmax=fmax, steps=bfgs_steps)
    atoms.calc = None
    return fire.nsteps + bfgs.nsteps


def main(quick: bool = False, out_dir=None, seed: int = 0) -> dict:
    """Melt Cu, check it is liquid, and fit single GRS of several sizes to the snapshot.

    Parameters
    ----------
    quick : a 256-atom liquid, GRS of 8 and 16 atoms, few steps (for the tests).
    out_dir : folder for ``grs_liquid.png`` (no figure when ``None``).
    seed : seed of every random number.

    Returns
    -------
    dict
        ``n_target``, ``liquid`` (the checks of :func:`make_liquid`), ``basis``,
        ``sizes``, per size lists ``grs``, ``random``, ``md`` of residual dicts (``D1``,
        ``D2`` fitted; ``D3``, ``D4`` held out; random packings averaged over
        ``n_random`` cells), ``grs_volume_per_atom``, ``grs_steps``, ``dft_cost_ratio``
        ``(N / n_target)^3``, ``seconds`` (wall time per stage) and ``figure`` (path or
        ``None``).
    """
    # the linear algebra here is small: BLAS threads only contend for the cores
    with single_threaded_blas():
        return _main(quick, out_dir, seed)


def _main(quick: bool, out_dir, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    timings = {}
    if quick:
        repeat, hot, steps, sizes = 4, 50, 60, [8, 16]
        nmax, fire_steps, bfgs_steps, md_steps, n_random = (4, 2, 2, 1), 50, 60, 40, 3
    else:
        repeat, hot, steps, sizes = 8, 60, 150, [16, 32, 64, 128]
        nmax, fire_steps, bfgs_steps, md_steps, n_random = (8, 2, 2, 1), 100, 600, 150, 5
    lmax = (0, 2, 2, 1)
    temperature = 2500.0

    liquid, checks = make_liquid(repeat, temperature, hot, steps, rng)
    timings["md"] = time.perf_counter() - t0
    n_target = len(liquid)
    print(f"liquid Cu: {n_target} atoms, {VOLUME_PER_ATOM} A^3/atom, "
          f"T = {checks['temperature']:.0f} K, P = {checks['pressure']:.2f} GPa")
    print(f"  fcc order |rho(G)|^2/N^2: {checks['fcc_order_initial']:.3f} -> "
          f"{checks['fcc_order']:.4f}  (1/N = {1 / n_target:.4f})")
    print(f"  atoms with 12 first-shell neighbours: {checks['coordination_12_initial']:.2f}"
          f" -> {checks['coordination_12']:.2f}")
    print(f"  mean squared displacement over {checks['msd_time_fs']:.0f} fs: "
          f"{checks['msd']:.2f} A^2")

    desc = ACEDescriptor(["Cu"], nmax=nmax, lmax=lmax)
    B_target = desc.compute(liquid)
    target = DescriptorTarget(B_target, orders=(1, 2, 3, 4), block_size=desc.n_per_species)
    calc = GRSCalculator(target, descriptor=desc, weights=(1.0, 1.0))
    held_out = GRSObjective(target, weights=(1.0, 1.0, 1.0, 1.0))

    def measure(atoms):
        return residuals(held_out, desc.compute(atoms))

    out = {"grs": [], "random": [], "md": [], "grs_volume_per_atom": [], "grs_steps": [],
           "grs_structures": []}
    t1 = time.perf_counter()
    print(f"{'N':>5s} {'GRS D1':>9s} {'D2':>9s} {'(D3':>9s} {'D4)':>9s} {'random D1':>10s} "
          f"{'D2':>9s} {'EMT-MD D1':>10s} {'D2':>9s} {'(D3':>9s} {'D4)':>9s} "
          f"{'cost (N/Nt)^3':>14s}")
    for n in sizes:
        randoms = [random_packing({"Cu": n}, rng=rng, volume_per_atom=VOLUME_PER_ATOM)
                   for _ in range(n_random)]
        base = [measure(a) for a in randoms]
        base = {k: float(np.mean([b[k] for b in base])) for k in base[0]}
        grs = randoms[0].copy()
        nsteps = relax_grs(grs, calc, fire_steps, bfgs_steps)
        res = measure(grs)
        small = small_md_liquid(n, temperature, md_steps, rng)
        res_md = measure(small)
        out["grs"].append(res)
        out["random"].append(base)
        out["md"].append(res_md)
        out["grs_volume_per_atom"].append(grs.get_volume() / n)
        out["grs_steps"].append(nsteps)
        out["grs_structures"].append(grs)
        print(f"{n:5d} {res['D1']:9.2e} {res['D2']:9.2e} {res['D3']:9.2e} {res['D4']:9.2e} "
              f"{base['D1']:10.2e} {base['D2']:9.2e} {res_md['D1']:10.2e} "
              f"{res_md['D2']:9.2e} {res_md['D3']:9.2e} {res_md['D4']:9.2e} "
              f"{(n / n_target) ** 3:14.2e}")
    timings["grs"] = time.perf_counter() - t1
    out.update(
        n_target=n_target, liquid=checks, sizes=sizes, n_random=n_random,
        basis={"nmax": nmax, "lmax": lmax, "n_features": desc.n_features},
        dft_cost_ratio=[(n / n_target) ** 3 for n in sizes],
        temperature=temperature, volume_per_atom=VOLUME_PER_ATOM,
    )
    timings["total"] = time.perf_counter() - t0
    out["seconds"] = timings
    out["figure"] = None
    if out_dir is not None:
        out["figure"] = plot(out, liquid, Path(out_dir))
    print(f"basis nmax={nmax} lmax={lmax} ({desc.n_features} descriptors); "
          f"{timings['total']:.0f} s ({timings['md']:.0f} s melting, {timings['grs']:.0f} s "
          "GRS and baselines)")
    return out


def plot(res: dict, liquid: Atoms, out_dir: Path) -> Path:
    """Fig. 4 analogue: residuals and DFT cost against GRS size, and g(r)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = np.array(res["sizes"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    styles = {"grs": ("GRS", "-", "o"), "md": ("EMT-MD cell", ":", "s"),
              "random": ("random packing", "--", "^")}
    for key, (label, ls, mk) in styles.items():
        for p, colour in ((1, "C0"), (2, "C3")):
            vals = [r[f"D{p}"] for r in res[key]]
            ax.plot(sizes, vals, ls=ls, marker=mk, color=colour,
                    label=f"{label}, {'mean' if p == 1 else 'variance'} term")
    ax.set(xscale="log", yscale="log", xlabel="atoms in the structure",
           ylabel=r"residual  mean$_f\,|\Delta\mathcal{M}_{p,f}|/s_f^p$",
           title="(a) residual vs size")
    ax.minorticks_off()
    ax.set_xticks(sizes, [str(s) for s in sizes])
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 1e3)  # room for the legend above the curves
    ax.legend(fontsize=7, loc="upper center", ncol=2)

    ax = axes[1]
    cost = np.array(res["dft_cost_ratio"])
    ax.bar([str(s) for s in sizes] + [f"{res['n_target']}\n(target)"],
           list(cost) + [1.0], color=["C0"] * len(sizes) + ["0.5"])
    for k, c in enumerate(cost):
        ax.text(k, c * 1.5, f"{c:.1e}", ha="center", fontsize=8)
    ax.set(yscale="log", ylabel=r"projected DFT cost / snapshot  $(N/N_t)^3$",
           xlabel="atoms", title="(b) projected DFT cost", ylim=(min(cost) / 5, 5))

    ax = axes[2]
    rmax = 7.0
    r, g = radial_distribution(liquid, rmax=rmax, n_points=350, sigma=0.05)
    ax.plot(r, g, "k", lw=2, label=f"target liquid ({res['n_target']} atoms)")
    grs = res["grs_structures"][-1]
    r, g = radial_distribution(grs, rmax=rmax, n_points=350, sigma=0.1)
    ax.plot(r, g, "C0", label=f"GRS, {len(grs)} atoms")
    rnd = random_packing({"Cu": len(grs)}, rng=np.random.default_rng(1),
                         volume_per_atom=VOLUME_PER_ATOM)
    r, g = radial_distribution(rnd, rmax=rmax, n_points=350, sigma=0.1)
    ax.plot(r, g, "C2--", lw=1, label=f"random packing, {len(grs)} atoms")
    a = (4 * VOLUME_PER_ATOM) ** (1 / 3)
    for k, d in enumerate(a * np.sqrt([0.5, 1.0, 1.5, 2.0])):
        ax.axvline(d, color="0.7", lw=0.8, ls=":", label="fcc shells" if k == 0 else None)
    ax.set(xlabel="r (Å)", ylabel="g(r)", title="(c) radial distribution", xlim=(0, rmax))
    ax.legend(fontsize=7)
    liq = res["liquid"]
    fig.suptitle(f"Liquid Cu (EMT, {liq['temperature']:.0f} K): single GRS vs size; "
                 f"fcc order {liq['fcc_order']:.1e}, MSD {liq['msd']:.1f} Å$^2$ in "
                 f"{liq['msd_time_fs']:.0f} fs", fontsize=10)
    fig.tight_layout()
    path = out_dir / "grs_liquid.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small liquid, two small GRS")
    parser.add_argument("--out", default="docs/figures", help="folder for the PNG")
    args = parser.parse_args()
    main(quick=args.quick, out_dir=args.out)
