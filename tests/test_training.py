"""Training engine: config, checkpoints, exact resumption, DDP on CPU, sampling and evaluation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ase_crystalgen.datasets import build_dataset  # noqa: E402
from ase_crystalgen.inference.pipeline import decode, load_model, sample_tensors  # noqa: E402
from ase_crystalgen.models.io import CheckpointError, load_checkpoint  # noqa: E402
from ase_crystalgen.training import TrainConfig, load_config, train  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_datasets import make_structures, write_cdvae_csv  # noqa: E402

TINY = {
    "model_channels": 16,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_levels": [1],
    "groups": 8,
    "element_channels": 16,
    "spacegroup_channels": 16,
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train-data")
    csv = write_cdvae_csv(tmp / "perov.csv", make_structures())
    build_dataset(csv, tmp / "data", progress=False, min_fraction=0.0, max_atoms=8, split=(0.75, 0.25, 0.0))
    return tmp / "data"


def config(data_dir, out, **kw):
    base = dict(
        data=str(data_dir),
        out=str(out),
        model=TINY,
        batch_size=4,
        epochs=50,
        max_steps=6,
        warmup_steps=2,
        checkpoint_every=2,
        log_every=1,
        progress=False,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


# --- configuration -----------------------------------------------------------------------


def test_config_validation_and_yaml(tmp_path):
    with pytest.raises(ValueError, match=r"^unknown objective 'gan'; choose from ddpm, flow-normal"):
        TrainConfig(data="d", out="o", objective="gan")
    with pytest.raises(ValueError, match=r"^unknown training option\(s\): bach_size$"):
        TrainConfig.from_dict({"data": "d", "out": "o", "bach_size": 3})
    with pytest.raises(ValueError, match=r"^training config needs data and out$"):
        TrainConfig.from_dict({})
    path = tmp_path / "run.yaml"
    path.write_text("data: d\nout: o\nobjective: ddpm\nbatch_size: 8\n")
    cfg = load_config(path, ["lr=1e-3", "model={model_channels: 16}"])
    assert (cfg.objective, cfg.batch_size, cfg.lr, cfg.model) == ("ddpm", 8, 1e-3, {"model_channels": 16})
    assert (
        cfg.task == "generation"
        and TrainConfig(data="d", out="o", objective="palette").task == "modification"
    )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("data: [unclosed\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        load_config(path)


# --- training, checkpoints, resumption ---------------------------------------------------


def _weights(run):
    return torch.load(Path(run) / "model" / "weights.pt", weights_only=True)


def test_training_writes_checkpoint_model_and_plot(data_dir, tmp_path):
    result = train(config(data_dir, tmp_path / "run"))
    assert result.step == 6
    for name in ("checkpoint.pt", "history.json", "loss.png", "model/model.json", "model/weights.pt"):
        assert (tmp_path / "run" / name).exists(), name
    meta = json.loads((tmp_path / "run" / "model" / "model.json").read_text())
    assert meta["format"] == "ase_crystalgen-model" and meta["model_class"] == "CrystalUNet"
    assert meta["data_schema"]["max_atoms"] == 8 and meta["objective"]["name"] == "flow-uniform"
    assert meta["card"]["elements"] == [8, 20, 22, 38, 40, 56] and meta["card"]["hardware"]["torch"]
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert len(losses) == 6 and all(np.isfinite(losses))
    # a finished run started again trains no further
    before = _weights(tmp_path / "run")
    again = train(config(data_dir, tmp_path / "run"))
    assert again.step == 6
    for k, v in _weights(tmp_path / "run").items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_stacked_batches_train_as_the_dataloader_does(data_dir, tmp_path):
    """The trainer's own batch stacking (num_workers 0) and a DataLoader with a worker process
    give the same weights and the same logged losses: the fast path changes no arithmetic."""
    fast = train(config(data_dir, tmp_path / "fast", log_every=2))
    loader = train(config(data_dir, tmp_path / "loader", log_every=2, num_workers=1))
    a, b = _weights(tmp_path / "fast"), _weights(tmp_path / "loader")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    losses = [(h["step"], h["loss"]) for h in fast.history if "loss" in h]
    assert losses == [(h["step"], h["loss"]) for h in loader.history if "loss" in h]
    assert [s for s, _ in losses] == [2, 3, 4, 6]  # every log_every steps and at each epoch's end


def test_a_checkpoint_loads_as_its_exported_model(data_dir, tmp_path):
    """A run's checkpoint.pt loads its EMA weights and data schema: it samples exactly what the
    exported model directory samples. A checkpoint written before the schema was stored in it
    falls back on its data set, and says so when that cannot be read."""
    train(config(data_dir, tmp_path / "run", max_steps=2))
    from_dir, from_ckpt = load_model(tmp_path / "run" / "model"), load_model(tmp_path / "run")
    assert from_ckpt.meta["data_schema"] == from_dir.meta["data_schema"]
    from ase_crystalgen.inference.pipeline import condition_tensors

    z = np.array([38, 22, 8, 8, 8])
    cond = condition_tensors([z, z], [221, 99], [0.0, -0.1], max_atoms=8)
    a = sample_tensors(from_dir, cond, steps=3, generator=torch.Generator().manual_seed(0))
    b = sample_tensors(from_ckpt, cond, steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)

    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    del state["data_schema"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    keys = ("max_atoms", "task", "order", "niggli")
    schema = load_model(old).meta["data_schema"]  # read back from the run's data set
    assert set(schema) == set(keys)
    assert {k: schema[k] for k in keys} == {k: from_dir.meta["data_schema"][k] for k in keys}
    state["config"]["data"] = str(tmp_path / "no-such-data")
    torch.save(state, old)
    with pytest.warns(UserWarning, match=r"its data set cannot be read .*assuming formula row order"):
        schema = load_model(old).meta["data_schema"]
    assert schema == {"max_atoms": 8, "task": "generation", "order": "formula", "niggli": True}


@pytest.mark.parametrize("augment", [[], ["permute", "shift", "lattice"]])
def test_interrupted_run_resumes_to_identical_weights(data_dir, tmp_path, monkeypatch, augment):
    cfg = {"augment": augment}
    train(config(data_dir, tmp_path / "straight", **cfg))
    calls = {"n": 0}
    real = torch.nn.utils.clip_grad_norm_

    def crash_on_step_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", crash_on_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(config(data_dir, tmp_path / "interrupted", **cfg))
    state = load_checkpoint(tmp_path / "interrupted" / "checkpoint.pt")
    assert state["step"] == 4  # the last checkpoint before the crash
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real)
    resumed = train(config(data_dir, tmp_path / "interrupted", **cfg))
    assert resumed.step == 6
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "interrupted")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    # a different recipe refuses to continue someone else's run
    with pytest.raises(ValueError, match=r"holds a run with a different config \(lr\)"):
        train(config(data_dir, tmp_path / "interrupted", lr=1e-2, **cfg))
    with pytest.raises(ValueError, match=r"holds a run with a different config \(augment\)"):
        train(config(data_dir, tmp_path / "interrupted", augment=["shift"] if augment else True))


def test_augmentation_reaches_the_training_batches_and_only_the_training_split(data_dir, tmp_path):
    from ase_crystalgen.datasets.torch_datasets import CrystalDataset

    plain = CrystalDataset(data_dir, "train")
    aug = CrystalDataset(data_dir, "train", augment=True, seed=3)
    first = [aug[k]["x"] for k in range(len(aug))]
    assert all(torch.equal(aug[k]["x"], first[k]) for k in range(len(aug)))  # same epoch, same draw
    aug.set_epoch(1)
    assert not all(torch.equal(aug[k]["x"], first[k]) for k in range(len(aug)))
    for k in range(len(aug)):
        n = int(plain[k]["n_sites"])
        torch.testing.assert_close(aug[k]["x"][n:], plain[k]["x"][n:], rtol=0, atol=0)  # cell rows kept
        for key in ("elements", "properties", "mask", "energy"):
            torch.testing.assert_close(aug[k][key], plain[k][key], rtol=0, atol=0)
    a = train(config(data_dir, tmp_path / "aug", augment=True, max_steps=2))
    b = train(config(data_dir, tmp_path / "plain", max_steps=2))
    assert a.step == b.step == 2
    wa, wb = _weights(tmp_path / "aug"), _weights(tmp_path / "plain")
    assert any(not torch.equal(wa[key], wb[key]) for key in wa)


def test_augment_option_is_checked():
    assert TrainConfig(data="d", out="o", augment=True).augment == ["permute", "shift", "lattice"]
    assert TrainConfig(data="d", out="o").augment == []
    assert TrainConfig.from_dict({"data": "d", "out": "o"}).changes_from(TrainConfig(data="d", out="o")) == []
    with pytest.raises(ValueError, match=r"augmentation\(s\) 'flip'; choose from permute, shift, lattice"):
        TrainConfig(data="d", out="o", augment=["flip"])
    with pytest.raises(ValueError, match=r"augment applies to the generation objectives .* 'regression'"):
        TrainConfig(data="d", out="o", objective="regression", augment=True)


def test_corrupt_and_foreign_checkpoints_are_named(data_dir, tmp_path):
    train(config(data_dir, tmp_path / "run", max_steps=2))
    ckpt = tmp_path / "run" / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is corrupt or truncated"):
        load_checkpoint(ckpt)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"is not an ase_crystalgen training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    model_dir = tmp_path / "run" / "model"
    meta = json.loads((model_dir / "model.json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match=r"was written in model format 99 .* reads format 1"):
        load_model(model_dir)
    (model_dir / "model.json").write_text(
        json.dumps({**meta, "model_config": {**meta["model_config"], "model_channels": 32}})
    )
    with pytest.raises(CheckpointError, match=r"weights do not fit the described model"):
        load_model(model_dir)
    (model_dir / "model.json").write_text(json.dumps(meta))
    good = (model_dir / "weights.pt").read_bytes()
    (model_dir / "weights.pt").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one flipped bit
    with pytest.raises(CheckpointError, match=r"weights\.pt does not match the SHA-256 recorded"):
        load_model(model_dir)
    (model_dir / "weights.pt").write_bytes(b"not a zip")
    del meta["weights_sha256"]  # a directory without a checksum is still checked by torch.load
    (model_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"weights\.pt is corrupt or truncated"):
        load_model(model_dir)
    with pytest.raises(CheckpointError, match=r"is neither a model directory nor a training checkpoint"):
        load_model(tmp_path)


@pytest.mark.parametrize("objective", ["ddpm", "flow-normal", "regression", "modification-flow", "palette"])
def test_every_objective_trains_and_samples(data_dir, tmp_path, objective):
    result = train(config(data_dir, tmp_path / objective, objective=objective, max_steps=3))
    loaded = load_model(result.model_dir)
    from ase_crystalgen.datasets import load_dataset
    from ase_crystalgen.datasets.torch_datasets import CrystalDataset

    data = load_dataset(data_dir)
    ds = CrystalDataset(data, "all")
    items = [ds.conditions(i) for i in range(3)]
    cond = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    cond["energy"] = torch.tensor(data.arrays["energy"][:3], dtype=torch.float32)
    x_init = (
        torch.as_tensor(data.arrays["x"][:3], dtype=torch.float32) if loaded.task == "modification" else None
    )
    gen = torch.Generator().manual_seed(0)
    x = sample_tensors(loaded, cond, x_init=x_init, steps=4, generator=gen)
    assert x.shape == (3, 12, 3)
    atoms = decode(x, [data.arrays["numbers"][i, :5] for i in range(3)])
    for a, i in zip(atoms, range(3)):
        assert a.get_chemical_formula() == data.atoms(i).get_chemical_formula()
        frac = a.get_scaled_positions(wrap=False)
        if "invalid" not in a.info:  # inside the cell (a clipped coordinate sits on its face)
            assert np.all((frac >= -1e-12) & (frac < 1 + 1e-12))
    # sampling is reproducible with the same generator seed
    y = sample_tensors(loaded, cond, x_init=x_init, steps=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, y)


def test_training_learns(data_dir, tmp_path):
    """Regression on fixed pairs is a deterministic fit: the loss must fall a lot."""
    result = train(
        config(
            data_dir,
            tmp_path / "fit",
            objective="regression",
            max_steps=150,
            lr=3e-3,
            warmup_steps=10,
            checkpoint_every=1000,
            log_every=10,
            ema_decay=0.0,
        )
    )
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]


def test_evaluate_and_cli(data_dir, tmp_path, capsys):
    from ase_crystalgen.cli import main

    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(config(data_dir, tmp_path / "run", max_steps=2).to_dict()))  # JSON is YAML
    assert main(["train", str(path)]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "run" / "model"),
                "--data",
                str(data_dir),
                "--split",
                "val",
                "-k",
                "2",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "eval"),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "field tolerances, k=2: match" in out
    summary = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert summary["n_targets"] == 3 and summary["run"]["k"] == 2
    assert summary["validity"]["n_samples"] == 6
    assert (tmp_path / "eval" / "evaluation.md").exists()
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_auto_device_gives_each_process_its_own_gpu_or_says_why(monkeypatch, tmp_path):
    from ase_crystalgen.training import trainer

    cfg = TrainConfig(data="d", out=str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert trainer._device(cfg, 0) == torch.device("cuda", 0)
    message = r"process 1 of this node has no CUDA device of its own: the node has 1 "
    with pytest.raises(ValueError, match=message):
        trainer._device(cfg, 1)
    assert trainer._device(TrainConfig(data="d", out=str(tmp_path), device="cpu"), 1) == torch.device("cpu")
    # precision "auto" trains in float32 on CUDA too (measured faster than bf16 autocast there)
    for mode in ("auto", "off"):
        context, grad_scaler = trainer._autocast(
            TrainConfig(data="d", out=str(tmp_path), mixed_precision=mode), torch.device("cuda", 0)
        )
        assert not isinstance(context, torch.autocast) and grad_scaler is None


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_ddp_on_cpu_with_torchrun(data_dir, tmp_path):
    """The same engine under torchrun: two CPU processes (gloo) train one model."""
    path = tmp_path / "run.yaml"
    # device cpu: with "auto" a machine with one GPU would give the second process none
    cfg = config(data_dir, tmp_path / "run", max_steps=3, device="cpu")
    path.write_text(json.dumps(cfg.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "ase_crystalgen",
            "train",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 3 and len(state["noise_state"]) == 2
    assert (tmp_path / "run" / "model" / "weights.pt").exists()


def test_train_generator_example_quick(tmp_path):
    pytest.importorskip("pyxtal")
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "train_generator.py"
    spec = importlib.util.spec_from_file_location("train_generator", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    summary = example.main(quick=True, workdir=tmp_path / "work")
    assert summary["n_targets"] >= 4 and summary["validity"]["n_samples"] == 2 * summary["n_targets"]
    assert (tmp_path / "work" / "run" / "model" / "model.json").exists()
    assert (tmp_path / "work" / "evaluation" / "evaluation.md").exists()


def test_init_from_starts_at_trained_weights(data_dir, tmp_path):
    first = train(config(data_dir, tmp_path / "first", max_steps=3))
    # with a vanishing learning rate the fine-tuned weights stay at the starting point
    tuned = train(config(data_dir, tmp_path / "tuned", max_steps=2, lr=1e-12, init_from=str(first.model_dir)))
    a, b = _weights(tmp_path / "first"), _weights(tmp_path / "tuned")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-9)
    assert tuned.step == 2
    wider = dict(TINY, model_channels=32)
    with pytest.raises(ValueError, match=r"its model config differs from this run's"):
        train(config(data_dir, tmp_path / "other", model=wider, init_from=str(first.model_dir)))
