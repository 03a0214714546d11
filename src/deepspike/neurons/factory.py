"""One-line layer constructors: ``LIF(tau_mem=5.0, output="membrane")`` and so on.

Each returns a :class:`~deepspike.neurons.module.Neuron` around the matching parameter set. The
keyword arguments ``output``, ``stateful``, ``learn_tau`` and ``shape`` go to the module; all
others are the model's parameters. ``Izhikevich`` also takes a ``preset`` name ("RS", "FS", ...).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from deepspike.errors import ConfigError
from deepspike.neurons.alif import ALIFParams
from deepspike.neurons.cuba import CubaLIFParams
from deepspike.neurons.izhikevich import IzhikevichParams
from deepspike.neurons.lif import IFParams, LIFParams
from deepspike.neurons.module import Neuron
from deepspike.neurons.srm import SRMParams
from deepspike.neurons.stochastic import StochasticLIFParams

NEURON_OPTIONS: tuple[str, ...] = ("output", "stateful", "learn_tau", "shape")


def _split(params_cls: type, kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into (model parameters, Neuron options); reject unknown names."""
    model_names = {f.name for f in fields(params_cls)}
    unknown = kw.keys() - model_names - set(NEURON_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {sorted(unknown)} for {params_cls.__name__}; choose from "
            f"{sorted(model_names | set(NEURON_OPTIONS))}"
        )
    model_kw = {k: v for k, v in kw.items() if k in model_names}
    neuron_kw = {k: v for k, v in kw.items() if k in NEURON_OPTIONS}
    return model_kw, neuron_kw


def _layer(params_cls: type, kw: dict[str, Any]) -> Neuron:
    model_kw, neuron_kw = _split(params_cls, kw)
    return Neuron(params_cls(**model_kw), **neuron_kw)


def IF(**kw: Any) -> Neuron:
    """Integrate-and-fire layer, ``Neuron(IFParams(...))``."""
    return _layer(IFParams, kw)


def LIF(**kw: Any) -> Neuron:
    """Leaky integrate-and-fire layer, ``Neuron(LIFParams(...))``."""
    return _layer(LIFParams, kw)


def CubaLIF(**kw: Any) -> Neuron:
    """Current-based LIF layer, ``Neuron(CubaLIFParams(...))``."""
    return _layer(CubaLIFParams, kw)


def ALIF(**kw: Any) -> Neuron:
    """Adaptive-threshold LIF (LSNN) layer, ``Neuron(ALIFParams(...))``."""
    return _layer(ALIFParams, kw)


def SRM(**kw: Any) -> Neuron:
    """Spike response model layer, ``Neuron(SRMParams(...))`` (convolutional multi-step)."""
    return _layer(SRMParams, kw)


def StochasticLIF(**kw: Any) -> Neuron:
    """Escape-noise LIF layer, ``Neuron(StochasticLIFParams(...))``."""
    return _layer(StochasticLIFParams, kw)


def Izhikevich(preset: str | None = None, **kw: Any) -> Neuron:
    """Izhikevich layer, ``Neuron(IzhikevichParams.preset(preset, ...))`` or with explicit a-d."""
    model_kw, neuron_kw = _split(IzhikevichParams, kw)
    if preset is None:
        return Neuron(IzhikevichParams(**model_kw), **neuron_kw)
    return Neuron(IzhikevichParams.preset(preset, **model_kw), **neuron_kw)
