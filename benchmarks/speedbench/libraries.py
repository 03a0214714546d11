"""The libraries under test, each as builders of the two benchmark networks.

Every builder returns an ``nn.Module`` mapping a time-major input ``[T, B, ...]`` to output
spikes ``[T, B, 10]``, in the library's fastest idiomatic multi-step form:

* deepspike: its time-major layers (one GEMM / convolution over ``[T*B, ...]``) and ``Neuron``;
* snnTorch: ``nn.Linear``/``nn.Conv2d`` over all steps at once, ``snn.Leaky`` stepped per step
  (snnTorch's neurons are single-step modules);
* SpikingJelly: ``layer.*`` and ``neuron.LIFNode`` in multi-step mode (``step_mode='m'``); in
  SpikingJelly 2 the CPU implementation is picked by the device (its torch kernel with a
  hand-written backward; cupy/triton are GPU-only), ``functional.reset_net`` after each step;
* Norse: layers over all steps at once and ``Lift(LIFBoxCell)`` over time;
* limit: the same layers with the neurons removed (the hardware limit).

Peers are imported lazily, so a missing peer is reported by :func:`probe` instead of failing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speedbench import spec
from speedbench.workload import Reset, TimeFold, no_reset

MAX_REASON = 300  # characters of an error kept in the report
CNN_FLAT = 32 * 4 * 4  # 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4


@dataclass(frozen=True)
class Library:
    """How to build the benchmark networks in one library.

    ``mlp(n_in, hidden, n_out)`` and ``cnn()`` build the two networks; ``reset`` clears a
    stateful library's neurons after each step. ``module`` is imported to check availability,
    ``dist`` names the installed distribution whose version is reported.
    """

    name: str
    module: str
    dist: str
    mlp: Callable[[int, int, int], nn.Module]
    cnn: Callable[[], nn.Module]
    reset: Reset = no_reset


@dataclass(frozen=True)
class Status:
    """Whether a library can be used here, its version, and why not when it cannot."""

    name: str
    available: bool
    version: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "version": self.version, "reason": self.reason}


def probe_module(name: str, module: str, dist: str, hint: str = "") -> Status:
    """Import ``module`` of distribution ``dist``; on any failure return the reason."""
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return Status(name, False, reason=f"not installed: {dist}{hint}")
    try:
        importlib.import_module(module)
    except Exception as error:  # any import-time failure makes the library unavailable
        return Status(name, False, version, f"import failed: {one_line(error)}")
    return Status(name, True, version)


def probe(library: Library) -> Status:
    """Whether ``library`` can be imported here (never raises)."""
    return probe_module(library.name, library.module, library.dist, " (pip install -e '.[peers]')")


def one_line(error: BaseException) -> str:
    """``Type: last line of the message``, for the JSON report."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[-1] if lines else ''}"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def mlp_layers(
    linear: Callable[[int, int], nn.Module],
    neuron: Callable[[], nn.Module],
    sizes: tuple[int, int, int],
) -> nn.Sequential:
    """``linear(n_in, hidden), neuron, linear(hidden, n_out), neuron`` for ``sizes``."""
    n_in, hidden, n_out = sizes
    return nn.Sequential(linear(n_in, hidden), neuron(), linear(hidden, n_out), neuron())


def cnn_layers(
    conv: Callable[[int, int], nn.Module],
    pool: Callable[[], nn.Module],
    flatten: Callable[[], nn.Module],
    linear: Callable[[int, int], nn.Module],
    neuron: Callable[[], nn.Module],
) -> nn.Sequential:
    """conv 1->12 5x5, pool 2, LIF, conv 12->32 5x5, pool 2, LIF, linear 512->10, LIF."""
    return nn.Sequential(
        conv(1, 12),
        pool(),
        neuron(),
        conv(12, 32),
        pool(),
        neuron(),
        flatten(),
        linear(CNN_FLAT, spec.N_CLASSES),
        neuron(),
    )


# --- deepspike ---------------------------------------------------------------------------


def deepspike_neuron() -> nn.Module:
    from deepspike.neurons import LIFParams, Neuron
    from deepspike.surrogate import FastSigmoid

    lif = LIFParams(
        tau_mem=spec.TAU_MEM, v_th=spec.THRESHOLD, surrogate=FastSigmoid(spec.SURROGATE_SLOPE)
    )
    return Neuron(lif)


def deepspike_mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    """deepspike's ``Sequential``: the same modules, with each Linear -> LIF pair fused in
    event-driven inference (training runs the modules one by one)."""
    from deepspike.layers import Linear, Sequential

    return Sequential(*mlp_layers(Linear, deepspike_neuron, (n_in, hidden, n_out)))


def deepspike_lean_mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    """The deepspike MLP with each (Linear, LIF) pair in a ``Recompute`` block: the backward
    keeps only the blocks' spike inputs, one byte each, and recomputes the rest."""
    from deepspike.layers import Recompute

    layers = list(deepspike_mlp(n_in, hidden, n_out))
    return nn.Sequential(*(Recompute(nn.Sequential(*layers[i : i + 2])) for i in (0, 2)))


def deepspike_lean_cnn() -> nn.Module:
    """The deepspike CNN with each (synapse, pool, LIF) group in a ``Recompute`` block."""
    from deepspike.layers import Recompute

    c = list(deepspike_cnn())
    groups = (c[0:3], c[3:6], c[6:9])
    return nn.Sequential(*(Recompute(nn.Sequential(*group)) for group in groups))


def deepspike_cnn() -> nn.Module:
    from deepspike.layers import Conv2d, Flatten, Linear, MaxPool2d

    return cnn_layers(
        lambda i, o: Conv2d(i, o, 5), lambda: MaxPool2d(2), Flatten, Linear, deepspike_neuron
    )


# --- the hardware limit: the same layers without neurons ----------------------------------


def limit_mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    return TimeFold(mlp_layers(nn.Linear, nn.Identity, (n_in, hidden, n_out)))


def limit_cnn() -> nn.Module:
    return TimeFold(
        cnn_layers(
            lambda i, o: nn.Conv2d(i, o, 5),
            lambda: nn.MaxPool2d(2),
            nn.Flatten,
            nn.Linear,
            nn.Identity,
        )
    )


def folded_cnn(neuron: Callable[[], nn.Module]) -> nn.Module:
    """The CNN from plain torch layers folded over time, around a peer's neuron."""
    return cnn_layers(
        lambda i, o: TimeFold(nn.Conv2d(i, o, 5)),
        lambda: TimeFold(nn.MaxPool2d(2)),
        lambda: nn.Flatten(2),
        nn.Linear,
        neuron,
    )


# --- snnTorch ------------------------------------------------------------------------------


class SnnTorchLeaky(nn.Module):
    """``snn.Leaky`` stepped over ``[T, B, ...]``, starting from rest on every call."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch
        from snntorch import surrogate

        self.lif = snntorch.Leaky(
            beta=spec.BETA,
            threshold=spec.THRESHOLD,
            spike_grad=surrogate.fast_sigmoid(slope=spec.SURROGATE_SLOPE),
            reset_mechanism="subtract",
            reset_delay=False,  # reset in the step that fires, as deepspike does
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = self.lif.reset_mem()
        out = []
        for x_t in x:
            spk, mem = self.lif(x_t, mem)
            out.append(spk)
        return torch.stack(out)


def snntorch_mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    return mlp_layers(nn.Linear, SnnTorchLeaky, (n_in, hidden, n_out))


def snntorch_cnn() -> nn.Module:
    return folded_cnn(SnnTorchLeaky)


# --- SpikingJelly --------------------------------------------------------------------------


def spikingjelly_neuron() -> nn.Module:
    from spikingjelly.activation_based import neuron, surrogate

    return neuron.LIFNode(
        tau=1.0 / (1.0 - spec.BETA),
        decay_input=False,
        v_threshold=spec.THRESHOLD,
        v_reset=None,
        surrogate_function=surrogate.SoftSign(alpha=spec.SURROGATE_SLOPE),
        detach_reset=False,
        step_mode="m",
    )


def spikingjelly_mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    from spikingjelly.activation_based import layer

    return mlp_layers(
        lambda i, o: layer.Linear(i, o, step_mode="m"), spikingjelly_neuron, (n_in, hidden, n_out)
    )


def spikingjelly_cnn() -> nn.Module:
    from spikingjelly.activation_based import layer

    return cnn_layers(
        lambda i, o: layer.Conv2d(i, o, 5, step_mode="m"),
        lambda: layer.MaxPool2d(2, step_mode="m"),
        lambda: layer.Flatten(step_mode="m"),
        lambda i, o: layer.Linear(i, o, step_mode="m"),
        spikingjelly_neuron,
    )


def spikingjelly_reset(model: nn.Module) -> None:
    from spikingjelly.activation_based import functional

    functional.reset_net(model)


# --- Norse ---------------------------------------------------------------------------------

NORSE_DT = 1e-3


class NorseLIF(nn.Module):
    """``Lift(LIFBoxCell)`` over ``[T, B, ...]``, parameters as in ``spec.NEURON_MAPPING``."""

    def __init__(self) -> None:
        super().__init__()
        from norse.torch import LIFBoxCell, LIFBoxParameters, Lift
        from norse.torch.functional.reset import reset_subtract

        # Euler step v += dt * tau_mem_inv * (x - v) = 0.9 v + 0.1 x: Norse's membrane is
        # deepspike's scaled by 1 - beta, so threshold and surrogate slope scale with it.
        params = LIFBoxParameters(
            tau_mem_inv=torch.as_tensor((1.0 - spec.BETA) / NORSE_DT),
            v_leak=torch.as_tensor(0.0),
            v_th=torch.as_tensor(spec.THRESHOLD * (1.0 - spec.BETA)),
            v_reset=torch.as_tensor(0.0),
            method="super",
            alpha=torch.as_tensor(spec.SURROGATE_SLOPE / (1.0 - spec.BETA)),
            reset_method=reset_subtract,
        )
        self.lift = Lift(LIFBoxCell(params, dt=NORSE_DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lift(x)[0]


def norse_mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    return mlp_layers(nn.Linear, NorseLIF, (n_in, hidden, n_out))


def norse_cnn() -> nn.Module:
    return folded_cnn(NorseLIF)


# --- the registry ----------------------------------------------------------------------------

DEEPSPIKE = Library("deepspike", "deepspike", "deepspike", deepspike_mlp, deepspike_cnn)
LIMIT = Library("limit", "torch", "torch", limit_mlp, limit_cnn)
PEERS: tuple[Library, ...] = (
    Library("snntorch", "snntorch", "snntorch", snntorch_mlp, snntorch_cnn),
    Library(
        "spikingjelly",
        "spikingjelly.activation_based.neuron",
        "spikingjelly",
        spikingjelly_mlp,
        spikingjelly_cnn,
        spikingjelly_reset,
    ),
    Library("norse", "norse.torch", "norse", norse_mlp, norse_cnn),
)
LIBRARIES: tuple[Library, ...] = (DEEPSPIKE, *PEERS, LIMIT)
#: deepspike's memory-lean training mode (``deepspike.layers.Recompute``): timed beside the
#: libraries and measured in the memory case, never counted as a peer.
DEEPSPIKE_LEAN = Library(
    "deepspike-lean", "deepspike", "deepspike", deepspike_lean_mlp, deepspike_lean_cnn
)
VARIANTS: tuple[Library, ...] = (DEEPSPIKE_LEAN,)


def by_name(name: str) -> Library:
    for library in (*LIBRARIES, *VARIANTS):
        if library.name == name:
            return library
    raise KeyError(f"unknown library {name!r}; choose from {[lib.name for lib in LIBRARIES]}")
