"""The conditional 1D UNet: shapes, initialisation, conditioning, configs and a learning check."""

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ase_crystalgen.models import CrystalUNet, UNetConfig  # noqa: E402
from ase_crystalgen.representation import property_table, spacegroup_operations  # noqa: E402

# A small but complete network (two levels, attention, scale-shift, 2 heads) that runs in ms.
TINY = dict(
    model_channels=16,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_levels=(1,),
    num_heads=2,
    groups=8,
    element_channels=16,
    spacegroup_channels=16,
    use_scale_shift_norm=True,
)


def make_batch(batch_size=4, rows=64, seed=0, x_init=False):
    """A batch in the layout of ``CrystalDataset`` with real one-hots, properties and operations."""
    rng = np.random.default_rng(seed)
    max_atoms = rows - 4
    elements = torch.zeros(batch_size, rows, 103)
    properties = torch.zeros(batch_size, rows, 22)
    mask = torch.zeros(batch_size, rows, dtype=torch.bool)
    x = torch.zeros(batch_size, rows, 3)
    table = torch.as_tensor(property_table(), dtype=torch.float32)
    spacegroups = [225, 221, 194, 62, 1, 12, 166, 139]
    ops = []
    for b in range(batch_size):
        n = int(rng.integers(2, min(9, max_atoms)))
        z = np.sort(rng.integers(1, 84, size=n))
        mask[b, :n] = True
        elements[b, torch.arange(n), torch.as_tensor(z - 1)] = 1.0
        properties[b, :n] = table[z - 1]
        x[b, :n] = torch.as_tensor(rng.uniform(0, 1, (n, 3)), dtype=torch.float32)
        x[b, -3:] = torch.as_tensor(np.diag(rng.uniform(3, 6, 3)) / 6.0, dtype=torch.float32)
        ops.append(
            torch.as_tensor(spacegroup_operations(spacegroups[b % len(spacegroups)]), dtype=torch.float32)
        )
    batch = {
        "x": x,
        "mask": mask,
        "elements": elements,
        "properties": properties,
        "spacegroup_ops": torch.stack(ops),
        "energy": torch.as_tensor(rng.normal(-0.5, 0.3, batch_size), dtype=torch.float32),
    }
    if x_init:
        batch["x_init"] = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return batch


def randomise_zero_layers(model, seed=0):
    """Give the zero-initialised layers small random values, so a fresh model is not the zero map."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().max() == 0:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return model


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # These networks are too small to gain from a second thread, and on a shared 2-core machine
    # two spinning OpenMP threads per process made the learning test up to 5x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def batch():
    return make_batch()


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return CrystalUNet(UNetConfig(**{**TINY, **overrides}))


def test_small_config_shape_and_zero_output_at_init(batch):
    torch.manual_seed(0)
    model = CrystalUNet(UNetConfig.small())
    assert 1_000_000 < model.parameter_count() < 3_000_000
    out = model(batch["x"], torch.full((4,), 500.0), batch)
    assert out.shape == batch["x"].shape
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_custom_config_shapes(batch_size):
    b = make_batch(batch_size, rows=32, x_init=True)
    model = tiny_model(rows=32, channel_mult=(1, 2, 2, 4), attention_levels=(0, 3), init_channels=3)
    out = randomise_zero_layers(model)(b["x"], torch.rand(batch_size), b)
    assert out.shape == (batch_size, 32, 3)
    assert torch.isfinite(out).all()


def test_time_argument_forms(batch):
    model = randomise_zero_layers(tiny_model())
    x = batch["x"]
    assert torch.equal(model(x, 3.0, batch), model(x, torch.full((4,), 3.0), batch))
    assert torch.equal(model(x, None, batch), model(x, torch.zeros(4), batch))
    assert torch.equal(model(x, torch.tensor(7), batch), model(x, torch.full((4,), 7.0), batch))
    with pytest.raises(ValueError, match=re.escape("t must be a scalar or have shape (4,), got (2,)")):
        model(x, torch.zeros(2), batch)
    with pytest.raises(ValueError, match=re.escape("x must have shape (B, 64, 3), got (4, 63, 3)")):
        model(x[:, 1:], 0.0, batch)
    with pytest.raises(ValueError, match=re.escape("cond['properties'] must have shape (4, 64, 22)")):
        model(x, 0.0, dict(batch, properties=batch["properties"][..., :21]))


def test_nonzero_after_one_step_and_gradients_reach_every_parameter(batch):
    model = tiny_model(init_channels=3)
    b = make_batch(x_init=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t = torch.linspace(0, 999, 4)
    for step in range(3):
        opt.zero_grad()
        out = model(b["x"], t, b)
        if step == 1:
            assert out.abs().max() > 0  # the zero-initialised head moved after one step
        loss = (out - b["x"]).pow(2).mean()
        loss.backward()
        opt.step()
    # The zero-initialised layers block gradients to what lies before them for a step or two;
    # by the third backward every parameter must receive a non-zero gradient.
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert dead == []


@pytest.mark.parametrize("key", ["energy", "spacegroup_ops", "elements", "properties", "t"])
def test_each_condition_changes_the_output(batch, key):
    model = randomise_zero_layers(tiny_model())
    t = torch.full((4,), 100.0)
    ref = model(batch["x"], t, batch)
    changed = dict(batch)
    if key == "t":
        t = t + 1.0
    elif key == "energy":
        changed["energy"] = batch["energy"] + 0.1
    elif key == "spacegroup_ops":
        changed["spacegroup_ops"] = batch["spacegroup_ops"].roll(1, dims=0)
    elif key == "elements":
        # swap the species of the first atom of every structure for another element
        elements = batch["elements"].clone()
        elements[:, 0] = elements[:, 0].roll(5, dims=-1)
        changed["elements"] = elements
    else:
        changed["properties"] = batch["properties"] * 1.1
    diff = (model(batch["x"], t, changed) - ref).abs().amax(dim=(1, 2))
    assert (diff > 1e-6).all()


def test_garbage_in_non_atom_rows_of_the_conditions_is_ignored(batch):
    model = randomise_zero_layers(tiny_model())
    garbage = dict(batch)
    outside = ~batch["mask"]
    garbage["elements"] = torch.where(
        outside[..., None], torch.rand_like(batch["elements"]), batch["elements"]
    )
    garbage["properties"] = torch.where(
        outside[..., None], torch.randn_like(batch["properties"]), batch["properties"]
    )
    t = torch.full((4,), 10.0)
    assert torch.equal(model(batch["x"], t, garbage), model(batch["x"], t, batch))
    # without an explicit mask, the rows with a one-hot are taken as the atoms
    no_mask = {k: v for k, v in batch.items() if k != "mask"}
    assert torch.allclose(model(batch["x"], t, no_mask), model(batch["x"], t, batch))


def test_energy_is_optional_and_x_init_is_used():
    b = make_batch(x_init=True)
    no_energy = {k: v for k, v in b.items() if k != "energy"}
    randomise_zero_layers(tiny_model(use_energy=False))(b["x"], 0.0, no_energy)
    with pytest.raises(ValueError, match="condition 'energy' is missing from cond"):
        tiny_model()(b["x"], 0.0, no_energy)

    model = randomise_zero_layers(tiny_model(init_channels=3))
    moved = dict(b, x_init=b["x_init"] + 0.1)
    assert not torch.allclose(model(b["x"], 0.0, moved), model(b["x"], 0.0, b))
    with pytest.raises(ValueError, match="condition 'x_init' is missing from cond"):
        model(b["x"], 0.0, {k: v for k, v in b.items() if k != "x_init"})
    with pytest.raises(ValueError, match=re.escape("cond['x_init'] must have shape (4, 64, 3)")):
        model(b["x"], 0.0, dict(b, x_init=b["x_init"][..., :2]))


def test_config_round_trip_through_json(batch):
    config = UNetConfig(**TINY, init_channels=3, dropout=0.1)
    d = json.loads(json.dumps(config.to_dict()))
    assert d["channel_mult"] == [1, 2]
    again = UNetConfig.from_dict(d)
    assert again == config
    torch.manual_seed(1)
    a = randomise_zero_layers(CrystalUNet(config)).eval()
    b = CrystalUNet(again).eval()
    b.load_state_dict(a.state_dict())
    cond = make_batch(x_init=True)
    assert torch.equal(a(cond["x"], 5.0, cond), b(cond["x"], 5.0, cond))
    with pytest.raises(ValueError, match=re.escape("unknown UNetConfig fields ['width']")):
        UNetConfig.from_dict({"width": 3})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(rows=62, channel_mult=(1, 2, 4)),
            "rows=62 is not divisible by 2**(len(channel_mult) - 1) = 4: "
            "each of the 2 downsamplings halves the rows",
        ),
        (
            dict(model_channels=24, groups=32),
            "groups=32 does not divide the level widths [24, 48] of [24, 48, 96]",
        ),
        (dict(attention_levels=(3,)), "attention_levels [3] are not levels of channel_mult (0..2)"),
        (dict(num_heads=3), "num_heads=3 does not divide the attention width 128"),
        (dict(channel_mult=()), "channel_mult must be a non-empty tuple of positive ints, got ()"),
        (dict(num_res_blocks=0), "num_res_blocks must be >= 1, got 0"),
        (dict(dropout=1.0), "dropout must be in [0, 1), got 1.0"),
        (dict(init_channels=-1), "init_channels must be >= 0, got -1"),
    ],
)
def test_invalid_configs(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        UNetConfig(**kwargs)


def test_paper_size_on_meta_device():
    config = UNetConfig.paper()
    assert config.widths == [128, 256, 512, 1024] and config.num_res_blocks == 7
    with torch.device("meta"):
        model = CrystalUNet(config)
    n = model.parameter_count()
    assert abs(n - 305e6) / 305e6 < 0.15
    assert n == 306_091_651  # pins the architecture; the authors report about 305 M


def test_same_seed_same_initialisation():
    a, b, c = tiny_model(seed=3), tiny_model(seed=3), tiny_model(seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_learns_structures_from_their_conditions():
    # Four structures that differ only in their conditions: the network has to read the
    # elements, space group and energy to reproduce each one's coordinates and lattice.
    b = make_batch(4, seed=7)
    model = tiny_model(seed=0, model_channels=32, element_channels=32, spacegroup_channels=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_in = torch.zeros_like(b["x"])
    t = torch.zeros(4)

    def loss_fn():
        return (model(x_in, t, b) - b["x"]).pow(2).mean()

    with torch.no_grad():
        initial = loss_fn().item()
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = loss_fn().item()
    assert final < initial / 10, (initial, final)


def test_save_pretrained_and_from_pretrained_round_trip(batch, tmp_path):
    """A model directory names its class and constructor arguments; loading rebuilds the
    same network (same outputs), and says what is wrong with a directory it cannot load."""
    from ase_crystalgen.models.io import CheckpointError, from_pretrained, register_model, save_pretrained

    torch.manual_seed(0)
    model = CrystalUNet(UNetConfig.small(rows=64, **TINY))
    for p in model.parameters():  # the output layer starts at zero; give every weight a value
        torch.nn.init.normal_(p, std=0.05)
    model.eval()
    schema = {"max_atoms": 60, "task": "generation"}
    save_pretrained(tmp_path / "m", model, objective={"name": "flow-uniform"}, scaler={}, data_schema=schema)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["model_class"] == "CrystalUNet" and meta["format_version"] == 1
    assert UNetConfig.from_dict(meta["model_config"]) == model.config
    again, meta2 = from_pretrained(tmp_path / "m")
    x = torch.randn(4, 64, 3, generator=torch.Generator().manual_seed(1))
    out = model(x, torch.full((4,), 5.0), batch)
    assert out.abs().max() > 0
    torch.testing.assert_close(again(x, torch.full((4,), 5.0), batch), out, rtol=0, atol=0)
    assert meta2["data_schema"] == schema

    (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "model_class": "CrystalGAN"}))
    with pytest.raises(CheckpointError, match=r"unknown model class 'CrystalGAN'; registered: CrystalUNet"):
        from_pretrained(tmp_path / "m")

    class Config(dict):
        to_dict = dict.copy
        from_dict = classmethod(lambda cls, d: cls(d))

    class Linear(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config, self.lin = config, torch.nn.Linear(config["n"], config["n"])

    with pytest.raises(CheckpointError, match=r"model class 'Linear' is not registered \(register_model\)"):
        save_pretrained(tmp_path / "l", Linear(Config(n=3)), objective={}, scaler={}, data_schema={})
    from ase_crystalgen.models import io

    register_model(Linear, Config)  # a registered class saves and loads by name
    try:
        lin = Linear(Config(n=3))
        save_pretrained(tmp_path / "l", lin, objective={}, scaler={}, data_schema={})
        loaded, _ = from_pretrained(tmp_path / "l")
        assert type(loaded) is Linear and loaded.config == {"n": 3}
        torch.testing.assert_close(loaded.lin.weight, lin.lin.weight, rtol=0, atol=0)
    finally:
        io._REGISTRY.pop("Linear")
