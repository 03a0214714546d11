"""Data sets: where they live, pinned checksums, verified downloads, and loaders.

Quick use::

    from deepspike import data
    x, y = data.load("digits", "train")          # bundled, needs no files
    x, y = data.load("mnist", "test")            # verified against pinned SHA-256 sums
    data.check()                                 # what ``deepspike data check`` prints

The data root is ``data_dir`` if given, else ``$DEEPSPIKE_DATA``, else ``~/.cache/deepspike``;
set ``DEEPSPIKE_OFFLINE=1`` to forbid downloads.
"""

from __future__ import annotations

from deepspike.data.digits import load_digits
from deepspike.data.fsdd import FSDDData, fsdd_files, fsdd_split_of, load_fsdd, read_wav
from deepspike.data.loaders import LOADERS, load
from deepspike.data.mnist import load_mnist, parse_idx, read_idx
from deepspike.data.nmnist import EVENT_DTYPE, SENSOR_SIZE, load_nmnist, read_nmnist_events
from deepspike.data.paths import ENV_DATA, ENV_OFFLINE, is_offline, resolve_root, where
from deepspike.data.specs import ALIASES, SPECS, DatasetSpec, Source, get_spec, parse_checksums
from deepspike.data.store import CheckResult, check, download_file, ensure, sha256_file

__all__ = [
    "ALIASES",
    "ENV_DATA",
    "ENV_OFFLINE",
    "EVENT_DTYPE",
    "LOADERS",
    "SENSOR_SIZE",
    "SPECS",
    "CheckResult",
    "DatasetSpec",
    "FSDDData",
    "Source",
    "check",
    "download_file",
    "ensure",
    "fsdd_files",
    "fsdd_split_of",
    "get_spec",
    "is_offline",
    "load",
    "load_digits",
    "load_fsdd",
    "load_mnist",
    "load_nmnist",
    "parse_checksums",
    "parse_idx",
    "read_idx",
    "read_nmnist_events",
    "read_wav",
    "resolve_root",
    "sha256_file",
    "where",
]
