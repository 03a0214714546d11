"""Helpers shared by recipes: data loading and input encoding."""

from __future__ import annotations

import torch

from deepspike import data, encoding
from deepspike.errors import ConfigError
from deepspike.recipes.registry import Context

IMAGE_SETS = ("digits", "mnist")


def image_split(ctx: Context, split: str, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, H, W]`` in [0, 1] and labels ``[N]`` of an image data set, optionally the
    first ``limit`` samples (a fixed, seeded subset when the set is shuffled)."""
    if ctx.dataset not in IMAGE_SETS:
        raise ConfigError(
            f"data set {ctx.dataset!r} is not an image set this recipe can use; "
            f"choose one of {', '.join(IMAGE_SETS)}"
        )
    x, y = data.load(ctx.dataset, split, data_dir=ctx.data_dir)
    if limit and limit < len(x):
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(ctx.seed))[:limit]
        x, y = x[keep], y[keep]
    return x, y


def make_encoder(kind: str, timesteps: int):
    """An encoder ``(x [B, ...], generator) -> [T, B, ...]`` by name.

    * ``rate``: Bernoulli spikes with probability equal to the intensity per step;
    * ``direct``: the analog intensity as a constant current into the first layer;
    * ``latency``: one spike per pixel, brighter pixels earlier (linear TTFS).
    """
    if kind == "rate":
        return lambda x, g: encoding.rate(x, timesteps, generator=g)
    if kind == "direct":
        return lambda x, g: x.unsqueeze(0).expand(timesteps, *x.shape)
    if kind == "latency":
        return lambda x, g: encoding.latency(x, timesteps)
    raise ConfigError(f"encoding={kind!r} is unknown; choose rate, direct or latency")
