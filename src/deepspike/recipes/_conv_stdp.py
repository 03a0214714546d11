r"""Spiking convolutional layers trained by STDP, shared by ``kheradpisheh2018-sdnn`` and
``mozafari2019-rstdp``.

Kheradpisheh, Ganjtabesh, Thorpe & Masquelier (2018), *STDP-based spiking deep convolutional
neural networks for object recognition*, Neural Networks 99; Mozafari, Ganjtabesh,
Nowzari-Dalini, Thorpe & Masquelier (2019), *Bio-inspired digit recognition using
reward-modulated spike-timing-dependent plasticity in deep convolutional networks*, Pattern
Recognition 94.

* **Front end.** DoG ON/OFF maps (:func:`deepspike.encoding.dog_filter`, one pair per scale),
  normalised per image, then intensity-to-latency: a stronger response fires earlier
  (:func:`deepspike.encoding.spike_times`, linear), over ``T`` steps; zero never fires.
* **Spike waves.** Every neuron fires at most once, so a layer's activity is a *cumulative*
  wave ``c[t] = 1`` once the neuron has fired by step ``t``. A non-leaky IF neuron's potential is
  then the convolution of the input wave, :math:`V_t = W * c^{in}_t` (weights are non-negative),
  computed for all steps in one convolution; it fires at the first step with
  :math:`V_t \ge \vartheta`. Pooling is a max over the wave.
* **Inhibition.** At inference a position may keep only its earliest feature
  (:func:`deepspike.learning.position_inhibition`; ``inhibit=False`` keeps every spike, as
  the authors' SpykeTorch implementations do); in learning up to ``k`` winners per image
  are chosen with feature-wise and position-wise inhibition
  (:func:`deepspike.learning.conv_k_winners`; with ``ConvSpec.pointwise``, among the features
  that fire first at their position), and each winner trains its kernel with the
  simplified STDP rule on its input patch (:func:`deepspike.learning.order_stdp`), read
  through the unfold view (:class:`deepspike.learning.ConvView`).
* **Convergence** (Kheradpisheh eq. 4): a layer stops learning when
  :math:`C = \frac{1}{n_w}\sum w(1-w) < 0.01`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike import encoding
from deepspike.encoding.rank_order import rank_order_times
from deepspike.errors import ConfigError
from deepspike.layers import Conv2d
from deepspike.learning import (
    ConvView,
    RowDelta,
    apply_update,
    conv_k_winners,
    earliest_first,
    order_stdp_rows,
    position_inhibition,
)

log = logging.getLogger("deepspike")

CONVERGED = 0.01  # Kheradpisheh et al. 2018, eq. 4


@dataclass(frozen=True)
class ConvSpec:
    """One convolutional layer: ``maps`` kernels of ``kernel x kernel``, IF threshold, the
    winners taken in learning (``k``, inhibition ``radius``) and the max-pooling after it
    (``pool = 0``: none). With ``pointwise`` the winners are taken among the earliest feature
    of each position only (:func:`deepspike.learning.position_inhibition` before
    :func:`deepspike.learning.conv_k_winners`, as the authors' SpykeTorch code does), so a
    feature learns only where it responds first."""

    maps: int
    kernel: int
    threshold: float
    padding: int = 0
    k: int = 1
    radius: int = 0
    pool: int = 2
    pool_stride: int = 2
    pool_padding: int = 0
    pointwise: bool = False


@dataclass(frozen=True)
class Schedule:
    r"""STDP rates ``a_plus > 0``, ``a_minus < 0``, multiplied by 2 every ``double_every`` images
    (0: never) up to ``a_plus_max``, keeping their ratio. Without ``clamp`` the doubling stops
    at the last value not above ``a_plus_max`` (0.004 -> 0.128 for a maximum of 0.15); with it
    the last step is cut to the maximum, :math:`a_+ \leftarrow \min(2a_+, a_{max})` (0.004 ->
    0.128 -> 0.15), as in Mozafari et al.'s code."""

    a_plus: float = 0.004
    a_minus: float = -0.003
    double_every: int = 500
    a_plus_max: float = 0.15
    clamp: bool = False

    def rates(self, images_seen: int) -> tuple[float, float]:
        factor = 1.0
        if self.double_every > 0:
            doublings = images_seen // self.double_every
            while doublings and self.a_plus * factor * 2 <= self.a_plus_max:
                factor, doublings = factor * 2, doublings - 1
            if doublings and self.clamp:
                factor = max(factor, self.a_plus_max / self.a_plus)
        return self.a_plus * factor, self.a_minus * factor


# --------------------------------------------------------------------------- front end


def dog_maps(images: torch.Tensor, scales: Sequence[tuple[int, float, float]]) -> torch.Tensor:
    """ON/OFF DoG responses ``[B, 2 * len(scales), H, W]``, each image scaled to max 1."""
    maps = torch.cat([encoding.dog_filter(images, *scale) for scale in scales], dim=1)
    peak = maps.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)
    return (maps / peak).to(torch.float32)


def latency_waves(maps: torch.Tensor, steps: int) -> torch.Tensor:
    """Cumulative latency waves ``[T, B, C, H, W]``: 1 from each input's spike step on."""
    times = encoding.spike_times(maps.clamp(0.0, 1.0), steps, "linear")
    return waves_at(torch.floor(times + 0.5), steps)


def thresholded_dog_maps(
    images: torch.Tensor, scales: Sequence[tuple[int, float, float]], threshold: float
) -> torch.Tensor:
    r"""Mozafari et al.'s (2019) retina ``[B, 2 * len(scales), H, W]``: per scale an ON kernel
    :func:`~deepspike.encoding.peak_dog_kernel` ``(size, sigma_c, sigma_s)`` and an OFF kernel
    ``(size, sigma_s, sigma_c)``, zero-padded to the largest size and correlated with the
    images (zero padding, same size); responses below ``threshold`` are set to 0. Images are in
    ``[0, 1]``, so the authors' threshold of 50 on 0-255 pixels is ``50 / 255``."""
    bank = _peak_dog_bank(tuple(scales))
    maps = F.conv2d(images.float().unsqueeze(1), bank, padding=bank.shape[-1] // 2)
    return torch.where(maps >= threshold, maps, torch.zeros_like(maps))


@functools.lru_cache(maxsize=8)
def _peak_dog_bank(scales: tuple[tuple[int, float, float], ...]) -> torch.Tensor:
    """The ON/OFF kernels of :func:`thresholded_dog_maps` ``[2S, 1, K, K]``, built once per
    set of scales (the front end runs once per training image)."""
    largest = max(size for size, _, _ in scales)
    kernels = []
    for size, centre, surround in scales:
        pad = (largest - size) // 2
        for s1, s2 in ((centre, surround), (surround, centre)):
            kernels.append(F.pad(encoding.peak_dog_kernel(size, s1, s2), (pad,) * 4))
    return torch.stack(kernels).unsqueeze(1)


def local_normalisation(maps: torch.Tensor, radius: int, eps: float = 1e-12) -> torch.Tensor:
    r"""Each value divided by its map's mean over the ``(2r+1) x (2r+1)`` window around it
    (zeros outside the image), :math:`x / (\bar x_{\mathrm{window}} + \epsilon)`: contrast
    relative to the neighbourhood, as Mozafari et al. (2019) normalise their DoG maps."""
    window = 2 * radius + 1
    mean = F.avg_pool2d(maps, window, stride=1, padding=radius, count_include_pad=True)
    return maps / (mean + eps)


def rank_waves(maps: torch.Tensor, steps: int) -> torch.Tensor:
    """Cumulative rank-order waves ``[T, B, C, H, W]``: the non-zero inputs of each image fire
    in order of decreasing value, an equal share of them per step
    (:func:`deepspike.encoding.rank_order.rank_order_times`); zero never fires."""
    return waves_at(rank_order_times(maps, steps), steps)


def wave_times(waves: torch.Tensor) -> torch.Tensor:
    """The compact form of cumulative waves ``[T, B, ...]``: each input's first step as
    ``uint8`` ``[B, ...]`` (``T`` where it never fires; needs ``T < 256``)."""
    steps = waves.shape[0]
    if steps > 255:
        raise ConfigError(f"wave_times stores steps as uint8; {steps} steps is more than 255")
    return (steps - waves.sum(0)).to(torch.uint8)


def waves_at(times: torch.Tensor, steps: int) -> torch.Tensor:
    """The cumulative waves ``[T, B, ...]`` of first steps ``times``: integer steps as
    :func:`wave_times` stores them, or float steps (``inf``: never fires)."""
    dtype = times.dtype if times.is_floating_point() else torch.int16
    t = torch.arange(steps, dtype=dtype).reshape(-1, *([1] * times.dim()))
    return (times.to(dtype).unsqueeze(0) <= t).to(torch.float32)


def spikes_of(waves: torch.Tensor) -> torch.Tensor:
    """The spikes ``[T, ...]`` (1 at the firing step only) of a cumulative wave."""
    return torch.cat([waves[:1], waves[1:] - waves[:-1]])


# --------------------------------------------------------------------------- layers


def potentials(waves: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    r""":math:`V_t = W * c_t` ``[T, B, maps, H', W']`` for every step, as
    :math:`\sum_{t' \le t} W * s_{t'}` so a cost meter on ``conv`` sees the spikes."""
    return torch.cumsum(conv(spikes_of(waves)), dim=0)


def first_times(fired: torch.Tensor) -> torch.Tensor:
    """The first step of each cumulative wave ``[T, ...]``; ``inf`` where it never fires."""
    steps = fired.shape[0]
    count = fired.sum(0)
    return torch.where(count > 0, steps - count, torch.full_like(count, torch.inf))


def value_at(x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """``x[times]`` ``[...]`` along the leading time axis (the last step where never)."""
    last = x.shape[0] - 1
    index = torch.where(torch.isfinite(times), times, float(last)).long().clamp(max=last)
    return x.gather(0, index.unsqueeze(0)).squeeze(0)


def fire(v: torch.Tensor, spec: ConvSpec, inhibit: bool) -> torch.Tensor:
    """The output wave of potentials ``v`` ``[T, B, ...]``, with one feature per position when
    ``inhibit`` (lateral inhibition between maps)."""
    fired = (v >= spec.threshold).to(v.dtype)
    if not inhibit:
        return fired
    times = first_times(fired)
    keep = position_inhibition(fired[-1], earliest_first(times, value_at(v, times)))
    return fired * keep


def pool(waves: torch.Tensor, spec: ConvSpec) -> torch.Tensor:
    if spec.pool <= 0:
        return waves
    steps, batch = waves.shape[:2]
    out = F.max_pool2d(
        waves.reshape(steps * batch, *waves.shape[2:]),
        spec.pool,
        spec.pool_stride,
        spec.pool_padding,
    )
    return out.reshape(steps, batch, *out.shape[1:])


class ConvStack(nn.Module):
    """The trained convolutions (``deepspike.layers.Conv2d``, counted by the cost meter)."""

    def __init__(self, in_channels: int, specs: Sequence[ConvSpec]) -> None:
        super().__init__()
        self.specs = list(specs)
        layers, channels = [], in_channels
        for spec in self.specs:
            layers.append(
                Conv2d(channels, spec.maps, spec.kernel, padding=spec.padding, bias=False)
            )
            channels = spec.maps
        self.convs = nn.ModuleList(layers)

    def initialise(self, generator: torch.Generator, mean: float = 0.8, std: float = 0.05):
        """Weights drawn from N(0.8, 0.05) (Kheradpisheh et al. 2018), clipped to [0, 1]."""
        with torch.no_grad():
            for conv in self.convs:
                w = torch.randn(conv.weight.shape, generator=generator) * std + mean
                conv.weight.copy_(w.clamp(0.0, 1.0))

    def waves(self, waves: torch.Tensor, upto: int, inhibit: bool = True) -> torch.Tensor:
        """The (pooled) output wave of layer ``upto - 1`` (``upto = 0``: the input), with
        lateral inhibition between maps (one feature per position) when ``inhibit``."""
        for spec, conv in zip(self.specs[:upto], self.convs[:upto], strict=True):
            waves = pool(fire(potentials(waves, conv), spec, inhibit), spec)
        return waves

    def forward(self, waves: torch.Tensor, inhibit: bool = True) -> torch.Tensor:
        """The last layer's potentials ``[T, B, maps, H, W]`` (its input through all others)."""
        last = len(self.convs) - 1
        return potentials(self.waves(waves, last, inhibit), self.convs[last])


def convergence(weight: torch.Tensor) -> float:
    r""":math:`C = \frac{1}{n_w}\sum w(1 - w)`; learning has converged below 0.01."""
    w = weight.detach()
    return float((w * (1 - w)).mean())


# --------------------------------------------------------------------------- learning


def winner_updates(
    waves_in: torch.Tensor,
    v: torch.Tensor,
    conv: nn.Conv2d,
    spec: ConvSpec,
    rates: tuple[float, float],
) -> RowDelta:
    """Summed STDP update of the winners of a batch, as the rows ``[K, C*k*k]`` of the maps
    that won (see module docstring)."""
    fired = (v >= spec.threshold).to(v.dtype)
    times = first_times(fired)
    score = earliest_first(times, value_at(v, times))
    candidates = position_inhibition(fired[-1], score) if spec.pointwise else fired[-1]
    winners = conv_k_winners(candidates, score, spec.k, spec.radius)
    b, f, h, w = winners.nonzero(as_tuple=True)
    view = ConvView(spec.kernel, padding=spec.padding)
    weight = view.matrix(conv.weight.detach())
    at_fire = waves_in[times[b, f, h, w].long(), b]  # [K, C, H, W]: inputs fired by then
    positions = v.shape[-2] * v.shape[-1]  # explicit: with no winner, -1 is ambiguous
    patches = view.pre_rows(at_fire.unsqueeze(0)).reshape(len(b), positions, weight.shape[1])
    position = h * v.shape[-1] + w
    pre_before = patches[torch.arange(len(b)), position]
    post = F.one_hot(f, spec.maps).to(weight.dtype)
    return order_stdp_rows(pre_before, post, weight, *rates)


class LayerProgress(NamedTuple):
    """Where layer-wise STDP training stands, enough to continue it exactly: the ``layer`` in
    training, the ``images`` it has seen, the presentation ``order`` of the current pass and
    the ``position`` reached in it, and the statistics of the layers already trained."""

    layer: int
    images: int
    order: torch.Tensor
    position: int
    finished: dict[str, dict[str, float]]


#: called after every batch with the progress and the images seen before that batch
OnProgress = Callable[[LayerProgress, int], None]


class FrozenInput:
    """The input waves of the layer in training, each image's computed once: the layers below
    are frozen, so an image's input is the same on every pass. ``compute(indices)`` gives the
    cumulative waves ``[T, B, ...]`` of those images; they are kept as first spike steps
    (``uint8``, :func:`wave_times`, a byte per input) and expanded again on use
    (:func:`waves_at`, the same waves bit for bit).

    :meth:`waves` computes the missing images of ``ahead`` (the next images of the presentation
    order) in one batch, so the first pass runs the frozen layers batched and later passes not
    at all; nothing is computed for images a layer that stops early never sees.
    """

    def __init__(self, compute: Callable[[torch.Tensor], torch.Tensor], n_images: int) -> None:
        self.compute = compute
        self.known = torch.zeros(n_images, dtype=torch.bool)
        self.times: torch.Tensor | None = None
        self.steps = 0

    def waves(self, indices: torch.Tensor, ahead: torch.Tensor) -> torch.Tensor:
        """The waves ``[T, B, ...]`` of ``indices``; when one of them is not known yet, first
        computes every image of ``ahead`` (which holds ``indices``) that is not."""
        return waves_at(self.first_steps(indices, ahead), self.steps)

    def first_steps(self, indices: torch.Tensor, ahead: torch.Tensor) -> torch.Tensor:
        """The first spike steps ``uint8`` ``[B, ...]`` of ``indices`` (``T``: never), computed
        as :meth:`waves` computes them."""
        if not bool(self.known[indices].all()):
            self._compute_missing(ahead)
        return self.times[indices]

    def every_image(self, batch_size: int) -> torch.Tensor:
        """The first spike steps ``uint8`` ``[N, ...]`` of every image, the missing ones
        computed in batches of ``batch_size`` (empty when there are no images)."""
        everything = torch.arange(len(self.known))
        for start in range(0, len(everything), batch_size):
            self._compute_missing(everything[start : start + batch_size])
        return self.times if self.times is not None else torch.zeros(0, dtype=torch.uint8)

    def _compute_missing(self, indices: torch.Tensor) -> None:
        missing = indices[~self.known[indices]]
        if len(missing) == 0:
            return
        waves = self.compute(missing)
        if self.times is None:  # one buffer: small kept pieces would fragment the heap
            self.steps = waves.shape[0]
            self.times = torch.empty((len(self.known), *waves.shape[2:]), dtype=torch.uint8)
        self.times[missing] = wave_times(waves)
        self.known[missing] = True


#: images whose frozen input :func:`train_layer` computes in one batch
FROZEN_BATCH = 256


def train_layer(
    stack: ConvStack,
    layer: int,
    waves_of: Callable[[torch.Tensor], torch.Tensor],
    n_images: int,
    budget: int,
    batch_size: int,
    schedule: Schedule,
    generator: torch.Generator,
    progress: bool = False,
    inhibit: bool = True,
    stop_when_converged: bool = True,
    start: LayerProgress | None = None,
    on_batch: Callable[[int, torch.Tensor, int, int], None] | None = None,
) -> dict[str, float]:
    """Train layer ``layer`` by STDP on up to ``budget`` images (several passes if needed),
    stopping early once it converges when ``stop_when_converged`` (Kheradpisheh's criterion;
    Mozafari et al.'s code trains for the whole budget); ``waves_of(indices)`` gives the input
    waves of those images, passed through the frozen layers below with lateral inhibition when
    ``inhibit``.

    Each pass presents the images in a fresh order drawn from ``generator``. ``start``
    continues from saved progress (with ``generator`` in its saved state, the run is the same
    as one never interrupted); ``on_batch(images, order, position, images_before)`` is called
    after every batch. The frozen layers run once per image (:class:`FrozenInput`), in
    batches of :data:`FROZEN_BATCH` images of the presentation order. With one image a batch
    on the CPU each step is one compiled call (:func:`compiled_image`), otherwise
    :func:`winner_updates` in torch."""
    conv, spec = stack.convs[layer], stack.specs[layer]
    optimizer = torch.optim.SGD([conv.weight], lr=1.0)
    seen, order, position = (0, None, 0)
    if start is not None:
        seen, order, position = start.images, start.order, start.position
    limit = CONVERGED if stop_when_converged else -1.0  # convergence is never negative
    desc = f"STDP layer {layer + 1}"
    bar = tqdm(total=budget, initial=seen, desc=desc, disable=not progress, leave=False)
    frozen = FrozenInput(lambda idx: stack.waves(waves_of(idx), layer, inhibit), n_images)
    compiled = compiled_applies(conv, batch_size)
    while seen < budget and convergence(conv.weight) >= limit:
        if order is None:
            order, position = torch.randperm(n_images, generator=generator), 0
        while position < len(order):
            idx = order[position : position + batch_size][: budget - seen]
            ahead = order[position : position + max(batch_size, FROZEN_BATCH)]
            if compiled:
                first_steps = frozen.first_steps(idx, ahead)[0]  # computes frozen.steps too
                compiled_image(conv, spec, first_steps, frozen.steps, schedule.rates(seen))
            else:
                with torch.no_grad():
                    waves_in = frozen.waves(idx, ahead)
                    delta = winner_updates(
                        waves_in, potentials(waves_in, conv), conv, spec, schedule.rates(seen)
                    )
                apply_update(conv.weight, delta.rows, optimizer, (0.0, 1.0), delta.units)
            before, seen, position = seen, seen + len(idx), position + len(idx)
            bar.update(len(idx))
            if on_batch is not None:
                on_batch(seen, order, position, before)
            if seen >= budget or convergence(conv.weight) < limit:
                break
        if position >= len(order):
            order = None
    bar.close()
    c = convergence(conv.weight)
    log.info("layer %d: %d images, convergence %.4f", layer + 1, seen, c)
    return {"images": seen, "convergence": round(c, 5)}


def compiled_applies(conv: nn.Conv2d, batch_size: int) -> bool:
    """Whether :func:`compiled_image` trains as :func:`winner_updates` would: one image at a
    time, float32 weights on the CPU, stride 1 and equal padding on both axes."""
    return (
        batch_size == 1
        and conv.weight.device.type == "cpu"
        and conv.weight.dtype == torch.float32
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and conv.padding[0] == conv.padding[1]
    )


def compiled_image(
    conv: nn.Conv2d,
    spec: ConvSpec,
    first_steps: torch.Tensor,
    steps: int,
    rates: tuple[float, float],
) -> torch.Tensor:
    """Train ``conv`` on one image's input first spike steps ``uint8`` ``[C, H, W]`` in one
    compiled call (:func:`deepspike.learning.conv_stdp_kernel.conv_stdp_image`): the same
    winners and updates as :func:`winner_updates` and :func:`apply_update`. Returns the
    winners ``[K, 4]`` (map, row, column, spike step)."""
    from deepspike.learning import conv_stdp_kernel

    winners = torch.empty(spec.k, 4, dtype=torch.int64)
    count = conv_stdp_kernel.conv_stdp_image(
        conv.weight.detach().numpy(),
        first_steps.contiguous().numpy(),
        steps,
        np.float32(spec.threshold),
        conv.padding[0],
        spec.k,
        spec.radius,
        spec.pointwise,
        np.float32(rates[0]),
        np.float32(rates[1]),
        winners.numpy(),
    )
    return winners[:count]


def train_layers(
    stack: ConvStack,
    c: Mapping[str, Any],
    waves_of: Callable[[torch.Tensor], torch.Tensor],
    n_images: int,
    layers: int,
    generator: torch.Generator,
    progress: bool = False,
    start: LayerProgress | None = None,
    on_progress: OnProgress | None = None,
) -> dict[str, dict[str, float]]:
    """Train the first ``layers`` layers in turn (:func:`train_layer`), with the recipe
    settings ``images_layer1``, ``images_layer2``, ... (budgets), ``batch_size``, the rate
    schedule (``a_plus``, ``a_minus``, ``double_every``, ``a_plus_max``),
    ``inhibit_learning_input`` and ``stop_when_converged``; returns each layer's statistics
    as ``layer1``, ``layer2``, ...

    ``start`` continues saved progress (the layers below its ``layer`` are trained); after each
    batch ``on_progress(progress, images_before)`` may save it."""
    schedule = Schedule(
        c["a_plus"], c["a_minus"], c["double_every"], c["a_plus_max"], c["clamp_rates"]
    )
    stats = {} if start is None else dict(start.finished)

    def report(layer: int, images: int, order: torch.Tensor, position: int, before: int) -> None:
        if on_progress is not None:
            on_progress(LayerProgress(layer, images, order, position, dict(stats)), before)

    for layer in range(0 if start is None else start.layer, layers):
        stats[f"layer{layer + 1}"] = train_layer(
            stack,
            layer,
            waves_of,
            n_images,
            c[f"images_layer{layer + 1}"],
            c["batch_size"],
            schedule,
            generator,
            progress,
            inhibit=c["inhibit_learning_input"],
            stop_when_converged=c["stop_when_converged"],
            start=start if start is not None and layer == start.layer else None,
            on_batch=functools.partial(report, layer),
        )
    return stats


# --------------------------------------------------------------------------- linear read-out


class LinearReadout:
    """Standardised features and a linear classifier ``argmax(W z + b)``, stored as tensors."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    @classmethod
    def fit_svm(cls, features: torch.Tensor, labels: torch.Tensor, c: float) -> LinearReadout:
        """A linear SVM (scikit-learn ``LinearSVC``, one-vs-rest) on standardised features."""
        from sklearn.svm import LinearSVC

        mean = features.mean(0)
        scale = features.std(0).clamp(min=1e-6)
        # the primal solver when samples outnumber features (MNIST: minutes, not hours)
        svm = LinearSVC(C=c, dual="auto", max_iter=5000, random_state=0)
        svm.fit(((features - mean) / scale).numpy(), labels.numpy())
        coef = torch.as_tensor(svm.coef_, dtype=torch.float32)
        intercept = torch.as_tensor(svm.intercept_, dtype=torch.float32)
        if coef.shape[0] == 1:  # two classes: one decision function
            coef, intercept = torch.cat([-coef, coef]), torch.cat([-intercept, intercept])
        return cls(
            {"svm.mean": mean, "svm.scale": scale, "svm.coef": coef, "svm.intercept": intercept}
        )

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        t = self.tensors
        z = (features - t["svm.mean"]) / t["svm.scale"]
        return (z @ t["svm.coef"].T + t["svm.intercept"]).argmax(1)
