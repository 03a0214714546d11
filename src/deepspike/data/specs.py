"""Data set specifications: the files of each set, their pinned SHA-256 sums, and where to get them.

The pinned sums ship inside the package (``deepspike/data/checksums/``) in ``sha256sum`` format,
optionally gzip-compressed. :data:`SPECS` is the read-only registry of the file-backed sets.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Final
from urllib.parse import quote

from deepspike.errors import ConfigError, DataError

_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Source:
    """One download location for a data set: ``base_url`` + the file's relative path.

    ``strip_prefix`` is removed from the relative path first, for mirrors whose layout drops a
    leading folder (``events/1.bs2`` on disk may be ``1.bs2`` on the mirror).
    """

    base_url: str
    strip_prefix: str = ""

    def url_for(self, relpath: str) -> str:
        """Return the URL of ``relpath`` (a path relative to the set's folder) at this source."""
        remote = relpath
        if self.strip_prefix and remote.startswith(self.strip_prefix):
            remote = remote[len(self.strip_prefix) :]
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return base + quote(remote)


@dataclass(frozen=True)
class DatasetSpec:
    """A file-backed data set.

    Attributes:
        name: folder name of the set under the data root (``<root>/<name>/``).
        files: relative POSIX path -> lower-case hex SHA-256 of the file.
        sources: download locations, tried in order. A plain string is taken as a base URL.
        description: one line for messages and listings.
    """

    name: str
    files: Mapping[str, str] = field(hash=False)
    sources: tuple[Source, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in {".", ".."}:
            raise ConfigError(f"data set name {self.name!r} is not a plain folder name")
        files = {str(k): str(v).lower() for k, v in dict(self.files).items()}
        for relpath, digest in files.items():
            _check_relpath(relpath, self.name)
            if not _SHA256_RE.match(digest):
                raise ConfigError(
                    f"data set {self.name!r}: {relpath!r} has sha256 {digest!r}, "
                    "which is not 64 hex digits"
                )
        sources = tuple(s if isinstance(s, Source) else Source(str(s)) for s in self.sources)
        object.__setattr__(self, "files", MappingProxyType(files))
        object.__setattr__(self, "sources", sources)

    def urls_for(self, relpath: str) -> list[str]:
        """Return the candidate URLs of one file, in the order they should be tried."""
        return [s.url_for(relpath) for s in self.sources]


def _check_relpath(relpath: str, set_name: str) -> None:
    p = PurePosixPath(relpath)
    if not relpath or p.is_absolute() or ".." in p.parts or "\\" in relpath or str(p) != relpath:
        raise ConfigError(
            f"data set {set_name!r}: file path {relpath!r} must be a normalised relative POSIX path"
        )


def parse_checksums(text: str, origin: str = "checksum list") -> dict[str, str]:
    """Parse ``sha256sum`` output (``<hex>  <path>`` or ``<hex> *<path>`` per line) into a dict.

    Blank lines and lines starting with ``#`` are skipped; a malformed line raises DataError.
    """
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not _SHA256_RE.match(parts[0].lower()):
            raise DataError(f"{origin} line {lineno} is not '<sha256>  <path>': {raw!r}")
        out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def pinned_checksums(name: str) -> dict[str, str]:
    """Read the pinned sums of set ``name`` from the package (``checksums/<name>.sha256[.gz]``)."""
    folder = resources.files("deepspike.data") / "checksums"
    plain, packed = folder / f"{name}.sha256", folder / f"{name}.sha256.gz"
    if plain.is_file():
        text = plain.read_text(encoding="utf-8")
    elif packed.is_file():
        text = gzip.decompress(packed.read_bytes()).decode("utf-8")
    else:
        raise DataError(
            f"no pinned checksums for data set {name!r} in the deepspike package; "
            "reinstall deepspike (the package data is missing)"
        )
    return parse_checksums(text, origin=f"checksums/{name}")


_MNIST_MIRRORS: Final = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FSDD_TAG: Final = "v1.0.10"
_FSDD_RAW: Final = (
    f"https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/{_FSDD_TAG}/"
)
# The unpacked example/NMNISTsmall folder exists up to commit 70e8a6db (later commits ship a zip).
_SLAYER_COMMITS: Final = (
    "70e8a6dbe47e1ed1fa0407984202970b78c6c15f",
    "8f4654eef90610ed30b39894f8f614413768128e",
)


def _slayer_sources() -> tuple[Source, ...]:
    base = "https://raw.githubusercontent.com/bamsumit/slayerPytorch/{}/example/NMNISTsmall/"
    return tuple(Source(base.format(c), strip_prefix="events/") for c in _SLAYER_COMMITS)


def _build_specs() -> dict[str, DatasetSpec]:
    return {
        "mnist": DatasetSpec(
            name="mnist",
            files=pinned_checksums("mnist"),
            sources=tuple(Source(u) for u in _MNIST_MIRRORS),
            description="MNIST handwritten digits, 4 IDX .gz files (60,000 train / 10,000 test)",
        ),
        "fsdd": DatasetSpec(
            name="fsdd",
            files=pinned_checksums("fsdd"),
            sources=(Source(_FSDD_RAW),),
            description=f"Free Spoken Digit Dataset {_FSDD_TAG}, 3,000 8 kHz wav recordings",
        ),
        "nmnist-small": DatasetSpec(
            name="nmnist-small",
            files=pinned_checksums("nmnist-small"),
            sources=_slayer_sources(),
            description="N-MNIST subset from SLAYER, 1,100 event streams (1,000 train / 100 test)",
        ),
    }


#: Read-only registry of the file-backed data sets, keyed by folder name.
SPECS: Final[Mapping[str, DatasetSpec]] = MappingProxyType(_build_specs())

#: Other accepted names -> registry key.
ALIASES: Final[Mapping[str, str]] = MappingProxyType({"nmnist": "nmnist-small"})


def known_names() -> list[str]:
    """Return the names and aliases :func:`get_spec` accepts, sorted."""
    return sorted({*SPECS, *ALIASES})


def canonical_name(name: str) -> str:
    """Map an alias to its registry key; raise ConfigError for an unknown name."""
    key = ALIASES.get(name, name)
    if key not in SPECS:
        raise ConfigError(
            f"unknown data set {name!r}; known file-backed sets: {', '.join(known_names())}"
        )
    return key


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """Return the spec of ``name`` (an alias is accepted); a spec passes through unchanged."""
    if isinstance(name, DatasetSpec):
        return name
    return SPECS[canonical_name(name)]


def first_few(items: Iterable[str], k: int = 3) -> str:
    """Format ``items`` as ``a, b, c and 7 more`` for one-line messages."""
    items = list(items)
    shown = ", ".join(items[:k])
    return shown if len(items) <= k else f"{shown} and {len(items) - k} more"
