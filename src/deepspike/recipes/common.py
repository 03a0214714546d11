r"""Helpers shared by recipes: data loading, input encoding, the fit settings of a recipe's
configuration, training-time augmentation, and the train/evaluate pair of surrogate-gradient
recipes (one implementation for every BPTT recipe).

Data sets a recipe can use:

* ``digits`` / ``mnist``: images ``[N, H, W]`` in [0, 1], encoded per batch by
  :func:`make_encoder` (``rate``, ``direct`` or ``latency``);
* ``nmnist``: N-MNIST event recordings (Orchard et al. 2015), binned once into ``timesteps``
  binary frames per recording, ``[N, T, 2, 34, 34]`` (uint8), and fed time-major by the
  ``frames`` encoder. Only the 1,000/100-sample N-MNIST subset exists offline, so accuracies on
  it are *not* comparable with full N-MNIST results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from deepspike import data, encoding, training
from deepspike.errors import ConfigError, ShapeError
from deepspike.neurons import LIFParams, Neuron
from deepspike.recipes.registry import Context, Outcome
from deepspike.surrogate import FastSigmoid

IMAGE_SETS = ("digits", "mnist")
EVENT_SETS = ("nmnist",)
NMNIST_NOTE = (
    "N-MNIST here is the offline 1,000-train/100-test subset: its accuracy is not comparable "
    "with the paper's full N-MNIST (60,000/10,000)"
)

#: Configuration keys passed straight to :func:`deepspike.training.fit`.
FIT_KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "schedule",
    "grad_clip",
    "val_fraction",
    "patience",
)


def subset(x, y: torch.Tensor, limit: int, seed: int):
    """The first ``limit`` samples of a seeded permutation (all of them for ``limit`` 0)."""
    if not limit or limit >= len(y):
        return x, y
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:limit]
    if isinstance(x, list):
        return [x[i] for i in keep.tolist()], y[keep]
    return x[keep], y[keep]


def held_out(ctx: Context, split: str, load):
    """``load(split)`` (samples and labels), or, with ``ctx.validation`` = V > 0, the training
    split cut in two: ``"train"`` gives all but its last V samples, ``"test"`` those V. So a
    run tuned with ``--validation`` never reads the test split."""
    if not ctx.validation:
        return load(split)
    x, y = load("train")
    if not 0 < ctx.validation < len(y):
        raise ConfigError(
            f"validation={ctx.validation} must be between 1 and {len(y) - 1}, the training "
            f"samples of {ctx.dataset!r} less one"
        )
    cut = len(y) - ctx.validation
    return (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])


def image_split(ctx: Context, split: str, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, H, W]`` in [0, 1] and labels ``[N]`` of an image data set, optionally the
    first ``limit`` samples (a fixed, seeded subset when the set is shuffled); with
    ``ctx.validation``, the ``"test"`` split is the held-out end of the training split
    (:func:`held_out`)."""
    if ctx.dataset not in IMAGE_SETS:
        raise ConfigError(
            f"data set {ctx.dataset!r} is not an image set this recipe can use; "
            f"choose one of {', '.join(IMAGE_SETS)}"
        )
    x, y = held_out(ctx, split, lambda s: data.load(ctx.dataset, s, data_dir=ctx.data_dir))
    return subset(x, y, limit, ctx.seed)


def event_frames(recordings: list, timesteps: int) -> torch.Tensor:
    """Bin each recording's whole duration into ``timesteps`` equal frames of binary ON/OFF
    spikes: ``[N, T, 2, 34, 34]`` uint8 (sample-major, so batches index the first axis)."""
    frames = encoding.events_to_frames_batch(
        recordings, n_frames=timesteps, mode="binary", dtype=torch.float16
    )
    return frames.transpose(0, 1).to(torch.uint8).contiguous()


def nmnist_split(
    ctx: Context, split: str, timesteps: int, limit: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """N-MNIST frames ``[N, T, 2, 34, 34]`` (uint8 spikes) and labels of the offline subset."""
    recordings, labels = held_out(
        ctx, split, lambda s: data.load("nmnist", s, data_dir=ctx.data_dir)
    )
    recordings, labels = subset(recordings, labels, limit, ctx.seed)
    return event_frames(recordings, timesteps), labels


def load_split(ctx: Context, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``split`` of the context's data set, limited by ``n_train``/``n_test``."""
    limit = ctx.config["n_train" if split == "train" else "n_test"]
    if ctx.dataset in EVENT_SETS:
        return nmnist_split(ctx, split, ctx.config["timesteps"], limit)
    return image_split(ctx, split, limit)


def frames_encoder(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample-major frames ``[B, T, ...]`` to time-major float spikes ``[T, B, ...]``."""
    if x.dim() < 3:
        raise ShapeError(f"event frames have shape {list(x.shape)}; they must be [B, T, ...]")
    return x.transpose(0, 1).float()


def regular_rate(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    r"""Deterministic rate code: intensity :math:`x \in [0, 1]` fires
    :math:`s_t = c_{t+1} - c_t` with :math:`c_t = \lfloor t x + \frac12 \rfloor` at steps
    :math:`t = 0..T-1`: :math:`\operatorname{round}(T x)` evenly spaced spikes, the mean of the
    Bernoulli rate code without its noise (integrate-and-fire sampling of the intensity)."""
    steps = torch.arange(timesteps + 1, dtype=x.dtype).view(-1, *([1] * x.dim()))
    counts = torch.floor(steps * x.clamp(0.0, 1.0).unsqueeze(0) + 0.5)
    return counts[1:] - counts[:-1]


def make_encoder(kind: str, timesteps: int):
    """An encoder ``(x [B, ...], generator) -> [T, B, ...]`` by name.

    * ``rate``: Bernoulli spikes with probability equal to the intensity per step;
    * ``regular``: the same mean rate as evenly spaced, deterministic spikes
      (:func:`regular_rate`);
    * ``direct``: the analog intensity as a constant current into the first layer;
    * ``latency``: one spike per pixel, brighter pixels earlier (linear TTFS);
    * ``frames``: pre-binned event frames ``[B, T, ...]``, made time-major.
    """
    if kind == "rate":
        return lambda x, g: encoding.rate(x, timesteps, generator=g)
    if kind == "regular":
        return lambda x, g: regular_rate(x, timesteps)
    if kind == "direct":
        return lambda x, g: x.unsqueeze(0).expand(timesteps, *x.shape)
    if kind == "latency":
        return lambda x, g: encoding.latency(x, timesteps)
    if kind == "frames":
        return frames_encoder
    raise ConfigError(
        f"encoding={kind!r} is unknown; choose rate, regular, direct, latency or frames"
    )


def encoder_for(ctx: Context):
    """The recipe's input code: event frames for N-MNIST, else the configured ``encoding``."""
    if ctx.dataset in EVENT_SETS:
        return frames_encoder
    return make_encoder(ctx.config["encoding"], ctx.config["timesteps"])


def shift_images(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, max_shift: int):
    """Translate each image of ``x`` ``[B, ..., H, W]`` by ``(dy[b] - max_shift, dx[b] -
    max_shift)`` pixels, filling with zeros (``dy``, ``dx`` in ``[0, 2 * max_shift]``)."""
    s, (h, w) = max_shift, x.shape[-2:]
    flat = x.reshape(x.shape[0], -1, h, w)
    padded = nn.functional.pad(flat.float(), (s, s, s, s))
    b, n_maps = flat.shape[:2]
    rows = (dy.view(b, 1, 1, 1) + torch.arange(h).view(1, 1, h, 1)).expand(b, n_maps, h, w + 2 * s)
    cut = padded.gather(2, rows)
    cols = (dx.view(b, 1, 1, 1) + torch.arange(w).view(1, 1, 1, w)).expand(b, n_maps, h, w)
    return cut.gather(3, cols).to(x.dtype).reshape(x.shape)


def random_shift(max_shift: int) -> training.Augment | None:
    """Augmentation: translate each image ``[B, ..., H, W]`` by up to ``max_shift`` pixels in x
    and y (zero fill), drawn from the training generator; ``None`` for 0."""
    if max_shift <= 0:
        return None

    def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        dy, dx = torch.randint(0, 2 * max_shift + 1, (2, x.shape[0]), generator=generator)
        return shift_images(x, dy, dx, max_shift)

    return shift


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of standard deviation ``sigma``, cut at 3 sigma."""
    radius = max(math.ceil(3 * sigma), 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def elastic_images(x: torch.Tensor, field: torch.Tensor, alpha: float, sigma: float):
    r"""Elastic distortion (Simard, Steinkraus & Platt 2003): images ``[B, ..., H, W]`` are
    resampled (bilinear, zero fill) at :math:`p + \alpha\,(G_\sigma * u)(p)`, where
    ``field`` :math:`u \in [-1, 1]^{B \times 2 \times H \times W}` is uniform noise and
    :math:`G_\sigma` a Gaussian blur."""
    b, (h, w) = x.shape[0], x.shape[-2:]
    k = gaussian_kernel(sigma)
    pad = len(k) // 2
    blur = nn.functional.conv2d(
        field, k.view(1, 1, 1, -1).expand(2, 1, 1, -1), padding=(0, pad), groups=2
    )
    blur = nn.functional.conv2d(
        blur, k.view(1, 1, -1, 1).expand(2, 1, -1, 1), padding=(pad, 0), groups=2
    )
    dx, dy = alpha * blur[:, 0], alpha * blur[:, 1]  # [B, H, W] pixels
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    grid = torch.stack(
        [2.0 * (xs + dx) / max(w - 1, 1) - 1.0, 2.0 * (ys + dy) / max(h - 1, 1) - 1.0], dim=-1
    )
    flat = x.reshape(b, -1, h, w).float()
    out = nn.functional.grid_sample(flat, grid, mode="bilinear", align_corners=True)
    return out.to(x.dtype).reshape(x.shape)


def random_elastic(alpha: float, sigma: float = 4.0) -> training.Augment | None:
    """Augmentation: an elastic distortion of strength ``alpha`` (pixels) per image; ``None``
    for 0."""
    if alpha <= 0:
        return None

    def distort(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        field = torch.rand(x.shape[0], 2, h, w, generator=generator) * 2.0 - 1.0
        return elastic_images(x, field, alpha, sigma)

    return distort


def augmenter(config: Mapping[str, Any]) -> training.Augment | None:
    """The training augmentation a configuration asks for: elastic distortion
    (``augment_elastic``, if the recipe has it), then a random shift (``augment_shift``)."""
    steps = [
        step
        for step in (
            random_elastic(config.get("augment_elastic", 0.0)),
            random_shift(config.get("augment_shift", 0)),
        )
        if step is not None
    ]
    if not steps:
        return None

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            x = step(x, generator)
        return x

    return augment


def fit_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`~deepspike.training.fit` keyword arguments a configuration sets."""
    options = {k: config[k] for k in FIT_KEYS if k in config}
    if "grad_clip" in options:
        options["grad_clip"] = options["grad_clip"] or None
    return options


def spiking_lif(config: Mapping[str, Any]) -> LIFParams:
    """The hidden-layer LIF parameters of a configuration (reset by subtraction, threshold 1,
    fast-sigmoid surrogate of slope ``surrogate_alpha``)."""
    return LIFParams(
        tau_mem=config["tau_mem"],
        surrogate=FastSigmoid(config["surrogate_alpha"]),
    )


def lif_layer(config: Mapping[str, Any], shape: tuple[int, ...]) -> Neuron:
    """A hidden LIF layer of per-sample ``shape``; with ``learn_tau`` its leak is learnt per
    neuron (per channel for feature maps ``(C, H, W)``)."""
    if not config["learn_tau"]:
        return Neuron(spiking_lif(config))
    tau_shape = (shape[0], 1, 1) if len(shape) == 3 else shape
    return Neuron(spiking_lif(config), learn_tau=True, shape=tau_shape)


def readout(config: Mapping[str, Any], n_classes: int) -> Neuron:
    """The output layer: a spiking LIF layer for count losses, a non-spiking leaky integrator
    (``output="membrane"``, no reset) for ``membrane_max``/``membrane_mean``."""
    if config["loss"].startswith("membrane"):
        params = LIFParams(tau_mem=config["tau_mem"], reset="none", v_th=float("inf"))
        return Neuron(params, output="membrane")
    return lif_layer(config, (n_classes,))


def recipe_objective(config: Mapping[str, Any]) -> training.Objective:
    """The configured loss and its class decision."""
    return training.objective(config["loss"])


Builder = Callable[[Mapping[str, Any], tuple[int, ...]], nn.Module]


def sample_shape(x: torch.Tensor, ctx: Context) -> tuple[int, ...]:
    """Per-sample, per-step input shape: ``(H, W)`` for images, ``(2, 34, 34)`` for frames."""
    return tuple(x.shape[2:]) if ctx.dataset in EVENT_SETS else tuple(x.shape[1:])


def surrogate_outcome(
    ctx: Context,
    model: nn.Module,
    test: tuple[torch.Tensor, torch.Tensor],
    n_train: int,
    extra: Mapping[str, Any],
) -> Outcome:
    """Measure ``model`` on the test set (accuracy and costs) and package the outcome."""
    c = ctx.config
    acc, cost = training.evaluate(
        model,
        encoder_for(ctx),
        *test,
        batch_size=c["batch_size"],
        generator=ctx.generator,
        progress=ctx.progress,
        predict_fn=recipe_objective(c).predict,
    )
    notes = {"note": NMNIST_NOTE} if ctx.dataset in EVENT_SETS else {}
    return Outcome(
        accuracy=acc,
        cost=cost,
        timesteps=c["timesteps"],
        n_train=n_train,
        n_test=len(test[1]),
        tensors=model.state_dict(),
        extra={**extra, **notes},
    )


def train_surrogate(ctx: Context, build: Builder) -> Outcome:
    """Train a surrogate-gradient BPTT model built by ``build(config, sample_shape)`` with the
    shared loop, then evaluate it on the test split."""
    c = ctx.config
    x_train, y_train = load_split(ctx, "train")
    test = load_split(ctx, "test")
    model = build(c, sample_shape(x_train, ctx))
    history = training.fit(
        model,
        encoder_for(ctx),
        x_train,
        y_train,
        generator=ctx.generator,
        loss_fn=recipe_objective(c),
        val_seed=ctx.seed,
        augment=augmenter(c) if ctx.dataset in IMAGE_SETS else None,
        progress=ctx.progress,
        **fit_options(c),
    )
    n_train = len(y_train) - round(c["val_fraction"] * len(y_train))
    return surrogate_outcome(ctx, model, test, n_train, history.summary())


def evaluate_surrogate(
    ctx: Context, tensors: Mapping[str, torch.Tensor], build: Builder
) -> Outcome:
    """Rebuild a surrogate-gradient model from its checkpoint tensors and evaluate it."""
    test = load_split(ctx, "test")
    model = build(ctx.config, sample_shape(test[0], ctx))
    model.load_state_dict(dict(tensors))
    return surrogate_outcome(ctx, model, test, 0, {})
