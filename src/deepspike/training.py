r"""Shared training and evaluation loops for classifiers that emit spikes over time.

Losses (Neftci, Mostafa & Zenke 2019; Lee, Delbruck & Pfeiffer 2016):

* :func:`count_cross_entropy`: softmax cross-entropy on the output spike counts
  :math:`c_k = \sum_t s_{t,k}`, with logits :math:`c_k / \tau_c`.
* :func:`membrane_cross_entropy`: cross-entropy on the output membrane, reduced over time by
  its maximum or mean.
* :func:`count_mse`: squared error between the count and a target rate per class.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike.errors import ConfigError, check_finite
from deepspike.metrics import CostMeter, CostReport

log = logging.getLogger("deepspike")

Encoder = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded with ``seed`` too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def count_cross_entropy(output: torch.Tensor, labels: torch.Tensor, scale: float = 1.0):
    """Cross-entropy on spike counts: ``output`` is ``[T, B, C]`` spikes."""
    return F.cross_entropy(output.sum(0) / scale, labels)


def membrane_cross_entropy(output: torch.Tensor, labels: torch.Tensor, reduce: str = "max"):
    """Cross-entropy on the membrane trace ``[T, B, C]``, reduced over time by max or mean."""
    if reduce == "max":
        logits = output.max(0).values
    elif reduce == "mean":
        logits = output.mean(0)
    else:
        raise ConfigError(f"reduce={reduce!r} is unknown; choose 'max' or 'mean'")
    return F.cross_entropy(logits, labels)


def count_mse(output: torch.Tensor, labels: torch.Tensor, on_rate=0.8, off_rate=0.05):
    """MSE between spike counts and a target count: ``on_rate*T`` for the label, else
    ``off_rate*T`` (the rate targets of Shrestha & Orchard 2018 and snnTorch's mse_count_loss)."""
    t = output.shape[0]
    target = torch.full_like(output[0], off_rate * t)
    target[torch.arange(len(labels)), labels] = on_rate * t
    return F.mse_loss(output.sum(0), target)


def predict(output: torch.Tensor) -> torch.Tensor:
    """Class decision from ``[T, B, C]``: the class with the most spikes, ties broken by the
    summed output (the membrane if the read-out emits it)."""
    return output.sum(0).argmax(dim=1)


@dataclass
class History:
    """Per-epoch training record."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def batches(n: int, batch_size: int, generator: torch.Generator | None, shuffle: bool):
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def fit(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    loss_fn: Loss = count_cross_entropy,
    generator: torch.Generator,
    grad_clip: float | None = None,
    schedule: str = "cosine",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` with Adam on ``loss_fn(model(encode(x_batch)), y_batch)``.

    Logs one line per epoch; shows a progress bar over batches when ``progress``.
    """
    check_finite(x, "training input")
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
    elif schedule == "constant":
        scheduler = None
    else:
        raise ConfigError(f"schedule={schedule!r} is unknown; choose 'cosine' or 'constant'")
    history = History()
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        index_batches = list(batches(len(x), batch_size, generator, shuffle=True))
        bar = tqdm(index_batches, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False)
        for idx in bar:
            output = model(encode(x[idx], generator))
            loss = loss_fn(output, y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += int((predict(output.detach()) == y[idx]).sum())
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        history.loss.append(total_loss / seen)
        history.train_accuracy.append(100.0 * correct / seen)
        line = (
            f"epoch {epoch}/{epochs} loss {history.loss[-1]:.4f} "
            f"train {history.train_accuracy[-1]:.2f}%"
        )
        if validation is not None:
            val_acc = accuracy(
                model, encode, *validation, batch_size=batch_size, generator=generator
            )
            history.val_accuracy.append(val_acc)
            line += f" val {val_acc:.2f}%"
        log.info(line)
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def accuracy(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """Test accuracy in percent."""
    model.eval()
    correct = 0
    for idx in batches(len(x), batch_size, None, shuffle=False):
        correct += int((predict(model(encode(x[idx], generator))) == y[idx]).sum())
    return 100.0 * correct / max(len(x), 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    progress: bool = False,
) -> tuple[float, CostReport]:
    """Test accuracy (percent) and the cost report averaged over every test sample."""
    check_finite(x, "test input")
    model.eval()
    correct = 0
    with CostMeter(model) as meter:
        for idx in tqdm(
            list(batches(len(x), batch_size, None, shuffle=False)),
            desc="evaluate",
            disable=not progress,
            leave=False,
        ):
            correct += int((predict(model(encode(x[idx], generator))) == y[idx]).sum())
    return 100.0 * correct / max(len(x), 1), meter.report()
