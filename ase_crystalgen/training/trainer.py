"""The training loop: AdamW, warm-up + cosine, EMA, clipping, mixed precision, DDP, resume.

One engine for every objective and every machine: one CPU core, one GPU, or several GPUs
under ``torchrun`` (PyTorch DDP; ``gloo`` on CPU, ``nccl`` on CUDA). Nothing in the loop
depends on which.

Exact resumption. Batches of epoch e are a permutation drawn from (seed, e); the noise
generator's state, the optimizer, the scheduler, the EMA weights and the position inside
the epoch are in the checkpoint. A run interrupted after its last checkpoint repeats the
steps since then and produces the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_write_text
from ..datasets.cache import ProcessedDataset
from ..datasets.summary import condition_statistics
from ..models.io import load_checkpoint, read_pretrained, save_checkpoint, save_pretrained
from .config import TrainConfig


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run leaves behind."""

    out: Path
    step: int
    epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
    model_dir: Path | None = None


class EMA:
    """Exponential moving average of parameters (and a copy of buffers)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        # one fused lerp over all floating tensors (a kernel per tensor otherwise)
        floats, targets = [], []
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                floats.append(self.shadow[k])
                targets.append(v)
            else:
                self.shadow[k].copy_(v)
        if floats:
            torch._foreach_lerp_(floats, targets, 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    @contextmanager
    def applied_to(self, model: torch.nn.Module):
        """Run a block with the EMA weights in ``model``; its own weights come back after."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)


def _lr_lambda(config: TrainConfig, total_steps: int):
    warmup = max(0, config.warmup_steps)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device != "auto":
        return torch.device(config.device)
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise ValueError(
                f"process {local_rank} of this node has no CUDA device of its own: the node has {n} "
                f"(device 'auto' gives each process one); start at most {n} processes per node "
                "(torchrun --nproc_per_node) or set device: cpu"
            )
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _autocast(config: TrainConfig, device: torch.device):
    mode = config.mixed_precision
    if device.type != "cuda" or mode in ("off", "auto"):
        return nullcontext(), None
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def build_model(config: TrainConfig, rows: int):
    """The network of a config for structure matrices of ``rows`` rows (max_atoms + 4)."""
    from ..models import CrystalUNet, UNetConfig

    if isinstance(config.model, str):
        model_config = UNetConfig.paper(rows=rows) if config.model == "paper" else UNetConfig.small(rows=rows)
    else:
        model_config = UNetConfig.from_dict({**UNetConfig.small().to_dict(), "rows": rows, **config.model})
    # only Palette gives the network the initial structure as a condition (regression passes it
    # as x, modification flow as the start of the path), so only Palette needs its encoder
    model_config.init_channels = 3 if config.objective == "palette" else 0
    return CrystalUNet(model_config), model_config


def _datasets(config: TrainConfig, data: ProcessedDataset):
    from ..datasets.torch_datasets import CrystalDataset, ModificationDataset

    if config.task == "generation":
        return CrystalDataset(data, config.train_split, augment=config.augment, seed=config.seed), (
            CrystalDataset(data, config.val_split) if len(data.indices(config.val_split)) else None
        )
    train = ModificationDataset(
        data, config.train_split, cap_per_group=config.cap_per_group, seed=config.seed
    )
    val = (
        ModificationDataset(data, config.val_split, resample=False)
        if len(data.indices(config.val_split))
        else None
    )
    if len(train) == 0:
        raise ValueError(f"split {config.train_split!r} has no modification pairs (no polymorph group of 2+)")
    return train, (val if val is not None and len(val) else None)


def _to_model_space(batch: dict, scaler, device: torch.device) -> dict:
    return scaler.transform_batch({k: v.to(device, non_blocking=True) for k, v in batch.items()})


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    perm = perm[rank::world]
    # equal batch counts on every rank keep DDP's collective calls in step
    per_rank = n // world
    perm = perm[:per_rank]
    return [perm[i : i + batch_size].tolist() for i in range(0, len(perm), batch_size)]


@dataclass
class _Run:
    """The state of one training run: what it trains, with what, and how far it has come."""

    config: TrainConfig
    out: Path
    device: torch.device
    world: int
    rank: int
    data: ProcessedDataset
    train_set: Any
    val_set: Any
    model: torch.nn.Module
    model_config: Any
    method: Any
    scaler: Any
    optimizer: torch.optim.Optimizer
    lr_sched: Any
    ema: EMA
    autocast: Any
    grad_scaler: Any
    noise: torch.Generator
    total: int
    net: torch.nn.Module | None = None
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"


def train(config: TrainConfig) -> TrainResult:
    """Run (or resume) a training run described by ``config``; see module docstring.

    The steps: set up the process group and device, build the run (data, network, method,
    optimizer), resume from ``OUT/checkpoint.pt`` if there is one, train epoch by epoch with
    checkpoints, then export the EMA weights as a model directory.
    """
    world, rank, local_rank = _distributed()
    device = _setup_device(config, world, local_rank)
    run = _build_run(config, device, world, rank)
    if run.checkpoint_path.exists():
        _resume(run)
    run.net = run.model
    if world > 1:
        run.net = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[device] if device.type == "cuda" else None
        )
    _train_epochs(run)
    return _finish(run)


def _setup_device(config: TrainConfig, world: int, local_rank: int) -> torch.device:
    device = _device(config, local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _build_run(config: TrainConfig, device: torch.device, world: int, rank: int) -> _Run:
    """Data, network (seeded; optionally from ``init_from``), method, optimizer and schedules."""
    from ..generative import StructureScaler, make_method

    out = Path(config.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    data = ProcessedDataset.load(config.data)
    train_set, val_set = _datasets(config, data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model, model_config = build_model(config, data.arrays["x"].shape[1])
    if config.init_from is not None:
        meta, state = read_pretrained(config.init_from)
        if meta["model_config"] != model_config.to_dict():
            raise ValueError(f"init_from {config.init_from}: its model config differs from this run's")
        model.load_state_dict(state)
    model.to(device)
    train_idx = data.indices(config.train_split)
    scaler = StructureScaler.fit(data.arrays["x"][train_idx])
    method = make_method(config.objective, **config.objective_args)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    steps_per_epoch = max(1, len(_epoch_batches(len(train_set), config.batch_size, config.seed, 0, 0, world)))
    total = config.max_steps or config.epochs * steps_per_epoch
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config, total))
    ema = EMA(model, config.ema_decay)
    autocast, grad_scaler = _autocast(config, device)
    noise = torch.Generator(device=device)
    noise.manual_seed(config.seed * 1000 + rank)
    return _Run(
        config, out, device, world, rank, data, train_set, val_set, model, model_config, method, scaler,
        optimizer, lr_sched, ema, autocast, grad_scaler, noise, total,
    )  # fmt: skip


def _resume(run: _Run) -> None:
    """Continue from the run's checkpoint, refusing one written with another recipe."""
    config = run.config
    state = load_checkpoint(run.checkpoint_path, map_location=run.device)
    previous = TrainConfig.from_dict(state["config"])
    changed = config.changes_from(previous)
    if changed:
        raise ValueError(
            f"{run.out} holds a run with a different config ({', '.join(changed)}); "
            "use another --out or delete its checkpoint.pt to start again"
        )
    run.model.load_state_dict(state["model"])
    run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.lr_sched.load_state_dict(state["lr_scheduler"])
    if run.grad_scaler is not None and state.get("grad_scaler"):
        run.grad_scaler.load_state_dict(state["grad_scaler"])
    if len(state["noise_state"]) == run.world:
        run.noise.set_state(state["noise_state"][run.rank].cpu())
    else:  # resumed on a different number of processes: exact continuation is impossible
        import warnings

        warnings.warn(
            f"resuming {len(state['noise_state'])}-process run on {run.world}: noise reseeded", stacklevel=3
        )
        run.noise.manual_seed(config.seed * 1000 + run.rank + 7919 * state["step"])
    run.step, run.epoch = state["step"], state["epoch"]
    run.batch_in_epoch, run.history = state["batch_in_epoch"], state["history"]


def _data_schema(run: _Run) -> dict[str, Any]:
    """What a model directory records about the structure matrices it was trained on."""
    data = run.data
    return {
        "max_atoms": data.max_atoms,
        "order": data.meta["settings"]["order"],
        "niggli": data.meta["settings"]["niggli"],
        "schema_version": data.meta["schema_version"],
        "task": run.config.task,
    }


def _save_checkpoint(run: _Run) -> None:
    """Write the checkpoint and history (collective under DDP: every rank calls it)."""
    states = [run.noise.get_state()]
    if run.world > 1:
        gathered = [None] * run.world
        torch.distributed.all_gather_object(gathered, run.noise.get_state().cpu())
        states = gathered
    if not run.is_main:
        return
    save_checkpoint(
        {
            "config": run.config.to_dict(),
            "model_class": type(run.model).__name__,
            "model_config": run.model_config.to_dict(),
            "model": run.model.state_dict(),
            "ema": run.ema.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "lr_scheduler": run.lr_sched.state_dict(),
            "grad_scaler": run.grad_scaler.state_dict() if run.grad_scaler is not None else None,
            "noise_state": states,
            "step": run.step,
            "epoch": run.epoch,
            "batch_in_epoch": run.batch_in_epoch,
            "history": run.history,
            "scaler": run.scaler.state_dict(),
            "objective": run.method.to_dict(),
            "data_schema": _data_schema(run),
        },
        run.checkpoint_path,
    )
    atomic_write_text(run.out / "history.json", json.dumps(run.history, indent=1) + "\n")


def _optimizer_step(run: _Run, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """One step on a batch: loss, backward (scaled under fp16), clipping, optimizer, EMA.

    Returns the loss and the gradient norm as tensors on the device: reading them (a device
    synchronisation) is left to the logging steps.
    """
    with run.autocast:
        loss, _ = run.method.loss(run.net, batch, generator=run.noise)
    run.optimizer.zero_grad(set_to_none=True)
    if run.grad_scaler is not None:
        run.grad_scaler.scale(loss).backward()
        run.grad_scaler.unscale_(run.optimizer)
    else:
        loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
    if run.grad_scaler is not None:
        run.grad_scaler.step(run.optimizer)
        run.grad_scaler.update()
    else:
        run.optimizer.step()
    run.lr_sched.step()
    run.ema.update(run.model)
    return loss.detach(), grad_norm.detach()


def _batches(run: _Run, batches: list[list[int]]):
    """The batches of an epoch: stacked by the data set itself, or by a DataLoader with workers."""
    if run.config.num_workers == 0 and hasattr(run.train_set, "batch"):
        return (run.train_set.batch(b) for b in batches)
    return torch.utils.data.DataLoader(
        run.train_set, batch_sampler=batches, num_workers=run.config.num_workers
    )


def _train_epochs(run: _Run) -> None:
    """Epochs from the run's position until ``total`` steps or ``epochs`` epochs."""
    from tqdm.auto import tqdm

    config = run.config
    bar = tqdm(
        total=run.total,
        initial=run.step,
        desc=f"training {config.objective}",
        disable=not (config.progress and run.is_main),
    )
    running: list[torch.Tensor] = []
    done = run.step >= run.total
    while not done and run.epoch < config.epochs:
        if hasattr(run.train_set, "set_epoch"):
            run.train_set.set_epoch(run.epoch)
        batches = _epoch_batches(
            len(run.train_set), config.batch_size, config.seed, run.epoch, run.rank, run.world
        )
        run.net.train()
        for batch in _batches(run, batches[run.batch_in_epoch :]):
            loss, grad_norm = _optimizer_step(run, _to_model_space(batch, run.scaler, run.device))
            run.step += 1
            run.batch_in_epoch += 1
            running.append(loss)
            if run.step % config.log_every == 0 or run.batch_in_epoch == len(batches):
                # the mean of float32 losses in float64, as numpy took it when they were floats
                mean_loss = float(torch.stack(running).double().mean())
                run.history.append(
                    {
                        "step": run.step,
                        "epoch": run.epoch,
                        "loss": mean_loss,
                        "lr": run.lr_sched.get_last_lr()[0],
                        "grad_norm": float(grad_norm),
                    }
                )
                running = []
                bar.set_postfix(loss=f"{mean_loss:.4f}", epoch=run.epoch)
            bar.update(1)
            if run.step % config.checkpoint_every == 0:
                _save_checkpoint(run)
            if run.step >= run.total:
                done = True
                break
        if run.batch_in_epoch >= len(batches):
            if run.val_set is not None and (run.epoch + 1) % config.val_every == 0:
                val_loss = _validate(
                    run.model, run.ema, run.method, run.val_set, run.scaler, config, run.device
                )
                run.history.append({"step": run.step, "epoch": run.epoch, "val_loss": val_loss})
            run.epoch += 1
            run.batch_in_epoch = 0
        # no checkpoint at every epoch's end: with small data sets (a few batches an epoch) that
        # wrote the weights and the optimizer every few steps; checkpoint_every and _finish do it
    bar.close()


def _finish(run: _Run) -> TrainResult:
    """Last checkpoint, loss plot and the model directory of the EMA weights."""
    model_dir = None
    _save_checkpoint(run)  # collective under DDP (gathers every rank's noise state): all ranks call it
    if run.is_main:
        _plot_history(run.history, run.out / "loss.png", run.config)
        model_dir = _export(run.out / "model", run)
    if run.world > 1:
        torch.distributed.barrier()
    return TrainResult(out=run.out, step=run.step, epoch=run.epoch, history=run.history, model_dir=model_dir)


@torch.no_grad()
def _validate(model, ema, method, val_set, scaler, config, device) -> float:
    """Validation loss of the EMA weights with a fixed noise seed (comparable across epochs)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(config.seed + 12345)
    losses, weights = [], []
    loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size, shuffle=False)
    with ema.applied_to(model):
        model.eval()
        for batch in loader:
            batch = _to_model_space(batch, scaler, device)
            loss, _ = method.loss(model, batch, generator=gen)
            losses.append(float(loss))
            weights.append(len(batch["x"]))
    return float(np.average(losses, weights=weights))


def _plot_history(history: list[dict[str, Any]], path: Path, config: TrainConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if not train:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(*zip(*train), label="train (running mean)")
    if val:
        ax.plot(*zip(*val), "o-", label="validation (EMA weights)")
    ax.set(xlabel="step", ylabel="loss", title=f"{config.objective}: {Path(config.data).name}", yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def energy_change_range(data, split: str = "train") -> list[float] | None:
    """[min, max] of E(target) - E(initial) over the modification pairs of a split (eV/atom)."""
    lowest, nonlowest = data.pairs(split)
    pairs = np.concatenate([lowest, nonlowest])
    if not len(pairs):
        return None
    diff = data.arrays["energy"][pairs[:, 1]] - data.arrays["energy"][pairs[:, 0]]
    return [float(diff.min()), float(diff.max())]


def _export(directory: Path, run: _Run) -> Path:
    """The EMA weights as a model directory (what CrystalGenerator.from_pretrained reads)."""
    data, config = run.data, run.config
    elements = sorted({int(z) for z in np.unique(data.arrays["numbers"]) if z > 0})
    card = {
        "data": data.meta.get("source", {}),
        "data_counts": data.meta.get("counts", {}),
        "training": {"steps": run.step, "epochs": run.epoch, "config": config.to_dict()},
        "elements": elements,
        "spacegroups": sorted({int(s) for s in data.arrays["spacegroup"]}),
        "min_sites": int(data.arrays["n_sites"].min()),
        "max_sites": int(data.arrays["n_sites"].max()),
        "energy_range": [float(data.arrays["energy"].min()), float(data.arrays["energy"].max())],
        "hardware": _hardware(),
    }
    if config.task == "generation":
        # what sample() draws its default space groups and energies from
        card["condition_statistics"] = condition_statistics(data, config.train_split)
    if config.task == "modification":
        card["energy_change_range"] = energy_change_range(data, config.train_split)
    with run.ema.applied_to(run.model):
        return save_pretrained(
            directory, run.model, objective=run.method.to_dict(), scaler=run.scaler.state_dict(),
            data_schema=_data_schema(run), card=card,
        )  # fmt: skip


def _hardware() -> dict[str, Any]:
    import platform

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["threads"] = torch.get_num_threads()
    return info
