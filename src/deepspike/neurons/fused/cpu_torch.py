"""The threshold scan as a plain-torch loop over time, for any device.

The same two functions as :mod:`deepspike.neurons.fused.cpu_numba` (same arguments, same
equations, see ``scan.py``), written with whole-slice torch operations, one time step at a time.
It is the fallback where neither numba (CPU) nor Triton (CUDA) applies, e.g. on other devices.
It builds no autograd graph and saves nothing per step, so it keeps the lean memory of the fused
scan, but it pays one kernel launch per operation and step.
"""

from __future__ import annotations

import torch

from deepspike.neurons.fused.config import ScanConfig, ScanTensors


def _reset(h: torch.Tensor, s: torch.Tensor, theta: torch.Tensor, p: ScanTensors, code: int):
    if code == 0:
        return h - s * theta
    if code == 1:
        return h - s * (h - p.consts[0])
    return h


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
    """Forward recurrence; see :func:`deepspike.neurons.fused.cpu_numba.scan_forward`."""
    n_steps = x.shape[0]
    record = v_out.shape[0] == n_steps
    keep_h = h_out.shape[0] == n_steps
    v, a = v0, a0
    for t in range(n_steps):
        h = p.beta * v
        h += x[t]
        theta = p.v_th + p.beta_adapt * a if cfg.adaptive else p.v_th
        s = (h - theta >= 0).to(x.dtype)
        v = _reset(h, s, theta, p, cfg.reset_code)
        spikes[t] = s
        if keep_h:
            h_out[t] = h
        if cfg.adaptive:
            a = p.rho * a + p.gain * s
            if keep_h:
                theta_out[t] = theta
        if record:
            v_out[t] = v
            if cfg.adaptive:
                a_out[t] = a
    if not record:
        v_out[0] = v
        if cfg.adaptive:
            a_out[0] = a


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
    """Adjoint recurrence; see :func:`deepspike.neurons.fused.cpu_numba.scan_backward`."""
    t0, t1 = steps
    traced = grad_v.shape[1] == h.shape[1]
    code = cfg.reset_code
    dv, da = dv_carry.clone(), da_carry.clone()

    def thresh(t: int) -> torch.Tensor:
        return theta[t] if cfg.adaptive else p.v_th

    for t in range(t1 - 1, t0 - 1, -1):
        if traced:
            dv = dv + grad_v[t]
            if cfg.adaptive:
                da = da + grad_a[t]
        h_t, theta_t = h[t], thresh(t)
        s = (h_t - theta_t >= 0).to(h.dtype)
        ds = grad_spikes[t] + p.gain * da if cfg.adaptive else grad_spikes[t]
        if not cfg.detach_reset and code == 0:
            ds = ds - theta_t * dv
        elif not cfg.detach_reset and code == 1:
            ds = ds - (h_t - p.consts[0]) * dv
        du = ds * slope[t - t0]
        dh = ((1 - s) * dv if code == 1 else dv) + du
        if want_beta:
            if t > 0:
                h_p, theta_p = h[t - 1], thresh(t - 1)
                v_prev = _reset(h_p, (h_p - theta_p >= 0).to(h.dtype), theta_p, p, code)
            else:
                v_prev = v0
            grad_beta += dh * v_prev
        if cfg.adaptive:
            dtheta = -du - s * dv if code == 0 else -du
            da = p.rho * da + p.beta_adapt * dtheta
        grad_x[t] = dh
        dv = p.beta * dh
    dv_carry.copy_(dv)
    if cfg.adaptive:
        da_carry.copy_(da)
