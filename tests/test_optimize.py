"""GRS search drivers: local updates, Monte Carlo moves, annealing, random walk, GA."""

import io

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read
from conftest import l12_aucu3

from ase_crystalgen import ACEDescriptor, GRSCalculator
from ase_crystalgen.optimize import (
    SCHEDULES,
    ChemistryMixing,
    Displace,
    Flip,
    GeneticAlgorithm,
    IncrementalGRS,
    RandomWalk,
    SimulatedAnnealing,
    SliceCrossover,
    Strain,
    Swap,
)

SMALL = dict(nmax=(4, 2, 2, 1), lmax=(0, 2, 2, 1))


def small_problem(scale="group"):
    """L1_2 AuCu3 in a 1x1x2 conventional cell (8 sites): small enough to solve fast."""
    t = l12_aucu3(repeat=1).repeat((1, 1, 2))
    calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL),
                         weights=(1.0,), scale=scale)
    return t, calc


def is_l12(atoms, target):
    """Au on exactly one of the four simple-cubic sublattices of the conventional cell."""
    a = target.cell.lengths()[0]
    frac = np.round((atoms.positions / (a / 2)) % 2).astype(int) % 2
    labels = frac @ [1, 2, 4]
    au = labels[atoms.numbers == 79]
    return len(au) == 2 and len(set(au)) == 1 and np.sum(labels == au[0]) == 2


def test_local_updates_match_full_evaluation(rng):
    t = l12_aucu3()
    calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL))
    start = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((3, 3, 2))
    start.numbers[rng.choice(len(start), 18, replace=False)] = 79
    ev = IncrementalGRS(start, calc, skin=0.3)
    moves = [Flip(), Swap(), Displace(step=0.15, n_atoms=2), Strain(0.01)]
    for _ in range(40):
        trial = moves[rng.integers(4)].propose(ev, rng)
        ref = ev.atoms.copy()
        if trial.cell is not None:
            ref.set_cell(trial.cell)
        ref.numbers, ref.positions = trial.numbers, trial.positions
        assert trial.energy == pytest.approx(calc.energy_and_score(ref)[0], abs=1e-10)
        if rng.random() < 0.6:
            ev.accept(trial)
    assert ev.energy == pytest.approx(calc.energy_and_score(ev.atoms)[0], abs=1e-10)
    assert ev.n_local > 0
    # a flip recomputes only atoms within the cutoff of the flipped one
    trial = ev.propose([0], numbers=[29 if ev.atoms.numbers[0] == 79 else 79])
    d = ev.atoms.get_distances(0, range(len(ev.atoms)), mic=True)
    assert len(trial.affected) < len(ev.atoms)
    assert set(trial.affected) >= set(np.flatnonzero(d < calc.descriptor.rcut.min()))


def test_annealing_finds_the_l12_ordering_and_keeps_the_best(rng):
    t, calc = small_problem()
    start = t.copy()
    start.numbers = t.numbers[rng.permutation(len(t))]
    while is_l12(start, t):
        start.numbers = t.numbers[rng.permutation(len(t))]
    start.calc = calc
    sa = SimulatedAnnealing(start, moves="swap", rng=rng, temperature=(0.05, 1e-3), n_steps=300)
    assert sa.run()
    assert sa.best_score <= 1e-10 and is_l12(sa.best_atoms, t)
    assert sa.best_step == sa.nsteps
    assert start.get_chemical_formula() == t.get_chemical_formula()  # swaps keep composition
    assert sa.best_atoms is not start and sa.best_atoms.info["grs_score"] == sa.best_score


def test_zero_temperature_never_accepts_uphill_and_random_walk_accepts_all(rng):
    t, calc = small_problem()
    start = t.copy()
    start.numbers = np.roll(t.numbers, 1)
    start.calc = calc
    start.numbers[0] = 79
    sa = SimulatedAnnealing(start, moves="flip", rng=rng, temperature=0.0, n_steps=60,
                            tolerance=-1.0)
    energies = []
    sa.attach(lambda: energies.append(sa.ev.energy))
    sa.run(60)
    assert np.all(np.diff(energies) <= 1e-12)
    rw_start = t.copy()
    rw_start.calc = calc
    rw = RandomWalk(rw_start, moves="flip", rng=rng, tolerance=-1.0)
    rw.run(30)
    assert rw.n_accepted == rw.n_proposed == 30


def test_flip_bounds_are_respected(rng):
    t, calc = small_problem()
    start = t.copy()
    start.calc = calc
    sa = SimulatedAnnealing(start, moves=Flip(bounds={"Au": (1, 3)}), rng=rng,
                            temperature=10.0, n_steps=200, tolerance=-1.0)
    counts = []
    sa.attach(lambda: counts.append(int(np.sum(start.numbers == 79))))
    sa.run()
    assert min(counts) >= 1 and max(counts) <= 3 and len(set(counts)) > 1


def test_schedules_trajectory_and_log(tmp_path, rng):
    assert SCHEDULES["exponential"](0, 1.0, 1e-2, 11) == pytest.approx(1.0)
    assert SCHEDULES["exponential"](10, 1.0, 1e-2, 11) == pytest.approx(1e-2)
    assert SCHEDULES["exponential"](5, 1.0, 1e-2, 11) == pytest.approx(0.1)
    assert SCHEDULES["linear"](5, 1.0, 0.0, 11) == pytest.approx(0.5)
    t, calc = small_problem()
    start = t.copy()
    start.calc = calc
    log = io.StringIO()
    sa = SimulatedAnnealing(start, moves={"flip": 0.5, Displace(0.05): 0.5}, rng=rng,
                            temperature=(2.0, 1.0), relative=False,
                            schedule=lambda step, a, b, n: a - step * (a - b) / n, n_steps=10,
                            trajectory=str(tmp_path / "sa.traj"), logfile=log, tolerance=-1.0)
    assert sa.temperature() == 2.0
    sa.run()
    frames = read(tmp_path / "sa.traj", ":")
    assert len(frames) == 11 and len(log.getvalue().splitlines()) == 12
    assert sa.todict()["type"] == "simulated-annealing"


def test_bad_input_errors():
    t, calc = small_problem()
    with pytest.raises(TypeError, match="attach a GRSCalculator"):
        SimulatedAnnealing(t.copy())
    start = t.copy()
    start.calc = calc
    with pytest.raises(ValueError, match="unknown move 'hop'"):
        SimulatedAnnealing(start, moves="hop")
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        SimulatedAnnealing(start, schedule="cosine")


def test_crossovers_on_a_shared_lattice(rng):
    t = l12_aucu3()
    a, b = t.copy(), t.copy()
    a.numbers[:] = 29
    b.numbers[:] = 79
    for op in (SliceCrossover(rng=rng), ChemistryMixing(rng=rng)):
        child, _ = op.get_new_individual([a, b])
        assert len(child) == len(t)
        assert np.allclose(np.sort(child.get_scaled_positions() % 1, axis=0),
                           np.sort(t.get_scaled_positions() % 1, axis=0))
    # off-lattice: overlapping atoms from B are removed
    c = t.copy()
    c.positions += 0.1
    child, _ = SliceCrossover(rng=np.random.default_rng(1)).get_new_individual([t, c])
    D = child.get_all_distances(mic=True) + 10 * np.eye(len(child))
    assert D.min() > 1.0 and len(child) <= len(t)


def test_genetic_algorithm_finds_the_l12_ordering(rng):
    t, calc = small_problem()
    population = []
    for _ in range(12):
        a = t.copy()
        a.numbers = rng.choice([29, 79], size=len(t))
        population.append(a)
    ga = GeneticAlgorithm(population, calc, rng=rng, crossover_probability=0.4)
    ga.run(60)
    assert ga.converged() and is_l12(ga.best_atoms, t)
    best = [h[1] for h in ga.history]
    assert np.all(np.diff(best) <= 1e-12)  # elitism: the best never gets worse
    with pytest.raises(ValueError, match="population of at least 2"):
        GeneticAlgorithm(population[:1], calc)


def test_ase_ga_cut_and_splice_inside_the_genetic_algorithm(rng):
    """ase-ga's own CutAndSplicePairing (variable cell) plugs into the GA unchanged."""
    from ase import Atoms
    from ase_ga.cutandsplicepairing import CutAndSplicePairing
    from ase_ga.utilities import closest_distances_generator

    from ase_crystalgen.build import random_packing

    target = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    target.rattle(0.1, seed=2)
    calc = GRSCalculator(target=target, descriptor=ACEDescriptor(["Cu"], **SMALL))
    population = [random_packing({"Cu": 1.0}, n_atoms=8, density=len(target) / target.get_volume(),
                                 rng=rng) for _ in range(6)]
    blmin = closest_distances_generator([29], ratio_of_covalent_radii=0.5)
    pairing = CutAndSplicePairing(Atoms("", pbc=True), 8, blmin, p1=1.0, p2=0.0, minfrac=0.15,
                                  number_of_variable_cell_vectors=3)
    ga = GeneticAlgorithm(population, calc, crossovers=[pairing], crossover_probability=1.0,
                          n_elite=1, rng=rng)
    assert pairing.rng is not np.random  # seeded from our generator, no global state
    e0 = ga.best_energy
    ga.run(3)
    assert ga.n_evaluations >= 6 + 3 * 5  # duplicates are re-drawn
    assert all(len(a) == 8 for a in ga.population)
    # the fitness is the energy (score + core repulsion): its best never rises
    assert ga.best_energy <= e0
    assert ga.best_energy == pytest.approx(sum(calc.energy_and_score(ga.best_atoms)[:1]))


def test_genetic_algorithm_never_loses_its_best(rng):
    """Without elites the population can lose its best member; the driver keeps a copy."""
    t, calc = small_problem()
    population = []
    for _ in range(8):
        a = t.copy()
        a.numbers = rng.choice([29, 79], size=len(t))
        population.append(a)
    ga = GeneticAlgorithm(population, calc, rng=rng, n_elite=0, tolerance=-1.0)
    seen = []
    ga.attach(lambda: seen.append(min(m.info["grs_score"] for m in ga.population)))
    ga.run(15)
    assert ga.nsteps == 15 and ga.generation == 15
    assert ga.best_score == pytest.approx(min(seen), abs=1e-15)
    assert calc.score(ga.best_atoms) == pytest.approx(ga.best_score, abs=1e-12)
    assert np.array_equal(ga.atoms.numbers, ga.best_atoms.numbers)  # the Dynamics' atoms
    best = [h[1] for h in ga.history]
    assert np.all(np.diff(best) <= 0)


@pytest.mark.parametrize("no_numba", [False, True])
def test_fixed_lattice_path_equals_full_evaluation(rng, monkeypatch, no_numba):
    """Flips and swaps at fixed positions (linear base updates, compiled or NumPy
    polynomial) give the energy of a full evaluation to round-off, over accepted moves,
    for a ternary with the default basis and a lattice short enough for the core term."""
    from ase_crystalgen.descriptors import _kernels

    if no_numba:
        monkeypatch.setattr(_kernels, "HAVE_NUMBA", False)
    t = bulk("Cu", "fcc", a=3.0, cubic=True).repeat(2)  # 2.1 A pairs: core repulsion on
    t.numbers = rng.choice([29, 79, 47], size=len(t))
    calc = GRSCalculator(target=t)
    start = t.copy()
    start.numbers = rng.permutation(t.numbers)
    ev = calc.potential.local(start)
    moves = [Flip(), Swap(), Flip(n_sites=3)]
    for k in range(60):
        trial = moves[k % 3].propose(ev, rng)
        ref = ev.atoms.copy()
        ref.numbers = trial.numbers
        e, q = calc.energy_and_score(ref)
        assert trial.score == pytest.approx(q, abs=1e-11)
        assert trial.energy == pytest.approx(e, abs=1e-11)
        if rng.random() < 0.5:
            ev.accept(trial)
    assert ev.core_energy > 0  # the core term was live on this lattice
    full = calc.energy_and_score(ev.atoms)
    assert ev.energy == pytest.approx(full[0], abs=1e-11)


@pytest.mark.parametrize("length", [7, 10])
def test_fixed_lattice_path_when_a_move_reaches_part_of_the_cell(rng, length):
    """In a cell long enough that a move changes only some descriptor rows (more than
    half of them for length 7, fewer for 10), the power sums are updated either from the
    untouched rows or by taking the old rows out; both equal a full evaluation."""
    t = bulk("Cu", "fcc", a=3.0, cubic=True).repeat((1, 1, length))
    t.numbers = rng.choice([29, 79, 47], size=len(t))
    calc = GRSCalculator(target=t)
    start = t.copy()
    start.numbers = rng.permutation(t.numbers)
    ev = calc.potential.local(start)
    fractions = []
    for k in range(24):
        trial = (Flip() if k % 2 else Swap()).propose(ev, rng)
        fractions.append(len(trial.affected) / len(t))
        ref = ev.atoms.copy()
        ref.numbers = trial.numbers
        assert trial.score == pytest.approx(calc.energy_and_score(ref)[1], abs=1e-11)
        if rng.random() < 0.5:
            ev.accept(trial)
    assert ev.energy == pytest.approx(calc.energy_and_score(ev.atoms)[0], abs=1e-11)
    if length == 7:
        assert any(0.5 < f < 1 for f in fractions)
    else:
        assert any(f <= 0.5 for f in fractions)


def test_set_changes_the_energy():
    t = l12_aucu3(repeat=1)
    atoms = t.copy()
    atoms.rattle(0.05, seed=1)
    atoms.calc = GRSCalculator(target=t, descriptor=ACEDescriptor(["Cu", "Au"], **SMALL),
                               weights=(1.0, 1.0), core_repulsion=None)
    e1 = atoms.get_potential_energy()
    atoms.calc.set(weights=(10.0, 10.0))
    e2 = atoms.get_potential_energy()
    assert e2 == pytest.approx(10 * e1, rel=1e-9)  # the score is linear in the weights
    assert atoms.calc.todict()["weights"] == (10.0, 10.0)
    assert atoms.calc.objective.weights == {1: 10.0, 2: 10.0}
    atoms.calc.set(smoothing=0.0)
    assert atoms.get_potential_energy() != pytest.approx(e2, rel=1e-6)
