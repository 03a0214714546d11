"""Where data lives: the data root and the folder of each set.

Resolution order for the root: an explicit ``data_dir`` argument (the CLI's ``--data-dir``), then
the environment variable ``DEEPSPIKE_DATA``, then ``~/.cache/deepspike``. A set lives in
``<root>/<name>/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from deepspike.data.specs import DatasetSpec, get_spec

ENV_DATA: Final = "DEEPSPIKE_DATA"
ENV_OFFLINE: Final = "DEEPSPIKE_OFFLINE"

PathArg = str | os.PathLike[str] | None


def default_root() -> Path:
    """Return the fallback data root, ``~/.cache/deepspike``."""
    return Path.home() / ".cache" / "deepspike"


def root_origin(data_dir: PathArg = None) -> str:
    """Say which rule picks the root: ``'data_dir argument'``, ``'DEEPSPIKE_DATA'`` or default."""
    if data_dir is not None and os.fspath(data_dir) != "":
        return "data_dir argument"
    if os.environ.get(ENV_DATA):
        return ENV_DATA
    return "default cache"


def resolve_root(data_dir: PathArg = None) -> Path:
    """Return the data root: ``data_dir`` if given, else ``$DEEPSPIKE_DATA``, else the cache.

    ``~`` is expanded; the folder need not exist.
    """
    if data_dir is not None and os.fspath(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return default_root()


def where(name: str | DatasetSpec, data_dir: PathArg = None) -> Path:
    """Return the folder of set ``name`` (``<root>/<name>/``); an alias maps to its folder name.

    Raises ConfigError for an unknown name. The folder need not exist.
    """
    return resolve_root(data_dir) / get_spec(name).name


def is_offline() -> bool:
    """True when ``DEEPSPIKE_OFFLINE`` is set to 1/true/yes/on (downloads are then refused)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}
