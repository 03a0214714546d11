r"""The threshold scan on CPU, compiled by numba's LLVM JIT (no C compiler needed).

Two kernels over the flattened problem ``[T, M]`` (``M`` neurons = batch x features):

* :func:`scan_forward` runs the recurrence of :mod:`deepspike.neurons.fused.scan` and writes the
  spikes, the pre-reset membrane ``h`` (and ALIF's threshold ``theta``) that the backward needs,
  and the final state or the whole trace;
* :func:`scan_backward` runs the adjoint recurrence over steps ``t1-1 .. t0``, carrying the
  adjoints in and out, so ``scan.py`` can walk ``T`` in chunks, last chunk first, with a
  chunk-sized surrogate-slope buffer.

Both walk the neurons in blocks (:func:`block_width`: small ones in cache, all neurons at once
beyond); inside a block the time loop is outermost and the neuron loop innermost, over 1-D
slices, so the inner loop streams contiguous memory. Every flag is tested outside the inner
loops (one inner loop per case, the per-element arithmetic shared through inlined helpers) and
the reset mode is a select, so LLVM vectorises every inner loop. The backward is compiled with
``error_model="numpy"``: numba's default checks every division for a zero divisor, a branch
that kept the inline surrogate slope :math:`c / (1 + a|d|)^2` (divisor at least 1) from
vectorising; the slope is computed in the adjoint loop that uses it. Every arithmetic
operation is the one :meth:`LIFParams.step` / :meth:`ALIFParams.step` does in torch, in the
same order and in the input's precision (no ``fastmath``, so nothing is contracted into an
FMA): the forward is bit-identical to the per-step reference.

The kernels are serial. Out of cache the scan is bound by memory traffic, and on two cores
neither a ``prange`` over neuron blocks (much slower under load: numba's OpenMP workers spin
against torch's) nor neuron ranges on two Python threads (the kernels release the GIL) measured
faster; see ``docs/kernels.md``.

This module (and with it numba) is imported only when the first scan runs on CPU; the kernels
compile on their first call (a few seconds per dtype) and the machine code is cached on disk
(``cache=True``), so ``import deepspike`` stays fast and compilation is paid once per machine.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numba
import numpy as np
import torch

from deepspike.neurons.fused.config import ScanConfig, ScanTensors

SMALL_BLOCK = 2048
"""Neurons per block while the problem fits in cache: the block's state stays in L1."""
LARGE_PROBLEM = 1 << 19
"""Neuron-steps (``T * M``) from which the arrays outgrow the caches (2 MiB per float32 array)."""
MAX_BLOCK = 1 << 20
"""The widest block: its state copies stay under 4 MiB."""


def block_width(n_steps: int, n: int) -> int:
    """Neurons per block for a ``[n_steps, n]`` scan.

    In cache, blocks of :data:`SMALL_BLOCK` keep the state in L1. Once the arrays outgrow the
    caches, a block is every neuron (up to :data:`MAX_BLOCK`): each step then streams whole
    contiguous rows, which the hardware prefetchers follow best; blocks of 2,048 made 25-75 row
    streams per step and were 10-35 % slower there (``docs/kernels.md``)."""
    return min(max(n, 1), MAX_BLOCK) if n_steps * n >= LARGE_PROBLEM else SMALL_BLOCK


@numba.njit(inline="always")
def _fire(h: float, theta: float, zero: float, one: float) -> float:
    """:math:`s = H(h - \\vartheta)` with :math:`H(0) = 1`, as a number of the input's dtype."""
    return one if h - theta >= zero else zero


@numba.njit(inline="always")
def _reset(h: float, s: float, theta: float, v_reset: float, reset: int) -> float:
    """The post-reset membrane, with the reference's operations (subtract, zero, none)."""
    if reset == 0:
        return h - s * theta
    if reset == 1:
        return h - s * (h - v_reset)
    return h


@numba.njit(inline="always")
def _reset_slope(h: float, theta: float, v_reset: float, reset: int, detach: bool, zero: float):
    r""":math:`-\partial v/\partial s`: :math:`\vartheta`, :math:`h - v_{reset}` or 0."""
    if detach or reset == 2:
        return zero
    if reset == 0:
        return theta
    return h - v_reset


@numba.njit(inline="always")
def _inverse_square(distance: float, scale: float, sharpness: float, one: float) -> float:
    """The fast-sigmoid / SuperSpike slope :math:`c / (1 + a|d|)^2`, with the torch
    surrogate's operations in the same order."""
    q = one + sharpness * abs(distance)
    return scale / (q * q)


@numba.njit(inline="always")
def _slope_at(inline: bool, slope, j: int, distance: float, scale: float, sharpness: float, one):
    """The surrogate slope of neuron ``j``: :func:`_inverse_square` of ``distance`` when the
    kernel evaluates it (``inline``), else the torch surrogate's value ``slope[j]``."""
    return _inverse_square(distance, scale, sharpness, one) if inline else slope[j]


@numba.njit(inline="always")
def _lif_adjoint(h, theta, g_s, dv, slope, beta, v_reset, reset, detach, zero, one):
    r"""One neuron's adjoint step without adaptation: returns
    :math:`(\bar h_t, \bar v_{t-1})` from :math:`\bar v_t` (``dv``)."""
    s = _fire(h, theta, zero, one)
    k = _reset_slope(h, theta, v_reset, reset, detach, zero)
    du = (g_s - k * dv) * slope
    dh = (one - s if reset == 1 else one) * dv + du
    return dh, beta * dh


@numba.njit(inline="always")
def _alif_adjoint(
    h, theta, g_s, dv, da, slope, beta, rho, badapt, gain, v_reset, reset, detach, zero, one
):
    r"""One ALIF neuron's adjoint step: returns
    :math:`(\bar h_t, \bar v_{t-1}, \bar a_{t-1})` from :math:`\bar v_t, \bar a_t`."""
    s = _fire(h, theta, zero, one)
    k = _reset_slope(h, theta, v_reset, reset, detach, zero)
    du = (g_s + gain * da - k * dv) * slope
    dh = (one - s if reset == 1 else one) * dv + du
    dtheta = -du - (s * dv if reset == 0 else zero)
    return dh, beta * dh, rho * da + badapt * dtheta


@numba.njit(cache=True, nogil=True)
def scan_forward(
    x: np.ndarray,  # [T, M] input current
    v0: np.ndarray,  # [M] initial membrane
    a0: np.ndarray,  # [M] initial adaptation (ALIF), else [0]
    beta: np.ndarray,  # [M] membrane decay
    vth: np.ndarray,  # [M] base threshold
    badapt: np.ndarray,  # [M] threshold increase per unit of adaptation (ALIF), else [0]
    rho: np.ndarray,  # [M] adaptation decay (ALIF), else [0]
    gain: np.ndarray,  # [M] adaptation gain 1 - rho as the reference computes it, else [0]
    consts: np.ndarray,  # [3] = (v_reset, 0, 1) in the input's dtype
    reset: int,  # 0 subtract, 1 zero, 2 none
    adaptive: bool,
    spikes: np.ndarray,  # out [T, M]
    v_out: np.ndarray,  # out [T, M] post-reset membrane trace, or [1, M] the final membrane
    a_out: np.ndarray,  # out like v_out for the adaptation (ALIF), else [1, 0]
    h_out: np.ndarray,  # out [T, M] pre-reset membrane, or [1, M] scratch (not needed)
    theta_out: np.ndarray,  # out like h_out for the threshold (ALIF), else [1, 0]
    block: int,  # neurons per block (block_width)
) -> None:
    """Forward recurrence; ``[1, M]`` outputs are overwritten every step."""
    n_steps, n = x.shape
    record = v_out.shape[0] == n_steps
    h_step = 1 if h_out.shape[0] == n_steps else 0
    v_reset, zero, one = consts[0], consts[1], consts[2]
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        width = hi - lo
        v = v0[lo:hi].copy()
        a = a0[lo:hi].copy()
        b_beta, b_vth = beta[lo:hi], vth[lo:hi]
        b_badapt, b_rho, b_gain = badapt[lo:hi], rho[lo:hi], gain[lo:hi]
        for t in range(n_steps):
            xs, ss, hs = x[t, lo:hi], spikes[t, lo:hi], h_out[t * h_step, lo:hi]
            if adaptive:
                ths = theta_out[t * h_step, lo:hi]
                vs, as_ = v_out[t if record else 0, lo:hi], a_out[t if record else 0, lo:hi]
                for j in range(width):
                    h = b_beta[j] * v[j] + xs[j]
                    theta = b_vth[j] + b_badapt[j] * a[j]
                    s = _fire(h, theta, zero, one)
                    v[j] = _reset(h, s, theta, v_reset, reset)
                    a[j] = b_rho[j] * a[j] + b_gain[j] * s
                    ss[j], hs[j], ths[j], vs[j], as_[j] = s, h, theta, v[j], a[j]
            elif record:
                vs = v_out[t, lo:hi]
                for j in range(width):
                    h = b_beta[j] * v[j] + xs[j]
                    s = _fire(h, b_vth[j], zero, one)
                    v[j] = _reset(h, s, b_vth[j], v_reset, reset)
                    ss[j], hs[j], vs[j] = s, h, v[j]
            else:
                for j in range(width):
                    h = b_beta[j] * v[j] + xs[j]
                    s = _fire(h, b_vth[j], zero, one)
                    v[j] = _reset(h, s, b_vth[j], v_reset, reset)
                    ss[j], hs[j] = s, h
        if not record and not adaptive:
            v_out[0, lo:hi] = v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def scan_backward(
    h_in: np.ndarray,  # [T, M] pre-reset membrane, saved by the forward
    theta_in: np.ndarray,  # [T, M] threshold (ALIF), else [1, 0] (the base threshold)
    slope: np.ndarray,  # [t1 - t0, M] surrogate derivative at h - theta on steps t0 .. t1-1,
    # or [1, 0]: compute c / (1 + a |h - theta|)^2 here, with (c, a) = consts[3:5]
    grad_spikes: np.ndarray,  # [T, M]
    grad_v: np.ndarray,  # [T, M] grad of the v trace, or [1, 0] when not recorded
    grad_a: np.ndarray,  # like grad_v for the adaptation trace (ALIF)
    v0: np.ndarray,  # [M] initial membrane (for dL/dbeta at t = 0)
    beta: np.ndarray,
    vth: np.ndarray,
    badapt: np.ndarray,
    rho: np.ndarray,
    gain: np.ndarray,
    consts: np.ndarray,
    reset: int,
    adaptive: bool,
    detach_reset: bool,
    want_beta: bool,
    t0: int,
    t1: int,
    dv_carry: np.ndarray,  # in: [M] adjoint of v_{t1-1} from later steps; out: of v_{t0-1}
    da_carry: np.ndarray,  # the same for the adaptation (ALIF), else [0]
    grad_beta: np.ndarray,  # [M] += dL/dbeta of these steps (when want_beta), else [0]
    grad_x: np.ndarray,  # out [T, M] dL/dx on steps t0 .. t1-1
    block: int,  # neurons per block (block_width)
) -> None:
    r"""Adjoint recurrence over steps :math:`t_1 - 1 \dots t_0` (equations in ``scan.py``)."""
    n = h_in.shape[1]
    traced = grad_v.shape[1] == n
    v_reset, zero, one = consts[0], consts[1], consts[2]
    inline = slope.shape[1] == 0
    scale, sharpness = (consts[3], consts[4]) if inline else (one, one)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        width = hi - lo
        # the carried adjoints and dL/dbeta are updated in place (no per-block allocation)
        dv, da, db = dv_carry[lo:hi], da_carry[lo:hi], grad_beta[lo:hi]
        b_v0, b_beta, b_vth = v0[lo:hi], beta[lo:hi], vth[lo:hi]
        b_badapt, b_rho, b_gain = badapt[lo:hi], rho[lo:hi], gain[lo:hi]
        for t in range(t1 - 1, t0 - 1, -1):
            if traced:
                dv += grad_v[t, lo:hi]
                if adaptive:
                    da += grad_a[t, lo:hi]
            hs, gs, dx = h_in[t, lo:hi], grad_spikes[t, lo:hi], grad_x[t, lo:hi]
            ths = theta_in[t, lo:hi] if adaptive else b_vth
            sl = slope[t - t0, lo:hi] if not inline else slope[0, 0:0]
            if adaptive:
                for j in range(width):
                    slope_j = _slope_at(inline, sl, j, hs[j] - ths[j], scale, sharpness, one)
                    dx[j], dv[j], da[j] = _alif_adjoint(
                        hs[j],
                        ths[j],
                        gs[j],
                        dv[j],
                        da[j],
                        slope_j,
                        b_beta[j],
                        b_rho[j],
                        b_badapt[j],
                        b_gain[j],
                        v_reset,
                        reset,
                        detach_reset,
                        zero,
                        one,
                    )
            else:
                for j in range(width):
                    slope_j = _slope_at(inline, sl, j, hs[j] - ths[j], scale, sharpness, one)
                    dx[j], dv[j] = _lif_adjoint(
                        hs[j],
                        ths[j],
                        gs[j],
                        dv[j],
                        slope_j,
                        b_beta[j],
                        v_reset,
                        reset,
                        detach_reset,
                        zero,
                        one,
                    )
            if want_beta:  # dL/dbeta += dh_t v_{t-1}, v_{t-1} recomputed from row t-1
                if t == 0:
                    for j in range(width):
                        db[j] += dx[j] * b_v0[j]
                elif adaptive:
                    hp, thp = h_in[t - 1, lo:hi], theta_in[t - 1, lo:hi]
                    for j in range(width):
                        s = _fire(hp[j], thp[j], zero, one)
                        db[j] += dx[j] * _reset(hp[j], s, thp[j], v_reset, reset)
                else:
                    hp = h_in[t - 1, lo:hi]
                    for j in range(width):
                        s = _fire(hp[j], b_vth[j], zero, one)
                        db[j] += dx[j] * _reset(hp[j], s, b_vth[j], v_reset, reset)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy() if t.requires_grad else t.numpy()


def forward(
    x: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    p: ScanTensors,
    cfg: ScanConfig,
    spikes: torch.Tensor,
    v_out: torch.Tensor,
    a_out: torch.Tensor,
    h_out: torch.Tensor,
    theta_out: torch.Tensor,
) -> None:
    """The backend interface of :mod:`deepspike.neurons.fused.scan` over torch tensors."""
    args = (
        *map(_np, (x, v0, a0, p.beta, p.v_th, p.beta_adapt, p.rho, p.gain, p.consts)),
        cfg.reset_code,
        cfg.adaptive,
        *map(_np, (spikes, v_out, a_out, h_out, theta_out)),
        block_width(*x.shape),
    )
    scan_forward(*args)


def backward(
    h: torch.Tensor,
    theta: torch.Tensor,
    slope: torch.Tensor,
    grad_spikes: torch.Tensor,
    grad_v: torch.Tensor,
    grad_a: torch.Tensor,
    v0: torch.Tensor,
    p: ScanTensors,
    cfg: ScanConfig,
    want_beta: bool,
    steps: tuple[int, int],
    dv_carry: torch.Tensor,
    da_carry: torch.Tensor,
    grad_beta: torch.Tensor,
    grad_x: torch.Tensor,
) -> None:
    """The backend interface of :mod:`deepspike.neurons.fused.scan` over torch tensors."""
    args = (
        *map(_np, (h, theta, slope, grad_spikes, grad_v, grad_a, v0)),
        *map(_np, (p.beta, p.v_th, p.beta_adapt, p.rho, p.gain, p.consts)),
        cfg.reset_code,
        cfg.adaptive,
        cfg.detach_reset,
        want_beta,
        *steps,
        *map(_np, (dv_carry, da_carry, grad_beta, grad_x)),
        block_width(*h.shape),
    )
    scan_backward(*args)


class FloatPlan(NamedTuple):
    """The operands of an inference scan whose parameters are plain floats, prepared once."""

    beta: np.ndarray
    v_th: np.ndarray
    consts: np.ndarray
    none1: np.ndarray  # [0]: ALIF's state and parameters, unused
    none2: np.ndarray  # [1, 0]: ALIF's outputs, unused


@functools.lru_cache(maxsize=128)
def float_plan(beta: float, v_th: float, v_reset: float, n: int, dtype: torch.dtype) -> FloatPlan:
    """:class:`FloatPlan` for ``n`` neurons, cached (the kernel never writes its operands).
    The vectors hold the values :func:`torch.full` would: the same rounding to ``dtype``."""
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    return FloatPlan(
        np.full(n, beta, dtype=np_dtype),
        np.full(n, v_th, dtype=np_dtype),
        np.array([v_reset, 0.0, 1.0], dtype=np_dtype),
        np.empty(0, dtype=np_dtype),
        np.empty((1, 0), dtype=np_dtype),
    )


def infer(
    x: torch.Tensor, v0: torch.Tensor, plan: FloatPlan, reset_code: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes ``[T, M]`` and final membrane ``[M]`` of a non-adaptive scan with float
    parameters and nothing to differentiate: :func:`scan_forward` called on the cached
    operands of ``plan`` and outputs allocated as numpy arrays, so a small layer's call costs
    little more than the kernel (the general path converts and allocates 16 operands)."""
    n_steps, n = x.shape
    spikes = np.empty((n_steps, n), dtype=plan.beta.dtype)
    v_out = np.empty((1, n), dtype=plan.beta.dtype)
    h = np.empty((1, n), dtype=plan.beta.dtype)
    scan_forward(
        x.numpy(),
        v0.numpy(),
        plan.none1,
        plan.beta,
        plan.v_th,
        plan.none1,
        plan.none1,
        plan.none1,
        plan.consts,
        reset_code,
        False,
        spikes,
        v_out,
        plan.none2,
        h,
        plan.none2,
        block_width(n_steps, n),
    )
    return torch.from_numpy(spikes), torch.from_numpy(v_out).view(n)
