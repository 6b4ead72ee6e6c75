"""The 1D UNet of the conditional crystal generator (paper section 4, Fig. 2b, appendix A.3).

The improved-DDPM UNet (Nichol & Dhariwal 2021) with 1D convolutions over the rows of the
structure matrix: the 3 columns (x, y, z) are the channels and the ``max_atoms + 4`` rows are
the sequence. See ``docs/models.md`` for the layout and the sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conditioning import ConditionEncoder, InitEncoder, TimeEmbedding, require


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`CrystalUNet`; JSON-serialisable via :meth:`to_dict`.

    Attributes
    ----------
    rows
        Rows of the structure matrix, ``max_atoms + 4`` (64 in the paper).
    in_channels
        Columns of ``x`` (3); also the output width.
    model_channels
        Width of the first level; level i has ``model_channels * channel_mult[i]`` channels and
        the time embedding ``4 * model_channels``.
    channel_mult
        Width multiplier per level; every level but the last ends with a stride-2 downsampling,
        so ``rows`` must be divisible by ``2 ** (len(channel_mult) - 1)``.
    num_res_blocks
        Residual blocks per level on the way down (the way up has one more, as in improved DDPM).
    attention_levels
        0-based levels whose residual blocks are followed by self-attention (the middle block
        always has one). Level i works at downsample rate ``2 ** i``, so improved-diffusion's
        ``attention_resolutions=(1, 2, 4, 8)`` are ``attention_levels=(0, 1, 2, 3)``.
    num_heads
        Attention heads; must divide the width of every attention level.
    dropout
        Dropout inside the residual blocks.
    groups
        GroupNorm groups; must divide ``model_channels * m`` for every ``m`` in ``channel_mult``.
    use_scale_shift_norm
        Inject the embedding into the residual blocks as ``norm(h) * (1 + scale) + shift``
        (FiLM) instead of adding it to ``h`` before the second norm (the default). The additive
        form reproduces the authors' 305 M parameters at the paper's size (306.1 M; with
        scale-shift it would be 321.9 M).
    n_elements, n_properties, max_operations
        Widths of the conditions (103 one-hot columns, 22 properties, 192 operations).
    element_channels, spacegroup_channels
        Widths of the element and space-group encoders (256 in the paper).
    use_energy
        Condition on ``cond["energy"]`` (formation energy, or the energy difference).
    init_channels
        0 for generation; the columns of ``cond["x_init"]`` (3) for modification models, which
        encode the initial structure with an :class:`InitEncoder` and add it to the first
        feature map.

    Time is not scaled by the model: ``CrystalUNet.forward`` embeds ``t`` as given, and the
    objective decides its units (see :class:`CrystalUNet`).
    """

    rows: int = 64
    in_channels: int = 3
    model_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (2,)
    num_heads: int = 1
    dropout: float = 0.0
    groups: int = 32
    use_scale_shift_norm: bool = False
    n_elements: int = 103
    n_properties: int = 22
    max_operations: int = 192
    element_channels: int = 64
    spacegroup_channels: int = 64
    use_energy: bool = True
    init_channels: int = 0

    def __post_init__(self) -> None:
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.attention_levels = tuple(int(i) for i in self.attention_levels)
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the first inconsistent field."""
        positive = ("rows", "in_channels", "model_channels", "num_res_blocks", "num_heads", "groups")
        for name in positive + ("element_channels", "spacegroup_channels", "max_operations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_elements < 0 or self.n_properties < 0 or self.n_elements + self.n_properties < 1:
            raise ValueError("n_elements and n_properties must be >= 0 with a positive sum")
        if self.init_channels < 0:
            raise ValueError(f"init_channels must be >= 0, got {self.init_channels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(
                f"channel_mult must be a non-empty tuple of positive ints, got {self.channel_mult}"
            )
        factor = 2 ** (len(self.channel_mult) - 1)
        if self.rows % factor:
            raise ValueError(
                f"rows={self.rows} is not divisible by 2**(len(channel_mult) - 1) = {factor}: "
                f"each of the {len(self.channel_mult) - 1} downsamplings halves the rows"
            )
        widths = self.widths
        bad = [w for w in widths if w % self.groups]
        if bad:
            raise ValueError(f"groups={self.groups} does not divide the level widths {bad} of {widths}")
        levels = range(len(self.channel_mult))
        wrong = [i for i in self.attention_levels if i not in levels]
        if wrong:
            raise ValueError(
                f"attention_levels {wrong} are not levels of channel_mult (0..{len(levels) - 1})"
            )
        for w in [widths[i] for i in self.attention_levels] + [widths[-1]]:
            if w % self.num_heads:
                raise ValueError(f"num_heads={self.num_heads} does not divide the attention width {w}")

    @property
    def widths(self) -> list[int]:
        """Channels of each level."""
        return [self.model_channels * m for m in self.channel_mult]

    @property
    def emb_dim(self) -> int:
        """Width of the time (and condition) embedding."""
        return 4 * self.model_channels

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown UNetConfig fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def small(cls, **overrides: Any) -> UNetConfig:
        """The default configuration, sized to train on a 2-core CPU (2.2 M parameters)."""
        return cls(**overrides)

    @classmethod
    def paper(cls, **overrides: Any) -> UNetConfig:
        """The paper's size (appendix A.3): 128 channels, 4 levels, 7 blocks, attention everywhere.

        306.1 M parameters (the authors count about 305 M).
        """
        kwargs: dict[str, Any] = dict(
            model_channels=128,
            channel_mult=(1, 2, 4, 8),
            num_res_blocks=7,
            attention_levels=(0, 1, 2, 3),
            num_heads=1,
            element_channels=256,
            spacegroup_channels=256,
        )
        kwargs.update(overrides)
        return cls(**kwargs)


def _zero(module: nn.Module) -> nn.Module:
    # Zero-initialised last layers make every residual branch, and the whole network, start as
    # the identity / zero map, which is what keeps deep diffusion UNets stable early on.
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock1d(nn.Module):
    """GroupNorm-SiLU-Conv1d twice, with the embedding injected before the second convolution."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, dropout: float, scale_shift: bool):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(
            nn.GroupNorm(groups, cin), nn.SiLU(), nn.Conv1d(cin, cout, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * cout if scale_shift else cout))
        self.out_norm = nn.GroupNorm(groups, cout)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(dropout), _zero(nn.Conv1d(cout, cout, 3, padding=1))
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv1d(cin, cout, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x)
        e = self.emb_layers(emb)[..., None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_norm(h) * (1 + scale) + shift
        else:
            h = self.out_norm(h + e)
        return self.skip(x) + self.out_layers(h)


class AttentionBlock1d(nn.Module):
    """Multi-head self-attention over the rows, residual, zero-initialised projection."""

    def __init__(self, channels: int, groups: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, r = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, r).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(h.transpose(-1, -2).reshape(b, c, r))


class Downsample1d(nn.Module):
    """Stride-2 convolution (halves the rows)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample1d(nn.Module):
    """Nearest-neighbour doubling of the rows, then a convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class EmbedSequential(nn.Sequential):
    """A sequence of layers where the residual blocks also receive the embedding."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock1d) else layer(x)
        return x


class CrystalUNet(nn.Module):
    """Conditional 1D UNet over the rows of the structure matrix.

    ``model(x, t, cond)`` maps a (B, R, 3) structure matrix (noisy sample, interpolant, or the
    initial structure of a regression model) to a (B, R, 3) prediction (noise, velocity or
    structure, depending on the objective). The output layer is zero-initialised, so a fresh
    model returns exactly zero.

    **Time units.** ``t`` is embedded as given, with sinusoid periods from 2 pi to 2 pi * 10^4,
    the improved-DDPM encoding made for integer steps 0..999. Diffusion objectives pass the step
    index; flow matching should pass ``1000 * t`` for ``t`` in [0, 1] (at ``t`` <= 1 most
    frequencies hardly change). The scaling belongs to the objective, so the network never
    guesses which one it serves.

    Parameters
    ----------
    config
        The hyper-parameters; kept as ``self.config``.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        config.validate()
        self.config = config
        c = config
        emb = c.emb_dim
        self.time_embed = TimeEmbedding(c.model_channels, emb)
        self.cond_embed = ConditionEncoder(
            c.rows,
            c.n_elements,
            c.n_properties,
            c.max_operations,
            c.element_channels,
            c.spacegroup_channels,
            c.use_energy,
            emb,
        )
        self.init_embed = (
            InitEncoder(c.init_channels, c.model_channels, c.groups) if c.init_channels > 0 else None
        )
        self.input_conv = nn.Conv1d(c.in_channels, c.model_channels, 3, padding=1)

        def res(cin: int, cout: int) -> ResBlock1d:
            return ResBlock1d(cin, cout, emb, c.groups, c.dropout, c.use_scale_shift_norm)

        def attn(ch: int) -> AttentionBlock1d:
            return AttentionBlock1d(ch, c.groups, c.num_heads)

        self.down = nn.ModuleList()
        skip_channels = [c.model_channels]
        ch = c.model_channels
        n_levels = len(c.channel_mult)
        for level, width in enumerate(c.widths):
            for _ in range(c.num_res_blocks):
                layers: list[nn.Module] = [res(ch, width)]
                ch = width
                if level in c.attention_levels:
                    layers.append(attn(ch))
                self.down.append(EmbedSequential(*layers))
                skip_channels.append(ch)
            if level < n_levels - 1:
                self.down.append(EmbedSequential(Downsample1d(ch)))
                skip_channels.append(ch)

        self.middle = EmbedSequential(res(ch, ch), attn(ch), res(ch, ch))

        self.up = nn.ModuleList()
        for level, width in reversed(list(enumerate(c.widths))):
            for i in range(c.num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), width)]
                ch = width
                if level in c.attention_levels:
                    layers.append(attn(ch))
                if level > 0 and i == c.num_res_blocks:
                    layers.append(Upsample1d(ch))
                self.up.append(EmbedSequential(*layers))

        self.out = nn.Sequential(
            nn.GroupNorm(c.groups, ch), nn.SiLU(), _zero(nn.Conv1d(ch, c.in_channels, 3, padding=1))
        )

    def parameter_count(self, trainable_only: bool = False) -> int:
        """Number of parameters (works on the ``meta`` device)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def forward(self, x: Tensor, t: Tensor | float | None, cond: Mapping[str, Tensor]) -> Tensor:
        """Predict a (B, R, in_channels) tensor.

        Parameters
        ----------
        x
            (B, R, in_channels) structure matrix, channels last.
        t
            (B,) times in the objective's units (see the class docstring); a scalar is
            broadcast, ``None`` means 0 (models that do not use time).
        cond
            Mapping with ``elements`` (B, R, n_elements), ``properties`` (B, R, n_properties),
            ``spacegroup_ops`` (B, max_operations, 4, 4), ``energy`` (B,) if ``use_energy``,
            ``x_init`` (B, R, init_channels) if ``init_channels`` > 0, and optionally ``mask``
            (B, R) bool (otherwise the rows with a one-hot are the atoms). A training batch can
            be passed as is; other keys are ignored.

        Returns
        -------
        Tensor
            Same shape and dtype as ``x``.
        """
        c = self.config
        if x.dim() != 3 or x.shape[1:] != (c.rows, c.in_channels):
            raise ValueError(f"x must have shape (B, {c.rows}, {c.in_channels}), got {tuple(x.shape)}")
        b = x.shape[0]
        if t is None:
            t = 0.0
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(b)
        if t.shape != (b,):
            raise ValueError(f"t must be a scalar or have shape ({b},), got {tuple(t.shape)}")

        emb = self.time_embed(t) + self.cond_embed(cond, x.dtype)
        h = self.input_conv(x.transpose(1, 2))
        if self.init_embed is not None:
            x_init = require(cond, "x_init")
            if x_init.shape != (b, c.rows, c.init_channels):
                raise ValueError(
                    f"cond['x_init'] must have shape ({b}, {c.rows}, {c.init_channels}), "
                    f"got {tuple(x_init.shape)}"
                )
            h = h + self.init_embed(x_init.to(x.dtype).transpose(1, 2))
        skips = [h]
        for block in self.down:
            h = block(h, emb)
            skips.append(h)
        h = self.middle(h, emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).transpose(1, 2)
