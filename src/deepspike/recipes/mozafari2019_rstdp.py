r"""``mozafari2019-rstdp``: a spiking deep CNN whose decision layer learns by reward-modulated STDP.

Mozafari, Ganjtabesh, Nowzari-Dalini, Thorpe & Masquelier (2019), *Bio-inspired digit
recognition using reward-modulated spike-timing-dependent plasticity in deep convolutional
networks*, Pattern Recognition 94, 87-95 (MNIST: 97.2 %); R-STDP after Mozafari et al. (2018),
IEEE TNNLS 29(12).

Protocol (machinery in :mod:`deepspike.recipes._conv_stdp`); where the paper is silent the
recipe follows the authors' own re-implementation (SpykeTorch, ``MozafariDeep.py``):

1. six DoG channels (ON/OFF at three scales, 3x3, 7x7, 13x13), each kernel at zero mean and
   peak 1 (:func:`deepspike.encoding.peak_dog_kernel`), responses below 50 (on 0-255 pixels)
   dropped, divided by their local mean over 17x17 windows, then rank-order coded over 15
   steps (``front_end = "rank"``; the authors' code; ``"latency"`` is Kheradpisheh's
   lobe-normalised DoG with linear latency). The threshold matters: without inhibition only
   the final wave reaches the decision (see below), so it sets which inputs count at all. On a
   10,000-image training subset (scored on 2,000 other training images), eight R-STDP epochs
   did clearly better with this retina than with the latency one;
2. conv1 (30 maps 5x5, threshold 15, 5 winners, radius 3), 2x2 max-pooling, conv2 (250 maps
   3x3, threshold 10, 8 winners, radius 1), 3x3 max-pooling; trained layer by layer by
   unsupervised STDP for the authors' whole image budgets, conv1 on 120,000 images and conv2
   on 240,000 (``stop_when_converged = False``). The rates start at 0.004 and -0.003 and
   double every 500 images up to :math:`a^+` = 0.15 (the authors'
   :math:`\min(2a^+, 0.15)`, ``clamp_rates``). Progress is saved every ``checkpoint_every``
   images, so this phase (hours on one core) can span sessions. Stopping at
   Kheradpisheh's convergence criterion instead (about 3,000 and 5,000 images) left the
   decision layer a denser, less selective input and did worse on the subset above. Lateral
   inhibition picks the learning winners only: at inference, and as the input of the layers
   above, every neuron that reaches threshold fires (``lateral_inhibition = False``);
3. conv3: 200 decision maps, 20 per class, 5x5 kernels over conv2's 4x4 pooled output padded
   by 2 (16 positions), non-leaky with no threshold (``threshold3 = 1e9``): the neuron with the
   largest potential at the end of the window, over all maps and positions, decides;
4. conv3 learns by R-STDP (:func:`deepspike.learning.rstdp`, only the deciding neuron's row, on
   its input patch at the winning position): a correct decision is rewarded (STDP,
   :math:`a_r^+ = 0.004`, :math:`a_r^- = -0.003`), a wrong one punished (anti-STDP,
   :math:`a_p^+ = 0.0005`, :math:`a_p^- = -0.004`), additively with weights clipped to
   ``[0.2, 0.8]``; every ``adapt_every`` = 1000 images the rates are rescaled, rewards by the
   miss fraction and punishments by the hit fraction of the last 1000 decisions;
5. the class is that of the deciding map. No classifier is trained on top.

The authors' script runs 680 R-STDP epochs and reports the best test accuracy over them (the
test set chooses the epoch); the recipe runs ``rstdp_epochs`` and reports its final network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike import runtime
from deepspike.errors import ConfigError
from deepspike.learning import apply_update, earliest_first, rstdp_rows
from deepspike.metrics import CostMeter
from deepspike.recipes import _conv_stdp as conv
from deepspike.recipes import _stdp_common as common
from deepspike.recipes.common import image_split
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register

log = logging.getLogger("deepspike")

N_CLASSES = 10


def parse_scales(text: str) -> list[tuple[int, float, float]]:
    """``"3,0.33,0.67;7,0.78,1.56"`` -> ``[(3, 0.33, 0.67), (7, 0.78, 1.56)]`` (DoG scales)."""
    try:
        scales = [tuple(part.split(",")) for part in text.split(";") if part.strip()]
        return [(int(s), float(c), float(r)) for s, c, r in scales]
    except ValueError:
        raise ConfigError(
            f"dog_scales={text!r} must be 'size,sigma_center,sigma_surround;...'"
        ) from None


def specs(c: Mapping[str, Any]) -> list[conv.ConvSpec]:
    return [
        conv.ConvSpec(
            c["maps1"],
            c["kernel1"],
            c["threshold1"],
            c["kernel1"] // 2,
            c["k1"],
            c["radius1"],
            c["pool1"],
            c["pool1"],
            c["pool1_padding"],
            c["pointwise_inhibition"],
        ),
        conv.ConvSpec(
            c["maps2"],
            c["kernel2"],
            c["threshold2"],
            c["kernel2"] // 2,
            c["k2"],
            c["radius2"],
            c["pool2"],
            c["pool2"],
            0,
            c["pointwise_inhibition"],
        ),
        conv.ConvSpec(
            c["decision_maps"], c["kernel3"], c["threshold3"], c["padding3"], 1, 0, pool=0
        ),
    ]


def build(c: Mapping[str, Any]) -> conv.ConvStack:
    if c["decision_maps"] % N_CLASSES:
        raise ConfigError(f"decision_maps={c['decision_maps']} must be a multiple of 10")
    return conv.ConvStack(2 * len(parse_scales(c["dog_scales"])), specs(c))


FRONT_ENDS = ("rank", "latency")


def front_end(c: Mapping[str, Any], images: torch.Tensor) -> torch.Tensor:
    """Input waves ``[T, B, 2 * scales, H, W]`` of images ``[B, H, W]``: the authors' retina
    (``front_end = "rank"``: thresholded peak-normalised DoG maps, local normalisation,
    rank-order coding) or Kheradpisheh's (``"latency"``: lobe-normalised DoG maps scaled to the
    image's peak, linear intensity-to-latency)."""
    scales = parse_scales(c["dog_scales"])
    if c["front_end"] == "rank":
        maps = conv.thresholded_dog_maps(images, scales, c["dog_threshold"])
        maps = conv.local_normalisation(maps, c["normalisation_radius"])
        return conv.rank_waves(maps, c["timesteps"])
    if c["front_end"] == "latency":
        return conv.latency_waves(conv.dog_maps(images, scales), c["timesteps"])
    raise ConfigError(f"front_end={c['front_end']!r} is unknown; choose one of {FRONT_ENDS}")


def decide(v: torch.Tensor, threshold: float, keep: torch.Tensor | None = None):
    """The deciding neuron of decision potentials ``v`` ``[T, B, maps, ...]`` (earliest spike,
    then largest potential; over maps and positions) as a flat index into ``maps x positions``
    ``[B]``, and its spike step (``T - 1`` if silent). ``keep`` ``[B, maps]`` drops maps out."""
    steps, batch, maps = v.shape[:3]
    v = v.reshape(steps, batch, maps, -1)  # [T, B, maps, P]
    fired = (v >= threshold).to(v.dtype)
    times = conv.first_times(fired)
    silent = torch.full_like(times, float(steps - 1))
    times = torch.where(torch.isfinite(times), times, silent)
    winner = ranked_winner(times, conv.value_at(v, times), keep)
    return winner, times.flatten(1).gather(1, winner.unsqueeze(1)).squeeze(1)


def ranked_winner(
    times: torch.Tensor, potentials: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """The flat index ``[B]`` of the best of ``[B, maps, P]`` spike ``times`` and
    ``potentials`` (:func:`~deepspike.learning.earliest_first`), maps dropped by ``keep``
    ``[B, maps]`` excluded."""
    score = earliest_first(times, potentials)
    if keep is not None:
        score = score.masked_fill(~keep.unsqueeze(2), -torch.inf)
    return score.flatten(1).argmax(1)


def classes_of(winners: torch.Tensor, maps: int, positions: int = 1) -> torch.Tensor:
    """The class of flat winners ``map * positions + position``: 20 consecutive maps a class."""
    return (winners // positions) // (maps // N_CLASSES)


@torch.no_grad()
def predict(c, stack: conv.ConvStack, images: torch.Tensor) -> torch.Tensor:
    out = []
    for i in range(0, len(images), c["batch_size_eval"]):
        waves = front_end(c, images[i : i + c["batch_size_eval"]])
        if only_the_final_wave_decides(c):
            waves = waves[-1:]  # the decision is the last step's (see decision_inputs)
        v = stack(waves, c["lateral_inhibition"])
        positions = v[0, 0, 0].numel()
        winner = decide(v, c["threshold3"])[0]
        out.append(classes_of(winner, c["decision_maps"], positions))
    return torch.cat(out)


@torch.no_grad()
def decision_inputs(c, stack: conv.ConvStack, images: torch.Tensor) -> torch.Tensor:
    """The decision layer's input (conv2's pooled waves) of every image, as first spike steps
    ``uint8`` ``[N, maps2, H, W]`` (:func:`~deepspike.recipes._conv_stdp.wave_times`).

    The layers below are frozen while R-STDP trains the decision layer, so their output is
    computed once, not once per epoch.
    """
    layer, final_only = len(stack.convs) - 1, only_the_final_wave_decides(c)

    def conv2_output(indices: torch.Tensor) -> torch.Tensor:
        waves = front_end(c, images[indices])
        if final_only:  # one step instead of T
            waves = waves[-1:]
        return stack.waves(waves, layer, c["lateral_inhibition"])

    times = conv.FrozenInput(conv2_output, len(images)).every_image(c["batch_size_eval"])
    if final_only:  # an input that fired by the last step is marked as at step 0
        times[times != 0] = c["timesteps"]
    return times


def only_the_final_wave_decides(c: Mapping[str, Any]) -> bool:
    """Whether the decision layer's input matters only through which inputs fired by the last
    step: without lateral inhibition every step is computed on its own (the final wave follows
    from the final input wave), and a threshold above any reachable potential (weights at most
    1) means no decision neuron fires, so the last step alone decides and every input that
    fired counts as before the decision in R-STDP."""
    reachable = c["maps2"] * c["kernel3"] ** 2
    return not c["lateral_inhibition"] and c["threshold3"] > reachable


def patches(x: torch.Tensor, conv3: torch.nn.Conv2d) -> torch.Tensor:
    """The decision layer's input patches ``[B, C*k*k, P]`` of maps ``x`` ``[B, C, H, W]``."""
    return F.unfold(x, conv3.kernel_size, padding=conv3.padding)


def patch_at(x: torch.Tensor, conv3: torch.nn.Conv2d, position: torch.Tensor) -> torch.Tensor:
    """The input patches ``[B, C*k*k]`` of maps ``x`` ``[B, C, H, W]`` at one output
    ``position`` (flat, row-major) per sample: the columns of :func:`patches` chosen, sliced
    from the padded maps without unfolding every position."""
    (kh, kw), (ph, pw) = conv3.kernel_size, conv3.padding
    padded = F.pad(x, (pw, pw, ph, ph))
    width = padded.shape[-1] - kw + 1
    rows = [
        padded[b, :, int(p) // width : int(p) // width + kh, int(p) % width : int(p) % width + kw]
        for b, p in enumerate(position)
    ]
    return torch.stack(rows).flatten(1)


def decision_potentials(
    times: torch.Tensor, conv3: torch.nn.Conv2d, steps: int, threshold: float
) -> torch.Tensor:
    """Potentials ``[T, B, maps, P]`` of the decision layer at its ``P`` positions, for input
    first-spike steps ``times`` ``[B, C, H, W]`` (:func:`decision_inputs`):
    :math:`V_t = W X_t` with :math:`X_t` the unfolded cumulative input wave at step ``t``.

    The weights are non-negative and the waves only grow, so potentials never decrease: when
    no neuron reaches ``threshold`` at the last step, none fires earlier, and the last step's
    potentials stand for every step (one product instead of ``T``; the decision is the same).
    """
    last, _ = final_potentials(times, conv3, steps)
    if bool((last < threshold).all()):
        return last.expand(steps, *last.shape)
    return _stepped_potentials(times, conv3, steps)


def final_potentials(
    times: torch.Tensor, conv3: torch.nn.Conv2d, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The last step's potentials ``[B, maps, P]`` and the input patches ``[B, C*k*k, P]`` of
    every input that fired by then."""
    weight = conv3.weight.detach().flatten(1)
    cols = patches((times < steps).to(weight.dtype), conv3)
    return weight @ cols, cols


def _stepped_potentials(times: torch.Tensor, conv3: torch.nn.Conv2d, steps: int) -> torch.Tensor:
    weight = conv3.weight.detach().flatten(1)
    cols = patches(conv.waves_at(times, steps).flatten(0, 1), conv3)
    return (weight @ cols).reshape(steps, len(times), weight.shape[0], -1)


def decision(
    times: torch.Tensor,
    conv3: torch.nn.Conv2d,
    steps: int,
    threshold: float,
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The deciding neuron of inputs ``times`` (:func:`decide` on
    :func:`decision_potentials`) and its input patch ``[B, C*k*k]`` at the winning position:
    the inputs that fired by its spike step.

    When no neuron reaches ``threshold`` (the usual case) the last step decides, and the patch
    is the winner's column of the last step's unfolded input: no potential per step and no
    second unfold. The result is the same as the stepped path's, bit for bit (tested).
    """
    last, cols = final_potentials(times, conv3, steps)
    positions = last.shape[-1]
    if bool((last < threshold).all()):
        winner = ranked_winner(torch.full_like(last, float(steps - 1)), last, keep)
        at = (winner % positions).reshape(-1, 1, 1).expand(-1, cols.shape[1], 1)
        return winner, cols.gather(2, at).squeeze(2)
    winner, t = decide(_stepped_potentials(times, conv3, steps), threshold, keep)
    fired_by_t = (times <= t.reshape(-1, 1, 1, 1)).float()
    return winner, patch_at(fired_by_t, conv3, winner % positions)


def _rstdp_chunk(ctx, stack, inputs, y, order, rates) -> tuple[int, int]:
    """R-STDP on the decision layer for the images ``order`` of ``inputs``
    (:func:`decision_inputs`); returns (hits, misses). Only the deciding neuron's weights
    change (:func:`rstdp_rows`), from its input patch at the position where it won.

    With one image at a time on the CPU, in float32, the whole chunk runs in one compiled loop
    (:func:`deepspike.learning.rstdp_kernel.rstdp_decision_chunk`); otherwise in torch, a
    batch at a time. Both draw the same dropout masks and make the same decisions and
    updates (bit for bit when the potentials are exact in float32; tested)."""
    c, layer = ctx.config, len(stack.convs) - 1
    conv3, spec = stack.convs[layer], stack.specs[layer]
    batches = [order[i : i + c["batch_size"]] for i in range(0, len(order), c["batch_size"])]
    keeps = [dropout_keep(c, len(idx), spec.maps, ctx.generator) for idx in batches]
    if compiled_chunk_applies(c, conv3):
        keep = torch.cat(keeps) if c["dropout"] > 0 else None
        hits = compiled_chunk(c, conv3, inputs, y, order, rates, keep)[0]
        return hits, len(order) - hits
    optimizer = torch.optim.SGD([conv3.weight], lr=1.0)
    bounds = (c["rstdp_w_min"], c["rstdp_w_max"])
    stabilizer = bounds if c["rstdp_stabilizer"] else None
    hits = misses = 0
    positions = patches(inputs[:1].float(), conv3).shape[-1]
    for idx, keep in zip(batches, keeps, strict=True):
        with torch.no_grad():
            winner, pre = decision(inputs[idx], conv3, c["timesteps"], spec.threshold, keep)
            reward = torch.where(classes_of(winner, spec.maps, positions) == y[idx], 1.0, -1.0)
            post = F.one_hot(winner // positions, spec.maps).float()
            delta = rstdp_rows(
                pre, post, conv3.weight.detach().flatten(1), reward, *rates, stabilizer
            )
        apply_update(conv3.weight, delta.rows, optimizer, bounds, delta.units)
        hits += int((reward > 0).sum())
        misses += int((reward < 0).sum())
    return hits, misses


def dropout_keep(
    c: Mapping[str, Any], batch: int, maps: int, generator: torch.Generator
) -> torch.Tensor | None:
    """The decision maps kept ``[batch, maps]`` for one training batch (``None`` without
    dropout; no random numbers are drawn then)."""
    if c["dropout"] <= 0:
        return None
    return torch.rand(batch, maps, generator=generator) >= c["dropout"]


def compiled_chunk_applies(c: Mapping[str, Any], conv3: torch.nn.Conv2d) -> bool:
    """Whether :func:`compiled_chunk` computes what the torch path would: the conditions of the
    compiled conv paths (:func:`deepspike.recipes._conv_stdp.compiled_applies`: one image at
    a time, float32 on the CPU, a plain convolution)."""
    return conv.compiled_applies(conv3, c["batch_size"])


def compiled_chunk(
    c: Mapping[str, Any],
    conv3: torch.nn.Conv2d,
    inputs: torch.Tensor,
    y: torch.Tensor,
    order: torch.Tensor,
    rates: tuple[tuple[float, float], tuple[float, float]],
    keep: torch.Tensor | None = None,
) -> tuple[int, torch.Tensor]:
    """R-STDP for the images ``order`` in one compiled loop
    (:func:`deepspike.learning.rstdp_kernel.rstdp_decision_chunk`); returns the number of
    correct decisions and the winners ``[len(order)]`` (flat, map x positions + position)."""
    from deepspike.learning import rstdp_kernel

    maps = conv3.out_channels
    (a_r_plus, a_r_minus), (a_p_plus, a_p_minus) = rates
    weight_t = conv3.weight.detach().permute(1, 2, 3, 0).contiguous()  # [C, kh, kw, maps]
    if keep is None:
        keep = torch.ones(len(order), maps, dtype=torch.bool)
    winners = torch.empty(len(order), dtype=torch.int64)
    hits = rstdp_kernel.rstdp_decision_chunk(
        weight_t.numpy(),
        inputs.numpy(),
        c["timesteps"],
        order.to(torch.int64).numpy(),
        y.to(torch.int64).numpy(),
        keep.contiguous().numpy(),
        np.array([a_r_plus, a_r_minus, a_p_plus, a_p_minus], dtype=np.float32),
        np.array([c["rstdp_w_min"], c["rstdp_w_max"]], dtype=np.float32),
        conv3.padding[0],
        maps // N_CLASSES,
        bool(c["rstdp_stabilizer"]),
        float(c["threshold3"]),
        winners.numpy(),
    )
    with torch.no_grad():
        conv3.weight.copy_(weight_t.permute(3, 0, 1, 2))
    return int(hits), winners


def adaptive_rates(c: Mapping[str, Any], hit_rate: float):
    """R-STDP rates scaled by the recent miss and hit fractions (Mozafari et al. 2019): reward
    learns fast while the layer errs, punishment once it is mostly right."""
    miss_rate = 1.0 - hit_rate
    rewarded = (c["a_r_plus"] * miss_rate, c["a_r_minus"] * miss_rate)
    punished = (c["a_p_plus"] * hit_rate, c["a_p_minus"] * hit_rate)
    return rewarded, punished


def _train_decision(ctx, stack, x, y, progress: common.Progress | None, carried) -> dict[str, Any]:
    """``rstdp_epochs`` passes of R-STDP; the rates follow the hit rate of the previous
    ``adapt_every`` images (chance, 1/10, before the first). Progress (the weights, the hit
    rate, the history, the generator and ``carried()``) is saved after every epoch, and
    ``progress`` from an earlier session continues from the epoch it reached."""
    c = ctx.config
    done, hit_rate, history = 0, 1.0 / N_CLASSES, []
    if progress is not None:
        done, hit_rate = progress.step, progress.extra["hit_rate"]
        history = list(progress.extra["rstdp_train_accuracy"])
    with torch.no_grad():  # R-STDP's hard bounds hold from the start (later: a no-op)
        stack.convs[-1].weight.clamp_(c["rstdp_w_min"], c["rstdp_w_max"])
    inputs = decision_inputs(c, stack, x)
    bar = tqdm(total=c["rstdp_epochs"], desc="R-STDP", disable=not ctx.progress, initial=done)
    started = time.perf_counter()
    for epoch in range(done, c["rstdp_epochs"]):
        order = torch.randperm(len(inputs), generator=ctx.generator)
        epoch_hits = 0
        for start in range(0, len(order), c["adapt_every"]):
            chunk = order[start : start + c["adapt_every"]]
            rates = adaptive_rates(c, hit_rate)
            hits, misses = _rstdp_chunk(ctx, stack, inputs, y, chunk, rates)
            hit_rate = hits / max(hits + misses, 1)
            epoch_hits += hits
        history.append(round(100.0 * epoch_hits / max(len(order), 1), 2))
        extra = {"hit_rate": hit_rate, "rstdp_train_accuracy": history, **carried()}
        common.save_progress(ctx, epoch + 1, stack.state_dict(), extra)
        pace = common.pace(
            epoch + 1, c["rstdp_epochs"], done, time.perf_counter() - started, "epoch"
        )
        log.info("R-STDP %s; training hit rate %.2f %%", pace, history[-1])
        bar.update(1)
    bar.close()
    return {"rstdp_train_accuracy": history}


#: the key of a progress file saved while the STDP conv layers train
CONV_PHASE = "conv_phase"
#: the tensor of such a file that holds the current pass's presentation order
CONV_ORDER = "conv_order"


def _train_conv_layers(ctx: Context, stack, x_train, saved, seconds) -> dict[str, Any]:
    """Train conv1 and conv2 by STDP (:func:`deepspike.recipes._conv_stdp.train_layers`),
    saving progress every ``checkpoint_every`` images and continuing from ``saved`` (a progress
    file written in this phase) when given."""
    c = ctx.config
    start = None
    if saved is None:
        stack.initialise(ctx.generator)
    else:
        tensors = dict(saved.tensors)
        order = tensors.pop(CONV_ORDER)
        stack.load_state_dict(tensors)
        where = saved.extra[CONV_PHASE]
        start = conv.LayerProgress(
            where["layer"], where["images"], order, where["position"], where["finished"]
        )

    last = {"layer": -1, "images": 0, "time": time.perf_counter()}  # the previous save's

    def save(progress: conv.LayerProgress, before: int) -> None:
        if not common.due(progress.images, before, c["checkpoint_every"]):
            return
        where = {k: v for k, v in progress._asdict().items() if k != "order"}
        tensors = {**stack.state_dict(), CONV_ORDER: progress.order}
        common.save_progress(ctx, 0, tensors, {CONV_PHASE: where, "train_seconds": seconds()})
        now, layer = time.perf_counter(), progress.layer
        since = last["images"] if last["layer"] == layer else progress.images
        budget = c[f"images_layer{layer + 1}"]
        pace = common.pace(progress.images, budget, since, now - last["time"], "image")
        log.info("STDP conv%d: %s", layer + 1, pace)
        last.update(layer=layer, images=progress.images, time=now)

    return conv.train_layers(
        stack,
        c,
        lambda idx: front_end(c, x_train[idx]),
        len(x_train),
        len(stack.convs) - 1,  # all but the decision layer
        ctx.generator,
        ctx.progress,
        start=start,
        on_progress=save,
    )


def train(ctx: Context) -> Outcome:
    runtime.return_freed_memory()  # see deepspike.runtime: the heap would fragment
    with common.torch_threads(ctx.config["threads"]):
        return _train(ctx)


def _train(ctx: Context) -> Outcome:
    """Train conv1 and conv2 by STDP, then conv3 by R-STDP; with ``--resume``, a progress file
    in the output folder skips the finished layers and epochs (it is written once the STDP
    layers are trained and after every R-STDP epoch)."""
    c = ctx.config
    x_train, y_train = image_split(ctx, "train", c["n_train"])
    test_set = image_split(ctx, "test", c["n_test"])
    stack = build(c)
    saved = common.load_progress(ctx)
    common.check_within(saved, c["rstdp_epochs"], "rstdp_epochs", "epoch")
    started = time.perf_counter()
    earlier = saved.extra.get("train_seconds") if saved is not None else 0.0

    def seconds() -> float | None:
        return None if earlier is None else round(earlier + time.perf_counter() - started, 2)

    in_conv_phase = saved is None or CONV_PHASE in saved.extra
    if in_conv_phase:
        layers = _train_conv_layers(ctx, stack, x_train, saved, seconds)
    else:
        stack.load_state_dict(saved.tensors)
        layers = saved.extra["layers"]

    def carried() -> dict[str, Any]:
        return {"layers": layers, "train_seconds": seconds()}

    rstdp_progress = None if in_conv_phase else saved  # R-STDP starts at epoch 0 after conv
    if in_conv_phase:
        start = {"hit_rate": 1.0 / N_CLASSES, "rstdp_train_accuracy": [], **carried()}
        common.save_progress(ctx, 0, stack.state_dict(), start)
    resumed_at = rstdp_progress.step if rstdp_progress else None
    stats: dict[str, Any] = {**layers, "resumed_at_epoch": resumed_at}
    stats.update(_train_decision(ctx, stack, x_train, y_train, rstdp_progress, carried))
    stats["train_seconds_all_sessions"] = seconds()
    accuracy, cost = _measure(ctx, stack, test_set)
    return common.outcome(
        accuracy,
        cost,
        timesteps=c["timesteps"],
        n_train=len(x_train),
        n_test=len(test_set[0]),
        tensors=stack.state_dict(),
        extra=stats,
    )


def _measure(ctx: Context, stack: conv.ConvStack, test_set) -> tuple[float, Any]:
    x_test, y_test = test_set
    with CostMeter(stack) as meter:
        predictions = predict(ctx.config, stack, x_test)
    return common.percent_correct(predictions, y_test), meter.report(samples=len(x_test))


def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    runtime.return_freed_memory()  # see deepspike.runtime: the heap would fragment
    with common.torch_threads(ctx.config["threads"]):
        c = ctx.config
        test_set = image_split(ctx, "test", c["n_test"])
        stack = build(c)
        stack.load_state_dict(dict(tensors))
        accuracy, cost = _measure(ctx, stack, test_set)
        return common.outcome(
            accuracy,
            cost,
            timesteps=c["timesteps"],
            n_train=0,
            n_test=len(test_set[0]),
            tensors=dict(tensors),
        )


_DIGITS = {
    "front_end": "latency",  # 8x8 digits: no room for the authors' 13x13 retina
    "dog_scales": "3,0.5,1.0;5,1.0,2.0",
    "maps1": 16,
    "kernel1": 3,
    "threshold1": 6.0,
    "k1": 2,
    "radius1": 1,
    "pool1_padding": 0,
    "maps2": 64,
    "kernel2": 3,
    "threshold2": 8.0,
    "k2": 4,
    "radius2": 1,
    "pool2": 2,
    "decision_maps": 50,
    "kernel3": 2,
    "padding3": 0,
    # 8x8 digits with low thresholds: without inhibition every conv2 neuron fires
    "lateral_inhibition": True,
    "inhibit_learning_input": True,
    "stop_when_converged": True,
    "double_every": 100,
    "a_r_plus": 0.04,
    "a_r_minus": -0.03,
    "a_p_plus": 0.005,
    "a_p_minus": -0.04,
}

RECIPE = register(
    Recipe(
        id="mozafari2019-rstdp",
        title="Spiking deep CNN, STDP features + R-STDP decision layer (earliest spike)",
        paper=Paper(
            cite="Mozafari et al. 2019",
            row="reward-modulated STDP in a deep conv SNN (no Table I row; text: 97.2 %)",
            accuracy={"mnist": 97.2},
            url="https://doi.org/10.1016/j.patcog.2019.05.015",
        ),
        method="STDP conv layers + R-STDP decision layer",
        local_learning=True,
        group="spiking CNN",
        datasets=("mnist", "digits"),
        defaults={
            "timesteps": 15,
            "front_end": "rank",
            "dog_scales": "3,0.3333,0.6667;7,0.7778,1.5556;13,1.4444,2.8889",
            "dog_threshold": 50 / 255,  # the authors' 50 on 0-255 pixels
            "normalisation_radius": 8,
            "maps1": 30,
            "kernel1": 5,
            "threshold1": 15.0,
            "k1": 5,
            "radius1": 3,
            "pool1": 2,
            "pool1_padding": 0,
            "maps2": 250,
            "kernel2": 3,
            "threshold2": 10.0,
            "k2": 8,
            "radius2": 1,
            "pool2": 3,
            "decision_maps": 200,
            "kernel3": 5,
            "padding3": 2,
            "threshold3": 1e9,  # out of reach: the last step decides; lower: the earliest spike
            "lateral_inhibition": False,  # at inference and as R-STDP's input
            "inhibit_learning_input": False,  # on conv1's output while conv2 learns
            "pointwise_inhibition": False,  # winners among each position's first feature
            "a_plus": 0.004,
            "a_minus": -0.003,
            "double_every": 500,
            "a_plus_max": 0.15,
            "clamp_rates": True,  # the authors' min(2 a+, 0.15): 0.004 ... 0.128, 0.15
            # the authors' code trains conv1 for 2 epochs and conv2 for 4, no convergence stop
            "images_layer1": 120000,
            "images_layer2": 240000,
            "stop_when_converged": False,
            "a_r_plus": 0.004,
            "a_r_minus": -0.003,
            "a_p_plus": 0.0005,
            "a_p_minus": -0.004,
            "rstdp_w_min": 0.2,
            "rstdp_w_max": 0.8,
            "rstdp_stabilizer": False,
            "adapt_every": 1000,
            "dropout": 0.0,
            "rstdp_epochs": 30,
            "checkpoint_every": 5000,  # images, while the conv layers train
            "batch_size": 1,
            "batch_size_eval": 8,  # small batches keep [T, B, maps, H, W] in cache: 2x faster
            "n_train": 0,
            "n_test": 0,
            "threads": 1,
        },
        smoke={
            **_DIGITS,
            "images_layer1": 400,
            "images_layer2": 400,
            "rstdp_epochs": 12,
            "batch_size": 8,
            "n_train": 600,
            "adapt_every": 200,
            # 600 images give the decision layer few updates per epoch: larger R-STDP rates
            "a_r_plus": 0.1,
            "a_r_minus": -0.075,
            "a_p_plus": 0.0125,
            "a_p_minus": -0.1,
        },
        quick={**_DIGITS, "images_layer1": 1500, "images_layer2": 3000, "rstdp_epochs": 8},
        train=train,
        evaluate=evaluate,
    )
)
