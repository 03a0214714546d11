"""The options of an ANN-to-SNN conversion, validated once, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass

from deepspike.errors import ConfigError
from deepspike.neurons.lif import check_reset

#: Normalisation methods (see :mod:`deepspike.conversion.normalise`).
NORMALISATIONS = ("none", "max", "percentile", "threshold-balancing", "trained")
#: Input codes: the analog image as a constant current, or Bernoulli (Poisson) spikes.
INPUTS = ("direct", "rate")
#: Read-outs: membrane of a non-spiking integrator, or spike counts of IF neurons.
READOUTS = ("membrane", "spikes")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is unknown; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class ConversionConfig:
    """How to convert.

    Attributes:
        normalisation: how the activation scale :math:`\\lambda_l` of each layer is chosen:
            ``max`` (Diehl et al. 2015, data-based), ``percentile`` (Rueckauer et al. 2017,
            robust), ``threshold-balancing`` (Sengupta et al. 2019), ``trained`` (the learned
            clip of a QCFS activation, Bu et al. 2022) or ``none`` (:math:`\\lambda = 1`).
        percentile: the percentile for ``percentile`` normalisation (of positive activations).
        reset: ``subtract`` (Rueckauer 2017; keeps the residual charge) or ``zero`` (Diehl 2015).
        threshold: the firing threshold of every IF neuron, in units of the normalised input
            (1 = the normalisation's own; > 1 lowers the rates, as Diehl/Neil's threshold knob).
        v_init: initial membrane as a fraction of the threshold; ``None`` uses each
            activation's own (QCFS: its shift, 0.5; ReLU: 0).
        readout: ``membrane`` (a non-spiking final layer that integrates its input) or
            ``spikes`` (IF neurons; the class with most spikes wins).
        input: input code for threshold balancing: ``direct`` or ``rate``.
        max_rate: spike probability per step of a white pixel for ``rate`` input.
        balance_timesteps: time steps of each threshold-balancing run.
        dt: step length in ms (for LIF neurons converted from :class:`SoftLIF`).
        tau_syn: time constant (ms) of an exponential synapse filtering the input current of
            those LIF neurons; 0 for none.
        batch_size: samples per batch when collecting statistics.
    """

    normalisation: str = "percentile"
    percentile: float = 99.9
    reset: str = "subtract"
    threshold: float = 1.0
    v_init: float | None = None
    readout: str = "membrane"
    input: str = "direct"
    max_rate: float = 1.0
    balance_timesteps: int = 64
    dt: float = 1.0
    tau_syn: float = 0.0
    batch_size: int = 256

    def __post_init__(self) -> None:
        check_choice("normalisation", self.normalisation, NORMALISATIONS)
        check_choice("readout", self.readout, READOUTS)
        check_choice("input", self.input, INPUTS)
        check_reset(self.reset)
        if self.reset == "none":
            raise ConfigError("reset='none' does not convert; choose 'subtract' or 'zero'")
        if not 0.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile={self.percentile} must be in (0, 100]")
        if self.tau_syn < 0:
            raise ConfigError(f"tau_syn={self.tau_syn} must be >= 0 (0: no synaptic filter)")
        if self.threshold <= 0 or self.dt <= 0 or not 0.0 < self.max_rate <= 1.0:
            raise ConfigError(
                f"need threshold > 0, dt > 0 and 0 < max_rate <= 1; got threshold="
                f"{self.threshold}, dt={self.dt}, max_rate={self.max_rate}"
            )
        if self.v_init is not None and not 0.0 <= self.v_init < 1.0:
            raise ConfigError(f"v_init={self.v_init} is a fraction of the threshold in [0, 1)")
        if self.balance_timesteps < 1 or self.batch_size < 1:
            raise ConfigError("balance_timesteps and batch_size must be at least 1")
