"""Inputs, the shared loss and the two timed operations: one training step and one inference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from deepspike.training import count_cross_entropy

Reset = Callable[[nn.Module], None]


def no_reset(model: nn.Module) -> None:
    """For models that start from rest on every call."""


@dataclass(frozen=True)
class Workload:
    """A time-major input ``x`` ``[T, B, ...]`` and its labels ``y`` ``[B]``."""

    x: torch.Tensor
    y: torch.Tensor

    @property
    def timesteps(self) -> int:
        return self.x.shape[0]

    @property
    def batch(self) -> int:
        return self.x.shape[1]


def spikes(shape: tuple[int, ...], activity: float, seed: int = 0) -> torch.Tensor:
    """Binary Bernoulli spikes (float32): each entry fires with probability ``activity``."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < activity).float()


def workload(
    timesteps: int, batch: int, sample_shape: tuple[int, ...], activity: float, seed: int = 0
) -> Workload:
    """Spike input ``[T, B, *sample_shape]`` with random labels over ten classes."""
    x = spikes((timesteps, batch, *sample_shape), activity, seed)
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(seed + 1))
    return Workload(x, y)


class TimeFold(nn.Module):
    """Apply a per-sample module to every step of ``[T, B, ...]`` in one call, by folding time
    into the batch axis (the form deepspike's layers use internally)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        return self.module(x.flatten(0, 1)).unflatten(0, (t, b))


def train_step(
    model: nn.Module, data: Workload, reset: Reset = no_reset, lr: float = 1e-3
) -> Callable[[], None]:
    """One Adam step on the cross-entropy of output spike counts (summed over T)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss = count_cross_entropy(model(data.x), data.y)
        loss.backward()
        optimiser.step()
        reset(model)

    return step


def inference(model: nn.Module, x: torch.Tensor, reset: Reset = no_reset) -> Callable[[], None]:
    """One forward pass under ``torch.no_grad``."""
    model.eval()

    def forward() -> None:
        with torch.no_grad():
            model(x)
        reset(model)

    return forward
