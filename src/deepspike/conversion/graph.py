"""Read a trained PyTorch model into a small, flat graph of operations ready for conversion.

:func:`parse_ann` traces the model with ``torch.fx`` (an ``nn.Sequential`` traces too), so any
fx-traceable model works, residual additions included. On the way it

* folds every ``BatchNorm1d``/``BatchNorm2d`` into the ``Linear``/``Conv2d`` before it
  (:mod:`deepspike.conversion.fold`), exactly;
* drops ``Dropout`` and ``Identity`` (inference is deterministic);
* turns ``AdaptiveAvgPool2d`` into the equivalent ``AvgPool2d`` (when the input size is a
  multiple of the output size) and functional calls (``F.relu``, ``torch.flatten``, ``x + y``,
  ``F.avg_pool2d``, ...) into the same operations as their modules;
* raises :class:`~deepspike.errors.ConfigError` naming any other layer and listing those
  supported.

The result, :class:`AnnGraph`, is a topologically ordered tuple of :class:`Op` records. It runs
as an ANN (``graph(x)``) for activation statistics, and :func:`deepspike.conversion.build_snn`
maps it op by op to a spiking network.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

from deepspike.conversion.activations import QCFS, SoftLIF
from deepspike.conversion.fold import fold_batchnorm
from deepspike.errors import ConfigError, ShapeError

#: What the converter understands, as listed in its error messages.
SUPPORTED = (
    "Linear",
    "Conv2d",
    "BatchNorm1d/BatchNorm2d (after Linear/Conv2d)",
    "ReLU",
    "QCFS",
    "SoftLIF",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "MaxPool2d",
    "Flatten",
    "Dropout",
    "Identity",
    "residual add (x + y)",
)

#: Op kinds: the model input, weighted layers, activations (spiking neurons), and the rest.
WEIGHTED = ("linear", "conv")
KINDS = ("input", "linear", "conv", "act", "avgpool", "maxpool", "flatten", "add")

ACTIVATIONS = (nn.ReLU, QCFS, SoftLIF)
DROPPED = (nn.modules.dropout._DropoutNd, nn.Identity)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class Op:
    """One operation: ``kind`` (see :data:`KINDS`), the names of its inputs and, for layers, a
    private copy of the ANN module (BatchNorm already folded in)."""

    name: str
    kind: str
    inputs: tuple[str, ...] = ()
    module: nn.Module | None = None


@dataclass(frozen=True)
class AnnGraph:
    """A converted model's operations in topological order; ``output`` names the result."""

    ops: tuple[Op, ...]
    output: str

    @cached_property
    def _by_name(self) -> dict[str, Op]:
        return {op.name: op for op in self.ops}

    def op(self, name: str) -> Op:
        return self._by_name[name]

    def users(self) -> dict[str, list[str]]:
        """For each op, the names of the ops that read its output."""
        out: dict[str, list[str]] = {op.name: [] for op in self.ops}
        for op in self.ops:
            for src in op.inputs:
                out[src].append(op.name)
        return out

    @property
    def activations(self) -> tuple[str, ...]:
        """Names of the activation ops (each becomes a layer of spiking neurons)."""
        return tuple(op.name for op in self.ops if op.kind == "act")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, keep: Iterable[str] = ()) -> dict[str, torch.Tensor]:
        """Run the (folded) ANN on ``x`` ``[B, ...]``; return the output under ``"output"`` and
        the ops named in ``keep``. Intermediate results are freed once no longer needed."""
        keep = set(keep)
        remaining = {name: len(u) for name, u in self.users().items()}
        values: dict[str, torch.Tensor] = {}
        kept: dict[str, torch.Tensor] = {}
        for op in self.ops:
            args = [values[src] for src in op.inputs]
            values[op.name] = ann_op(op, x, args)
            if op.name in keep:
                kept[op.name] = values[op.name]
            for src in op.inputs:
                remaining[src] -= 1
                if remaining[src] == 0 and src != self.output:
                    del values[src]
        kept["output"] = values[self.output]
        return kept


def ann_op(op: Op, x: torch.Tensor, args: list[torch.Tensor]) -> torch.Tensor:
    """Apply one op of the ANN to its inputs (``x`` is the model input)."""
    if op.kind == "input":
        return x
    if op.kind == "add":
        return torch.stack(args).sum(0)
    if op.kind == "flatten":
        return args[0].flatten(1)
    assert op.module is not None
    return op.module(args[0])


class _Tracer(fx.Tracer):
    """Keeps the converter's layers (and subclasses of torch's, e.g. deepspike's) as leaves."""

    LEAVES = (nn.Linear, nn.Conv2d, *BATCHNORMS, *ACTIVATIONS, *DROPPED, nn.Flatten)
    LEAVES += (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.LEAVES) or super().is_leaf_module(m, qualname)


def unsupported(what: str, where: str) -> ConfigError:
    return ConfigError(
        f"cannot convert {what} ({where}) to a spiking network; supported: {', '.join(SUPPORTED)}"
    )


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` trace of ``model`` (a private eval-mode copy); clear error if untraceable."""
    model = copy.deepcopy(model).eval()
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types for data-dependent control flow
        raise ConfigError(
            f"{type(model).__name__} is not torch.fx-traceable ({type(e).__name__}: {e}); "
            "write it as nn.Sequential or remove data-dependent control flow"
        ) from None
    return fx.GraphModule(model, graph)


def adaptive_to_avgpool(pool: nn.AdaptiveAvgPool2d, in_hw: tuple[int, int]) -> nn.AvgPool2d:
    """The ``AvgPool2d`` equal to ``pool`` on inputs of size ``in_hw`` (sizes must divide)."""
    size = pool.output_size
    out_hw = (size, size) if isinstance(size, int) else tuple(size)
    out_hw = tuple(i if o is None else o for i, o in zip(in_hw, out_hw, strict=True))
    if any(i % o for i, o in zip(in_hw, out_hw, strict=True)):
        raise ConfigError(
            f"AdaptiveAvgPool2d({pool.output_size}) on a {in_hw[0]}x{in_hw[1]} input has uneven "
            "windows; use an input size that is a multiple of the output size"
        )
    kernel = tuple(i // o for i, o in zip(in_hw, out_hw, strict=True))
    return nn.AvgPool2d(kernel, stride=kernel)


def check_flatten(node: fx.Node, where: str) -> None:
    """Only flattening every axis after the batch (``start_dim=1, end_dim=-1``) converts."""
    args = list(node.args[1:])
    start_dim = args[0] if args else node.kwargs.get("start_dim", 0)
    end_dim = args[1] if len(args) > 1 else node.kwargs.get("end_dim", -1)
    if start_dim != 1 or end_dim != -1:
        raise ConfigError(
            f"flatten({start_dim}, {end_dim}) at {where}: only flattening every axis after the "
            "batch (start_dim=1, end_dim=-1) converts"
        )


#: Positional parameters (after the input) of ``F.avg_pool2d`` and ``F.max_pool2d``.
AVG_POOL_ARGS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
AVG_POOL_ARGS += ("divisor_override",)
MAX_POOL_ARGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")


def call_arguments(node: fx.Node, names: tuple[str, ...]) -> dict[str, Any]:
    """The keyword arguments of a functional call node (its input excluded)."""
    return {**dict(zip(names, node.args[1:], strict=False)), **node.kwargs}


def checked_max_pool(pool: nn.MaxPool2d, where: str) -> nn.MaxPool2d:
    if pool.return_indices:
        raise ConfigError(f"MaxPool2d with return_indices at {where} does not convert")
    return pool


def module_op(m: nn.Module, where: str, in_shape: tuple[int, ...]) -> tuple[str, Any]:
    """``(kind, module)`` of a leaf module (BatchNorm is folded elsewhere)."""
    if isinstance(m, DROPPED):
        return "alias", None
    if isinstance(m, ACTIVATIONS):
        return "act", copy.deepcopy(m)
    if isinstance(m, nn.Linear):
        return "linear", copy.deepcopy(m)
    if isinstance(m, nn.Conv2d):
        return "conv", copy.deepcopy(m)
    if isinstance(m, nn.AvgPool2d):
        return "avgpool", copy.deepcopy(m)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return "avgpool", adaptive_to_avgpool(m, in_shape[-2:])
    if isinstance(m, nn.MaxPool2d):
        return "maxpool", checked_max_pool(copy.deepcopy(m), where)
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ConfigError(
                f"nn.Flatten({m.start_dim}, {m.end_dim}) at {where}: only flattening every "
                "axis after the batch converts"
            )
        return "flatten", None
    raise unsupported(type(m).__name__, where)


def function_op(node: fx.Node, where: str, in_shape: tuple[int, ...]) -> tuple[str, Any]:
    """``(kind, module)`` of a ``call_function`` node (``F.relu``, ``x + y``, ...)."""
    target = node.target
    if target in (F.relu, torch.relu):
        return "act", nn.ReLU()
    if target in (operator.add, torch.add):
        if len(node.args) != 2 or node.kwargs or not all(isinstance(a, fx.Node) for a in node.args):
            raise unsupported("an add of a constant or with alpha", where)
        return "add", None
    if target is torch.flatten:
        check_flatten(node, where)
        return "flatten", None
    if target is F.dropout:
        return "alias", None
    if target is F.avg_pool2d:
        return "avgpool", nn.AvgPool2d(**call_arguments(node, AVG_POOL_ARGS))
    if target is F.max_pool2d:
        return "maxpool", checked_max_pool(
            nn.MaxPool2d(**call_arguments(node, MAX_POOL_ARGS)), where
        )
    if target is F.adaptive_avg_pool2d:
        return "avgpool", adaptive_to_avgpool(nn.AdaptiveAvgPool2d(node.args[1]), in_shape[-2:])
    raise unsupported(f"function {getattr(target, '__name__', target)!r}", where)


def method_op(node: fx.Node, where: str) -> tuple[str, Any]:
    """``(kind, module)`` of a ``call_method`` node (``x.relu()``, ``x.flatten(1)``)."""
    if node.target == "relu":
        return "act", nn.ReLU()
    if node.target == "flatten":
        check_flatten(node, where)
        return "flatten", None
    raise unsupported(f"method {node.target!r}", where)


def node_op(node: fx.Node, gm: fx.GraphModule, shapes: Mapping[str, tuple[int, ...]]):
    """``(kind, module)`` of a call node, or ``("alias", None)`` for one inference skips."""
    src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    in_shape = shapes.get(src.name, ()) if src is not None else ()
    if node.op == "call_module":
        return module_op(gm.get_submodule(str(node.target)), f"module {node.target!r}", in_shape)
    if node.op == "call_function":
        return function_op(node, f"node {node.name!r}", in_shape)
    return method_op(node, f"node {node.name!r}")


def fold_into(ops: dict[str, Op], users: Mapping[str, int], bn_node: fx.Node, src: str) -> None:
    """Fold the BatchNorm of ``bn_node`` into op ``src`` in place (in the ``ops`` dict)."""
    layer = ops.get(src)
    if layer is None or layer.kind not in WEIGHTED or users[src] != 1:
        raise ConfigError(
            f"BatchNorm {bn_node.target!r} must directly follow a Linear or Conv2d whose output "
            "feeds nothing else, to be folded into it"
        )
    ops[src] = dataclasses.replace(layer, module=fold_batchnorm(layer.module, bn_module(bn_node)))


def bn_module(node: fx.Node) -> nn.Module:
    return node.graph.owning_module.get_submodule(str(node.target))


def parse_ann(model: nn.Module, example: torch.Tensor) -> AnnGraph:
    """Read ``model`` (``nn.Sequential`` or any fx-traceable module with one input) into an
    :class:`AnnGraph`; ``example`` is a batch ``[B, ...]`` of real inputs, used for shapes.

    Raises:
        ConfigError: for an untraceable model or any layer outside :data:`SUPPORTED`.
    """
    gm = trace(model)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example[:2])
    except Exception as e:  # the model's own error, whatever its type
        cause = e.__cause__ or e
        raise ShapeError(
            f"the model fails on inputs of shape {list(example[:2].shape)} "
            f"({type(cause).__name__}: {str(cause).splitlines()[0]}); pass a batch [B, ...] "
            "as the ANN takes it"
        ) from None
    shapes = {
        n.name: tuple(n.meta["tensor_meta"].shape)
        for n in gm.graph.nodes
        if "tensor_meta" in n.meta
    }
    ops: dict[str, Op] = {}
    alias: dict[str, str] = {}
    users = {n.name: len(n.users) for n in gm.graph.nodes}
    output = None
    for node in gm.graph.nodes:
        inputs = tuple(alias.get(a.name, a.name) for a in node.all_input_nodes)
        if node.op == "placeholder":
            if ops:
                raise ConfigError("the model takes more than one input; conversion needs one")
            ops[node.name] = Op(node.name, "input")
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node):
                raise ConfigError("the model must return one tensor (the class scores)")
            output = alias.get(result.name, result.name)
        elif node.op == "get_attr":
            raise unsupported(f"parameter access {node.target!r}", f"node {node.name!r}")
        elif node.op == "call_module" and isinstance(
            gm.get_submodule(str(node.target)), BATCHNORMS
        ):
            fold_into(ops, users, node, inputs[0])
            alias[node.name] = inputs[0]
        else:
            kind, module = node_op(node, gm, shapes)
            if kind == "alias":
                alias[node.name] = inputs[0]
            else:
                ops[node.name] = Op(node.name, kind, inputs, module)
    assert output is not None
    return AnnGraph(tuple(ops.values()), output)


def describe(graph: AnnGraph) -> list[dict[str, Any]]:
    """A JSON-friendly listing of the ops (name, kind, inputs, module repr)."""
    return [
        {"name": op.name, "kind": op.kind, "inputs": list(op.inputs), "module": repr(op.module)}
        for op in graph.ops
    ]
