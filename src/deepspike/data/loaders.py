"""One entry point for every data set: :func:`load`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from deepspike.data.digits import load_digits
from deepspike.data.fsdd import load_fsdd
from deepspike.data.mnist import load_mnist
from deepspike.data.nmnist import load_nmnist
from deepspike.data.paths import PathArg
from deepspike.errors import ConfigError

#: Data set name -> loader. ``nmnist`` is an alias of ``nmnist-small``.
LOADERS: Final[Mapping[str, Callable[..., Any]]] = MappingProxyType(
    {
        "digits": load_digits,
        "mnist": load_mnist,
        "fsdd": load_fsdd,
        "nmnist": load_nmnist,
        "nmnist-small": load_nmnist,
    }
)


def _accepted_options(fn: Callable[..., Any]) -> list[str]:
    params = inspect.signature(fn).parameters
    return [n for n in params if n not in ("split", "data_dir")]


def load(name: str, split: str, data_dir: PathArg = None, **kw: Any) -> tuple[Any, Any]:
    """Load split ``split`` of set ``name`` as ``(inputs, labels)``.

    Names: ``digits`` (bundled, needs no files), ``mnist``, ``fsdd``, ``nmnist`` (alias of
    ``nmnist-small``). ``kw`` goes to the set's loader (``seed`` for digits; ``sample_rate`` and
    ``length`` for fsdd; ``download`` for the file-backed sets). ``data_dir`` is ignored for
    digits. Unknown names and options raise ConfigError.
    """
    fn = LOADERS.get(name)
    if fn is None:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(sorted(LOADERS))}")
    accepted = _accepted_options(fn)
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise ConfigError(
            f"data set {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    if fn is load_digits:
        return load_digits(split, **kw)
    out = fn(split, data_dir, **kw)
    return out[0], out[1]
