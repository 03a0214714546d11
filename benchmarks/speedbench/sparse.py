"""Forcing deepspike's dense path, to time it against the event-driven one.

deepspike's ``layers.Linear`` takes an event-driven path by itself for binary input whose
activity is below its ``event_threshold`` when no gradient is needed (``event_threshold = 0``
turns the path off). The benchmark times the same model twice: as is (the library's choice) and
with the dense path forced through that switch on every deepspike ``Linear``. A deepspike
without such a switch has no event path to compare: both timings are then the same path and the
report says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from torch import nn


class Switch(NamedTuple):
    """A layer attribute that turns the event-driven path off when set to ``off``."""

    name: str
    kind: type
    off: object


SWITCHES: tuple[Switch, ...] = (
    Switch("event_threshold", float, 0.0),  # activity below which events are used; 0 = never
    Switch("event_driven", bool, False),
)
NO_SWITCH = "nothing: deepspike's Linear has no event-path switch (both timings are one path)"


def synaptic_layers(model: nn.Module) -> list[nn.Module]:
    from deepspike.layers import Linear

    return [module for module in model.modules() if isinstance(module, Linear)]


def has(layer: nn.Module, switch: Switch) -> bool:
    value = getattr(layer, switch.name, None)
    if switch.kind is bool:
        return isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def find_switch(layers: list[nn.Module]) -> Switch | None:
    """The first of ``SWITCHES`` that every layer has."""
    for switch in SWITCHES:
        if layers and all(has(layer, switch) for layer in layers):
            return switch
    return None


@contextmanager
def dense_forced(model: nn.Module) -> Iterator[str]:
    """Within the block, ``model``'s deepspike layers take their dense path; yields how."""
    layers = synaptic_layers(model)
    switch = find_switch(layers)
    if switch is None:
        yield NO_SWITCH
        return
    saved = [getattr(layer, switch.name) for layer in layers]
    for layer in layers:
        setattr(layer, switch.name, switch.off)
    try:
        yield f"Linear.{switch.name} = {switch.off!r}"
    finally:
        for layer, value in zip(layers, saved, strict=True):
            setattr(layer, switch.name, value)
