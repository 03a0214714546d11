"""Verify data sets against their pinned SHA-256 sums, and download what is missing.

Verification only reads, so it works on a read-only data folder. Where the folder is writable, a
successful verification leaves a ``.verified`` stamp; later calls skip hashing while the stamp is
newer than every file (modification and status-change time) and names the same pinned sums.
Downloads go to a temporary file in the target folder, are hashed while streaming, and are moved
into place only when the hash matches; a failed or interrupted download leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from tqdm.auto import tqdm

from deepspike.data.paths import ENV_DATA, ENV_OFFLINE, PathArg, is_offline, root_origin, where
from deepspike.data.specs import SPECS, DatasetSpec, first_few, get_spec
from deepspike.errors import DataError

log = logging.getLogger(__name__)

STAMP_NAME: Final = ".verified"
_STAMP_MARGIN_NS: Final = 2_000_000_000  # stamp time is back-dated this far before hashing began
_USER_AGENT: Final = "deepspike-data/0.1 (+python urllib)"
_CHUNK: Final = 1 << 16


@dataclass(frozen=True)
class FileProblem:
    """A file of a set that is missing or whose SHA-256 differs from the pinned one."""

    relpath: str
    kind: Literal["missing", "corrupt"]
    expected: str
    actual: str | None = None

    def describe(self, directory: Path) -> str:
        """One phrase naming the file and, if corrupt, the expected and actual hash prefixes."""
        path = directory / self.relpath
        if self.kind == "missing":
            return f"{path} is missing"
        return (
            f"{path} is corrupt (sha256 expected {self.expected[:12]}..., "
            f"got {(self.actual or '')[:12]}...)"
        )


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one set: ``ok``, a one-line ``reason``, files verified/expected."""

    name: str
    ok: bool
    reason: str
    n_verified: int
    n_expected: int
    path: Path

    def line(self) -> str:
        """Format as one line for the CLI: ``mnist  ok   4/4 files  all match ... (<path>)``."""
        status = "ok" if self.ok else "BAD"
        counts = f"{self.n_verified}/{self.n_expected} files"
        return f"{self.name:<13} {status:<3}  {counts:<15} {self.reason}"


# --------------------------------------------------------------------------------- hashing


def sha256_file(path: PathArg) -> str:
    """Return the lower-case hex SHA-256 of the file at ``path``."""
    with open(path, "rb") as f:  # type: ignore[arg-type]
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest_digest(spec: DatasetSpec) -> str:
    """A SHA-256 over the sorted (path, sum) list of ``spec``: changes when the pins change."""
    h = hashlib.sha256()
    for relpath in sorted(spec.files):
        h.update(f"{spec.files[relpath]}  {relpath}\n".encode())
    return h.hexdigest()


def _file_time_ns(path: Path) -> int | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return max(st.st_mtime_ns, st.st_ctime_ns)


def stamp_is_valid(spec: DatasetSpec, directory: Path) -> bool:
    """True if ``directory/.verified`` names ``spec``'s pins and is newer than all its files."""
    stamp = directory / STAMP_NAME
    try:
        if stamp.read_text(encoding="ascii").strip() != manifest_digest(spec):
            return False
        stamp_ns = stamp.stat().st_mtime_ns
    except (OSError, UnicodeDecodeError):
        return False
    for relpath in spec.files:
        t = _file_time_ns(directory / relpath)
        if t is None or t >= stamp_ns:
            return False
    return True


def is_writable_dir(directory: Path) -> bool:
    """True if ``directory`` may be written: access allows it *and* its mode has a write bit.

    The mode test keeps a folder marked read-only (``r-x``) untouched even for root.
    """
    try:
        return os.access(directory, os.W_OK) and bool(directory.stat().st_mode & 0o222)
    except OSError:
        return False


def write_stamp(spec: DatasetSpec, directory: Path, hashed_since_ns: int) -> bool:
    """Record a successful verification, dated before hashing began; False if not writable."""
    if not is_writable_dir(directory):
        return False
    stamp_ns = hashed_since_ns - _STAMP_MARGIN_NS
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".verified.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(manifest_digest(spec) + "\n")
        os.chmod(tmp, 0o644)
        os.utime(tmp, ns=(stamp_ns, stamp_ns))
        os.replace(tmp, directory / STAMP_NAME)
        tmp = None
        return True
    except OSError:
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def clear_stamp(directory: Path) -> None:
    """Remove a stamp, if any (best effort; a read-only folder is left alone)."""
    if not is_writable_dir(directory):
        return
    with contextlib.suppress(OSError):
        (directory / STAMP_NAME).unlink()


def scan(
    spec: DatasetSpec, directory: Path, *, use_stamp: bool = True
) -> tuple[list[FileProblem], int]:
    """Compare the files in ``directory`` with ``spec``'s pins.

    Returns ``(problems, n_verified)``. With ``use_stamp`` a valid stamp skips hashing. A clean
    full hash refreshes the stamp where the folder is writable. Never raises for bad files.
    """
    if use_stamp and stamp_is_valid(spec, directory):
        return [], len(spec.files)
    started = time.time_ns()
    problems: list[FileProblem] = []
    for relpath, expected in spec.files.items():
        path = directory / relpath
        try:
            actual = sha256_file(path)
        except OSError:  # absent, unreadable, or a folder where the file should be
            problems.append(FileProblem(relpath, "missing", expected))
            continue
        if actual != expected:
            problems.append(FileProblem(relpath, "corrupt", expected, actual))
    if problems:
        clear_stamp(directory)
    elif directory.is_dir():
        write_stamp(spec, directory, started)
    return problems, len(spec.files) - len(problems)


# ------------------------------------------------------------------------------ downloading


class _HashMismatch(Exception):
    pass


def _open_url(url: str, timeout: float) -> http.client.HTTPResponse:
    """Open ``url`` with a fresh opener (so proxy settings are read from the environment now)."""
    opener = urllib.request.build_opener()
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return opener.open(req, timeout=timeout)


def _fetch_once(url: str, dest: Path, sha256: str, timeout: float, progress: bool) -> None:
    """Stream ``url`` into a temp file beside ``dest``; move it to ``dest`` if the hash matches."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as resp:
            length = getattr(resp, "length", None)  # None for file:// and chunked replies
            total = length if isinstance(length, int) else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                leave=False,
                disable=not progress,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        actual = h.hexdigest()
        if actual != sha256:
            raise _HashMismatch(
                f"downloaded file has sha256 {actual[:12]}..., expected {sha256[:12]}..."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def download_file(
    urls: Sequence[str],
    dest: PathArg,
    sha256: str,
    *,
    timeout: float = 60.0,
    progress: bool = True,
) -> str:
    """Download one file from the first of ``urls`` that serves the right bytes.

    The file appears at ``dest`` only once its SHA-256 equals ``sha256``; on failure nothing is
    left behind. Returns the URL used; raises DataError listing each URL's error if all fail.
    """
    dest = Path(dest)  # type: ignore[arg-type]
    errors: list[str] = []
    for url in urls:
        try:
            _fetch_once(url, dest, sha256, timeout, progress)
            return url
        except (OSError, http.client.HTTPException, ValueError, _HashMismatch) as e:
            if isinstance(e, urllib.error.HTTPError):
                e.close()
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            errors.append(f"{url}: {reason}")
    if not urls:
        errors.append("no download source is known for it")
    raise DataError(f"could not download {dest.name}: " + "; ".join(errors))


def _download_all(
    spec: DatasetSpec,
    directory: Path,
    relpaths: Sequence[str],
    *,
    progress: bool,
    workers: int,
) -> list[str]:
    """Download ``relpaths`` of ``spec`` into ``directory``; return one error line per failure."""

    def one(relpath: str) -> str | None:
        dest = directory / relpath
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            download_file(
                spec.urls_for(relpath),
                dest,
                spec.files[relpath],
                progress=progress and len(relpaths) <= 8,
            )
        except (DataError, OSError) as e:
            return str(e)
        return None

    errors: list[str] = []
    with tqdm(
        total=len(relpaths),
        unit="file",
        desc=f"download {spec.name}",
        disable=not progress or len(relpaths) <= 1,
    ) as bar:
        if workers <= 1 or len(relpaths) <= 1:
            for relpath in relpaths:
                if (err := one(relpath)) is not None:
                    errors.append(err)
                bar.update(1)
            return errors
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deepspike-dl")
        try:
            for err in pool.map(one, relpaths):
                if err is not None:
                    errors.append(err)
                bar.update(1)
        finally:
            # On Ctrl-C, drop queued downloads; running ones finish and clean up their temp files.
            pool.shutdown(wait=True, cancel_futures=True)
    return errors


# ------------------------------------------------------------------------------- public API


def _fix_hint(spec: DatasetSpec, directory: Path) -> str:
    return (
        f"to fix: put the files in {directory}/ or point {ENV_DATA} (or --data-dir) at a root "
        f"folder that holds {spec.name}/, or go online (unset {ENV_OFFLINE}, allow downloads) "
        "to fetch it"
    )


def _unavailable(
    spec: DatasetSpec, directory: Path, origin: str, problems: Sequence[FileProblem], why: str
) -> DataError:
    """Build the DataError for a set that cannot be used: what is wrong, where, and the fix."""
    missing = [p for p in problems if p.kind == "missing"]
    corrupt = [p for p in problems if p.kind == "corrupt"]
    parts = [f"data set {spec.name!r} is not usable: {why}."]
    if corrupt:
        parts.append(
            f"{len(corrupt)} file(s) corrupt: "
            + "; ".join(p.describe(directory) for p in corrupt[:3])
            + (f"; and {len(corrupt) - 3} more" if len(corrupt) > 3 else "")
            + "."
        )
    if missing:
        parts.append(
            f"{len(missing)} of {len(spec.files)} expected file(s) missing: "
            f"{first_few(p.relpath for p in missing)}."
        )
    parts.append(f"Searched: {directory} (root chosen by {origin}).")
    if spec.sources:
        parts.append(f"Sources: {first_few((s.base_url for s in spec.sources), k=3)}.")
    if corrupt and not missing:
        parts.append(
            "To fix: delete the corrupt file(s) and run again online to download fresh copies, "
            "or restore the original files."
        )
    else:
        hint = _fix_hint(spec, directory)
        parts.append(hint[0].upper() + hint[1:] + ".")
    return DataError(" ".join(parts))


def ensure(
    name: str | DatasetSpec,
    data_dir: PathArg = None,
    download: bool | None = None,
    *,
    progress: bool = True,
    workers: int = 8,
) -> Path:
    """Make sure set ``name`` is present and intact in its folder, and return that folder.

    Each file must match its pinned SHA-256. Missing or corrupt files are downloaded when
    ``download`` is true, or when it is ``None`` and ``DEEPSPIKE_OFFLINE`` is not set. Raises
    DataError naming the set, the files, the folder searched and the fix when the set cannot
    be made whole. ``name`` may also be a :class:`DatasetSpec` (for custom or test sets).
    """
    spec = get_spec(name)
    directory = where(spec, data_dir)
    origin = root_origin(data_dir)
    problems, _ = scan(spec, directory)
    if not problems:
        return directory

    allowed = (not is_offline()) if download is None else bool(download)
    if not allowed:
        why = f"downloading is off ({ENV_OFFLINE}=1)" if download is None else "download=False"
        raise _unavailable(spec, directory, origin, problems, why)
    if not spec.sources:
        raise _unavailable(spec, directory, origin, problems, "no download source is known")

    corrupt = [p for p in problems if p.kind == "corrupt"]
    for p in corrupt:
        log.warning("%s; downloading a fresh copy", p.describe(directory))
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not is_writable_dir(existing):
        raise _unavailable(spec, directory, origin, problems, f"{existing} is read-only")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unavailable(
            spec, directory, origin, problems, f"cannot create {directory}: {e}"
        ) from e
    errors = _download_all(
        spec, directory, [p.relpath for p in problems], progress=progress, workers=workers
    )
    if errors:
        still, _ = scan(spec, directory, use_stamp=False)
        shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        raise _unavailable(
            spec, directory, origin, still, f"{len(errors)} download(s) failed: {shown}"
        )
    problems, _ = scan(spec, directory, use_stamp=False)
    if problems:  # a file changed under us after download
        raise _unavailable(spec, directory, origin, problems, "files changed after download")
    return directory


def check(names: Iterable[str] | None = None, data_dir: PathArg = None) -> list[CheckResult]:
    """Hash every file of each set (all registered sets by default) and report, never raising
    for bad data (an unknown name still raises ConfigError).

    Used by ``deepspike data check``. Each result says ok/bad, why in one line, and how many
    files matched their pinned SHA-256.
    """
    results: list[CheckResult] = []
    for name in list(SPECS) if names is None else list(names):
        spec = get_spec(name)
        directory = where(spec, data_dir)
        n = len(spec.files)
        if not directory.is_dir():
            reason = f"folder {directory} not found; {_fix_hint(spec, directory)}"
            results.append(CheckResult(spec.name, False, reason, 0, n, directory))
            continue
        problems, n_ok = scan(spec, directory, use_stamp=False)
        if not problems:
            reason = f"all files match their pinned SHA-256 ({directory})"
            results.append(CheckResult(spec.name, True, reason, n_ok, n, directory))
            continue
        missing = [p.relpath for p in problems if p.kind == "missing"]
        corrupt = [p.relpath for p in problems if p.kind == "corrupt"]
        bits = []
        if missing:
            bits.append(f"{len(missing)} missing ({first_few(missing)})")
        if corrupt:
            bits.append(f"{len(corrupt)} corrupt ({first_few(corrupt)})")
        reason = f"{', '.join(bits)} in {directory}"
        results.append(CheckResult(spec.name, False, reason, n_ok, n, directory))
    return results
