r"""The fused threshold scan: IF, LIF and ALIF over all ``T`` steps in one call.

Forward (per neuron; IF is :math:`\beta = 1`, LIF is :math:`\beta_a = 0`):

.. math::

    h_t &= \beta\, v_{t-1} + x_t, \qquad \vartheta_t = v_{th} + \beta_a a_{t-1}, \qquad
    s_t = H(h_t - \vartheta_t) \\
    v_t &= h_t - s_t \vartheta_t \;\text{(subtract)}, \quad
          h_t - s_t (h_t - v_{reset}) \;\text{(zero)}, \quad h_t \;\text{(none)} \\
    a_t &= \rho\, a_{t-1} + (1 - \rho)\, s_t \quad\text{(ALIF only)}

(Lee et al. 2016 and Neftci, Mostafa & Zenke 2019 for LIF; Bellec et al. 2018 for ALIF.)

Backward, with the surrogate :math:`\sigma'_t = \sigma'(h_t - \vartheta_t)` evaluated for all
``t`` at once by ``surrogate.derivative`` (so any :class:`~deepspike.surrogate.Surrogate` works),
and adjoints :math:`\bar v_t, \bar a_t` that collect the output gradients of the trace (or final
state) and the contributions of step :math:`t+1`, from :math:`t = T-1` down to 0:

.. math::

    \bar s_t &= g^s_t + (1-\rho)\,\bar a_t + \bar v_t\, \partial v_t/\partial s_t, \qquad
    \bar u_t = \bar s_t\, \sigma'_t, \qquad
    \bar h_t = \bar v_t\, \partial v_t/\partial h_t + \bar u_t = \partial L/\partial x_t \\
    \bar v_{t-1} &= g^v_{t-1} + \beta\,\bar h_t, \qquad
    \bar a_{t-1} = g^a_{t-1} + \rho\,\bar a_t + \beta_a
        (-\bar u_t + \bar v_t\, \partial v_t/\partial\vartheta_t), \qquad
    \partial L/\partial\beta = \textstyle\sum_t \bar h_t\, v_{t-1}

where :math:`\partial v_t/\partial s_t` is :math:`-\vartheta_t` (subtract),
:math:`-(h_t - v_{reset})` (zero) or 0 (none, or ``detach_reset``);
:math:`\partial v_t/\partial h_t` is :math:`1 - s_t` for reset to zero and 1 otherwise;
:math:`\partial v_t/\partial\vartheta_t` is :math:`-s_t` for subtract and 0 otherwise.

Memory: the forward saves one float per neuron and step, the pre-reset membrane :math:`h`
(ALIF also its threshold :math:`\vartheta`), in place of the input current :math:`x` that the
backward never needs (:math:`\partial L/\partial x_t = \bar h_t` does not depend on
:math:`x`). The spikes :math:`s_t = H(h_t - \vartheta_t)` and the previous membrane
:math:`v_{t-1}` (for :math:`\partial L/\partial\beta`) follow from :math:`h` bit-exactly, so
nothing else is saved, and nothing is recomputed.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch

from deepspike.neurons.fused.config import RESET_CODES, ScanConfig, ScanTensors
from deepspike.neurons.fused.dispatch import Backend, select_backend
from deepspike.surrogate import Surrogate

Param = float | torch.Tensor
Adaptation = tuple[torch.Tensor, Param, Param, Param]
"""ALIF's ``(a0, beta_adapt, rho, gain)``."""


class ScanResult(NamedTuple):
    """Spikes ``[T, *shape]``; membrane ``v`` and adaptation ``a`` as traces ``[T, *shape]``
    when recorded, else their final values ``[*shape]`` (``a`` is ``None`` without adaptation)."""

    spikes: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor | None


def _unused(like: torch.Tensor) -> torch.Tensor:
    return like.new_empty((1, 0))


def chunks(n_steps: int, rows: int) -> list[tuple[int, int]]:
    """``[(t0, t1), ...]`` covering ``range(n_steps)`` in consecutive pieces of ``rows`` steps."""
    return [(t0, min(t0 + rows, n_steps)) for t0 in range(0, n_steps, rows)]


def scan_forward(
    x: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    beta: torch.Tensor,
    fixed: ScanTensors,
    cfg: ScanConfig,
    backend: Backend,
    keep: bool,
) -> tuple[torch.Tensor, ...]:
    """The forward kernel's outputs ``(spikes, v, a, h, theta)``; ``h`` and ``theta`` are the
    whole ``[T, M]`` traces only when ``keep`` (for a backward), else one scratch row."""
    n_steps, n = x.shape
    width_a = n if cfg.adaptive else 0
    rows = n_steps if cfg.record else 1
    spikes = x.new_empty((n_steps, n))
    v_out = x.new_empty((rows, n))
    a_out = x.new_empty((rows, width_a))
    h = x.new_empty((n_steps if keep else 1, n))
    theta = x.new_empty((n_steps if keep else 1, width_a))
    backend.forward(x, v0, a0, fixed._replace(beta=beta), cfg, spikes, v_out, a_out, h, theta)
    return spikes, v_out, a_out, h, theta


class _ThresholdScan(torch.autograd.Function):
    """``(x [T, M], v0 [M], a0 [M], beta [M]) -> (spikes [T, M], v, a)``; see the module doc.

    The forward saves the pre-reset membrane ``h`` (and ALIF's threshold), not ``x``: the
    backward needs nothing else, and the spikes follow from them bit-exactly. The backward walks
    time in chunks of ``backend.chunk_elements // M`` steps, last chunk first: it evaluates the
    surrogate slope of one chunk (so its temporaries stay in cache and in the allocator's reuse
    pool) and runs the adjoint kernel over it, carrying the adjoints to the chunk before.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        v0: torch.Tensor,
        a0: torch.Tensor,
        beta: torch.Tensor,
        fixed: ScanTensors,
        cfg: ScanConfig,
        backend: Backend,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keep = any(ctx.needs_input_grad[:4])  # h is only needed by the backward
        spikes, v_out, a_out, h, theta = scan_forward(x, v0, a0, beta, fixed, cfg, backend, keep)
        if keep:
            ctx.save_for_backward(h, theta, v0, beta)
            ctx.fixed, ctx.cfg, ctx.backend = fixed, cfg, backend
        if not cfg.adaptive:
            ctx.mark_non_differentiable(a_out)
        return spikes, v_out, a_out

    @staticmethod
    def backward(
        ctx: Any, grad_spikes: torch.Tensor, grad_v: torch.Tensor, grad_a: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        h, theta, v0, beta = ctx.saved_tensors
        cfg: ScanConfig = ctx.cfg
        backend: Backend = ctx.backend
        p = ctx.fixed._replace(beta=beta.detach())
        n_steps, n = h.shape
        want_beta = ctx.needs_input_grad[3]
        grad_spikes = grad_spikes.contiguous()
        grad_v = grad_v.contiguous()
        grad_a = grad_a.contiguous()
        # Adjoints after the last step: the final-state gradients (in the trace's if recorded).
        dv = torch.zeros_like(v0) if cfg.record else grad_v[0].clone()
        da = torch.zeros_like(grad_a[0]) if cfg.record else grad_a[0].clone()
        grad_x = torch.empty_like(h)
        grad_beta = h.new_zeros(n if want_beta else 0)
        # the numba kernel evaluates the slope from the (c, a) that threshold_scan appended
        inline = p.consts.numel() == 5 and inline_form(cfg.surrogate, backend) is not None
        rows = n_steps if inline else max(1, backend.chunk_elements // max(n, 1))
        for t0, t1 in reversed(chunks(n_steps, rows)):
            if inline:  # the kernel evaluates the slope itself: one call in all
                slope = _unused(h)
            else:  # the surrogate derivative for the chunk, vectorised over its steps
                distance = h[t0:t1] - (theta[t0:t1] if cfg.adaptive else p.v_th)
                slope = cfg.surrogate.derivative(distance)
                if slope.shape != distance.shape or slope.dtype != h.dtype:
                    slope = slope.to(h.dtype).expand(distance.shape)
            backend.backward(
                h,
                theta,
                slope.contiguous(),
                grad_spikes,
                grad_v if cfg.record else _unused(h),
                grad_a if cfg.record and cfg.adaptive else _unused(h),
                v0,
                p,
                cfg,
                want_beta,
                (t0, t1),
                dv,
                da,
                grad_beta,
                grad_x,
            )
        return (
            grad_x if ctx.needs_input_grad[0] else None,
            dv if ctx.needs_input_grad[1] else None,
            da if ctx.needs_input_grad[2] and cfg.adaptive else None,
            grad_beta if want_beta else None,
            None,
            None,
            None,
        )


def inline_form(surrogate: Surrogate, backend: Backend) -> tuple[float, float] | None:
    """``(c, a)`` when the numba backward can evaluate the surrogate slope
    :math:`c/(1 + a|x|)^2` itself (fast sigmoid, SuperSpike), which saves a pass of torch
    operations over ``[T, M]`` and lets one kernel call cover every step; else ``None``.
    :func:`threshold_scan` appends them to the scan's ``consts``."""
    form = getattr(surrogate, "inverse_square_form", None)
    if backend.name != "numba" or form is None:
        return None
    c, a = form()
    return float(c), float(a)


def neuron_vector(
    value: float | torch.Tensor, shape: torch.Size, like: torch.Tensor, learnable: bool = False
) -> torch.Tensor | None:
    """``value`` as a contiguous ``[prod(shape)]`` vector in ``like``'s dtype and device.

    ``None`` when the fused scan cannot reproduce the reference step bit for bit: a tensor on
    another device, one whose type promotion with the input would change the input's dtype, one
    that does not broadcast to ``shape``, or (unless ``learnable``) one that needs a gradient.
    """
    n = shape.numel()
    if not isinstance(value, torch.Tensor):
        return torch.full((n,), float(value), dtype=like.dtype, device=like.device)
    if value.device != like.device or torch.result_type(value, like) != like.dtype:
        return None
    if value.requires_grad and not learnable and torch.is_grad_enabled():
        return None
    try:
        if torch.broadcast_shapes(value.shape, shape) != shape:
            return None
    except RuntimeError:
        return None
    return value.to(like.dtype).expand(shape).reshape(n).contiguous()


@functools.lru_cache(maxsize=128)
def _constant(value: float, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A read-only ``[n]`` vector of ``value``, cached: a float parameter becomes the same
    vector on every call (the kernels never write their parameters)."""
    return torch.full((n,), value, dtype=dtype, device=device)


@functools.lru_cache(maxsize=32)
def _scan_consts(
    v_reset: float, form: tuple[float, float] | None, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(v_reset, 0, 1)``, then the inline surrogate's ``(c, a)`` if any (:func:`inline_form`),
    in the input's dtype; cached and read-only."""
    return torch.tensor([v_reset, 0.0, 1.0, *(form or ())], dtype=dtype, device=device)


def _parameter_vector(
    value: Param, shape: torch.Size, like: torch.Tensor, learnable: bool = False
) -> torch.Tensor | None:
    """:func:`neuron_vector`, with float parameters served from :func:`_constant`."""
    if isinstance(value, torch.Tensor):
        return neuron_vector(value, shape, like, learnable)
    return _constant(float(value), shape.numel(), like.dtype, like.device)


def _state_ok(field: torch.Tensor | None, like: torch.Tensor) -> bool:
    return field is None or (
        field.shape == like.shape and field.dtype == like.dtype and field.device == like.device
    )


def _float_inference(
    inputs: torch.Tensor,
    v0: torch.Tensor,
    beta: Param,
    v_th: Param,
    v_reset: float,
    reset: str,
) -> ScanResult | None:
    """The numba scan for inference with plain-float parameters
    (:func:`deepspike.neurons.fused.cpu_numba.infer`); ``None`` where it does not apply (a
    tensor parameter, a state that does not match, or a gradient to track)."""
    if isinstance(beta, torch.Tensor) or isinstance(v_th, torch.Tensor):
        return None
    if torch.is_grad_enabled() and (inputs.requires_grad or v0.requires_grad):
        return None
    slice_shape = inputs.shape[1:]
    if v0.shape != slice_shape or v0.dtype != inputs.dtype or v0.device != inputs.device:
        return None
    from deepspike.neurons.fused import cpu_numba

    n_steps, n = inputs.shape[0], slice_shape.numel()
    plan = cpu_numba.float_plan(float(beta), float(v_th), float(v_reset), n, inputs.dtype)
    x = inputs.detach().reshape(n_steps, n).contiguous()
    v0_flat = v0.detach().reshape(n).contiguous()
    spikes, v = cpu_numba.infer(x, v0_flat, plan, RESET_CODES[reset])
    return ScanResult(spikes.view(n_steps, *slice_shape), v.view(slice_shape), None)


def threshold_scan(
    inputs: torch.Tensor,
    v0: torch.Tensor,
    *,
    beta: float | torch.Tensor,
    v_th: float | torch.Tensor,
    v_reset: float,
    reset: str,
    detach_reset: bool,
    surrogate: Surrogate,
    record: bool,
    adaptation: Adaptation | None = None,
    backend: str | None = None,
) -> ScanResult | None:
    """Run the fused scan over ``inputs [T, B, ...]`` from membrane ``v0 [B, ...]``.

    ``adaptation = (a0, beta_adapt, rho, gain)`` turns on ALIF (``gain`` is :math:`1 - \\rho` as
    the reference step computes it). ``beta`` may be a learnable tensor (gradients reach it);
    the other parameters must not need gradients. ``backend`` overrides ``DEEPSPIKE_FUSED``.

    Returns ``None`` when the fused path does not apply (turned off, an unsupported dtype or
    parameter, no time steps); the caller then runs the reference ``step_loop``.
    """
    if inputs.dim() < 2 or inputs.shape[0] == 0:
        return None
    chosen = select_backend(inputs, backend)
    if chosen is None:
        return None
    if chosen.name == "numba" and adaptation is None and not record:
        lean = _float_inference(inputs, v0, beta, v_th, v_reset, reset)
        if lean is not None:
            return lean
    slice_shape = inputs.shape[1:]
    like = inputs[0]
    a0 = adaptation[0] if adaptation is not None else None
    if not (_state_ok(v0, like) and _state_ok(a0, like)):
        return None
    vectors = [
        _parameter_vector(beta, slice_shape, like, learnable=True),
        _parameter_vector(v_th, slice_shape, like),
        *(_parameter_vector(value, slice_shape, like) for value in (adaptation or ())[1:]),
    ]
    if any(vec is None for vec in vectors):
        return None
    beta_vec, vth_vec, *adapt_vecs = vectors
    empty = inputs.new_empty(0)
    ba_vec, rho_vec, gain_vec = adapt_vecs if adaptation is not None else (empty, empty, empty)
    form = inline_form(surrogate, chosen)
    consts = _scan_consts(float(v_reset), form, inputs.dtype, inputs.device)
    fixed = ScanTensors(empty, vth_vec, ba_vec, rho_vec, gain_vec, consts)
    cfg = ScanConfig(RESET_CODES[reset], adaptation is not None, detach_reset, record, surrogate)
    n_steps, n = inputs.shape[0], slice_shape.numel()
    x = inputs.reshape(n_steps, n).contiguous()
    a_flat = a0.reshape(n).contiguous() if a0 is not None else empty
    v0_flat = v0.reshape(n).contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, v0_flat, a_flat, beta_vec)):
        spikes, v, a = _ThresholdScan.apply(x, v0_flat, a_flat, beta_vec, fixed, cfg, chosen)
    else:  # nothing to differentiate: the kernel alone, without autograd's bookkeeping
        spikes, v, a, _, _ = scan_forward(x, v0_flat, a_flat, beta_vec, fixed, cfg, chosen, False)
    out_shape = (n_steps, *slice_shape) if record else slice_shape
    return ScanResult(
        spikes.view(n_steps, *slice_shape),
        v.view(out_shape),
        a.view(out_shape) if adaptation is not None else None,
    )
