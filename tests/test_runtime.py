"""Process-level settings (deepspike.runtime)."""

import platform
import subprocess
import sys


def test_keep_freed_memory_reports_whether_it_applies():
    # in a child process: the setting lasts for the life of the process that makes it
    code = "from deepspike import runtime; print(runtime.keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out.stdout.strip() == str(expected)
