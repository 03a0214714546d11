r"""Build the spiking network of an :class:`~deepspike.conversion.graph.AnnGraph`.

Every tensor of the SNN stands for an ANN tensor divided by a *scale*: a spike train of rate
:math:`r` (spikes per step) stands for the activation :math:`a = \lambda r`, and an input
current :math:`c` per step for the pre-activation :math:`z = \lambda c`. The scales are what
normalisation chooses (:mod:`deepspike.conversion.normalise`). With an activation layer of scale
:math:`\lambda_l` reading a layer of scale :math:`\lambda_{l-1}`, the weights become

.. math::

    W'_l = W_l \frac{\lambda_{l-1}}{\lambda_l}, \qquad b'_l = \frac{b_l}{\lambda_l},

the data-based normalisation of Diehl et al. (2015): an IF neuron with threshold 1 and reset by
subtraction then fires at :math:`r_l \approx \mathrm{clip}(z_l/\lambda_l, 0, 1)`. The bias is a
constant input current added at every step (Rueckauer et al. 2017).

Mapping, op by op (all modules time-major, ``[T, B, ...]``):

* ``linear``/``conv``: :class:`deepspike.layers.Linear`/``Conv2d`` with rescaled weights;
* ``act``: a :class:`~deepspike.neurons.Neuron` of IF neurons (ReLU, QCFS) or LIF neurons
  (:class:`~deepspike.conversion.activations.SoftLIF`);
* ``avgpool``: :class:`deepspike.layers.AvgPool2d`; on spikes it is followed by IF neurons with
  threshold 1 and initial membrane 1/2, which re-emit the pooled rate as spikes (rounded);
* ``maxpool``: :class:`RateGatedMaxPool2d` (Rueckauer et al. 2017);
* ``add`` (residual): the sum of the input currents, each brought to the add's scale by a
  fixed factor (:class:`Scale`) where its own scale differs;
* the output: a non-spiking integrator (``readout="membrane"``: IF with no reset whose membrane
  is read) or spiking IF neurons (``readout="spikes"``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from deepspike.conversion.activations import QCFS, SoftLIF
from deepspike.conversion.config import ConversionConfig
from deepspike.conversion.graph import WEIGHTED, AnnGraph, Op
from deepspike.errors import ConfigError
from deepspike.layers import AvgPool2d, Conv2d, Flatten, Linear
from deepspike.layers.synapse import fold_time, unfold_time
from deepspike.neurons import IFParams, LIFParams, Neuron, NeuronModel

#: The key of the output layer's scale in a scales mapping.
OUTPUT = "output"
#: Name of the read-out neurons in the SNN.
READOUT = "readout"
#: Relative tolerance when comparing two scales.
SCALE_RTOL = 1e-6


class RateGatedMaxPool2d(nn.MaxPool2d):
    r"""Spike max-pooling gated by online firing rates (Rueckauer et al. 2017, Sec. 2.2.5).

    At step :math:`t`, every pooling window passes on the spike (or value) of the one input
    with the highest count :math:`\sum_{\tau < t} s_\tau` so far; among inputs tied on that
    count, one that spikes at :math:`t` wins (the key is the count before :math:`t` plus
    :math:`s_t/2`). The output rate thus tracks the maximum input rate, where an OR of the
    window's spikes would overestimate it; breaking ties toward the spiking input keeps the
    first steps, when every count is still 0, from losing spikes. On a constant analog input
    (``direct`` input) it is the exact max-pool. ``[T, B, C, H, W]`` in and out.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, "RateGatedMaxPool2d")
        key = (x.cumsum(0) - 0.5 * x).flatten(0, 1)
        _, index = F.max_pool2d(
            key,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=True,
        )
        gated = flat.flatten(2).gather(2, index.flatten(2)).view_as(index)
        return unfold_time(gated, t, b)


class Scale(nn.Module):
    """Multiply by a fixed ``factor`` (brings a residual branch to the scale of its add)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:.6g}"


class SynapticFilter(nn.Module):
    r"""Exponential synapse with unit gain, time-major: :math:`c_t = \alpha c_{t-1} +
    (1-\alpha) x_t`, :math:`\alpha = e^{-\Delta t/\tau_s}`. It smooths the spike-driven input
    current of converted LIF neurons, as the synaptic filters of Hunsberger & Eliasmith (2015)."""

    def __init__(self, tau_syn: float, dt: float) -> None:
        super().__init__()
        self.tau_syn = float(tau_syn)
        self.alpha = math.exp(-dt / tau_syn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        current = torch.zeros_like(x[0])
        for t in range(x.shape[0]):
            current = self.alpha * current + (1.0 - self.alpha) * x[t]
            out[t] = current
        return out

    def extra_repr(self) -> str:
        return f"tau_syn={self.tau_syn}, alpha={self.alpha:.4g}"


@dataclass(frozen=True)
class NeuronSite:
    """The spiking neurons standing for one activation: their model, the scale of their input
    current (``in_scale``: ANN pre-activation per unit of current per step) and of their spike
    rate (``out_scale``: ANN activation per spike per step)."""

    model: NeuronModel
    in_scale: float
    out_scale: float


def neuron_site(module: nn.Module, scale: float, config: ConversionConfig) -> NeuronSite:
    """The neurons for activation ``module`` normalised to ``scale``.

    ReLU and QCFS become IF neurons with in- and out-scale ``scale``. A :class:`SoftLIF` becomes
    LIF neurons with its own time constants (Hunsberger & Eliasmith 2015), which need no
    normalisation: the LIF membrane :math:`v_t = \\beta v_{t-1} + (1-\\beta) j_t` reaches the
    soft-LIF's current :math:`j` when it is fed :math:`(1-\\beta) j` per step (in-scale
    :math:`1/(1-\\beta)`), and a spike per step of ``dt`` ms is the rate ``1/dt`` spikes/ms
    (out-scale ``amplitude/dt``).
    """
    if isinstance(module, SoftLIF):
        lif = LIFParams(
            tau_mem=module.tau_rc, dt=config.dt, t_ref=module.tau_ref, reset=config.reset
        )
        return NeuronSite(lif, 1.0 / (1.0 - float(lif.beta)), module.amplitude / config.dt)
    v_init = config.v_init
    if v_init is None:
        v_init = module.shift if isinstance(module, QCFS) else 0.0
    model = IFParams(v_th=config.threshold, reset=config.reset, v_init=v_init * config.threshold)
    return NeuronSite(model, scale, scale)


def rescaled_layer(module: nn.Module, weight_factor: float, bias_factor: float) -> nn.Module:
    """A time-major copy of a ``Linear``/``Conv2d`` with ``W * weight_factor`` and
    ``b * bias_factor``."""
    bias = module.bias is not None
    if isinstance(module, nn.Linear):
        layer: nn.Module = Linear(module.in_features, module.out_features, bias=bias)
    else:
        layer = Conv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=bias,
            padding_mode=module.padding_mode,
        )
    with torch.no_grad():
        layer.weight.copy_(module.weight * weight_factor)
        if bias:
            layer.bias.copy_(module.bias * bias_factor)
    return layer


def time_major_pool(module: nn.Module) -> nn.Module:
    """The time-major ``AvgPool2d`` or rate-gated max-pool with ``module``'s geometry."""
    if isinstance(module, nn.MaxPool2d):
        return RateGatedMaxPool2d(
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            ceil_mode=module.ceil_mode,
        )
    return AvgPool2d(
        module.kernel_size,
        module.stride,
        module.padding,
        ceil_mode=module.ceil_mode,
        count_include_pad=module.count_include_pad,
        divisor_override=module.divisor_override,
    )


#: IF neurons behind an average pool of spikes: threshold 1 and half-charged, so the emitted
#: count is the pooled count rounded to the nearest integer.
POOL_NEURONS = IFParams(v_th=1.0, reset="subtract", v_init=0.5)
#: The non-spiking read-out: no reset, so its membrane is the running sum of its input.
INTEGRATOR = IFParams(v_th=1.0, reset="none")


class SpikingNetwork(nn.Module):
    """A converted SNN: ``forward(x [T, B, ...]) -> [T, B, classes]``, the read-out's membrane
    trace (``readout="membrane"``) or spikes (``"spikes"``).

    Attributes:
        network: the ``torch.fx.GraphModule`` of time-major layers and neurons.
        readout: ``"membrane"`` or ``"spikes"``.
        output_scale: ANN output per unit of read-out rate or current per step.
        scales: the activation scale :math:`\\lambda` of each layer (JSON-friendly).
    """

    def __init__(
        self, network: fx.GraphModule, readout: str, output_scale: float, scales: dict[str, float]
    ) -> None:
        super().__init__()
        self.network = network
        self.readout = readout
        self.output_scale = float(output_scale)
        self.scales = dict(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def logits(self, output: torch.Tensor) -> torch.Tensor:
        r"""The SNN's running estimate of the ANN's output after each step ``t``:
        :math:`\lambda_{out}\, v_t / t` (membrane) or :math:`\lambda_{out}\, n_t / t` (spike
        count :math:`n_t`). Its ``argmax`` is the decision at ``t``."""
        steps = torch.arange(1, output.shape[0] + 1, dtype=output.dtype, device=output.device)
        steps = steps.reshape(-1, *([1] * (output.dim() - 1)))
        total = output if self.readout == "membrane" else output.cumsum(0)
        return total * (self.output_scale / steps)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SCALE_RTOL)


class _Builder:
    """Walks an :class:`AnnGraph` once, emitting the SNN's fx graph (used by :func:`build_snn`).

    For each op it records the SNN node, whether its tensor is the model ``input``, ``spikes``
    or a ``current``, and its scale.
    """

    def __init__(self, graph: AnnGraph, scales: Mapping[str, float], config: ConversionConfig):
        self.ann = graph
        self.config = config
        self.users = graph.users()
        self.sites = {
            name: neuron_site(graph.op(name).module, scales.get(name, 1.0), config)
            for name in graph.activations
        }
        self.scales = {name: site.out_scale for name, site in self.sites.items()}
        self.output_scale = scales.get(OUTPUT, 1.0)
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.node: dict[str, fx.Node] = {}
        self.kind: dict[str, str] = {}
        self.scale: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    def module(self, name: str, module: nn.Module, arg: fx.Node) -> fx.Node:
        self.root.add_module(name, module)
        return self.graph.call_module(name, (arg,))

    def rescale(self, src: str, target: float, dst: str) -> fx.Node:
        """The SNN node of ``src`` brought to scale ``target`` (a :class:`Scale` if needed)."""
        if close(self.scale[src], target):
            return self.node[src]
        return self.module(f"{src}_to_{dst}", Scale(self.scale[src] / target), self.node[src])

    def demand(self, name: str) -> float | None:
        """The scale the consumers of current ``name`` need (``None``: any)."""
        wanted = [self.output_scale] if name == self.ann.output else []
        for user in self.users[name]:
            op = self.ann.op(user)
            if op.kind == "act":
                wanted.append(self.sites[user].in_scale)
            elif op.kind in ("add", "flatten", "avgpool"):
                need = self.demand(user)
                if need is not None:
                    wanted.append(need)
        if any(not close(w, wanted[0]) for w in wanted):
            raise ConfigError(
                f"the output of {name!r} feeds layers normalised to different scales "
                f"({sorted(set(wanted))}); give each branch its own layer"
            )
        return wanted[0] if wanted else None

    def set(self, op: Op, node: fx.Node, kind: str, scale: float) -> None:
        self.node[op.name], self.kind[op.name], self.scale[op.name] = node, kind, scale

    # ------------------------------------------------------------------ ops
    def add_op(self, op: Op) -> None:
        src = op.inputs[0] if op.inputs else ""
        if op.kind == "input":
            self.set(op, self.graph.placeholder("x"), "input", 1.0)
        elif op.kind in WEIGHTED:
            s_in = self.scale[src]
            s_out = self.demand(op.name) or s_in
            layer = rescaled_layer(op.module, s_in / s_out, 1.0 / s_out)
            self.set(op, self.module(op.name, layer, self.node[src]), "current", s_out)
        elif op.kind == "act":
            self.add_activation(op, src)
        elif op.kind == "avgpool":
            node = self.module(op.name, time_major_pool(op.module), self.node[src])
            if self.kind[src] == "spikes":
                node = self.module(f"{op.name}_neurons", Neuron(POOL_NEURONS), node)
            self.set(op, node, self.kind[src], self.scale[src])
        elif op.kind == "maxpool":
            if self.kind[src] == "current":
                raise ConfigError(
                    f"MaxPool2d {op.name!r} pools a pre-activation; put the activation before "
                    "the max-pool (they commute in the ANN)"
                )
            node = self.module(op.name, time_major_pool(op.module), self.node[src])
            self.set(op, node, self.kind[src], self.scale[src])
        elif op.kind == "flatten":
            node = self.module(op.name, Flatten(), self.node[src])
            self.set(op, node, self.kind[src], self.scale[src])
        elif op.kind == "add":
            target = self.demand(op.name) or self.scale[src]
            terms = [self.rescale(i, target, op.name) for i in op.inputs]
            node = terms[0]
            for term in terms[1:]:
                node = self.graph.call_function(operator.add, (node, term))
            self.set(op, node, "current", target)

    def add_activation(self, op: Op, src: str) -> None:
        if self.kind[src] == "spikes" and isinstance(op.module, nn.ReLU):
            self.set(op, self.node[src], "spikes", self.scale[src])  # ReLU of spikes: identity
            return
        site = self.sites[op.name]
        current = self.rescale(src, site.in_scale, op.name)
        if isinstance(site.model, LIFParams) and self.config.tau_syn > 0:
            synapse = SynapticFilter(self.config.tau_syn, self.config.dt)
            current = self.module(f"{op.name}_synapse", synapse, current)
        node = self.module(op.name, Neuron(site.model), current)
        self.set(op, node, "spikes", site.out_scale)

    def add_readout(self) -> tuple[fx.Node, float]:
        out = self.ann.output
        if self.kind[out] == "spikes":
            return self.node[out], self.scale[out]
        if self.config.readout == "membrane":
            neurons = Neuron(INTEGRATOR, output="membrane")
        else:
            neurons = Neuron(IFParams(v_th=self.config.threshold, reset=self.config.reset))
        current = self.rescale(out, self.output_scale, READOUT)
        return self.module(READOUT, neurons, current), self.output_scale

    def build(self) -> SpikingNetwork:
        for op in self.ann.ops:
            self.add_op(op)
        result, output_scale = self.add_readout()
        self.graph.output(result)
        network = fx.GraphModule(self.root, self.graph, class_name="ConvertedSNN")
        scales: dict[str, Any] = dict(self.scales)
        scales[OUTPUT] = output_scale
        return SpikingNetwork(network, self.config.readout, output_scale, scales)


def build_snn(
    graph: AnnGraph, scales: Mapping[str, float], config: ConversionConfig | None = None
) -> SpikingNetwork:
    """The SNN of ``graph`` with activation scales ``scales`` (activation name -> :math:`\\lambda`,
    plus :data:`OUTPUT`; missing names get 1)."""
    return _Builder(graph, scales, config or ConversionConfig()).build()
