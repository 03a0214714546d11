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


FRAGMENTING_LOOP = """
import sys, torch
from deepspike import runtime
applied = runtime.return_freed_memory() if sys.argv[1] == "on" else False
def rss_mib():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 // 2**20
start, kept = rss_mib(), []
for _ in range(100):
    big = torch.ones(1 << 20)  # a 4 MiB temporary
    kept.append(torch.ones(256))  # and a little kept each iteration
    del big
print(applied, rss_mib() - start)
"""


def test_return_freed_memory_stops_a_loop_that_keeps_a_little_from_growing_the_heap():
    def growth(setting: str) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", FRAGMENTING_LOOP, setting],
            capture_output=True,
            text=True,
            check=True,
        )
        applied, mib = out.stdout.split()
        return applied, int(mib)

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    applied, with_setting = growth("on")
    assert applied == str(glibc)
    if glibc:
        _, without = growth("off")
        assert without > 200  # glibc's default: the heap grows by the temporary each time
        assert with_setting < 50
