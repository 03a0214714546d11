"""Process-level settings a program may apply to itself; importing the library changes nothing.

:func:`keep_freed_memory`. Training allocates a few tensors of ``T x B x N`` floats per layer and
step, often tens of MiB. glibc's ``malloc`` serves blocks over 32 MiB (and, after trimming, many
smaller ones) with fresh ``mmap`` pages and unmaps them on ``free``, so every step pays a page
fault and a zero-fill per 4 KiB touched: on the 2-core reference machine that was 15-25 % of an
MLP training step at ``T = 100`` (``docs/kernels.md``). Raising malloc's mmap and trim
thresholds keeps freed blocks in the heap for the next step, as jemalloc or tcmalloc would.

The price: the process does not return freed memory to the system until it exits, and glibc's
heap fragments. A loop that keeps a small tensor per iteration (features of each batch, say)
pins the top of the heap above each iteration's large temporaries, so the heap grows by about
one iteration's working set per iteration: a full ``kheradpisheh2018-sdnn`` run grew past 23 GiB
and was killed. ``benchmarks/speed.py`` uses it (short timing loops, every library alike); the
``deepspike`` command does not.

:func:`return_freed_memory` is the opposite setting, for long loops that keep a little per
iteration. glibc's default raises the mmap threshold each time a large mmapped block is freed
(up to 32 MiB), so after a few iterations the large temporaries come from the heap too, and the
same pinning makes it grow: a full ``mozafari2019-rstdp`` run reached 21 GiB while computing
its decision-layer inputs. A fixed threshold keeps every block above it in its own mapping,
returned on ``free``; the conv STDP recipes apply it when they start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30
RETURN_ABOVE_BYTES = 1 << 20


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory(limit_bytes: int = KEEP_BYTES) -> bool:
    """Serve blocks up to ``limit_bytes`` from malloc's heap and keep up to that much freed
    memory for reuse (glibc ``mallopt``). Returns whether it took effect (``False`` off glibc,
    e.g. on macOS, Windows or musl, where nothing changes)."""
    libc = _libc()
    if libc is None:
        return False
    trim = libc.mallopt(M_TRIM_THRESHOLD, int(limit_bytes))
    mmap = libc.mallopt(M_MMAP_THRESHOLD, int(limit_bytes))
    return bool(trim and mmap)


def return_freed_memory(threshold_bytes: int = RETURN_ABOVE_BYTES) -> bool:
    """Serve every block above ``threshold_bytes`` with its own ``mmap`` and return it on
    ``free`` (a fixed glibc mmap threshold, which also stops glibc from raising it). Returns
    whether it took effect (``False`` off glibc, where nothing changes)."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
