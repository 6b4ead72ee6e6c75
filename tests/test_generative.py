"""Losses, scaling, flow path, diffusion samplers and training objectives (ase_crystalgen.generative).

Samplers are checked against closed-form targets (point masses, Gaussians with known
velocity or noise predictors), losses against hand-computed periodic images, objectives
against oracle models that know the answer.
"""

import inspect
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from ase_crystalgen import generative as gen  # noqa: E402
from ase_crystalgen.generative import (  # noqa: E402
    METHODS,
    FlowPath,
    StructureScaler,
    ddim_scheduler,
    ddpm_scheduler,
    diffusion_sample,
    euler_sample,
    make_method,
    make_scheduler,
    masked_loss,
    method_from_dict,
    pbc_loss,
    periodic_loss,
    structure_loss,
)
from ase_crystalgen.generative.diffusion import exact_epsilon_gaussian, exact_epsilon_point  # noqa: E402

CORNERS = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=float)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # the element-wise loops here are tiny; two threads on a busy 2-core machine are 100x slower
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def soft_min_np(d, k=-20.0):
    return float(np.sum(np.asarray(d, dtype=float) ** k) ** (1 / k))


def one_atom(pred, target):
    p = torch.tensor([[pred]], dtype=torch.float64)
    t = torch.tensor([[target]], dtype=torch.float64)
    return p, t, torch.ones(1, 1, dtype=torch.bool)


# ----------------------------------------------------------------------------- losses


def test_pbc_loss_vertex_equals_soft_min_over_the_8_corners():
    p, t, m = one_atom([0.999, 0.001, 0.998], [0.0, 0.0, 0.0])
    expected = soft_min_np(np.linalg.norm(p[0, 0].numpy() - CORNERS, axis=1))
    got = pbc_loss(p, t, m).item()
    assert got == pytest.approx(expected, rel=1e-9)
    assert got < 1e-2 and got == pytest.approx(math.sqrt(6e-6), rel=1e-3)  # nearest corner (1, 0, 1)
    assert masked_loss(p, t, m).item() == pytest.approx(1.998, abs=1e-9)  # plain L1 ~ 2


def test_pbc_loss_edge_uses_4_images_and_keeps_the_free_coordinate():
    p, t, m = one_atom([0.998, 0.003, 0.301], [0.0, 0.0, 0.3])
    images = np.array([[a, b, 0.3] for a in (0, 1) for b in (0, 1)])
    expected = soft_min_np(np.linalg.norm(p[0, 0].numpy() - images, axis=1))
    assert pbc_loss(p, t, m).item() == pytest.approx(expected, rel=1e-9)
    assert expected < 4e-3
    assert masked_loss(p, t, m).item() == pytest.approx(1.002, abs=1e-9)


def test_pbc_loss_face_uses_2_images():
    p, t, m = one_atom([0.5, 0.997, 0.25], [0.5, 0.0, 0.25])
    expected = soft_min_np([0.003, 0.997])
    assert pbc_loss(p, t, m).item() == pytest.approx(expected, rel=1e-9)
    assert pbc_loss(p, t, m).item() == pytest.approx(0.003, rel=1e-6)
    # within tol of the boundary still counts as a face; beyond it does not
    p, t, m = one_atom([0.5, 0.997, 0.25], [0.5, 5e-7, 0.25])
    assert pbc_loss(p, t, m).item() < 4e-3
    p, t, m = one_atom([0.5, 0.997, 0.25], [0.5, 1e-4, 0.25])
    assert pbc_loss(p, t, m).item() > 0.99


def test_pbc_loss_misses_near_boundary_points_that_periodic_loss_handles():
    # the paper's images exist only for targets exactly on the boundary (documented limitation)
    p, t, m = one_atom([0.98, 0.5, 0.5], [0.02, 0.5, 0.5])
    assert periodic_loss(p, t, m).item() == pytest.approx(0.04, abs=1e-12)
    assert pbc_loss(p, t, m).item() == pytest.approx(0.96, abs=1e-12)


def test_soft_min_bounds_and_finite_gradients():
    d = torch.tensor([[0.3, 0.5, 2.0, 0.31]], dtype=torch.float64)
    valid = torch.tensor([[True, True, True, False]])
    s = gen.soft_min(d, valid).item()
    assert 3 ** (1 / -20) * 0.3 <= s <= 0.3
    assert s == pytest.approx(soft_min_np([0.3, 0.5, 2.0]), rel=1e-12)
    # zero distance: exactly zero loss and zero gradient, no NaN
    p = torch.zeros(1, 1, 3, dtype=torch.float64, requires_grad=True)
    loss = pbc_loss(p, torch.zeros(1, 1, 3, dtype=torch.float64), torch.ones(1, 1, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("coords", ["plain", "pbc", "periodic"])
def test_padding_rows_never_contribute(coords):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 8, 3, generator=g, dtype=torch.float64)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, :3] = mask[1, :2] = True
    pred = (target + 0.05 * torch.randn(2, 8, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    loss, _ = structure_loss(pred, target, mask, coords=coords)
    loss.backward()
    padding = ~gen.real_rows(mask)
    assert torch.all(pred.grad[padding] == 0) and torch.any(pred.grad[~padding] != 0)
    garbage = pred.detach().clone()
    garbage[padding] = 1e3
    assert structure_loss(garbage, target, mask, coords=coords)[0].item() == pytest.approx(
        loss.item(), rel=1e-12
    )


@pytest.mark.parametrize("coords", ["plain", "pbc", "periodic"])
def test_loss_is_normalised_per_site(coords):
    g = torch.Generator().manual_seed(1)
    n, R = 3, 10
    target = torch.zeros(2, R, 3, dtype=torch.float64)
    target[:, :n] = torch.rand(n, 3, generator=g, dtype=torch.float64)
    target[0, 0] = 0.0  # a vertex atom, so the pbc branch is exercised
    err = 0.02 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    pred = target.clone()
    pred[:, :n] += err
    # structure 1 has every atom twice (2n sites, same error per atom)
    target[1, n : 2 * n], pred[1, n : 2 * n] = target[1, :n], pred[1, :n]
    mask = torch.zeros(2, R, dtype=torch.bool)
    mask[0, :n], mask[1, : 2 * n] = True, True
    loss, _ = structure_loss(pred, target, mask, coords=coords)
    single, _ = structure_loss(pred[:1], target[:1], mask[:1], coords=coords)
    double, _ = structure_loss(pred[1:], target[1:], mask[1:], coords=coords)
    assert double.item() == pytest.approx(single.item(), rel=1e-12)
    assert loss.item() == pytest.approx(single.item(), rel=1e-12)
    n_sites = mask.sum(-1)
    assert structure_loss(pred, target, mask, n_sites, coords=coords)[0].item() == pytest.approx(loss.item())


def test_lattice_weight_splits_and_kinds():
    target = torch.zeros(1, 7, 3, dtype=torch.float64)
    mask = torch.zeros(1, 7, dtype=torch.bool)
    mask[0, :2] = True
    pred = target.clone()
    pred[0, -3:] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -3.0]])
    total, parts = structure_loss(pred, target, mask, coord_weight=0.3, lattice_weight=0.7)
    assert parts["coords"].item() == 0.0
    assert parts["lattice"].item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3 rows
    assert total.item() == pytest.approx(0.7 * 2.0)
    pred[0, 0, 0] = 0.4
    total, parts = structure_loss(pred, target, mask, coord_weight=0.3, lattice_weight=0.7, kind="l2")
    assert parts["coords"].item() == pytest.approx(0.16 / 2)
    assert parts["lattice"].item() == pytest.approx(14.0 / 3)
    assert total.item() == pytest.approx(0.3 * 0.08 + 0.7 * 14 / 3)
    with pytest.raises(ValueError, match="unknown loss kind 'l3'; choose from l1, l2, norm"):
        structure_loss(pred, target, mask, kind="l3")
    with pytest.raises(ValueError, match="unknown coordinate loss 'torus'; choose from plain, pbc, periodic"):
        structure_loss(pred, target, mask, coords="torus")


def test_periodic_losses_in_model_space_match_fractional_space():
    g = torch.Generator().manual_seed(2)
    t = torch.rand(2, 5, 3, generator=g, dtype=torch.float64)
    t[0, 0] = 0.0
    p = torch.remainder(t + 0.03 * torch.randn(2, 5, 3, generator=g, dtype=torch.float64), 1.0)
    m = torch.ones(2, 5, dtype=torch.bool)
    frac_pbc, frac_per = pbc_loss(p, t, m), periodic_loss(p, t, m)
    # model space y = 2 f - 1: distances double, period 2, origin -1
    ys, yt = 2 * p - 1, 2 * t - 1
    assert pbc_loss(ys, yt, m, period=2.0, origin=-1.0).item() == pytest.approx(
        2 * frac_pbc.item(), rel=1e-12
    )
    assert periodic_loss(ys, yt, m, period=2.0).item() == pytest.approx(2 * frac_per.item(), rel=1e-12)


# ----------------------------------------------------------------------------- scaling


def data_matrices(n=64, max_atoms=6, seed=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    R = max_atoms + 4
    x = torch.zeros(n, R, 3, dtype=dtype)
    n_sites = torch.randint(1, max_atoms + 1, (n,), generator=g)
    mask = torch.arange(R)[None] < n_sites[:, None]
    x[mask] = torch.rand(int(mask.sum()), 3, generator=g, dtype=dtype)
    x[:, 0, 0] = 0.0  # exactly on the boundary
    lat = torch.zeros(n, 3, 3, dtype=dtype)
    lat[:, [0, 1, 2], [0, 1, 2]] = 4.0 + 3.0 * torch.rand(n, 3, generator=g, dtype=dtype)
    lat[:, 1, 0] = torch.randn(n, generator=g, dtype=dtype)
    lat[:, 2, :2] = torch.randn(n, 2, generator=g, dtype=dtype)
    x[:, -3:] = lat
    return x, mask


def test_scaler_round_trip_ranges_and_statistics():
    x, mask = data_matrices()
    scaler = StructureScaler.fit(x)
    y = scaler.to_model(x, mask)
    coords = y[mask]
    assert coords.min() >= -1 and coords.max() < 1
    assert torch.all(y[~gen.real_rows(mask)] == 0)
    lat = y[:, -3:].reshape(-1, 9)
    varying = scaler.lattice_std.reshape(-1) != 1.0  # upper-triangle zeros keep std 1
    assert varying.sum() == 6
    assert torch.allclose(lat.mean(0), torch.zeros(9, dtype=x.dtype), atol=1e-12)
    assert torch.allclose(lat.std(0, unbiased=False)[varying], torch.ones(6, dtype=x.dtype), atol=1e-12)
    assert torch.allclose(scaler.from_model(y, mask), x, atol=1e-12)
    x32, y32 = x.float(), scaler.to_model(x.float(), mask)
    assert torch.allclose(scaler.from_model(y32, mask), x32, atol=1e-6, rtol=1e-6)
    # samples outside the cell come back wrapped; padding rows of a sample are dropped
    y2 = y.clone()
    y2[0, 0] = torch.tensor([1.2, -1.4, 2.9])
    y2[0, -4] = 5.0
    back = scaler.from_model(y2, mask)
    assert torch.allclose(back[0, 0], torch.tensor([0.1, 0.8, 0.95], dtype=x.dtype), atol=1e-12)
    assert torch.all(back[0, -4] == 0)


def test_scaler_state_dict_is_json_and_round_trips():
    x, mask = data_matrices()
    scaler = StructureScaler.fit(x.numpy())
    state = json.loads(json.dumps(scaler.state_dict()))
    again = StructureScaler.from_state_dict(state)
    assert torch.equal(again.to_model(x, mask), scaler.to_model(x, mask))
    batch = again.transform_batch({"x": x, "x_init": x, "mask": mask, "energy": torch.zeros(len(x))})
    assert torch.equal(batch["x_init"], scaler.to_model(x, mask))
    with pytest.raises(ValueError, match="scaler state has no 'lattice_std'"):
        StructureScaler.from_state_dict({"lattice_mean": state["lattice_mean"]})


# ----------------------------------------------------------------------------- flow


def test_flow_path_end_points_and_velocity():
    g = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(5, 7, 3, generator=g), torch.randn(5, 7, 3, generator=g)
    path = FlowPath()
    assert torch.equal(path.sample_xt(x0, x1, torch.zeros(5)), x0)
    assert torch.allclose(path.sample_xt(x0, x1, torch.ones(5)), x1, atol=1e-6)
    t, xt, ut = path.sample_location_and_conditional_flow(x0, x1, generator=g)
    assert t.shape == (5,) and torch.all((t >= 0) & (t < 1))
    assert torch.equal(ut, x1 - x0)
    assert torch.allclose(xt, x0 + t[:, None, None] * (x1 - x0))
    a, b = x0[:1].expand(2000, 7, 3), x1[:1].expand(2000, 7, 3)
    noisy = FlowPath(sigma=0.1).sample_xt(a, b, 0.5, generator=g)
    assert (noisy - 0.5 * (a + b)).std().item() == pytest.approx(0.1, rel=0.03)


def test_flow_path_periodic_rows_take_the_shortest_way():
    g = torch.Generator().manual_seed(5)
    x0 = 2 * torch.rand(4, 6, 3, generator=g) - 1
    x1 = 2 * torch.rand(4, 6, 3, generator=g) - 1
    rows = torch.zeros(4, 6, dtype=torch.bool)
    rows[:, :3] = True
    path = FlowPath(period=2.0, origin=-1.0)
    u = path.conditional_flow(x0, x1, periodic=rows)
    assert torch.all(u[rows].abs() <= 1.0)
    assert torch.equal(u[~rows], (x1 - x0)[~rows])
    wrapped = torch.remainder(x0 + u - x1 + 1, 2.0) - 1  # x0 + u = x1 modulo the period
    assert torch.allclose(wrapped, torch.zeros_like(wrapped), atol=1e-6)
    ends = path.sample_xt(x0, x1, torch.ones(4), periodic=rows)
    assert torch.allclose(ends, x1, atol=1e-6)
    xt = path.sample_xt(x0, x1, torch.full((4,), 0.3), periodic=rows)
    assert xt[rows].min() >= -1 and xt[rows].max() < 1
    # 0.9 -> -0.9 goes through the boundary (+0.2), not across the cell (-1.8)
    a, b = torch.tensor([[[0.9, 0.0, 0.0]]]), torch.tensor([[[-0.9, 0.0, 0.0]]])
    one = torch.ones(1, 1, dtype=torch.bool)
    assert path.conditional_flow(a, b, periodic=one)[0, 0, 0].item() == pytest.approx(0.2, abs=1e-6)
    assert path.sample_xt(a, b, 0.5, periodic=one)[0, 0, 0].item() == pytest.approx(-1.0, abs=1e-6)


def test_euler_reaches_the_target_of_the_exact_conditional_velocity():
    g = torch.Generator().manual_seed(6)
    x0, x1 = torch.randn(8, 5, 3, generator=g), torch.randn(8, 5, 3, generator=g)
    seen = []
    out = euler_sample(
        lambda x, t: (x1 - x) / (1 - t[:, None, None]), x0, steps=100, callback=lambda i, t, x: seen.append(i)
    )
    assert torch.allclose(out, x1, atol=1e-5) and seen == list(range(100))
    # a constant velocity across the periodic boundary, wrapped after every step
    path = FlowPath()
    start = torch.full((1, 1, 1), 0.9)
    one = torch.ones(1, 1, dtype=torch.bool)
    out = euler_sample(
        lambda x, t: torch.full_like(x, 0.5), start, steps=10, wrap=lambda x: path.wrap(x, one)
    )
    assert out.item() == pytest.approx(-0.6, abs=1e-6)


@pytest.mark.parametrize("s", [0.5, 2.0])
def test_euler_transports_a_gaussian_with_the_closed_form_marginal_velocity(s):
    # x_t = (1 - t) x0 + t x1, x0 ~ N(0, 1), x1 ~ N(m, s^2) independent: x_t ~ N(t m, sd_t^2),
    # sd_t = sqrt((1 - t)^2 + t^2 s^2), and v(x, t) = m + (sd_t' / sd_t) (x - t m)
    m = 2.0

    def velocity(x, t):
        t = t[:, None]
        sd = torch.sqrt((1 - t) ** 2 + (t * s) ** 2)
        return m + (-(1 - t) + t * s * s) / sd**2 * (x - t * m)

    x0 = torch.randn(20000, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    out = euler_sample(velocity, x0, steps=100)
    assert out.mean().item() == pytest.approx(m, rel=0.02)
    assert out.std().item() == pytest.approx(s, rel=0.02)
    # in 1-D the flow is the monotone map m + s x0
    assert torch.allclose(out, m + s * x0, atol=0.03 * s * (1 + x0.abs().max().item()))


# ----------------------------------------------------------------------------- diffusion


def test_scheduler_configs_round_trip_and_share_the_schedule():
    ddpm = ddpm_scheduler()
    assert ddpm.config.beta_schedule == "squaredcos_cap_v2" and ddpm.config.num_train_timesteps == 1000
    assert ddpm.config.prediction_type == "epsilon" and ddpm.config.clip_sample is False
    ddim = ddim_scheduler(ddpm)
    assert torch.equal(ddim.alphas_cumprod, ddpm.alphas_cumprod)
    for sched in (ddpm, ddim):
        desc = json.loads(json.dumps(gen.scheduler_to_dict(sched)))
        again = gen.scheduler_from_dict(desc)
        assert type(again) is type(sched) and torch.equal(again.alphas_cumprod, sched.alphas_cumprod)
        assert gen.scheduler_to_dict(again) == desc
    assert torch.equal(type(ddpm).from_config(ddpm.config).betas, ddpm.betas)
    ddim.set_timesteps(100)  # trailing spacing: the first step is the one x_T ~ N(0, I) belongs to
    assert ddim.timesteps[0].item() == 999
    with pytest.raises(ValueError, match="unknown diffusion sampler 'euler'; choose from ddpm, ddim"):
        make_scheduler("euler")


@pytest.mark.parametrize(("method", "steps"), [("ddim", 50), ("ddpm", 1000), ("ddpm", 100)])
def test_diffusion_samplers_recover_a_point_mass(method, steps):
    base = ddpm_scheduler()
    x_star = torch.tensor([[0.7, -1.3, 2.5], [0.0, 0.1, -0.4]])  # outside [-1, 1]: no clipping
    g = torch.Generator().manual_seed(8)
    x_T = torch.randn(16, 2, 3, generator=g)
    out = diffusion_sample(exact_epsilon_point(base, x_star), make_scheduler(method, base), x_T, steps, g)
    assert (out - x_star).abs().max().item() < 1e-3


@pytest.mark.parametrize(("method", "steps"), [("ddim", 100), ("ddpm", 1000)])
def test_diffusion_samplers_reproduce_a_gaussian(method, steps):
    base, m, s = ddpm_scheduler(), 2.0, 0.5
    g = torch.Generator().manual_seed(9)
    x_T = torch.randn(20000, 1, generator=g)
    out = diffusion_sample(exact_epsilon_gaussian(base, m, s), make_scheduler(method, base), x_T, steps, g)
    assert out.mean().item() == pytest.approx(m, rel=0.03)
    assert out.std().item() == pytest.approx(s, rel=0.03)


def test_diffusion_sample_masks_padding_and_is_reproducible():
    base = ddpm_scheduler()
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[:, :2] = True
    keep = gen.real_rows(mask)

    def eps_fn(x, t):
        return torch.ones_like(x)  # pushes every row, padding included

    x_T = torch.randn(3, 9, 3, generator=torch.Generator().manual_seed(10))
    runs = [
        diffusion_sample(
            eps_fn, make_scheduler("ddpm", base), x_T, 20, torch.Generator().manual_seed(1), keep
        )
        for _ in range(2)
    ]
    assert torch.all(runs[0][~keep] == 0) and torch.any(runs[0][keep] != 0)
    assert torch.equal(runs[0], runs[1])
    ddim = [diffusion_sample(eps_fn, make_scheduler("ddim", base), x_T, 10, None, keep) for _ in range(2)]
    assert torch.equal(ddim[0], ddim[1])


# ----------------------------------------------------------------------------- objectives


def make_batch(B=3, max_atoms=5, seed=11, dtype=torch.float32, modification=False):
    g = torch.Generator().manual_seed(seed)
    R = max_atoms + 4
    n_sites = torch.tensor([1, 3, max_atoms])[:B]
    mask = torch.arange(R)[None] < n_sites[:, None]

    def structure():
        x = torch.zeros(B, R, 3, dtype=dtype)
        x[mask] = 2 * torch.rand(int(mask.sum()), 3, generator=g, dtype=dtype) - 1
        x[:, -3:] = torch.randn(B, 3, 3, generator=g, dtype=dtype)
        return x

    batch = {
        "x": structure(),
        "mask": mask,
        "n_sites": n_sites,
        "elements": torch.where(mask[..., None], torch.rand(B, R, 4, generator=g), 0.0).to(dtype),
        "properties": torch.zeros(B, R, 2, dtype=dtype),
        "spacegroup_ops": torch.zeros(B, 8, 4, 4, dtype=dtype),
        "energy": torch.randn(B, generator=g, dtype=dtype),
        "index": torch.arange(B),
    }
    if modification:
        batch["x_init"] = structure()
    return batch


class TinyNet(torch.nn.Module):
    """Per-row MLP of (x, t, pooled elements, energy[, x_init]): the smallest model(x, t, cond)."""

    def __init__(self, init=False):
        super().__init__()
        self.init = init
        self.net = torch.nn.Sequential(torch.nn.Linear(3 + 1 + 4 + 1 + 3 * init, 16), torch.nn.SiLU())
        self.out = torch.nn.Linear(16, 3)

    def forward(self, x, t, cond):
        mask = cond["mask"][..., None].to(x.dtype)
        pooled = (cond["elements"] * mask).sum(1) / mask.sum(1)
        per_structure = torch.cat([t[:, None] / 1000, pooled, cond["energy"][:, None]], -1)
        feats = [x, per_structure[:, None].expand(-1, x.shape[1], -1)]
        if self.init:
            feats.append(cond["x_init"])
        return self.out(self.net(torch.cat(feats, -1)))


def oracle(name, objective, batch):
    """A model that knows the target of ``batch``: x1, the noise, or the velocity towards x1."""
    x1, mask = batch["x"], batch["mask"]
    if name == "regression":
        return lambda x, t, cond: x1
    if name in ("ddpm", "palette"):
        abar = objective.scheduler.alphas_cumprod.to(torch.float64)

        def eps(x, t, cond):
            a = abar[t.long()].to(x.dtype)[:, None, None]
            return (x - a.sqrt() * x1) / (1 - a).sqrt()

        return eps
    rows = mask if objective.periodic else None

    def velocity(x, t, cond):
        left = 1 - t[:, None, None] / objective.time_scale
        return objective.path.displacement(x, x1, rows) / left

    return velocity


@pytest.mark.parametrize("name", list(METHODS))
def test_objective_loss_is_finite_with_gradients_and_deterministic(name):
    objective = make_method(name)
    batch = make_batch(modification=objective.needs_init)
    model = TinyNet(init=name == "palette")
    loss, logs = objective.loss(model, batch, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and {"loss", "coords", "lattice"} <= set(logs)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.all(torch.isfinite(g)) for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    again, _ = objective.loss(model, batch, torch.Generator().manual_seed(0))
    other, _ = objective.loss(model, batch, torch.Generator().manual_seed(1))
    assert again.item() == loss.item()
    if name != "regression":  # the only objective without randomness
        assert other.item() != loss.item()


@pytest.mark.parametrize("name", list(METHODS))
def test_objective_loss_vanishes_for_an_oracle(name):
    objective = make_method(name)
    batch = make_batch(dtype=torch.float64, modification=objective.needs_init)
    for seed in range(3):
        loss, _ = objective.loss(oracle(name, objective, batch), batch, torch.Generator().manual_seed(seed))
        assert loss.item() < 1e-9
        if name == "regression":
            assert loss.item() == 0.0
    if name == "regression":
        for coords in ("plain", "pbc"):
            obj = make_method(name, coords=coords, kind="norm")
            assert obj.loss(oracle(name, obj, batch), batch)[0].item() == 0.0


@pytest.mark.parametrize("name", list(METHODS))
def test_objective_samples_land_on_the_target_of_an_oracle(name):
    objective = make_method(name)
    batch = make_batch(dtype=torch.float64, modification=objective.needs_init)
    cond = gen.condition(batch)
    steps = {"ddpm": 50, "palette": 50}.get(name)
    out = objective.sample(
        oracle(name, objective, batch),
        cond,
        x_init=batch.get("x_init"),
        steps=steps,
        generator=torch.Generator(),
    )
    keep = gen.real_rows(batch["mask"])
    assert out.shape == batch["x"].shape and out.dtype == torch.float64
    assert torch.all(out[~keep] == 0)
    diff = out - batch["x"]
    if getattr(objective, "periodic", False):
        diff = torch.where(batch["mask"][..., None], gen.periodic_difference(out, batch["x"], 2.0), diff)
    assert diff.abs().max().item() < 1e-5


@pytest.mark.parametrize("name", list(METHODS))
def test_objective_samples_are_reproducible_and_padded_with_zeros(name):
    objective = make_method(name)
    batch = make_batch(modification=objective.needs_init)
    model = TinyNet(init=name == "palette")
    torch.nn.init.normal_(model.out.weight)
    cond = gen.condition(batch, keep_init=name == "palette")
    runs = [
        objective.sample(
            model, cond, x_init=batch.get("x_init"), steps=5, generator=torch.Generator().manual_seed(3)
        )
        for _ in "ab"
    ]
    assert torch.equal(runs[0], runs[1])
    assert torch.all(runs[0][~gen.real_rows(batch["mask"])] == 0) and torch.all(torch.isfinite(runs[0]))
    if objective.needs_init and name != "palette":
        return
    other = objective.sample(
        model, cond, x_init=batch.get("x_init"), steps=5, generator=torch.Generator().manual_seed(4)
    )
    assert not torch.equal(runs[0], other)


@pytest.mark.parametrize("name", list(METHODS))
def test_the_model_never_sees_data_in_padding_rows(name):
    objective = make_method(name, sigma=0.3) if "flow" in name else make_method(name)
    batch = make_batch(modification=objective.needs_init)
    batch["x"][~gen.real_rows(batch["mask"])] = 7.0  # stray values in the input must not leak
    padding = ~gen.real_rows(batch["mask"])
    calls = []

    def spy(x, t, cond):
        calls.append((x, t))
        return torch.randn(x.shape, generator=torch.Generator().manual_seed(len(calls)))

    objective.loss(spy, batch, torch.Generator().manual_seed(0))
    cond = gen.condition(batch, keep_init=True)
    objective.sample(spy, cond, x_init=batch.get("x_init"), steps=4, generator=torch.Generator())
    assert calls and all(torch.all(x[padding] == 0) for x, _ in calls)
    if name in ("ddpm", "palette"):  # diffusion: integer step indices 0..999
        assert all(torch.equal(t, t.round()) and t.min() >= 0 and t.max() <= 999 for _, t in calls)


def test_generation_sources_and_modification_inputs():
    mask = make_batch(B=3, max_atoms=5)["mask"][2:].expand(4000, -1).clone()
    g = torch.Generator().manual_seed(12)
    uniform = make_method("flow-uniform").source(mask, torch.zeros(4000, 9, 3), g)
    assert uniform[mask].min() >= -1 and uniform[mask].max() < 1
    assert uniform[mask].std().item() == pytest.approx(2 / math.sqrt(12), rel=0.03)
    assert uniform[:, -3:].std().item() == pytest.approx(1.0, rel=0.03)  # lattice rows: N(0, 1)
    assert make_method("flow-uniform").periodic and not make_method("flow-normal").periodic
    seen = {}

    def spy(x, t, cond):
        seen.update(x=x, t=t, cond=cond)
        return x

    mod = make_batch(modification=True)
    make_method("regression").loss(spy, mod)
    assert (
        torch.equal(seen["x"], mod["x_init"]) and torch.all(seen["t"] == 0) and "x_init" not in seen["cond"]
    )
    make_method("palette").loss(spy, mod, torch.Generator().manual_seed(0))
    assert torch.equal(seen["cond"]["x_init"], mod["x_init"]) and seen["t"].max() < 1000
    make_method("modification-flow").loss(spy, mod, torch.Generator().manual_seed(0))
    assert "x_init" not in seen["cond"] and seen["t"].max() <= 1000  # flow time reaches the model x1000
    with pytest.raises(ValueError, match="the 'palette' method modifies a structure: pass x_init"):
        make_method("palette").sample(spy, gen.condition(mod))


def test_objective_registry_and_config_round_trip():
    assert set(METHODS) == {
        "ddpm",
        "flow-normal",
        "flow-uniform",
        "regression",
        "modification-flow",
        "palette",
    }
    for name in METHODS:
        objective = make_method(name)
        config = json.loads(json.dumps(objective.to_dict()))
        assert config["name"] == name
        again = method_from_dict(config)
        assert type(again) is type(objective) and again.to_dict() == config
    custom = make_method("ddpm", method="ddim", inference_steps=20, eta=0.5)
    assert method_from_dict(custom.to_dict()).to_dict()["inference_steps"] == 20
    with pytest.raises(ValueError, match="unknown objective 'gan'; choose from ddpm, flow-normal"):
        make_method("gan")
    with pytest.raises(ValueError, match="unknown diffusion sampler 'ddxm'"):
        make_method("ddpm", method="ddxm")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_declares_its_samplers_and_refuses_others(name):
    method = make_method(name)
    batch = make_batch(modification=method.needs_init)
    model = TinyNet(init=name == "palette")
    cond = gen.condition(batch, keep_init=name == "palette")
    expected = {"ddpm": ("ddim", "ddpm"), "palette": ("ddim", "ddpm"), "regression": ("regression",)}
    assert method.samplers == expected.get(name, ("flow", "heun", "midpoint"))
    x_init = batch.get("x_init")
    for sampler in method.samplers:  # each declared sampler runs through the one signature
        out = method.sample(model, cond, x_init=x_init, steps=3, generator=torch.Generator(), sampler=sampler)
        assert out.shape == batch["x"].shape
    with pytest.raises(ValueError, match=rf"the '{name}' method samples with .*, not 'rk4'"):
        method.sample(model, cond, x_init=x_init, steps=3, generator=torch.Generator(), sampler="rk4")
    with pytest.raises(TypeError, match="takes no option"):
        method.sample(model, cond, x_init=x_init, steps=3, generator=torch.Generator(), temperature=2.0)


def test_ddim_and_ddpm_samplers_differ_and_ddim_without_noise_is_deterministic():
    method = make_method("ddpm")
    batch = make_batch()
    model = TinyNet()
    torch.nn.init.normal_(model.out.weight)
    cond = gen.condition(batch)

    def run(sampler, seed):
        return method.sample(
            model, cond, steps=5, generator=torch.Generator().manual_seed(seed), sampler=sampler
        )

    assert not torch.equal(run("ddim", 0), run("ddpm", 0))
    # DDIM with eta=0 draws only the starting noise: the same seed gives the same samples
    assert torch.equal(run("ddim", 0), run("ddim", 0))


def test_no_device_is_hard_coded():
    for module in (gen.losses, gen.scaling, gen.flow, gen.diffusion, gen.methods):
        source = inspect.getsource(module).lower()
        for pattern in ('"cuda', "'cuda", ".cuda("):
            assert pattern not in source, (module.__name__, pattern)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_objectives_follow_the_device_of_the_batch():
    device = torch.device("cuda")
    for name in METHODS:
        objective = make_method(name)
        batch = {k: v.to(device) for k, v in make_batch(modification=objective.needs_init).items()}
        model = TinyNet(init=name == "palette").to(device)
        loss, _ = objective.loss(model, batch, torch.Generator().manual_seed(0))  # CPU generator
        assert loss.device.type == "cuda"
        cond = gen.condition(batch, keep_init=name == "palette")
        out = objective.sample(
            model, cond, x_init=batch.get("x_init"), steps=3, generator=torch.Generator().manual_seed(0)
        )
        assert out.device.type == "cuda"


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_clipping_keeps_the_first_step_from_t999_bounded(sampler):
    """With trailing spacing the first step starts where abar = 2.4e-9: an error of 0.05 in the
    predicted noise puts the state where a network (whose output, like the noise it was trained
    on, is bounded) cannot pull it back, unless the predicted clean sample is clipped."""
    x_star = torch.tensor([[0.5, -0.8, 1.5]])
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(64, 1, 3, generator=g)
    outs = {}
    for clip in (False, True):
        base = ddpm_scheduler(clip_sample=clip, clip_sample_range=3.0)
        exact = exact_epsilon_point(base, x_star)

        def eps(x, t):
            return (exact(x, t) + 0.05).clamp(-4.0, 4.0)  # slightly wrong, bounded like a network

        outs[clip] = diffusion_sample(eps, make_scheduler(sampler, base), x_T.clone(), 100, g)
    assert outs[False].abs().max().item() > 50  # the divergence the clipping is there for
    assert (outs[True] - x_star).abs().max().item() < 0.01


def test_diffusion_method_clips_by_default():
    method = make_method("ddpm")
    assert method.scheduler.config.clip_sample and method.scheduler.config.clip_sample_range == 3.0
    assert method.scheduler.config.timestep_spacing == "trailing"
