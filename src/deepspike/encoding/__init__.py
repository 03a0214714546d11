"""Spike encoders: turn intensities, images, signals and event streams into spike trains.

Conventions (shared by every encoder):

* inputs are ``[B, ...]`` intensities in ``[0, 1]`` unless a function says otherwise;
* outputs are time-major float tensors ``[T, B, ...]`` of 0.0/1.0 spikes (``dtype`` argument,
  float32 by default);
* every random encoder takes ``generator: torch.Generator | None`` for reproducible draws;
* NaN/inf or out-of-range inputs raise :class:`~deepspike.errors.InputValueError`, bad
  ``T`` or parameters raise :class:`~deepspike.errors.ConfigError`, wrong layouts raise
  :class:`~deepspike.errors.ShapeError`.

=======================  ======================================================================
:func:`rate`             Bernoulli/Poisson rate code (Diehl & Cook 2015)
:func:`latency`          time-to-first-spike, linear or RC-log (Kheradpisheh et al. 2018)
:func:`rank_order`       rank-order code (Thorpe et al. 2001)
:func:`population`       Gaussian receptive fields (Bohte et al. 2002)
:func:`dog_filter`       DoG ON/OFF centre-surround maps (Kheradpisheh et al. 2018)
:func:`peak_dog_kernel`  DoG kernel at zero mean and peak 1 (Mozafari et al. 2019)
:func:`gabor_filter`     oriented Gabor maps (Masquelier & Thorpe 2007)
:func:`delta`            delta modulation of analog signals (UP/DOWN spikes)
:func:`events_to_frames` DVS / N-MNIST event streams to frames
=======================  ======================================================================
"""

from deepspike.encoding.delta import delta, delta_reconstruct
from deepspike.encoding.events import events_to_frames, events_to_frames_batch
from deepspike.encoding.filters import (
    DoGFilter,
    GaborFilter,
    dog_filter,
    dog_kernel,
    gabor_filter,
    gabor_kernels,
    peak_dog_kernel,
)
from deepspike.encoding.latency import LatencyEncoder, latency, spike_times, times_to_spikes
from deepspike.encoding.population import (
    PopulationEncoder,
    population,
    population_centers,
    population_response,
)
from deepspike.encoding.rank_order import RankOrderEncoder, rank_order, rank_order_times
from deepspike.encoding.rate import RateEncoder, poisson_rate_hz, rate

__all__ = [
    "DoGFilter",
    "GaborFilter",
    "LatencyEncoder",
    "PopulationEncoder",
    "RankOrderEncoder",
    "RateEncoder",
    "delta",
    "delta_reconstruct",
    "dog_filter",
    "dog_kernel",
    "events_to_frames",
    "events_to_frames_batch",
    "gabor_filter",
    "gabor_kernels",
    "latency",
    "peak_dog_kernel",
    "poisson_rate_hz",
    "population",
    "population_centers",
    "population_response",
    "rank_order",
    "rank_order_times",
    "rate",
    "spike_times",
    "times_to_spikes",
]
