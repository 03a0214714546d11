r"""Run a converted SNN over time: accuracy and synaptic operations after every step.

A converted network is causal and feed-forward: its first :math:`t` steps do not depend on the
steps after them. One run of :math:`T` steps therefore gives the decision, and the operations
spent, after every :math:`t \le T` (the curves of Diehl 2015, Rueckauer 2017 and Neil 2016)
at the price of the longest run alone. The operations per step are counted with the cost
harness's definitions (NeuroBench's: an input event costs its fan-out; a convolution's
fan-out map is computed once per layer), and the official cost at the chosen :math:`T` comes from a
:class:`~deepspike.metrics.CostMeter` run on the same input's first :math:`T` steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike import encoding
from deepspike.conversion.config import INPUTS, check_choice
from deepspike.errors import ConfigError
from deepspike.metrics import CostMeter, CostReport
from deepspike.metrics.counting import explicit_padding
from deepspike.metrics.meter import counted_modules

#: Default bound on the elements of one layer's time-major activation per batch (memory).
MAX_ELEMENTS = 2**25


def encode(
    x: torch.Tensor,
    timesteps: int,
    input: str = "direct",
    max_rate: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Time-major input ``[T, B, ...]``: ``direct`` repeats the analog ``x`` as a constant
    input current at every step; ``rate`` draws Bernoulli spikes with probability
    ``max_rate * x`` per step (:func:`deepspike.encoding.rate`)."""
    check_choice("input", input, INPUTS)
    if timesteps < 1:
        raise ConfigError(f"timesteps={timesteps} must be at least 1")
    if input == "direct":
        return x.unsqueeze(0).expand(timesteps, *x.shape)
    return encoding.rate(x, timesteps, max_rate=max_rate, generator=generator)


@dataclass(frozen=True)
class TimeCourse:
    """Accuracy and cost of an SNN after each step ``t = 1 .. T``.

    Attributes:
        accuracy: percent correct when deciding after ``t`` steps (index ``t - 1``).
        synops: synaptic operations per sample spent in the first ``t`` steps (cumulative).
        samples: test samples.
        cost: the :class:`CostMeter` report of a run of ``cost_timesteps`` steps, if asked for.
        cost_timesteps: that run's number of steps.
    """

    accuracy: tuple[float, ...]
    synops: tuple[float, ...]
    samples: int
    cost: CostReport | None = None
    cost_timesteps: int | None = None

    @property
    def timesteps(self) -> int:
        return len(self.accuracy)

    def accuracy_at(self, t: int) -> float:
        return self.accuracy[t - 1]

    def synops_at(self, t: int) -> float:
        return self.synops[t - 1]

    def first_step_reaching(self, accuracy: float) -> int | None:
        """The first ``t`` whose accuracy is at least ``accuracy`` (``None`` if none)."""
        for t, acc in enumerate(self.accuracy, 1):
            if acc >= accuracy - 1e-9:
                return t
        return None

    def curve(self, steps: Iterable[int]) -> dict[str, dict[str, float]]:
        """``{"accuracy": {t: acc}, "synops": {t: ops}}`` at ``steps`` (keys as strings, JSON)."""
        chosen = sorted({t for t in steps if 1 <= t <= self.timesteps})
        return {
            "accuracy": {str(t): round(self.accuracy_at(t), 4) for t in chosen},
            "synops": {str(t): self.synops_at(t) for t in chosen},
        }


@torch.no_grad()
def conv_fanout(layer: nn.Conv2d, in_shape: tuple[int, ...]) -> torch.Tensor:
    """The fan-out ``[C, H, W]`` of every input element of ``layer``, as
    :func:`deepspike.metrics.conv2d_synops` counts it: that count is linear in the event
    indicator, so its gradient with respect to the indicator is each element's fan-out."""
    kh, kw = layer.kernel_size
    top, bottom, left, right = explicit_padding(layer.padding, layer.kernel_size, layer.dilation)
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    ones = torch.ones(layer.out_channels, in_shape[0] // layer.groups, kh, kw, dtype=torch.float64)
    with torch.enable_grad():
        indicator = torch.ones(1, *in_shape, dtype=torch.float64, requires_grad=True)
        padded = F.pad(indicator, (left, right, top, bottom), mode=mode)
        total = F.conv2d(
            padded, ones, stride=layer.stride, dilation=layer.dilation, groups=layer.groups
        ).sum()
        (fanout,) = torch.autograd.grad(total, indicator)
    return fanout[0]


def step_synops(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Synaptic operations ``[T]`` of a time-major layer input ``x`` at each step, summed over
    the batch: every input event costs its fan-out (NeuroBench's definition, as the
    :class:`~deepspike.metrics.CostMeter` counts)."""
    events = (x != 0).flatten(2).sum(1, dtype=torch.float64)  # [T, features]
    if isinstance(layer, nn.Linear):
        return events.sum(1) * layer.out_features
    fanout = conv_fanout(layer, tuple(x.shape[2:]))
    return events @ fanout.flatten()


class StepOps:
    """Forward hooks that add up each synaptic layer's operations per time step.

    Use as ``with StepOps(model, T) as ops: model(x)``; ``ops.total`` ``[T]`` then holds the
    operations of every step summed over the samples (divide by their number). Calls made
    while ``ops.enabled`` is false are not counted.
    """

    def __init__(self, model: nn.Module, timesteps: int) -> None:
        self.model = model
        self.total = torch.zeros(timesteps, dtype=torch.float64)
        self.enabled = True
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> StepOps:
        for _, module, kind in counted_modules(self.model):
            if kind in ("linear", "conv2d"):
                self._handles.append(module.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, module: nn.Module, args, output: torch.Tensor) -> None:
        if self.enabled:
            self.total += step_synops(module, args[0].detach())


@torch.no_grad()
def widest_activation(model: nn.Module, sample: torch.Tensor) -> int:
    """The most elements any module outputs per sample and step, for one sample ``[1, 1, ...]``."""
    widest = [int(sample[0, 0].numel())]

    def hook(module, args, output):
        if isinstance(output, torch.Tensor):
            widest[0] = max(widest[0], int(output[0, 0].numel()))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model(sample)
    finally:
        for h in handles:
            h.remove()
    return widest[0]


@torch.no_grad()
def simulate(
    snn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    timesteps: int,
    input: str = "direct",
    max_rate: float = 1.0,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    cost_timesteps: int | None = None,
    max_elements: int = MAX_ELEMENTS,
    progress: bool = False,
) -> TimeCourse:
    """Run ``snn`` (a :class:`~deepspike.conversion.SpikingNetwork`) on images ``x`` ``[N, ...]``
    with labels ``y`` for ``timesteps`` steps; return accuracy and operations after every step.

    The batch shrinks below ``batch_size`` when needed to keep each time-major activation under
    ``max_elements``. With ``cost_timesteps``, every batch's first ``cost_timesteps`` steps run
    again through a :class:`~deepspike.metrics.CostMeter`, whose report is the official cost.
    """
    if cost_timesteps is not None and not 1 <= cost_timesteps <= timesteps:
        raise ConfigError(f"cost_timesteps={cost_timesteps} must be in [1, {timesteps}]")
    snn.eval()
    probe = encode(x[:1], 1, input, max_rate, generator)
    widest = widest_activation(snn, probe)
    batch = max(1, min(batch_size, max_elements // (timesteps * widest)))
    correct = torch.zeros(timesteps, dtype=torch.float64)
    meter = CostMeter(snn)
    with StepOps(snn, timesteps) as ops:
        starts = range(0, len(x), batch)
        for start in tqdm(starts, desc="SNN", disable=not progress, leave=False):
            xb, yb = x[start : start + batch], y[start : start + batch]
            spikes_in = encode(xb, timesteps, input, max_rate, generator)
            decisions = snn.logits(snn(spikes_in)).argmax(-1)
            correct += (decisions == yb).sum(1).to(torch.float64)
            if cost_timesteps is not None:
                ops.enabled = False
                with meter:
                    snn(spikes_in[:cost_timesteps])
                ops.enabled = True
    n = max(len(x), 1)
    accuracy = tuple(float(v) for v in (100.0 * correct / n))
    synops = tuple(float(v) for v in ops.total.cumsum(0) / n)
    cost = meter.report() if cost_timesteps is not None and len(x) else None
    return TimeCourse(accuracy, synops, len(x), cost, cost_timesteps)


def first_within(course: TimeCourse, reference: float, margin: float) -> int | None:
    """The first step at which accuracy comes within ``margin`` percentage points of
    ``reference`` (e.g. the ANN's accuracy)."""
    if not math.isfinite(reference):
        return None
    return course.first_step_reaching(reference - margin)
