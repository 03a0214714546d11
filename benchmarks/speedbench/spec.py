r"""What every library runs: shapes, grids and the one neuron all libraries are mapped to.

The reference neuron is deepspike's discrete LIF with reset by subtraction,

.. math:: v_t = \beta v_{t-1} + x_t,\quad s_t = H(v_t - 1),\quad v_t \leftarrow v_t - s_t,

with :math:`\beta = 0.9` and the fast-sigmoid surrogate :math:`1/(1 + 10|v - 1|)^2`. Each peer's
parameters are chosen to reproduce it as closely as that library allows; ``NEURON_MAPPING``
states the mapping and every difference that remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BETA = 0.9
TAU_MEM = 1.0 / math.log(1.0 / BETA)  # deepspike: beta = exp(-dt / tau_mem), dt = 1
SURROGATE_SLOPE = 10.0
THRESHOLD = 1.0
INPUT_ACTIVITY = 0.2  # spike probability per input per step of the training workloads
N_CLASSES = 10

NEURON_MAPPING: dict[str, str] = {
    "deepspike": (
        f"LIFParams(tau_mem={TAU_MEM:.4f}) -> beta = exp(-1/tau_mem) = {BETA}; "
        "v_th 1, reset by subtraction (not detached), FastSigmoid(alpha=10) surrogate"
    ),
    "snntorch": (
        f"snn.Leaky(beta={BETA}, threshold=1, reset_mechanism='subtract', reset_delay=False, "
        "spike_grad=surrogate.fast_sigmoid(slope=10)) -> identical dynamics and surrogate; "
        "snnTorch detaches part of the reset term from the gradient"
    ),
    "spikingjelly": (
        "neuron.LIFNode(tau=10.0, decay_input=False, v_reset=None, v_threshold=1.0) -> "
        f"v = (1 - 1/tau) v + x = {BETA} v + x, soft reset by subtraction (identical dynamics); "
        "surrogate.SoftSign(alpha=10) = the same fast-sigmoid shape scaled by 5"
    ),
    "norse": (
        "LIFBoxCell(LIFBoxParameters(tau_mem_inv=100, v_th=0.1, v_leak=0, "
        "reset_method=reset_subtract, method='super', alpha=100), dt=0.001) -> "
        "v = 0.9 v + 0.1 x; with the membrane measured in units of 10 this is "
        f"v = {BETA} v + x, threshold 1, reset by subtraction (identical dynamics); SuperSpike "
        "1/(100|v - 0.1| + 1)^2 is the same fast-sigmoid, its gradient w.r.t. x scaled by 0.1"
    ),
    "limit": "no neurons: the layers' dense work on [T*B, ...] plus loss and Adam",
}


@dataclass(frozen=True)
class Grid:
    """The (T, hidden) grid of the MLP scaling case."""

    timesteps: tuple[int, ...]
    hidden: tuple[int, ...]


@dataclass(frozen=True)
class Settings:
    """Sizes and repeat counts of one benchmark run (full or ``--quick``)."""

    warmup: int
    repeats: int
    #: training steps are timed in more rounds while any library's timed total is under this
    train_min_seconds: float
    inference_repeats: int
    inference_min_seconds: float
    mlp_timesteps: int
    mlp_batch: int
    mlp_hidden: int
    cnn_timesteps: int
    cnn_batch: int
    scaling: Grid
    scaling_peers: bool
    memory_timesteps: int
    memory_libraries: tuple[str, ...]
    sparse_timesteps: int
    sparse_batches: tuple[int, ...]
    sparse_activities: tuple[float, ...]
    stdp_images: int
    stdp_batched_images: int
    stdp_neurons: int = 100
    stdp_inputs: int = 784
    stdp_steps: int = 250  # 250 ms at dt = 1 ms
    rstdp_images: int = 1000  # images per timed call of the R-STDP decision layer
    conv_stdp_images: int = 100  # images per timed call of a conv STDP layer


FULL = Settings(
    warmup=3,
    repeats=10,
    train_min_seconds=1.0,
    inference_repeats=30,
    inference_min_seconds=3.0,
    mlp_timesteps=25,
    mlp_batch=128,
    mlp_hidden=800,
    cnn_timesteps=25,
    cnn_batch=64,
    scaling=Grid(timesteps=(10, 25, 50, 100), hidden=(200, 800, 3200)),
    scaling_peers=True,
    memory_timesteps=100,
    memory_libraries=("deepspike", "deepspike-lean", "snntorch", "spikingjelly", "norse", "limit"),
    sparse_timesteps=25,
    sparse_batches=(1, 128),
    sparse_activities=(0.01, 0.05, 0.2),
    stdp_images=20,
    stdp_batched_images=256,
)

QUICK = Settings(
    warmup=1,
    repeats=3,
    train_min_seconds=0.0,
    inference_repeats=10,
    inference_min_seconds=1.0,
    mlp_timesteps=25,
    mlp_batch=128,
    mlp_hidden=800,
    cnn_timesteps=25,
    cnn_batch=64,
    scaling=Grid(timesteps=(10, 25, 50), hidden=(200, 800)),
    scaling_peers=False,
    memory_timesteps=100,
    memory_libraries=("deepspike", "deepspike-lean", "snntorch", "limit"),
    sparse_timesteps=25,
    sparse_batches=(1, 128),
    sparse_activities=(0.01, 0.05, 0.2),
    stdp_images=3,
    stdp_batched_images=32,
    rstdp_images=200,
    conv_stdp_images=20,
)
