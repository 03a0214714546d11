r"""Spike response model SRM\ :sub:`0` in kernel form (Gerstner & Kistler 2002, ch. 4.2).

Instead of integrating a differential equation, SRM\ :sub:`0` writes the membrane potential as
a sum of kernels over the input history and over the neuron's own spikes:

.. math::

    v_t = \sum_{k=0}^{K-1} \epsilon_k\, x_{t-k} + r_t, \qquad s_t = H(v_t - \vartheta),

with the post-synaptic potential (PSP) kernel, a difference of exponentials normalised to a peak
of 1 and truncated after :math:`K` = ``kernel_steps`` steps,

.. math::

    \epsilon_k \propto e^{-k\Delta t/\tau_m} - e^{-k\Delta t/\tau_s}, \qquad
    \max_k \epsilon_k = 1, \qquad \epsilon_0 = 0,

and the refractory potential :math:`r_t = \sum_{t_f < t} \eta(t - t_f)` summed over the neuron's
own earlier spikes :math:`t_f`, with the refractory kernel
:math:`\eta(s) = -\eta_0\, e^{-s/\tau_{ref}}`. Because :math:`\eta` is exponential,
:math:`r` obeys :math:`r_{t+1} = e^{-\Delta t/\tau_{ref}}\,(r_t - \eta_0 s_t)`. There is no
explicit reset: the refractory kernel plays its part. Since :math:`\epsilon_0 = 0`, an input
reaches the membrane one step after it arrives (the PSP starts at zero).

The per-step form (:meth:`SRMParams.step`) keeps the last :math:`K` inputs in its state, so it is
exact, not an approximation by a recurrence. Its advantage is :meth:`SRMParams.multi_step`: the
PSP of a whole sequence is one causal temporal convolution, leaving only a cheap loop for the
refractory part, which :func:`~deepspike.neurons.base.run` picks up automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from deepspike.errors import ConfigError
from deepspike.neurons.base import Run, check_positive, decay
from deepspike.surrogate import DEFAULT_SURROGATE, Surrogate


class SRMState(NamedTuple):
    v: torch.Tensor  # membrane potential at the last step
    refractory: torch.Tensor  # refractory potential r carried into the next step
    history: torch.Tensor  # last K inputs, newest first: history[..., k] = x_{t-k}; [B, ..., K]


def _as_tensor(
    value: float | torch.Tensor, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(dtype=dtype, device=device)
    return torch.tensor(value, dtype=dtype, device=device)


def causal_conv(padded: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""``out[t] = sum_k kernel[..., k] * padded[t + K - 1 - k]`` for ``t < len(padded) - K + 1``.

    ``padded`` is time-major ``[K - 1 + T, B, ...]`` (history first); ``kernel`` is ``[K]`` (one
    kernel for all neurons, a batched convolution) or ``[..., K]`` broadcastable to the slice
    ``[B, ..., K]`` (one kernel per neuron, a depthwise convolution).
    """
    k_len = kernel.shape[-1]
    n_steps = padded.shape[0] - k_len + 1
    slice_shape = padded.shape[1:]
    signal = padded.reshape(padded.shape[0], -1).t()  # [N, K - 1 + T]
    weight = kernel.flip(-1)  # conv1d is a cross-correlation
    if kernel.dim() == 1:
        out = F.conv1d(signal.unsqueeze(1), weight.view(1, 1, k_len)).squeeze(1)
    else:
        weight = weight.broadcast_to((*slice_shape, k_len)).reshape(-1, 1, k_len)
        out = F.conv1d(signal.unsqueeze(0), weight, groups=signal.shape[0]).squeeze(0)
    return out.t().reshape(n_steps, *slice_shape)


@dataclass(frozen=True)
class SRMParams:
    """SRM\\ :sub:`0` in kernel form; see the module docstring for the equations.

    ``eta`` is the amplitude :math:`\\eta_0 \\ge 0` of the refractory kernel (0 disables it);
    ``kernel_steps`` is the PSP kernel length :math:`K` (at least 2; a few ``tau_mem/dt`` keeps
    the truncation error small). ``tau_mem`` may be a tensor (learnable or per-neuron), which
    gives every neuron its own kernel.
    """

    tau_mem: float | torch.Tensor = 10.0
    tau_syn: float | torch.Tensor = 2.5
    tau_ref: float = 10.0
    eta: float = 1.0
    v_th: float | torch.Tensor = 1.0
    dt: float = 1.0
    kernel_steps: int = 50
    surrogate: Surrogate = DEFAULT_SURROGATE
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_positive(tau_mem=self.tau_mem, tau_syn=self.tau_syn, tau_ref=self.tau_ref, dt=self.dt)
        if not self.eta >= 0:
            raise ConfigError(f"eta={self.eta} is the refractory amplitude; it must be >= 0")
        if not isinstance(self.kernel_steps, int) or self.kernel_steps < 2:
            raise ConfigError(f"kernel_steps={self.kernel_steps} must be an integer >= 2")
        if (
            not isinstance(self.tau_mem, torch.Tensor)
            and not isinstance(self.tau_syn, torch.Tensor)
            and self.tau_mem == self.tau_syn
        ):
            raise ConfigError(
                f"tau_mem == tau_syn == {self.tau_mem} makes the PSP kernel vanish; "
                "choose different time constants"
            )

    @property
    def rho_ref(self) -> float:
        """Per-step decay of the refractory potential, :math:`e^{-\\Delta t/\\tau_{ref}}`."""
        return decay(self.tau_ref, self.dt)

    def kernel(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The PSP kernel :math:`\\epsilon_k`, ``[K]`` or ``[*tau_shape, K]``, with peak 1."""
        dtype = dtype or torch.get_default_dtype()
        device = torch.device(device) if device is not None else torch.device("cpu")
        t = torch.arange(self.kernel_steps, dtype=dtype, device=device) * self.dt
        tau_m = _as_tensor(self.tau_mem, dtype, device).unsqueeze(-1)
        tau_s = _as_tensor(self.tau_syn, dtype, device).unsqueeze(-1)
        # The sign of the difference is that of tau_m - tau_s at every k > 0; abs makes it a
        # positive kernel either way.
        diff = (torch.exp(-t / tau_m) - torch.exp(-t / tau_s)).abs()
        return diff / diff.amax(dim=-1, keepdim=True)

    def initial_state(self, like: torch.Tensor) -> SRMState:
        zeros = torch.zeros_like(like)
        history = torch.zeros(
            (*like.shape, self.kernel_steps), dtype=like.dtype, device=like.device
        )
        return SRMState(zeros, zeros, history)

    def _refractory_step(
        self, psp: torch.Tensor, r: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        v = psp + r
        s = self.surrogate(v - self.v_th)
        s_r = s.detach() if self.detach_reset else s
        return s, v, self.rho_ref * (r - self.eta * s_r)

    def step(self, x: torch.Tensor, state: SRMState) -> tuple[torch.Tensor, SRMState]:
        history = torch.cat([x.unsqueeze(-1), state.history[..., :-1]], dim=-1)
        psp = (history * self.kernel(x.dtype, x.device)).sum(-1)
        s, v, r = self._refractory_step(psp, state.refractory)
        return s, SRMState(v, r, history)

    def multi_step(
        self, inputs: torch.Tensor, state: SRMState | None = None, record: bool = False
    ) -> Run:
        """All ``T`` steps at once: the PSP as a causal convolution, then the refractory loop.

        Equal to :func:`~deepspike.neurons.base.step_loop` up to floating-point summation order.
        """
        if state is None:
            state = self.initial_state(inputs[0])
        past = state.history[..., :-1].flip(-1).movedim(-1, 0)  # [K - 1, B, ...], oldest first
        padded = torch.cat([past, inputs], dim=0)
        psp = causal_conv(padded, self.kernel(inputs.dtype, inputs.device))
        r = state.refractory
        spikes, vs, rs = [], [], []
        v = state.v
        for psp_t in psp:
            s, v, r = self._refractory_step(psp_t, r)
            spikes.append(s)
            if record:
                vs.append(v)
                rs.append(r)
        k_len = self.kernel_steps
        history = padded[-k_len:].movedim(0, -1).flip(-1)
        trace = None
        if record:
            windows = padded.unfold(0, k_len, 1).flip(-1)  # [T, B, ..., K], newest first
            trace = SRMState(torch.stack(vs), torch.stack(rs), windows)
        return Run(torch.stack(spikes), SRMState(v, r, history), trace)
