r"""Forward hooks that count a model's costs while it runs.

:class:`CostMeter` attaches ``register_forward_hook`` hooks to the model's submodules and removes
them on exit; it accumulates over any number of forward calls (batches)::

    with CostMeter(model) as meter:
        for x in batches:          # each x time-major [T, B, ...]
            model(x)
    report = meter.report()        # per sample, averaged over every sample seen

or, in one call, ``measure(model, x)``. What is counted (NeuroBench definitions, see
:mod:`deepspike.metrics.counting`):

* synaptic layers (:class:`deepspike.layers.Linear`, :class:`~deepspike.layers.Conv2d`,
  :class:`~deepspike.layers.RecurrentDense`, and plain ``torch.nn.Linear``/``torch.nn.Conv2d``):
  input events, ACs (binary input) or MACs (non-binary input), and the equivalent ANN's MACs;
* :class:`deepspike.neurons.Neuron` modules (and the neurons inside ``RecurrentDense``): neuron
  updates (neurons x T), spikes and the number of neurons.

Samples and ``T`` come from the model's own input: ``[T, B, ...]`` when ``time_major`` (the
default), else ``[B, ...]`` with ``T = 1``. Each call of the model counts as ``B`` new samples
(for streaming, where several calls make up one inference, pass ``samples`` to
:meth:`CostMeter.report`). The deepspike layers are time-major, so the ANN MACs of a call are
``B`` times the per-sample MACs. A plain torch layer on a 2-D (``Linear``) or 4-D (``Conv2d``)
input is taken to see ``T * B`` folded rows with ``T = plain_timesteps`` (default 1); give the
model's ``T`` there when time is folded into the batch of plain layers, or when a plain layer is
called once per time step. The submodules of a counted layer (the two ``nn.Linear`` inside a
``RecurrentDense``) are not counted again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from deepspike.errors import ConfigError, ShapeError
from deepspike.layers import Conv2d, Linear, RecurrentDense
from deepspike.metrics.counting import (
    conv2d_ann_macs,
    conv2d_synops,
    count_events,
    dense_ann_macs,
    is_accumulate_only,
    split_ops,
)
from deepspike.metrics.report import CostReport, LayerCost, build_report
from deepspike.neurons.module import Neuron


class Delta(NamedTuple):
    """The counts of one module call, as totals over the call's tensor (all steps, samples).

    ``ann_macs`` is already the equivalent ANN's MACs for the samples of the call.
    """

    input_events: int = 0
    acs: int = 0
    macs: int = 0
    ann_macs: float = 0.0
    neuron_updates: int = 0
    spikes: int | None = None
    n_neurons: int = 0


def layer_kind(module: nn.Module) -> str | None:
    """The kind of cost record ``module`` gets, or ``None`` if it is not counted."""
    if isinstance(module, RecurrentDense):
        return "recurrent"
    if isinstance(module, nn.Linear):  # deepspike.layers.Linear included
        return "linear"
    if isinstance(module, nn.Conv2d):  # deepspike.layers.Conv2d included
        return "conv2d"
    if isinstance(module, Neuron):
        return "neuron"
    return None


def linear_delta(x: torch.Tensor, layer: nn.Linear, timesteps: int) -> Delta:
    """Counts of a dense layer on ``x`` (``[..., in]``) holding ``timesteps`` steps per sample."""
    events = count_events(x)
    acs, macs = split_ops(events * layer.out_features, is_accumulate_only(x))
    rows = x.numel() // layer.in_features
    ann = dense_ann_macs(layer.in_features, layer.out_features) * rows / timesteps
    return Delta(events, acs, macs, ann)


def conv2d_delta(x: torch.Tensor, y: torch.Tensor, layer: nn.Conv2d, timesteps: int) -> Delta:
    """Counts of a 2-D convolution with input ``x`` and output ``y`` (``[..., C, H, W]``)."""
    events = count_events(x)
    ops = conv2d_synops(
        x,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
        layer.padding_mode,
    )
    acs, macs = split_ops(ops, is_accumulate_only(x))
    per_sample = conv2d_ann_macs(
        y.shape[-2:], layer.out_channels, layer.in_channels, layer.kernel_size, layer.groups
    )
    maps = y.numel() // math.prod(y.shape[-3:])
    return Delta(events, acs, macs, per_sample * maps / timesteps)


def recurrent_delta(x: torch.Tensor, y: torch.Tensor, layer: RecurrentDense) -> Delta:
    """Counts of a :class:`RecurrentDense` with input ``x`` and output spikes ``y``.

    Feed-forward: the events of ``x``, each with fan-out ``out``. Recurrent: the output spikes of
    steps ``0..T-2`` (those fed back at the next step), each with fan-out ``out``. Its neurons
    update ``T * out`` times per sample. ANN MACs: ``in*out + out*out`` per sample.
    """
    out = layer.out_features
    ff_events, rec_events = count_events(x), count_events(y[:-1])
    ff_acs, ff_macs = split_ops(ff_events * out, is_accumulate_only(x))
    rec_acs, rec_macs = split_ops(rec_events * out, is_accumulate_only(y[:-1]))
    ann = (dense_ann_macs(layer.in_features, out) + dense_ann_macs(out, out)) * x.shape[1]
    return Delta(
        input_events=ff_events + rec_events,
        acs=ff_acs + rec_acs,
        macs=ff_macs + rec_macs,
        ann_macs=ann,
        neuron_updates=y.numel(),
        spikes=count_events(y),
        n_neurons=out,
    )


def neuron_delta(y: torch.Tensor, emits_spikes: bool) -> Delta:
    """Counts of a neuron layer with time-major output ``y`` ``[T, B, ...]``.

    Every neuron updates once per step; spikes are the non-zero outputs (none when the layer
    outputs its membrane potential).
    """
    if y.dim() < 2:
        raise ShapeError(f"neuron output has shape {list(y.shape)}; it must be [T, B, ...]")
    return Delta(
        neuron_updates=y.numel(),
        spikes=count_events(y) if emits_spikes else None,
        n_neurons=math.prod(y.shape[2:]),
    )


def module_delta(
    module: nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor, plain_timesteps: int
) -> Delta:
    """Dispatch one call of a counted module to its counting function."""
    if kind == "recurrent":
        return recurrent_delta(x, y, module)
    if kind == "neuron":
        return neuron_delta(y, emits_spikes=module.output == "spikes")
    if kind == "linear":
        time_major = isinstance(module, Linear) or x.dim() >= 3
        return linear_delta(x, module, x.shape[0] if time_major else plain_timesteps)
    time_major = isinstance(module, Conv2d) or x.dim() >= 5
    return conv2d_delta(x, y, module, x.shape[0] if time_major else plain_timesteps)


@dataclass
class _Totals:
    """Mutable running totals of one module (sums over calls of :class:`Delta`)."""

    name: str
    kind: str
    calls: int = 0
    input_events: int = 0
    acs: int = 0
    macs: int = 0
    ann_macs: float = 0.0
    neuron_updates: int = 0
    spikes: int | None = None
    n_neurons: int = 0

    def add(self, d: Delta) -> None:
        self.calls += 1
        self.input_events += d.input_events
        self.acs += d.acs
        self.macs += d.macs
        self.ann_macs += d.ann_macs
        self.neuron_updates += d.neuron_updates
        if d.spikes is not None:
            self.spikes = (self.spikes or 0) + d.spikes
        self.n_neurons = max(self.n_neurons, d.n_neurons)

    def per_sample(self, samples: int) -> LayerCost:
        return LayerCost(
            name=self.name,
            kind=self.kind,
            input_events=self.input_events / samples,
            acs=self.acs / samples,
            macs=self.macs / samples,
            ann_macs=self.ann_macs / samples,
            neuron_updates=self.neuron_updates / samples,
            spikes=None if self.spikes is None else self.spikes / samples,
            n_neurons=self.n_neurons,
        )


def first_tensor(args: Any, kwargs: Mapping[str, Any] | None = None) -> torch.Tensor | None:
    """The first tensor in ``args`` (nested tuples/lists included), then in ``kwargs``."""
    items = list(args) + list((kwargs or {}).values())
    for a in items:
        if isinstance(a, torch.Tensor):
            return a
        if isinstance(a, tuple | list):
            t = first_tensor(a)
            if t is not None:
                return t
    return None


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in ``obj`` (tensors, tuples, lists, dicts, nested)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, tuple | list):
        return sum(tensor_bytes(o) for o in obj)
    if isinstance(obj, Mapping):
        return sum(tensor_bytes(o) for o in obj.values())
    return 0


def time_and_batch(x: torch.Tensor, time_major: bool) -> tuple[int, int]:
    """``(T, B)`` of a model input: ``[T, B, ...]`` if ``time_major`` else ``[B, ...]``."""
    if time_major:
        if x.dim() < 2:
            raise ShapeError(
                f"model input has shape {list(x.shape)} but must be time-major [T, B, ...]; "
                "pass time_major=False for a [B, ...] input"
            )
        return int(x.shape[0]), int(x.shape[1])
    if x.dim() < 1:
        raise ShapeError("model input is a scalar; it needs a batch axis [B, ...]")
    return 1, int(x.shape[0])


def parameter_count(model: nn.Module) -> int:
    """Number of (distinct) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def memory_bytes(model: nn.Module) -> int:
    """Bytes of the parameters plus the buffers of ``model``."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return params + sum(b.numel() * b.element_size() for b in model.buffers())


def counted_modules(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(name, module, kind)`` of every module to count, in module order; the submodules of a
    counted synaptic layer are skipped (they are part of its count)."""
    out: list[tuple[str, nn.Module, str]] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(p + ".") or p == "" for p in inside):
            continue
        kind = layer_kind(module)
        if kind is None:
            continue
        out.append((name or type(module).__name__, module, kind))
        if kind != "neuron":
            inside.append(name)
    return out


class CostMeter:
    """Context manager that counts a model's costs over every forward call inside it.

    Args:
        model: any ``nn.Module``; its counted submodules are found by type (see module doc).
        time_major: the model's input is ``[T, B, ...]`` (default) rather than ``[B, ...]``.
        plain_timesteps: time steps folded into the rows of plain torch ``Linear``/``Conv2d``
            layers that see a ``[T*B, ...]`` input (or that are called once per step).

    The hooks are attached on ``__enter__`` and removed on ``__exit__``; the counts stay, so
    :meth:`report` may be called after the block. Call :meth:`reset` to start again.
    """

    def __init__(
        self, model: nn.Module, *, time_major: bool = True, plain_timesteps: int = 1
    ) -> None:
        if plain_timesteps < 1:
            raise ConfigError(f"plain_timesteps={plain_timesteps} must be at least 1")
        self.model = model
        self.time_major = time_major
        self.plain_timesteps = plain_timesteps
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self.reset()

    # ------------------------------------------------------------------ counting state
    def reset(self) -> None:
        """Forget every count (the hooks, if attached, stay)."""
        self.samples = 0
        self.timesteps: int | None = None
        self._batch = 1
        self._peak_bytes = 0.0
        self._totals: dict[str, _Totals] = {}

    @property
    def attached(self) -> bool:
        """Whether the hooks are on the model now."""
        return bool(self._handles)

    # ------------------------------------------------------------------ hooks
    def attach(self) -> CostMeter:
        """Register the hooks (``__enter__`` does this)."""
        if self.attached:
            raise ConfigError("this CostMeter is already attached; use it in one `with` at a time")
        hook = self.model.register_forward_pre_hook(self._on_model_input, with_kwargs=True)
        self._handles.append(hook)
        counted = counted_modules(self.model)
        for name, module, kind in counted:
            self._totals.setdefault(name, _Totals(name, kind))
            handle = module.register_forward_hook(self._count_hook(name, kind), with_kwargs=True)
            self._handles.append(handle)
        counted_ids = {id(m) for _, m, _ in counted}
        for module in self.model.modules():
            if id(module) in counted_ids or next(module.children(), None) is None:
                handle = module.register_forward_hook(self._bytes_hook, with_kwargs=True)
                self._handles.append(handle)
        return self

    def detach(self) -> None:
        """Remove every hook this meter registered (``__exit__`` does this)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> CostMeter:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _on_model_input(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        x = first_tensor(args, kwargs)
        if x is None:
            raise ShapeError(f"{type(module).__name__} was called without a tensor input")
        t, b = time_and_batch(x, self.time_major)
        if self.timesteps is None:
            self.timesteps = t
        self.samples += b
        self._batch = b

    def _count_hook(self, name: str, kind: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
            x, y = first_tensor(args, kwargs), first_tensor((output,))
            if x is None or y is None:
                return
            with torch.no_grad():
                delta = module_delta(module, kind, x.detach(), y.detach(), self.plain_timesteps)
            self._totals[name].add(delta)

        return hook

    def _bytes_hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        per_sample = (tensor_bytes(args) + tensor_bytes(kwargs) + tensor_bytes(output)) / max(
            self._batch, 1
        )
        self._peak_bytes = max(self._peak_bytes, per_sample)

    # ------------------------------------------------------------------ result
    def report(self, samples: int | None = None) -> CostReport:
        """The costs per sample over every call so far.

        ``samples`` overrides the number of samples counted from the model's inputs (for
        streaming, where several calls make up one inference of the same samples).
        """
        n = self.samples if samples is None else samples
        if n < 1:
            raise ConfigError(
                "no samples were recorded: call the model inside `with CostMeter(model)` "
                "(or pass samples=...)"
            )
        layers = [t.per_sample(n) for t in self._totals.values() if t.calls]
        scale = self.samples / n if self.samples else 1.0
        return build_report(
            layers,
            timesteps=self.timesteps or 1,
            samples=n,
            params=parameter_count(self.model),
            memory_bytes=memory_bytes(self.model),
            peak_activation_bytes=self._peak_bytes * scale,
        )


Batches = torch.Tensor | Iterable[Any]


def measure(
    model: nn.Module,
    inputs: Batches,
    *,
    time_major: bool = True,
    plain_timesteps: int = 1,
    eval_mode: bool = True,
) -> CostReport:
    """Run ``model`` on ``inputs`` without gradients and return its costs per sample.

    Args:
        inputs: one input tensor, or an iterable of batches; a batch that is a tuple or list
            (as a ``DataLoader`` yields) is called with its first element, the labels ignored.
        eval_mode: run in ``eval()`` mode (no dropout); the modules' training flags are
            restored afterwards.
        time_major, plain_timesteps: as for :class:`CostMeter`.
    """
    batches = [inputs] if isinstance(inputs, torch.Tensor) else inputs
    flags = [(m, m.training) for m in model.modules()]
    if eval_mode:
        model.eval()
    try:
        with (
            torch.no_grad(),
            CostMeter(model, time_major=time_major, plain_timesteps=plain_timesteps) as meter,
        ):
            for batch in batches:
                model(batch[0] if isinstance(batch, tuple | list) else batch)
    finally:
        for m, training in flags:
            m.training = training
    return meter.report()
