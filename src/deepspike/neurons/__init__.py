"""Spiking neuron models: a functional core (parameters + pure ``step``) and module wrappers."""

from deepspike.neurons.alif import ALIFParams, ALIFState
from deepspike.neurons.base import NeuronModel, Run, run, step_loop
from deepspike.neurons.coba import CobaLIFParams, CobaLIFState
from deepspike.neurons.cuba import CubaLIFParams, CubaLIFState
from deepspike.neurons.factory import ALIF, IF, LIF, SRM, CubaLIF, Izhikevich, StochasticLIF
from deepspike.neurons.izhikevich import IZHIKEVICH_PRESETS, IzhikevichParams, IzhikevichState
from deepspike.neurons.lif import IFParams, IFState, LIFParams, LIFState
from deepspike.neurons.module import Neuron
from deepspike.neurons.srm import SRMParams, SRMState
from deepspike.neurons.stochastic import StochasticLIFParams, StochasticLIFState

__all__ = [
    "ALIF",
    "IF",
    "IZHIKEVICH_PRESETS",
    "LIF",
    "SRM",
    "ALIFParams",
    "ALIFState",
    "CobaLIFParams",
    "CobaLIFState",
    "CubaLIF",
    "CubaLIFParams",
    "CubaLIFState",
    "IFParams",
    "IFState",
    "Izhikevich",
    "IzhikevichParams",
    "IzhikevichState",
    "LIFParams",
    "LIFState",
    "Neuron",
    "NeuronModel",
    "Run",
    "SRMParams",
    "SRMState",
    "StochasticLIF",
    "StochasticLIFParams",
    "StochasticLIFState",
    "run",
    "step_loop",
]
