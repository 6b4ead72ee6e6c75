import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    # FrechetCellFilter does 3x3 matrix functions every step; with OpenBLAS threads on a
    # busy 2-core machine those were 10x slower than on one thread
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: two OpenMP threads spin-waiting on a 2-core machine
    shared with another job slowed torch (CHGNet, sampling) tenfold; a 0.5 s CHGNet
    relaxation took 20 s. Skips the test without torch."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def l12_aucu3(a: float = 3.75, repeat: int = 2) -> Atoms:
    """L1_2 AuCu3: Au on the cube corners of the conventional fcc cell."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms[0].symbol = "Au"
    return atoms.repeat(repeat)


def random_cell(rng, symbols, n_atoms=8, volume_per_atom=14.0, min_dist=1.9, cubic=False):
    """A random periodic cell (triclinic unless ``cubic``) with a minimum distance."""
    V = n_atoms * volume_per_atom
    if cubic:
        cell = np.eye(3) * V ** (1 / 3)
    else:
        cell = np.eye(3) + rng.uniform(-0.25, 0.25, (3, 3))
        cell *= (V / abs(np.linalg.det(cell))) ** (1 / 3)
    atoms = Atoms(cell=cell, pbc=True)
    while len(atoms) < n_atoms:
        frac = rng.uniform(size=3)
        trial = atoms + Atoms(symbols[len(atoms) % len(symbols)], scaled_positions=[frac], cell=cell)
        last = len(trial) - 1
        if last == 0 or trial.get_distances(last, range(last), mic=True).min() > min_dist:
            atoms = trial
    return atoms
