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
from .checkpoint import load_checkpoint, save_checkpoint, save_model_dir
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
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1.0 - self.decay)
            else:
                self.shadow[k].copy_(v)

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
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _autocast(config: TrainConfig, device: torch.device):
    mode = config.mixed_precision
    if device.type != "cuda" or mode == "off":
        return nullcontext(), None
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
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
        return CrystalDataset(data, config.train_split), (
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
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    out["x"] = scaler.to_model(out["x"], out["mask"])
    if "x_init" in out:
        out["x_init"] = scaler.to_model(out["x_init"], out["mask"])
    return out


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    perm = perm[rank::world]
    # equal batch counts on every rank keep DDP's collective calls in step
    per_rank = n // world
    perm = perm[:per_rank]
    return [perm[i : i + batch_size].tolist() for i in range(0, len(perm), batch_size)]


def train(config: TrainConfig) -> TrainResult:
    """Run (or resume) a training run described by ``config``; see module docstring."""
    from tqdm.auto import tqdm

    from ..generative import StructureScaler, make_objective

    world, rank, local_rank = _distributed()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and config.device in ("auto", "cuda") else "gloo"
        torch.distributed.init_process_group(backend)
    device = _device(config, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    out = Path(config.out)
    is_main = rank == 0
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    data = ProcessedDataset.load(config.data)
    train_set, val_set = _datasets(config, data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model, model_config = build_model(config, data.arrays["x"].shape[1])
    if config.init_from is not None:
        from .checkpoint import read_model_dir

        meta, state = read_model_dir(config.init_from)
        if meta["model_config"] != model_config.to_dict():
            raise ValueError(f"init_from {config.init_from}: its model config differs from this run's")
        model.load_state_dict(state)
    model.to(device)
    train_idx = data.indices(config.train_split)
    scaler_space = StructureScaler.fit(data.arrays["x"][train_idx])
    objective = make_objective(config.objective, **config.objective_args)
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

    step, epoch, batch_in_epoch, history = 0, 0, 0, []
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        previous = TrainConfig.from_dict(state["config"])
        changed = config.changes_from(previous)
        if changed:
            raise ValueError(
                f"{out} holds a run with a different config ({', '.join(changed)}); "
                "use another --out or delete its checkpoint.pt to start again"
            )
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        if grad_scaler is not None and state.get("grad_scaler"):
            grad_scaler.load_state_dict(state["grad_scaler"])
        if len(state["noise_state"]) == world:
            noise.set_state(state["noise_state"][rank].cpu())
        else:  # resumed on a different number of processes: exact continuation is impossible
            import warnings

            warnings.warn(
                f"resuming {len(state['noise_state'])}-process run on {world}: noise reseeded", stacklevel=2
            )
            noise.manual_seed(config.seed * 1000 + rank + 7919 * state["step"])
        step, epoch, batch_in_epoch, history = (
            state["step"],
            state["epoch"],
            state["batch_in_epoch"],
            state["history"],
        )

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )

    def checkpoint() -> None:
        states = [noise.get_state()]
        if world > 1:
            gathered = [None] * world
            torch.distributed.all_gather_object(gathered, noise.get_state().cpu())
            states = gathered
        if not is_main:
            return
        save_checkpoint(
            {
                "config": config.to_dict(),
                "model_config": model_config.to_dict(),
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": lr_sched.state_dict(),
                "grad_scaler": grad_scaler.state_dict() if grad_scaler is not None else None,
                "noise_state": states,
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "history": history,
                "scaler": scaler_space.state_dict(),
                "objective": objective.to_dict(),
            },
            ckpt_path,
        )
        atomic_write_text(out / "history.json", json.dumps(history, indent=1) + "\n")

    bar = tqdm(
        total=total,
        initial=step,
        desc=f"training {config.objective}",
        disable=not (config.progress and is_main),
    )
    running: list[float] = []
    done = step >= total
    while not done and epoch < config.epochs:
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        batches = _epoch_batches(len(train_set), config.batch_size, config.seed, epoch, rank, world)
        loader = torch.utils.data.DataLoader(
            train_set, batch_sampler=batches[batch_in_epoch:], num_workers=config.num_workers
        )
        net.train()
        for batch in loader:
            batch = _to_model_space(batch, scaler_space, device)
            with autocast:
                loss, parts = objective.loss(net, batch, generator=noise)
            optimizer.zero_grad(set_to_none=True)
            if grad_scaler is not None:
                grad_scaler.scale(loss).backward()
                grad_scaler.unscale_(optimizer)
            else:
                loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if grad_scaler is not None:
                grad_scaler.step(optimizer)
                grad_scaler.update()
            else:
                optimizer.step()
            lr_sched.step()
            ema.update(model)
            step += 1
            batch_in_epoch += 1
            loss_value = float(loss.detach())
            running.append(loss_value)
            if step % config.log_every == 0 or batch_in_epoch == len(batches):
                history.append(
                    {
                        "step": step,
                        "epoch": epoch,
                        "loss": float(np.mean(running)),
                        "lr": lr_sched.get_last_lr()[0],
                        "grad_norm": float(grad_norm),
                    }
                )
                running = []
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", epoch=epoch)
            if step % config.checkpoint_every == 0:
                checkpoint()
            if step >= total:
                done = True
                break
        if batch_in_epoch >= len(batches):
            if val_set is not None and (epoch + 1) % config.val_every == 0:
                history.append(
                    {
                        "step": step,
                        "epoch": epoch,
                        "val_loss": _validate(model, ema, objective, val_set, scaler_space, config, device),
                    }
                )
            epoch += 1
            batch_in_epoch = 0
        checkpoint()
    bar.close()
    model_dir = None
    checkpoint()  # collective under DDP (gathers every rank's noise state): all ranks call it
    if is_main:
        _plot_history(history, out / "loss.png", config)
        model_dir = _export(
            out / "model", model, ema, model_config, config, objective, scaler_space, data, step, epoch
        )
    if world > 1:
        torch.distributed.barrier()
    return TrainResult(out=out, step=step, epoch=epoch, history=history, model_dir=model_dir)


@torch.no_grad()
def _validate(model, ema, objective, val_set, scaler, config, device) -> float:
    """Validation loss of the EMA weights with a fixed noise seed (comparable across epochs)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(config.seed + 12345)
    losses, weights = [], []
    loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size, shuffle=False)
    with ema.applied_to(model):
        model.eval()
        for batch in loader:
            batch = _to_model_space(batch, scaler, device)
            loss, _ = objective.loss(model, batch, generator=gen)
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


def _export(directory, model, ema, model_config, config, objective, scaler, data, step, epoch) -> Path:
    """The EMA weights as a model directory (what CrystalGenerator.from_pretrained reads)."""
    elements = sorted({int(z) for z in np.unique(data.arrays["numbers"]) if z > 0})
    card = {
        "data": data.meta.get("source", {}),
        "data_counts": data.meta.get("counts", {}),
        "training": {"steps": step, "epochs": epoch, "config": config.to_dict()},
        "elements": elements,
        "spacegroups": sorted({int(s) for s in data.arrays["spacegroup"]}),
        "max_sites": int(data.arrays["n_sites"].max()),
        "energy_range": [float(data.arrays["energy"].min()), float(data.arrays["energy"].max())],
        "hardware": _hardware(),
    }
    if config.task == "modification":
        card["energy_change_range"] = energy_change_range(data, config.train_split)
    schema = {
        "max_atoms": data.max_atoms,
        "order": data.meta["settings"]["order"],
        "niggli": data.meta["settings"]["niggli"],
        "schema_version": data.meta["schema_version"],
        "task": config.task,
    }
    with ema.applied_to(model):
        return save_model_dir(
            directory, model, model_config.to_dict(), objective.to_dict(), scaler.state_dict(), schema, card
        )


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
