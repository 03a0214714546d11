"""The compiled training paths of the spiking conv nets (Kheradpisheh et al. 2018, Mozafari et
al. 2019) against deepspike's own torch paths, in images per second, one thread.

- ``conv_stdp``: layer-wise STDP of the ``mozafari2019-rstdp`` recipe's conv1 (30 maps 5x5
  over the six DoG channels) and conv2 (250 maps 3x3 over conv1's pooled 30 maps), an image at
  a time, from the recipe's initial weights (N(0.8, 0.05)): the input of each is the recipe's
  own retina on MNIST training images (synthetic MNIST-like images where the files cannot be
  found), passed through the untrained conv1 for conv2. Untrained layers fire more than
  trained ones, so the torch path's dense convolution loses less here than later in training.
- ``rstdp_decision``: the decision layer (200 maps, 5x5 kernels over conv2's 250 pooled 4x4
  maps, padding 2, so 16 positions), R-STDP an image at a time on conv2 outputs where each
  input fired by the last step with probability ``ACTIVITY`` (about what the trained conv
  layers give).

Both paths make the same decisions and updates (``tests/test_stdp_recipes.py``); every timed
call starts from the same weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from speedbench.stdp import images as mnist_images
from speedbench.timing import time_interleaved

RECIPE_ID = "mozafari2019-rstdp"
#: the fraction of the decision layer's inputs that fire by the last step
ACTIVITY = 0.32


@contextmanager
def one_thread() -> Iterator[None]:
    """The recipes' own setting (``threads=1``), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def compare(
    paths: dict[str, Callable[[], None]], images: int, warmup: int, repeats: int
) -> dict[str, Any]:
    """Images per second of each path (``images`` per call), timed in the same rounds, and the
    compiled path's speed-up over the torch path."""
    out: dict[str, Any] = {}
    for name, timing in time_interleaved(paths, warmup=warmup, repeats=repeats).items():
        if isinstance(timing, Exception):
            out[name] = {"error": str(timing).splitlines()[0]}
            continue
        out[name] = {**timing.to_dict(), "images_per_s": round(1e3 * images / timing.median_ms, 1)}
    if "images_per_s" in out["compiled"] and "images_per_s" in out["torch"]:
        out["speedup"] = round(out["compiled"]["images_per_s"] / out["torch"]["images_per_s"], 2)
    return out


def recipe_config() -> dict[str, Any]:
    from deepspike.recipes.registry import get_recipe

    return get_recipe(RECIPE_ID).config({}, "full")


def conv_layers_throughput(
    images: int, warmup: int, repeats: int, data_dir: Path | None = None
) -> dict[str, Any]:
    """Both paths of layer-wise conv STDP, for conv1 and conv2."""
    with one_thread():
        return _conv_layers(images, warmup, repeats, data_dir)


def _conv_layers(images: int, warmup: int, repeats: int, data_dir: Path | None) -> dict[str, Any]:
    from deepspike.learning import apply_update
    from deepspike.recipes import _conv_stdp as conv
    from deepspike.recipes import mozafari2019_rstdp as moz

    c = recipe_config()
    stack = moz.build(c)
    stack.initialise(torch.Generator().manual_seed(0))
    x, source = mnist_images(images, 784, data_dir)
    with torch.no_grad():
        retina = moz.front_end(c, x.reshape(-1, 28, 28))
        inputs = [retina, stack.waves(retina, 1, c["inhibit_learning_input"])]
    rates = (c["a_plus"], c["a_minus"])
    out: dict[str, Any] = {
        "protocol": {"images_per_call": images, "input": source, "threads": 1, "batch": 1}
    }
    for layer, waves in enumerate(inputs):
        layer_conv, spec = stack.convs[layer], stack.specs[layer]
        start = layer_conv.weight.detach().clone()
        first_steps = conv.wave_times(waves)
        optimizer = torch.optim.SGD([layer_conv.weight], lr=1.0)

        def compiled(layer_conv=layer_conv, spec=spec, first_steps=first_steps, start=start):
            with torch.no_grad():
                layer_conv.weight.copy_(start)
            for i in range(images):
                conv.compiled_image(layer_conv, spec, first_steps[i], c["timesteps"], rates)

        def in_torch(layer_conv=layer_conv, spec=spec, waves=waves, start=start, opt=optimizer):
            with torch.no_grad():
                layer_conv.weight.copy_(start)
            for i in range(images):
                with torch.no_grad():
                    wave = waves[:, i : i + 1]
                    v = conv.potentials(wave, layer_conv)
                    delta = conv.winner_updates(wave, v, layer_conv, spec, rates)
                apply_update(layer_conv.weight, delta.rows, opt, (0.0, 1.0), delta.units)

        assert conv.compiled_applies(layer_conv, c["batch_size"])
        result = compare({"compiled": compiled, "torch": in_torch}, images, warmup, repeats)
        out[f"conv{layer + 1}"] = {
            "maps": spec.maps,
            "kernel": spec.kernel,
            "input_fired": round(float(waves[-1].mean()), 3),
            **result,
        }
    return out


def decision_layer_throughput(images: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Both paths of the R-STDP decision layer."""
    with one_thread():
        return _decision_layer(images, warmup, repeats)


def _decision_layer(images: int, warmup: int, repeats: int) -> dict[str, Any]:
    from deepspike.recipes import mozafari2019_rstdp as moz
    from deepspike.recipes.registry import Context

    c = recipe_config()
    stack = moz.build(c)
    generator = torch.Generator().manual_seed(0)
    stack.initialise(generator)
    conv3 = stack.convs[-1]
    with torch.no_grad():
        conv3.weight.clamp_(c["rstdp_w_min"], c["rstdp_w_max"])
    start = conv3.weight.detach().clone()
    shape = (images, c["maps2"], 4, 4)
    fired = torch.rand(shape, generator=generator) < ACTIVITY
    inputs = torch.where(fired, 0, c["timesteps"]).to(torch.uint8)
    labels = torch.randint(0, moz.N_CLASSES, (images,), generator=generator)
    order = torch.arange(images)
    rates = moz.adaptive_rates(c, 0.9)
    ctx = Context(c, "mnist", None, 0, generator)
    applies = moz.compiled_chunk_applies

    def chunk(compiled: bool) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                conv3.weight.copy_(start)
            moz.compiled_chunk_applies = lambda *_: compiled
            try:
                moz._rstdp_chunk(ctx, stack, inputs, labels, order, rates)
            finally:
                moz.compiled_chunk_applies = applies

        return run

    assert applies(c, conv3), "the recipe's defaults must take the compiled loop"
    protocol = {
        "decision_maps": c["decision_maps"],
        "input_maps": c["maps2"],
        "kernel": c["kernel3"],
        "positions": 16,
        "input_activity": ACTIVITY,
        "images_per_call": images,
        "threads": 1,
    }
    paths = {"compiled": chunk(True), "torch": chunk(False)}
    return {"protocol": protocol, **compare(paths, images, warmup, repeats)}
