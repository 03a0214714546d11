r"""Competition in convolutional layers (Masquelier & Thorpe 2007; Kheradpisheh et al. 2018).

Work on one "wave" of first spikes: ``spikes`` ``[B, C, H, W]`` (1 where a neuron fired) and a
``score`` of the same shape (higher wins; :func:`earliest_first` ranks the earliest spike first,
ties by the larger potential). Dense layers use :func:`deepspike.layers.k_winners` and
:class:`deepspike.layers.LateralInhibition`.

* :func:`feature_inhibition`: at most one winner per feature map (the maps share a kernel, so only
  one position may train it per image);
* :func:`position_inhibition`: at most one feature per position (lateral inhibition between maps
  at the winner's position);
* :func:`conv_k_winners`: up to ``k`` winners per sample, chosen greedily by score; each winner
  inhibits its whole map and every map within ``radius`` of its position, so winners are
  distinct features at distinct places.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from deepspike.errors import ConfigError, ShapeError


def _check_maps(spikes: torch.Tensor, score: torch.Tensor) -> None:
    if spikes.dim() != 4 or spikes.shape != score.shape:
        raise ShapeError(
            f"spikes {list(spikes.shape)} and score {list(score.shape)} must both be [B, C, H, W]"
        )


def earliest_first(times: torch.Tensor, potentials: torch.Tensor) -> torch.Tensor:
    """A score that ranks earlier spikes higher and, at equal times, larger potentials.

    ``times`` ``[B, C, H, W]`` are first-spike steps (``inf`` for none; those get ``-inf``).
    The score is float64: a float32 potential keeps every bit next to the time term (in
    float32, ``-14 * span`` would round away differences below about ``span / 2^20``).
    """
    potentials = potentials.to(torch.float64)
    span = float(potentials.abs().max()) * 2.0 + 1.0 if potentials.numel() else 1.0
    score = -times.to(torch.float64) * span + potentials
    return torch.where(torch.isfinite(times), score, torch.full_like(score, -torch.inf))


def _masked(spikes: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    return torch.where(spikes > 0, score, torch.full_like(score, -torch.inf))


def feature_inhibition(spikes: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Keep, in each sample's feature map, only the best-scoring spike (at most one per map)."""
    _check_maps(spikes, score)
    b, c = spikes.shape[:2]
    flat = _masked(spikes, score).reshape(b, c, -1)
    best = flat.argmax(dim=2, keepdim=True)
    keep = torch.zeros_like(flat).scatter_(2, best, 1.0) * torch.isfinite(flat).any(2, True)
    return spikes * keep.reshape_as(spikes).to(spikes.dtype)


def position_inhibition(spikes: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Keep, at each position of each sample, only the best-scoring feature (at most one)."""
    _check_maps(spikes, score)
    masked = _masked(spikes, score)
    best = masked.argmax(dim=1, keepdim=True)
    keep = torch.zeros_like(masked).scatter_(1, best, 1.0) * torch.isfinite(masked).any(1, True)
    return spikes * keep.to(spikes.dtype)


def conv_k_winners(
    spikes: torch.Tensor, score: torch.Tensor, k: int, radius: int = 0
) -> torch.Tensor:
    """A 0/1 mask ``[B, C, H, W]`` of at most ``k`` winners per sample (see module docstring).

    Winners are taken by decreasing score among the spiking neurons; after each, its feature map
    and all features within ``radius`` (Chebyshev distance) of its position are excluded.
    """
    _check_maps(spikes, score)
    if k < 1 or radius < 0:
        raise ConfigError(f"need k >= 1 and radius >= 0, got k={k}, radius={radius}")
    b, c, h, w = spikes.shape
    masked = _masked(spikes, score).clone()
    winners = torch.zeros_like(spikes)
    rows = torch.arange(h, device=spikes.device)
    cols = torch.arange(w, device=spikes.device)
    samples = torch.arange(b, device=spikes.device)
    for _ in range(min(k, c)):
        best, index = masked.reshape(b, -1).max(dim=1)
        found = torch.isfinite(best)
        if not bool(found.any()):
            break
        ch, pos = index // (h * w), index % (h * w)
        r, q = pos // w, pos % w
        winners[samples[found], ch[found], r[found], q[found]] = 1.0
        near = ((rows.view(1, h, 1) - r.view(b, 1, 1)).abs() <= radius) & (
            (cols.view(1, 1, w) - q.view(b, 1, 1)).abs() <= radius
        )
        same_map = F.one_hot(ch, c).bool().view(b, c, 1, 1)
        inhibited = (near.unsqueeze(1) | same_map) & found.view(b, 1, 1, 1)
        masked = masked.masked_fill(inhibited, -torch.inf)
    return winners
