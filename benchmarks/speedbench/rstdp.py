"""R-STDP throughput of Mozafari et al.'s (2019) decision layer: deepspike's compiled loop
against its own torch path, in images per second.

Protocol: the recipe's decision layer (200 maps, 5x5 kernels over conv2's 250 pooled 4x4 maps,
padding 2, so 16 positions), one image at a time as in the paper, on conv2 outputs where each
input fired by the last step with probability ``ACTIVITY`` (about what the trained conv layers
give). A timed call presents ``images`` images from the same starting weights, through
``_rstdp_chunk`` with the compiled loop on or off; both make the same decisions and updates
(``tests/test_stdp_recipes.py``). The conv layers are not timed: the recipe computes their
output once per image before R-STDP starts.
"""

from __future__ import annotations

from typing import Any

import torch

from speedbench.timing import time_interleaved

RECIPE_ID = "mozafari2019-rstdp"
#: the fraction of the decision layer's inputs that fire by the last step
ACTIVITY = 0.32


def decision_layer_throughput(images: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Both paths timed on the recipe's own single thread (``threads=1``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _throughput(images, warmup, repeats)
    finally:
        torch.set_num_threads(threads)


def _throughput(images: int, warmup: int, repeats: int) -> dict[str, Any]:
    from deepspike.recipes import mozafari2019_rstdp as moz
    from deepspike.recipes.registry import Context, get_recipe

    c = get_recipe(RECIPE_ID).config({}, "full")
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

    def chunk(compiled: bool):
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
    timings = time_interleaved(
        {"compiled": chunk(True), "torch": chunk(False)}, warmup=warmup, repeats=repeats
    )
    out: dict[str, Any] = {
        "protocol": {
            "decision_maps": c["decision_maps"],
            "input_maps": c["maps2"],
            "kernel": c["kernel3"],
            "positions": 16,
            "input_activity": ACTIVITY,
            "images_per_call": images,
            "threads": 1,
        }
    }
    for name, timing in timings.items():
        if isinstance(timing, Exception):
            out[name] = {"error": str(timing).splitlines()[0]}
            continue
        out[name] = {**timing.to_dict(), "images_per_s": round(1e3 * images / timing.median_ms, 1)}
    if "images_per_s" in out["compiled"] and "images_per_s" in out["torch"]:
        out["speedup"] = round(out["compiled"]["images_per_s"] / out["torch"]["images_per_s"], 2)
    return out
