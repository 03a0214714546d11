r"""Exact spike-time gradients in networks of single-spike neurons (Mostafa 2017).

H. Mostafa, *Supervised learning based on temporal coding in spiking neural networks*, IEEE
Transactions on Neural Networks and Learning Systems 29(7), 2018 (arXiv:1606.08165, 2016;
Table I of the review: MNIST 97.14 %, "Mostafa 2017").

**Neuron.** Non-leaky integrate-and-fire with exponentially decaying synaptic current (time
constant 1, threshold 1). An input spike at :math:`t_i` with weight :math:`w_i` adds
:math:`w_i e^{-(t - t_i)}` to the current, so the membrane is

.. math::

    V(t) = \sum_{i:\, t_i \le t} w_i \left(1 - e^{-(t - t_i)}\right),

and the neuron emits one spike, when :math:`V` first reaches 1.

**Closed form.** In the variable :math:`z = e^{t}`, between two input spikes
:math:`V = \sum_{i \in C} w_i - \frac{1}{z}\sum_{i \in C} w_i z_i`, so the first spike is

.. math::

    z_{out} = \frac{\sum_{i \in C} w_i z_i}{\sum_{i \in C} w_i - 1},

where the *causal set* :math:`C` holds the inputs that arrive before the output spike. With
inputs sorted by time, :math:`C` is the shortest prefix whose solution is valid:
:math:`\sum_C w_i > 1` and :math:`z_{|C|} \le z_{out} < z_{|C|+1}` (the next input, or
:math:`\infty`). No valid prefix: the neuron stays silent (:math:`z_{out} = \infty`).

**Exact gradient.** With :math:`C` fixed the map is smooth, and

.. math::

    \frac{\partial z_{out}}{\partial w_i} = \frac{z_i - z_{out}}{\sum_C w_j - 1}, \qquad
    \frac{\partial z_{out}}{\partial z_i} = \frac{w_i}{\sum_C w_j - 1}
    \qquad (i \in C,\ 0 \text{ otherwise}).

Here the causal set is found without gradients and :math:`z_{out}` is recomputed from the
closed form on that set with autograd, which yields exactly these derivatives (no surrogate).

**Loss.** Cross-entropy on :math:`-z_{out}` of the output layer (the earliest output spike
wins), plus the paper's cost :math:`K \sum_j \max(0, 1 - \sum_i w_{ji})` that keeps every
neuron's input weights summing above the threshold, so that it can fire.

**Input code.** Pixel intensities become spike times :math:`t = t_{max}(1 - q(x))`, bright
pixels first, with :math:`q` quantising to ``levels`` values (``levels=2`` binarises at 0.5
as the paper does). Few distinct input times also make the first layer cheap: the causal set
search then runs over the time *levels* with one matrix product per level (:func:`first_spike`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from deepspike.errors import ConfigError, InputValueError, ShapeError
from deepspike.metrics import CostReport, LayerCost, build_report

INPUT_ORDERS = ("bright_first", "dark_first")


class FirstSpikes(NamedTuple):
    """First spikes of a layer: ``z = exp(t)`` ``[B, O]`` (``inf`` where silent) and the number
    of inputs each neuron integrates before it fires (every arriving input when silent)."""

    z: torch.Tensor
    n_causal: torch.Tensor


def first_crossing(mass: torch.Tensor, z_events: torch.Tensor, counts: torch.Tensor) -> FirstSpikes:
    r"""First threshold crossing given input *events* in time order.

    Args:
        mass: ``[B, O, E]``, the summed weight from event ``e``'s inputs onto neuron ``o``.
        z_events: ``[B, E]``, ascending event times in the z-domain; ``inf`` marks no event.
        counts: ``[B, E]``, inputs per event (for the operation count).

    Prefix sums :math:`S^w_k = \sum_{e \le k} m_e` and :math:`S^{wz}_k = \sum_{e \le k} m_e z_e`
    give the candidate :math:`z_k = S^{wz}_k / (S^w_k - 1)`; the first ``k`` with
    :math:`S^w_k > 1` and :math:`z_{e_k} \le z_k < z_{e_{k+1}}` is the spike. The search runs
    without gradients; the returned ``z`` is differentiable in ``mass`` and ``z_events``.
    """
    finite = torch.isfinite(z_events)
    z_known = torch.where(finite, z_events, torch.zeros_like(z_events))
    s_w = mass.cumsum(-1)
    s_wz = (mass * z_known.unsqueeze(1)).cumsum(-1)
    with torch.no_grad():
        inf = torch.full_like(z_events[:, :1], math.inf)
        z_next = torch.cat([z_events[:, 1:], inf], dim=1).unsqueeze(1)
        candidate = s_wz / (s_w - 1.0)
        valid = (
            (s_w > 1.0)
            & (candidate >= z_events.unsqueeze(1))
            & (candidate < z_next)
            & finite.unsqueeze(1)
        )
        fires = valid.any(-1)
        k = valid.to(torch.int8).argmax(-1, keepdim=True)  # the first valid prefix
        arrived = counts.cumsum(-1)
        n_causal = torch.where(
            fires,
            arrived.unsqueeze(1).expand_as(valid).gather(-1, k).squeeze(-1),
            (counts * finite).sum(-1, keepdim=True).expand_as(fires),
        )
    denominator = s_w.gather(-1, k).squeeze(-1) - 1.0
    numerator = s_wz.gather(-1, k).squeeze(-1)
    safe = torch.where(fires, denominator, torch.ones_like(denominator))
    z = torch.where(fires, numerator / safe, torch.full_like(numerator, math.inf))
    return FirstSpikes(z, n_causal)


def first_spike_sorted(z: torch.Tensor, weight: torch.Tensor) -> FirstSpikes:
    """First spikes of neurons ``weight`` ``[O, N]`` for inputs ``z`` ``[B, N]``: every input is
    its own event, sorted per sample. Memory ``B*O*N``; differentiable in ``z`` and ``weight``."""
    z_sorted, order = z.sort(dim=1, stable=True)  # a fixed order of ties: deterministic sums
    b, n = z.shape
    per_sample = weight.t().unsqueeze(0).expand(b, n, weight.shape[0])
    # gather (not fancy indexing): its backward scatters each sample's permutation into its own
    # slice without collisions, so the weight gradient is the same bit for bit on every run.
    mass = per_sample.gather(1, order.unsqueeze(-1).expand_as(per_sample)).transpose(1, 2)
    return first_crossing(mass, z_sorted, torch.ones_like(z_sorted))


def first_spike_levels(z: torch.Tensor, weight: torch.Tensor, levels: torch.Tensor) -> FirstSpikes:
    """First spikes when every finite input time is one of ``levels`` (ascending, ``[G]``):
    the events are the levels, and each level's weight mass is one matrix product. Exact like
    :func:`first_spike_sorted`, with memory ``B*O*G``; differentiable in ``weight`` only."""
    b, n = z.shape
    at_level = (z.unsqueeze(1) == levels.view(1, -1, 1)).to(weight.dtype)  # [B, G, N]
    mass = (at_level.reshape(-1, n) @ weight.t()).reshape(b, len(levels), -1).transpose(1, 2)
    return first_crossing(mass, levels.expand(b, -1), at_level.sum(-1))


def first_spike(z: torch.Tensor, weight: torch.Tensor, max_levels: int = 32) -> FirstSpikes:
    """First spikes of a layer, choosing the cheaper exact method: by time levels when the
    inputs take at most ``max_levels`` distinct finite times and need no gradient (an encoded
    input layer), else by sorting every input."""
    if not z.requires_grad and max_levels:
        levels = torch.unique(z[torch.isfinite(z)])
        if 0 < len(levels) <= max_levels:
            return first_spike_levels(z, weight, levels)
    return first_spike_sorted(z, weight)


def check_z(z: torch.Tensor, n_inputs: int, name: str) -> None:
    """``z`` must be ``[B, n_inputs]`` spike times ``exp(t)``: no NaN, nothing below 0."""
    if z.dim() != 2 or z.shape[1] != n_inputs:
        raise ShapeError(
            f"{name} got spike times of shape {list(z.shape)}; it needs [B, {n_inputs}] "
            "(z = exp(t) per input neuron; flatten images and encode them with encode_times)"
        )
    if torch.isnan(z).any():
        raise InputValueError(f"{name} got NaN spike times; clean the input first")
    if (z < 0).any():
        raise InputValueError(f"{name} got negative z = exp(t); z must be positive (or inf)")


class SpikeTimeLinear(nn.Module):
    r"""A dense layer of single-spike IF neurons: input and output are ``z = exp(t)``.

    ``weight`` is ``[out, in]``, initialised :math:`\mathcal N(\mu/n_{in}, \sigma/\sqrt{n_{in}})`
    with ``init_mean`` :math:`\mu` and ``init_std`` :math:`\sigma`.
    """

    def __init__(
        self, in_features: int, out_features: int, init_mean: float = 4.0, init_std: float = 1.0
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        w = torch.randn(out_features, in_features) * (init_std / math.sqrt(in_features))
        self.weight = nn.Parameter(w + init_mean / in_features)

    def spikes(self, z: torch.Tensor) -> FirstSpikes:
        check_z(z, self.in_features, f"SpikeTimeLinear({self.in_features}, {self.out_features})")
        return first_spike(z, self.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.spikes(z).z

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class SpikeTimeNet(nn.Module):
    """A feed-forward stack of :class:`SpikeTimeLinear` layers, ``sizes = (784, 800, 10)``."""

    def __init__(self, sizes: Sequence[int], init_mean: float = 4.0, init_std: float = 1.0):
        super().__init__()
        if len(sizes) < 2:
            raise ConfigError(f"sizes={tuple(sizes)} needs an input and an output size")
        self.layers = nn.ModuleList(
            SpikeTimeLinear(a, b, init_mean, init_std) for a, b in itertools.pairwise(sizes)
        )

    def run(self, z: torch.Tensor) -> list[FirstSpikes]:
        """Every layer's first spikes, input to output."""
        out = []
        for layer in self.layers:
            spikes = layer.spikes(z)
            out.append(spikes)
            z = spikes.z
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            z = layer(z)
        return z


# ---------------------------------------------------------------------------- coding, loss


def encode_times(
    x: torch.Tensor, t_max: float = 2.0, levels: int = 2, order: str = "bright_first"
) -> torch.Tensor:
    r"""Intensities ``[B, ...]`` in [0, 1] to input spike times ``z = exp(t)`` ``[B, N]``.

    :math:`t = t_{max}(1 - q(x))` for ``bright_first`` (:math:`t = t_{max} q(x)` for
    ``dark_first``), where :math:`q` rounds to ``levels`` evenly spaced values (``levels=2``:
    a binary image, threshold 0.5; ``levels=0``: no quantisation).
    """
    if order not in INPUT_ORDERS:
        raise ConfigError(f"order={order!r} is unknown; choose one of {', '.join(INPUT_ORDERS)}")
    if levels == 1 or levels < 0:
        raise ConfigError(f"levels={levels} must be 0 (analog) or at least 2")
    flat = x.reshape(x.shape[0], -1)
    flat = flat if flat.is_floating_point() else flat.float()
    if torch.isnan(flat).any():
        raise InputValueError("input intensities contain NaN; clean the data first")
    q = flat.clamp(0.0, 1.0)
    if levels:
        q = torch.round(q * (levels - 1)) / (levels - 1)
    t = t_max * (1.0 - q) if order == "bright_first" else t_max * q
    return torch.exp(t)


def silent_to_late(z: torch.Tensor) -> torch.Tensor:
    """Replace ``inf`` (silent neurons) by a time later than every spike of the batch
    (twice the largest finite ``z``, at least 2), without gradient, so the loss stays finite."""
    finite = torch.isfinite(z)
    latest = z.detach()[finite].max() if finite.any() else torch.tensor(1.0, dtype=z.dtype)
    late = torch.clamp(2.0 * latest, min=2.0)
    return torch.where(finite, z, late.to(z.dtype))


def spike_time_cross_entropy(z_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy with logits :math:`-z_{out}`: the target neuron should fire first,
    :math:`L = -\ln \frac{e^{-z_y}}{\sum_k e^{-z_k}}`."""
    return F.cross_entropy(-silent_to_late(z_out), labels)


def predict_earliest(z_out: torch.Tensor) -> torch.Tensor:
    """The class whose output neuron fires first."""
    return z_out.argmin(dim=1)


def weight_sum_cost(model: nn.Module, strength: float) -> torch.Tensor:
    r"""Mostafa's cost :math:`K \sum_{layers} \sum_j \max(0, 1 - \sum_i w_{ji})` on every
    :class:`SpikeTimeLinear` of ``model``."""
    terms = [
        F.relu(1.0 - m.weight.sum(dim=1)).sum()
        for m in model.modules()
        if isinstance(m, SpikeTimeLinear)
    ]
    return strength * torch.stack(terms).sum()


# ---------------------------------------------------------------------------------- costs


@torch.no_grad()
def cost_report(model: SpikeTimeNet, inputs: Iterable[torch.Tensor]) -> CostReport:
    """Per-sample costs of the event-driven network over batches of input ``z``.

    Each input spike that reaches a neuron before that neuron fires is one accumulate (the
    weight added to its synaptic current); spikes arriving after it fired are ignored, as an
    event-driven single-spike neuron would. ``input_events`` counts the spikes entering a layer,
    ``ann_macs`` the equivalent ANN's ``in * out``, ``neuron_updates`` the accumulates (each
    changes the target's state) and ``spikes`` the neurons that fire. One presentation is
    reported as one time step.
    """
    totals: dict[str, list[float]] = {}
    samples = 0
    for z in inputs:
        samples += z.shape[0]
        for i, spikes in enumerate(model.run(z)):
            acs = float(spikes.n_causal.sum())
            events = float(torch.isfinite(z).sum())
            fired = float(torch.isfinite(spikes.z).sum())
            row = totals.setdefault(f"layers.{i}", [0.0, 0.0, 0.0])
            row[0] += events
            row[1] += acs
            row[2] += fired
            z = spikes.z
    if not samples:
        raise ConfigError("cost_report needs at least one batch of inputs")
    records: list[LayerCost] = []
    for (name, (events, acs, fired)), layer in zip(totals.items(), model.layers, strict=True):
        records.append(
            LayerCost(
                name=name,
                kind="linear",
                input_events=events / samples,
                acs=acs / samples,
                ann_macs=float(layer.in_features * layer.out_features),
            )
        )
        records.append(
            LayerCost(
                name=f"{name}.neurons",
                kind="neuron",
                neuron_updates=acs / samples,
                spikes=fired / samples,
                n_neurons=layer.out_features,
            )
        )
    params = sum(p.numel() for p in model.parameters())
    memory = sum(p.numel() * p.element_size() for p in model.parameters())
    return build_report(records, timesteps=1, samples=samples, params=params, memory_bytes=memory)
