r"""``diehl2015-stdp``: unsupervised digit recognition with STDP (Diehl & Cook 2015).

Diehl & Cook, "Unsupervised learning of digit recognition using spike-timing-dependent
plasticity", *Front. Comput. Neurosci.* 9:99 (2015). The protocol:

* **Input.** Each pixel is a Poisson train of rate ``intensity * 63.75`` Hz (pixel / 4), shown
  for 350 ms, then 150 ms of rest. An image that makes fewer than 5 output spikes is shown again
  with the maximum rate raised by 32 Hz.
* **Neurons.** LIF excitatory neurons (rest -65 mV, reset -60 mV, threshold
  -52 mV + :math:`\theta`, :math:`\tau_m` = 100 ms, 5 ms refractory) with the adaptive threshold
  :math:`\theta \mathrel{+}= 0.05` mV per spike, :math:`\tau_\theta = 10^7` ms
  (:class:`deepspike.learning.AdaptiveThreshold`); above 1,600 neurons the default
  :math:`\tau_\theta` grows in proportion to the network size (:func:`tau_theta_for`). The
  paper's one-to-one excitatory -> inhibitory -> all-others loop is folded into
  :class:`deepspike.layers.LateralInhibition`: each excitatory spike inhibits every other
  excitatory neuron at the next step.
  ``refire_ms`` (conductance model only; 0, off, by default) is the shortest interval between
  two spikes of a neuron, past the refractory period (:class:`deepspike.neurons.CobaLIFParams`'s
  ``t_refire``): the authors' simulation reads its 5 ms threshold condition off a timer that
  runs at a tenth of real time, so its neurons fire at most once in 50 ms. ``theta_offset_mv``
  (0, off, by default) is that simulation's threshold offset: :math:`\theta` starts at it and
  the threshold is ``-52 mV - theta_offset_mv + theta``, the same -52 mV at first, but a
  neuron whose :math:`\theta` decays below the offset less 13 mV falls below rest and fires
  without input. ``reset_mv`` (-60 mV by default, BindsNET's value) is the membrane after a
  spike; the authors' simulation resets to rest, -65 mV.
* **Model** (``synapse`` and ``stdp_rule``, below). ``"auto"`` (the default) runs the paper's
  model, conductance-based synapses with the triplet rule, from :data:`PAPER_MODEL_MIN_NEURONS`
  neurons on, and the current-based model with the pair rule in smaller networks, where it did
  better on held-out training images (:func:`model_for`).
* **Synapses** (``synapse``).

  - ``"conductance"`` (the paper's model): an input spike opens the excitatory
    conductance by its weight (:math:`E_e` = 0 mV, :math:`\tau_e` = 1 ms) and each excitatory
    spike opens every other neuron's inhibitory conductance by ``g_inhibition`` = 17 (the
    paper's inhibitory-to-excitatory weight; :math:`E_i` = -100 mV, :math:`\tau_i` = 2 ms), in
    units of the leak conductance (:class:`deepspike.neurons.CobaLIFParams`). Inhibition holds
    the losers near -100 mV however many spikes arrive.
  - ``"current"`` (the model of BindsNET's ``DiehlAndCook2015``): an input spike adds its
    weight in mV, and each excitatory spike subtracts ``inhibition`` mV from the others. As a
    current kick, the paper's 17.5 lets the losers recover within tens of ms and the network
    learns blurred prototypes; 120 mV restores the near winner-take-all regime (the sweep that
    chose it, 100 neurons, 10,000 training and 2,000 test images, 17.5 to 250 mV, is in the
    repository's ``sweeps/diehl2015-inhibition/``).

* **Learning** (``stdp_rule``). Weights stay in :math:`[0, 1]`, and each neuron's incoming
  weights are normalised to sum to 78 before every presentation. A pre spike depresses by
  :math:`\nu_{pre} x_{post}` (:math:`\nu_{pre} = 10^{-4}`, nearest-spike post trace,
  :math:`\tau` = 20 ms).

  - ``"triplet"`` (the rule of the authors' published simulation,
    ``post2before``): a post spike potentiates by :math:`\nu_{post} x_{pre} y_2`
    (:math:`\nu_{post} = 10^{-2}`), where :math:`y_2` is the neuron's nearest-spike trace
    (:math:`\tau` = ``tau_post2`` = 40 ms) from just before the spike, so a neuron learns from
    its second spike of a burst on (:func:`deepspike.learning.triplet_stdp_rows`).
  - ``"pair"``: a post spike potentiates by :math:`\nu_{post} x_{pre}` (nearest-spike pair STDP,
    as BindsNET).

* **Labels.** After training, learning and :math:`\theta` are frozen; each neuron is assigned the
  class for which its average response over the training images is highest, and a test image is
  classified by the class whose neurons fire most on average. The paper's results label with
  one presentation of the whole training set (the authors' code notes this; its demo labels
  with 10,000 images): ``n_label=0``, the default; ``n_label=N`` labels with the first ``N``.

Batched simulation (``batch_size`` > 1, an option; the default is 1, the paper's protocol).
``batch_size`` images are simulated in parallel with the same weights and thresholds; each
image's STDP update and threshold increase are computed from its own spikes and summed, and
applied after the batch. With ``batch_size=1`` this is Diehl & Cook's sequential protocol,
except that weights change between presentations rather than inside one (the change during one
350 ms presentation is a few percent of a weight). The rest period is the reset of the membrane
and traces to rest, which 150 ms of rest approaches (:math:`e^{-150/100}`); :math:`\theta`
decays over it exactly.

Speed: the synaptic input (currents or conductance increments) is one embedding-bag sum of
weight rows over the input events of the whole presentation; the inhibited adaptive neurons run in
one compiled scan (:mod:`deepspike.neurons.fused.cpu_inhibited`: bit-identical to stepping for the
current-based neuron, equal to rounding for the conductance-based one); the STDP window is
computed from spike events for the neurons that fired only and applied as a row-sparse gradient
(:func:`deepspike.learning.pair_stdp_rows`, :func:`deepspike.learning.triplet_stdp_rows`).
:func:`images_per_second` measures it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from deepspike import data
from deepspike.errors import ConfigError
from deepspike.layers import LateralInhibition, Linear
from deepspike.learning import (
    AdaptiveThreshold,
    PairSTDP,
    RowWindow,
    TripletSTDP,
    additive,
    apply_update,
    normalize_incoming,
    pair_stdp_rows,
    threshold_after,
    triplet_stdp_rows,
)
from deepspike.metrics import CostMeter
from deepspike.neurons import CobaLIFParams, LIFParams, Neuron, run
from deepspike.recipes import _stdp_common as common
from deepspike.recipes.common import image_split
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register

log = logging.getLogger("deepspike")

#: Diehl & Cook's Table 1: test accuracy (%) per number of excitatory neurons
PAPER_ACCURACY_BY_SIZE: Mapping[int, float] = {100: 82.9, 400: 87.0, 1600: 91.9, 6400: 95.0}
#: passes through the 60,000 training images per network size (Diehl & Cook, Section 2.6)
PAPER_EPOCHS_BY_SIZE: Mapping[int, int] = {100: 1, 400: 3, 1600: 7, 6400: 15}

V_REST, V_RESET, V_THRESH = -65.0, -60.0, -52.0  # mV
E_EXC, E_INH = 0.0, -100.0  # mV, reversal potentials of the conductance-based synapses
SYNAPSES = ("current", "conductance")
#: from this many excitatory neurons on, ``"auto"`` runs the paper's model (conductance-based
#: synapses, triplet rule); below it the current-based model with the pair rule. Chosen on held-out
#: training images (``--validation 10000``; the repository's ``sweeps/diehl2015-100-validation/``
#: and ``sweeps/diehl2015-400-validation/``, and one-off checks at 1,600 neurons)
PAPER_MODEL_MIN_NEURONS = 400
#: the paper's threshold time constant (ms), the default up to :data:`TAU_THETA_REFERENCE_NEURONS`
PAPER_TAU_THETA_MS = 1e7
#: above this many neurons the default ``tau_theta`` grows in proportion to the network size
#: (:func:`tau_theta_for`)
TAU_THETA_REFERENCE_NEURONS = 1600
#: the authors' simulation: nu_post = 1e-2 times the pre trace and the post trace of 40 ms from
#: before the spike at a post spike (LTP), nu_pre = 1e-4 times the post trace at a pre spike
#: (LTD), nearest traces (``stdp_rule="triplet"``, the paper's model)
DIEHL_COOK_STDP = TripletSTDP(
    a2_plus=0.0,
    a3_plus=1e-2,
    a2_minus=1e-4,
    a3_minus=0.0,
    tau_plus=20.0,
    tau_minus=20.0,
    tau_y=40.0,
    trace="nearest",
)
N_CLASSES = 10


@dataclass(frozen=True)
class Network:
    """The constants of one Diehl & Cook network (see the module docstring)."""

    n_inputs: int
    n_neurons: int
    dt: float = 1.0
    presentation_ms: float = 350.0
    rest_ms: float = 150.0
    tau_mem: float = 100.0
    t_ref: float = 5.0
    t_refire: float = 0.0  # conductance model: shortest interval between spikes (0: t_ref)
    v_reset: float = V_RESET  # mV, the membrane after a spike
    theta_offset: float = 0.0  # theta starts here; the base threshold is this much lower
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    inhibition: float = 17.0  # a conductance (the paper's weight), or mV for "current"
    synapse: str = "conductance"
    stdp: PairSTDP | TripletSTDP = DIEHL_COOK_STDP
    w_max: float = 1.0
    weight_sum: float = 78.0
    max_rate_hz: float = 63.75
    rate_step_hz: float = 32.0
    min_spikes: int = 5
    max_attempts: int = 8

    @property
    def steps(self) -> int:
        return max(1, round(self.presentation_ms / self.dt))

    @property
    def theta_decay_per_image(self) -> float:
        return math.exp(-(self.presentation_ms + self.rest_ms) / self.tau_theta)

    @property
    def base_threshold(self) -> float:
        """The threshold at :math:`\\theta = 0`, from rest: -52 mV less ``theta_offset``."""
        return V_THRESH - self.theta_offset - V_REST

    def lif(self, theta: torch.Tensor | float = 0.0) -> LIFParams | CobaLIFParams:
        """The excitatory LIF, with voltages measured from rest (0 = -65 mV): current-based, or
        conductance-based with Diehl & Cook's reversal potentials and synaptic time constants
        (``synapse="conductance"``)."""
        if self.synapse == "conductance":
            return CobaLIFParams(
                tau_mem=self.tau_mem,
                dt=self.dt,
                v_th=self.base_threshold + theta,
                v_reset=self.v_reset - V_REST,
                t_ref=self.t_ref,
                t_refire=self.t_refire,
                e_exc=E_EXC - V_REST,
                e_inh=E_INH - V_REST,
            )
        return LIFParams(
            tau_mem=self.tau_mem,
            dt=self.dt,
            v_th=self.base_threshold + theta,
            v_reset=self.v_reset - V_REST,
            reset="zero",
            t_ref=self.t_ref,
        )

    def learning_model(self, theta: torch.Tensor) -> LateralInhibition:
        """Excitatory neurons while learning: thresholds adapt within the presentation."""
        adaptive = AdaptiveThreshold(
            self.lif(), self.theta_plus, self.tau_theta, self.dt, theta_init=theta
        )
        return LateralInhibition(adaptive, strength=self.inhibition)

    def frozen_model(self, theta: torch.Tensor) -> LateralInhibition:
        """Excitatory neurons with learning off: fixed thresholds ``-52 mV - offset + theta``."""
        return LateralInhibition(self.lif(theta), strength=self.inhibition)


def model_for(config: Mapping[str, Any]) -> dict[str, str]:
    """``synapse`` and ``stdp_rule`` of ``config``, each ``"auto"`` resolved by network size:
    the paper's model (``"conductance"``, ``"triplet"``) from :data:`PAPER_MODEL_MIN_NEURONS`
    neurons on, the current-based model with the pair rule (``"current"``, ``"pair"``) below."""
    paper = config["n_neurons"] >= PAPER_MODEL_MIN_NEURONS
    auto = {"synapse": "conductance" if paper else "current"}
    auto["stdp_rule"] = "triplet" if paper else "pair"
    return {key: auto[key] if config[key] == "auto" else config[key] for key in auto}


def tau_theta_for(config: Mapping[str, Any]) -> float:
    r"""``tau_theta`` of ``config``, in ms; ``0`` (the default) is resolved by network size:

    .. math:: \tau_\theta = 10^7\,\mathrm{ms} \cdot \max(1, N / 1600).

    A neuron's threshold settles where its increments balance the decay,
    :math:`\theta^* \approx \theta_+ \, r \, \tau_\theta` for a firing rate :math:`r`. With
    :math:`N` neurons sharing the images each fires about :math:`1/N` as often, so a fixed
    :math:`\tau_\theta` leaves the thresholds of a larger network lower, and at 6,400 neurons
    most neurons never learned. Scaling :math:`\tau_\theta` with :math:`N` keeps the
    equilibrium of the paper's 1,600-neuron network. Chosen on held-out training images
    (the repository's ``sweeps/diehl2015-6400-validation/``) before the full 6,400-neuron run,
    which then scored higher than with the paper's value.
    """
    tau_theta = config["tau_theta"]
    if tau_theta < 0:
        raise ConfigError(
            f"tau_theta={tau_theta} must be positive (ms), or 0 to choose it by network size"
        )
    if tau_theta:
        return tau_theta
    return PAPER_TAU_THETA_MS * max(1.0, config["n_neurons"] / TAU_THETA_REFERENCE_NEURONS)


def network_from(config: Mapping[str, Any], n_inputs: int) -> Network:
    if config["n_neurons"] < 1 or config["batch_size"] < 1:
        raise ConfigError("n_neurons and batch_size must be at least 1")
    if config["batch_size_eval"] < 0:
        raise ConfigError(
            f"batch_size_eval={config['batch_size_eval']} must be 0 (chosen by network size) "
            "or a positive number of images"
        )
    c = {**config, **model_for(config)}
    if c["synapse"] not in SYNAPSES:
        raise ConfigError(f"synapse={c['synapse']!r} is not one of {SYNAPSES} or 'auto'")
    conductance = c["synapse"] == "conductance"
    if c["refire_ms"] and not conductance:
        raise ConfigError(
            f"refire_ms={c['refire_ms']} applies to synapse='conductance' only; "
            "drop it or set synapse=conductance"
        )
    if not c["reset_mv"] < V_THRESH:
        raise ConfigError(
            f"reset_mv={c['reset_mv']} must be below the threshold of {V_THRESH} mV, or a "
            "neuron fires again as soon as it may; the default is -60, the authors' value -65"
        )
    return Network(
        n_inputs=n_inputs,
        n_neurons=c["n_neurons"],
        dt=c["dt"],
        presentation_ms=c["presentation_ms"],
        rest_ms=c["rest_ms"],
        tau_mem=c["tau_mem"],
        t_refire=c["refire_ms"],
        v_reset=c["reset_mv"],
        theta_offset=c["theta_offset_mv"],
        theta_plus=c["theta_plus"],
        tau_theta=tau_theta_for(c),
        inhibition=c["g_inhibition"] if conductance else c["inhibition"],
        synapse=c["synapse"],
        stdp=stdp_rule_from(c),
        weight_sum=c["weight_sum"],
        max_rate_hz=c["max_rate_hz"],
        rate_step_hz=c["rate_step_hz"],
        min_spikes=c["min_spikes"],
    )


STDP_RULES = ("pair", "triplet")


def stdp_rule_from(config: Mapping[str, Any]) -> PairSTDP | TripletSTDP:
    """The STDP rule of ``config["stdp_rule"]``: ``"pair"`` (nearest-spike pair STDP) or
    ``"triplet"`` (the published simulation's rule: potentiation scaled by the post trace of
    ``tau_post2`` ms from before the spike, :func:`~deepspike.learning.triplet_stdp_rows`)."""
    c = {**config, **model_for(config)}
    if c["stdp_rule"] == "pair":
        return PairSTDP(
            a_plus=c["nu_post"],
            a_minus=c["nu_pre"],
            tau_plus=c["tau_trace"],
            tau_minus=c["tau_trace"],
            dt=c["dt"],
            trace="nearest",
        )
    if c["stdp_rule"] == "triplet":
        return TripletSTDP(
            a2_plus=0.0,
            a3_plus=c["nu_post"],
            a2_minus=c["nu_pre"],
            a3_minus=0.0,
            tau_plus=c["tau_trace"],
            tau_minus=c["tau_trace"],
            tau_y=c["tau_post2"],
            dt=c["dt"],
            trace="nearest",
        )
    raise ConfigError(f"stdp_rule={c['stdp_rule']!r} is not one of {STDP_RULES} or 'auto'")


def stdp_window(
    spikes_in: torch.Tensor, spikes_out: torch.Tensor, rule: PairSTDP | TripletSTDP
) -> RowWindow:
    """The STDP window of one presentation, rows for the neurons that fired."""
    if isinstance(rule, TripletSTDP):
        return triplet_stdp_rows(spikes_in, spikes_out, rule)
    return pair_stdp_rows(spikes_in, spikes_out, rule)[0]


def fired_update(
    spikes_in: torch.Tensor,
    spikes_out: torch.Tensor,
    counts: torch.Tensor,
    rule: PairSTDP | TripletSTDP,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(units, dw)``: the additive STDP update of one presentation for the neurons that fired
    (``counts`` ``[B, N]`` their spike counts), computed on their spikes alone, so no search for
    events runs over the ``T x B x N`` output (what :func:`stdp_window` of the whole output
    gives for those rows, bit for bit)."""
    fired = counts.sum(0).nonzero().squeeze(1)
    window = stdp_window(spikes_in, spikes_out.index_select(2, fired), rule)
    return fired[window.units], additive(window)


class State(NamedTuple):
    """What learning changes: ``weight`` ``[N, n_inputs]`` and thresholds ``theta`` ``[N]``."""

    weight: torch.Tensor
    theta: torch.Tensor


def initial_state(net: Network, generator: torch.Generator, w_init_max: float = 0.3) -> State:
    """Uniform random weights in ``[0, w_init_max]``, normalised; :math:`\\theta` = ``theta_offset``
    (so every threshold starts at -52 mV)."""
    w = torch.rand(net.n_neurons, net.n_inputs, generator=generator) * w_init_max
    theta = torch.full((net.n_neurons,), net.theta_offset)
    return State(normalize_incoming(w, net.weight_sum), theta)


# --------------------------------------------------------------------------- simulation


def encode(
    images: torch.Tensor, rate_hz: float, net: Network, generator: torch.Generator
) -> torch.Tensor:
    """Poisson input of rate ``intensity * rate_hz`` as a sparse COO tensor ``[T, B, n_in]``.

    Event sparse: random numbers are drawn only for the pixels that are not black, per step
    ``s ~ Bernoulli(intensity * rate_hz * dt)`` exactly as :func:`deepspike.encoding.rate`.
    """
    p_max = rate_hz * net.dt / 1000.0
    if p_max > 1.0:
        raise ConfigError(f"rate {rate_hz} Hz is above one spike per step of {net.dt} ms")
    b, i = images.nonzero(as_tuple=True)
    u = torch.rand(net.steps, len(b), generator=generator)
    t, k = (u < images[b, i] * p_max).nonzero(as_tuple=True)
    indices = torch.stack([t, b[k], i[k]])
    shape = (net.steps, *images.shape)
    return torch.sparse_coo_tensor(
        indices, torch.ones(len(t)), shape, is_coalesced=True, check_invariants=False
    )


def synaptic_input(spikes: torch.Tensor, weight_by_input: torch.Tensor) -> torch.Tensor:
    """Currents ``[T, B, N]`` of sparse input spikes ``[T, B, n_in]`` (coalesced COO).

    ``weight_by_input`` is the weight matrix input-major, ``[n_in, N]`` (``W.T`` contiguous):
    the current of a step and sample is the sum of the rows of the inputs that spiked, one
    embedding-bag sum over all events, so the cost is events x N.
    """
    t, b, _ = spikes.shape
    (step, sample, col), values = spikes.indices(), spikes.values()
    bag = step * b + sample  # ascending: the tensor is coalesced
    offsets = torch.searchsorted(bag, torch.arange(t * b))
    currents = nn.functional.embedding_bag(
        col,
        weight_by_input,
        offsets,
        mode="sum",
        per_sample_weights=values.to(weight_by_input.dtype),
    )
    return currents.reshape(t, b, -1)


#: ``respond(indices, input_spikes) -> spike counts [B, N]`` of one attempt
Respond = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def with_retries(
    net: Network, images: torch.Tensor, generator: torch.Generator, respond: Respond
) -> torch.Tensor:
    """Present ``images`` ``[B, n_in]``; re-present those with fewer than ``min_spikes`` output
    spikes at a rate raised by ``rate_step_hz``, up to ``max_attempts`` times.

    ``respond(indices, input_spikes) -> spike counts`` simulates one attempt. Returns the spike
    counts ``[B, N]`` of each image's last attempt.
    """
    counts = torch.zeros(len(images), net.n_neurons)
    pending = torch.arange(len(images))
    rate = net.max_rate_hz
    for _ in range(net.max_attempts):
        attempt = respond(pending, encode(images[pending], rate, net, generator))
        counts[pending] = attempt
        pending = pending[attempt.sum(1) < net.min_spikes]
        if len(pending) == 0:
            break
        rate += net.rate_step_hz
    return counts


class _BatchUpdate:
    """The update a batch accumulates over its images and attempts (summed STDP, spikes).

    STDP changes only the incoming weights of neurons that fired, so updates are kept as rows
    (:func:`deepspike.learning.pair_stdp_rows`) and the cost per image scales with the
    winners, not with the network size.
    """

    def __init__(self, net: Network, weight_by_input: torch.Tensor, theta: torch.Tensor) -> None:
        self.net, self.weight_by_input, self.theta = net, weight_by_input, theta
        self.units: list[torch.Tensor] = []
        self.rows: list[torch.Tensor] = []
        self.spikes = torch.zeros(net.n_neurons)
        self.presentations = 0

    def respond(self, _indices: torch.Tensor, spikes_in: torch.Tensor) -> torch.Tensor:
        model = self.net.learning_model(self.theta)
        out = run(model, synaptic_input(spikes_in, self.weight_by_input)).spikes
        counts = out.sum(0)
        units, rows = fired_update(spikes_in, out, counts, self.net.stdp)
        self.units.append(units)
        self.rows.append(rows)
        self.spikes += counts.sum(0)
        self.presentations += spikes_in.shape[1]
        return counts

    def summed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(units, dw)``: the neurons whose weights change (ascending) and their summed
        updates ``[len(units), n_inputs]``."""
        units, inverse = torch.unique(torch.cat(self.units), return_inverse=True)
        rows = torch.cat(self.rows)
        return units, rows.new_zeros(len(units), rows.shape[1]).index_add_(0, inverse, rows)


class Learner:
    """The learning network: a ``Linear`` layer holding the weights, updated through its
    ``grad`` by SGD with ``lr=1`` (:func:`deepspike.learning.apply_update`), and :math:`\\theta`.

    The gradient is row-sparse (the neurons that fired); only those rows are clipped to
    ``[0, w_max]`` and renormalised, since every other row still sums to ``weight_sum`` (the
    paper's simulation likewise clips a weight only when STDP changes it). ``weight_by_input``
    is the input-major copy :func:`synaptic_input` reads; its changed columns are refreshed
    after each update.
    """

    def __init__(self, net: Network, state: State) -> None:
        self.net = net
        self.layer = Linear(net.n_inputs, net.n_neurons, bias=False)
        with torch.no_grad():
            self.layer.weight.copy_(state.weight)
        self.weight_by_input = state.weight.T.contiguous()
        self.theta = state.theta.clone()
        self.optimizer = torch.optim.SGD(self.layer.parameters(), lr=1.0)

    @property
    def state(self) -> State:
        return State(self.layer.weight.detach().clone(), self.theta.clone())

    @torch.no_grad()
    def learn(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One batch: simulate, sum each image's STDP and threshold changes, apply them.
        Returns the spike counts ``[B, N]``."""
        batch = _BatchUpdate(self.net, self.weight_by_input, self.theta)
        counts = with_retries(self.net, images, generator, batch.respond)
        weight = self.layer.weight
        units, dw = batch.summed()
        apply_update(weight, dw, self.optimizer, bounds=(0.0, self.net.w_max), units=units)
        weight[units] = normalize_incoming(weight[units], self.net.weight_sum)
        self.weight_by_input[:, units] = weight[units].T
        decay = self.net.theta_decay_per_image**batch.presentations
        self.theta = threshold_after(self.theta, batch.spikes, self.net.theta_plus, decay)
        return counts


def inference_network(net: Network, state: State) -> nn.Sequential:
    """The trained network with learning off, as modules the cost meter counts."""
    layer = Linear(net.n_inputs, net.n_neurons, bias=False)
    with torch.no_grad():
        layer.weight.copy_(state.weight)
    return nn.Sequential(layer, Neuron(net.frozen_model(state.theta)))


#: float32 values of the ``[T, B, N]`` currents (and spikes) of one evaluation batch, about 2 MB
EVAL_BATCH_VALUES = 2**19


def eval_batch_size(config: Mapping[str, Any], net: Network) -> int:
    """``batch_size_eval``, or when it is 0 the largest batch (1 to 64 images) whose
    ``[T, B, N]`` currents hold at most :data:`EVAL_BATCH_VALUES` values: a batch that leaves
    the cache costs more in memory traffic than it saves in calls, so large networks are
    evaluated an image at a time."""
    if config["batch_size_eval"] > 0:
        return config["batch_size_eval"]
    return max(1, min(64, EVAL_BATCH_VALUES // (net.steps * net.n_neurons)))


@torch.no_grad()
def responses(
    net: Network,
    model: nn.Module,
    images: torch.Tensor,
    generator: torch.Generator,
    batch_size: int,
    progress: bool = False,
    desc: str = "responses",
) -> torch.Tensor:
    """Spike counts ``[n, N]`` of the frozen network to ``images`` ``[n, n_in]`` (with retries)."""
    out = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        batch = images[start : start + batch_size]
        out.append(with_retries(net, batch, generator, lambda _i, s: model(s.to_dense()).sum(0)))
    return torch.cat(out) if out else torch.zeros(0, net.n_neurons)


# --------------------------------------------------------------------------- training


def epochs_for(config: Mapping[str, Any]) -> int:
    """``epochs``, or the paper's count for this network size when it is 0."""
    if config["epochs"] > 0:
        return config["epochs"]
    n = config["n_neurons"]
    return PAPER_EPOCHS_BY_SIZE.get(n, 1)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The presentation order of one epoch, fixed by the seed (so a resumed run sees the same)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))


def fit(
    ctx: Context, net: Network, images: torch.Tensor, on_batch=None
) -> tuple[State, dict[str, Any]]:
    """Train on ``images`` ``[n, n_in]`` for the configured epochs, resuming if a progress file
    exists; returns the final state and training statistics.

    Progress is saved every ``checkpoint_every`` images and when training ends, so a run
    interrupted during evaluation resumes straight into evaluation. The progress file also
    carries the training time so far, so a run resumed over several sessions reports its whole
    training time (``train_seconds_all_sessions``; ``None`` when an earlier file lacked it)."""
    c = ctx.config
    epochs, n, batch_size = epochs_for(c), len(images), c["batch_size"]
    total = epochs * n
    saved = common.load_progress(ctx)
    common.check_within(saved, total, "epochs", "image")
    if saved is None:
        learner, done = Learner(net, initial_state(net, ctx.generator, c["w_init_max"])), 0
        earlier_seconds: float | None = 0.0
    else:
        learner = Learner(net, State(saved.tensors["weight"], saved.tensors["theta"]))
        done = saved.step
        earlier_seconds = saved.extra.get("train_seconds")
    start_time, start_done = time.perf_counter(), done

    def seconds_so_far() -> float | None:
        if earlier_seconds is None:
            return None
        return round(earlier_seconds + time.perf_counter() - start_time, 2)

    bar = tqdm(total=total, initial=done, desc="STDP", unit="img", disable=not ctx.progress)
    order_epoch, order = -1, torch.empty(0, dtype=torch.int64)
    while done < total:
        epoch, offset = divmod(done, n)
        if epoch != order_epoch:
            order_epoch, order = epoch, epoch_order(n, ctx.seed, epoch)
        idx = order[offset : offset + batch_size]
        learner.learn(images[idx], ctx.generator)
        before, done = done, done + len(idx)
        bar.update(len(idx))
        if on_batch is not None:
            on_batch(done)
        if common.due(done, before, c["checkpoint_every"]) or done == total:
            state = learner.state
            extra = {"epoch": epoch, "train_seconds": seconds_so_far()}
            common.save_progress(ctx, done, state._asdict(), extra)
            elapsed = time.perf_counter() - start_time
            log.info("%s", common.pace(done, total, start_done, elapsed, "image"))
        if done % n == 0:
            log.info("epoch %d/%d done", done // n, epochs)
    bar.close()
    seconds = time.perf_counter() - start_time
    rate = (done - start_done) / seconds if seconds > 0 else 0.0
    return learner.state, {
        "epochs": epochs,
        "train_images_per_second": round(rate, 2),
        "resumed_at_image": start_done if saved is not None else None,
        "train_seconds_all_sessions": seconds_so_far(),
    }


def _flat(images: torch.Tensor) -> torch.Tensor:
    return images.reshape(len(images), -1)


def _label_set(ctx: Context, x: torch.Tensor, y: torch.Tensor):
    n = ctx.config["n_label"]
    return (x, y) if n <= 0 or n >= len(x) else (x[:n], y[:n])


def _test(ctx: Context, net: Network, state: State, label_set, test_set):
    """Assign labels on ``label_set``, then measure accuracy and cost on ``test_set``."""
    c = ctx.config
    model = inference_network(net, state)
    x_label, y_label = label_set
    counts = responses(
        net, model, _flat(x_label), ctx.generator, eval_batch_size(c, net), ctx.progress, "labels"
    )
    assignments = common.assign_labels(counts, y_label, N_CLASSES)
    x_test, y_test = test_set
    with CostMeter(model) as meter:
        test_counts = responses(
            net, model, _flat(x_test), ctx.generator, eval_batch_size(c, net), ctx.progress, "test"
        )
    predictions = common.vote(test_counts, assignments, N_CLASSES)
    accuracy = common.percent_correct(predictions, y_test)
    return accuracy, meter.report(samples=len(x_test)), assignments


def _extra(ctx: Context, assignments: torch.Tensor) -> dict[str, Any]:
    n = ctx.config["n_neurons"]
    return {
        "n_neurons": n,
        **model_for(ctx.config),
        "tau_theta_ms": tau_theta_for(ctx.config),
        "paper_accuracy_for_setting": (
            PAPER_ACCURACY_BY_SIZE.get(n) if ctx.dataset == "mnist" else None
        ),
        **common.neurons_per_class(assignments, N_CLASSES),
    }


def train(ctx: Context) -> Outcome:
    with common.torch_threads(ctx.config["threads"]):
        return _train(ctx)


def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    with common.torch_threads(ctx.config["threads"]):
        return _evaluate(ctx, tensors)


def _train(ctx: Context) -> Outcome:
    c = ctx.config
    x_train, y_train = image_split(ctx, "train", c["n_train"])
    test_set = image_split(ctx, "test", c["n_test"])
    net = network_from(c, x_train[0].numel())
    state, stats = fit(ctx, net, _flat(x_train))
    accuracy, cost, assignments = _test(
        ctx, net, state, _label_set(ctx, x_train, y_train), test_set
    )
    log.info("diehl2015-stdp: %.2f%% with %d neurons", accuracy, net.n_neurons)
    return common.outcome(
        accuracy,
        cost,
        timesteps=net.steps,
        n_train=len(x_train),
        n_test=len(test_set[0]),
        tensors={**state._asdict(), "assignments": assignments},
        extra={**_extra(ctx, assignments), **stats},
    )


def _evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    c = ctx.config
    x_test, y_test = image_split(ctx, "test", c["n_test"])
    net = network_from(c, x_test[0].numel())
    state = State(tensors["weight"], tensors["theta"])
    model = inference_network(net, state)
    with CostMeter(model) as meter:
        counts = responses(net, model, _flat(x_test), ctx.generator, eval_batch_size(c, net))
    assignments = tensors["assignments"]
    accuracy = common.percent_correct(common.vote(counts, assignments, N_CLASSES), y_test)
    return common.outcome(
        accuracy,
        meter.report(samples=len(x_test)),
        timesteps=net.steps,
        n_train=0,
        n_test=len(x_test),
        tensors=dict(tensors),
        extra=_extra(ctx, assignments),
    )


# --------------------------------------------------------------------------- speed


def images_per_second(
    n_neurons: int = 100,
    presentation_ms: float = 250.0,
    n_images: int = 256,
    batch_size: int = 16,
    dataset: str = "mnist",
    data_dir: str | None = None,
    seed: int = 0,
    threads: int = 1,
    synapse: str | None = None,
    stdp_rule: str | None = None,
) -> float:
    """Training speed of the Diehl & Cook protocol (learning on) in images per second.

    Trains a fresh ``n_neurons`` network on the first ``n_images`` training images of
    ``dataset`` (``mnist`` needs its files; ``digits`` is bundled) with ``dt`` = 1 ms.
    ``synapse`` and ``stdp_rule`` default to the recipe's (``"auto"``: the model for
    ``n_neurons``, :func:`model_for`); ``"current"`` and ``"pair"`` time the model BindsNET runs,
    ``"conductance"`` and ``"triplet"`` the paper's.
    """
    x, _ = data.load(dataset, "train", data_dir=data_dir)
    images = _flat(x[:n_images])
    config = {**RECIPE.defaults, "n_neurons": n_neurons, "presentation_ms": presentation_ms}
    config["synapse"] = synapse or config["synapse"]
    config["stdp_rule"] = stdp_rule or config["stdp_rule"]
    net = network_from({**config, "batch_size": batch_size}, images.shape[1])
    generator = torch.Generator().manual_seed(seed)
    learner = Learner(net, initial_state(net, generator))
    with common.torch_threads(threads):
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            learner.learn(images[i : i + batch_size], generator)
        return len(images) / (time.perf_counter() - start)


RECIPE = register(
    Recipe(
        id="diehl2015-stdp",
        title="Diehl & Cook STDP network (adaptive thresholds, lateral inhibition)",
        paper=Paper(
            cite="Diehl & Cook 2015",
            row="STDP, 2 layers: excitatory LIF with adaptive thresholds, lateral inhibition, "
            "Poisson input, label assignment",
            accuracy={"mnist": 95.0},
            url="https://doi.org/10.3389/fncom.2015.00099",
        ),
        method="unsupervised STDP + label assignment",
        local_learning=True,
        group="fully connected",
        datasets=("mnist", "digits"),
        defaults={
            "n_neurons": 400,
            "epochs": 0,
            "batch_size": 1,
            "batch_size_eval": 0,  # by network size (eval_batch_size)
            "n_train": 0,
            "n_test": 0,
            "n_label": 0,  # every training image, as for the paper's results
            "dt": 1.0,
            "presentation_ms": 350.0,
            "rest_ms": 150.0,
            "tau_mem": 100.0,
            "refire_ms": 0.0,
            "reset_mv": V_RESET,
            "theta_offset_mv": 0.0,
            "theta_plus": 0.05,
            "tau_theta": 0.0,  # ms; 0: by network size (tau_theta_for)
            "inhibition": 120.0,
            "synapse": "auto",
            "g_inhibition": 17.0,
            "stdp_rule": "auto",
            "tau_post2": 40.0,
            "nu_pre": 1e-4,
            "nu_post": 1e-2,
            "tau_trace": 20.0,
            "weight_sum": 78.0,
            "w_init_max": 0.3,
            "max_rate_hz": 63.75,
            "rate_step_hz": 32.0,
            "min_spikes": 5,
            "threads": 1,
            "checkpoint_dir": "",
            "checkpoint_every": 5000,
        },
        # on the 8x8 digits (a few thousand presentations) the pair rule: the triplet rule, which
        # learns from repeated spikes only, scored lower on held-out digits
        # (sweeps/diehl2015-digits-rule/)
        smoke={
            "n_neurons": 60,
            "epochs": 1,
            "weight_sum": 16.0,
            "presentation_ms": 100.0,
            "n_train": 800,
            "n_label": 0,
            "synapse": "conductance",
            "stdp_rule": "pair",
        },
        quick={
            "n_neurons": 100,
            "epochs": 2,
            "weight_sum": 16.0,
            "synapse": "conductance",
            "stdp_rule": "pair",
        },
        label_keys=("n_neurons",),
        train=train,
        evaluate=evaluate,
    )
)
