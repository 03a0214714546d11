"""Process-level settings (deepspike.runtime)."""

import platform
import sys

from deepspike import runtime


def test_keep_freed_memory_reports_whether_it_applies():
    applied = runtime.keep_freed_memory()
    assert applied is (runtime._libc() is not None)
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert applied
