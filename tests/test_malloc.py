"""The command line's allocator setting: freed activations are reused, not faulted in again."""

import platform
import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys, torch
from codec.malloc import reuse_freed_memory
if sys.argv[1] == "tuned":
    assert reuse_freed_memory()
def touch():
    torch.ones(12 << 20)  # 48 MB (above glibc's own 32 MB cap) written, then freed
for _ in range(8):  # the heap settles after a few blocks (3 to 5 measured)
    touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_freed_blocks_are_reused_without_page_faults():
    plain, tuned = _faults("plain"), _faults("tuned")
    assert plain > 5 * (48 << 20) // 4096 // 2  # each 48 MB block faulted in afresh
    assert tuned < plain / 10


def test_the_command_line_sets_it(monkeypatch):
    from click.testing import CliRunner

    import codec.cli

    calls = []
    monkeypatch.setattr(codec.cli.commands, "reuse_freed_memory", lambda: calls.append(1))
    assert CliRunner().invoke(codec.cli.main, ["info", "--help"]).exit_code == 0
    assert calls == [1]


RELEASE = """
import sys, torch, psutil
from codec.malloc import release_freed_memory, reuse_freed_memory
assert reuse_freed_memory()
rss = lambda: psutil.Process().memory_info().rss
blocks = [torch.ones(12 << 20) for _ in range(8)]  # 384 MB written
above = torch.ones(1 << 20)  # holds the heap's top: the freed blocks stay, not trimmed at free
del blocks
kept = rss()
assert release_freed_memory()
print(kept - rss())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim only")
def test_released_memory_goes_back_to_the_kernel():
    """After a phase's large blocks are freed (kept by the command line's setting), releasing
    hands them back, so that the next phase's peak does not stack on them."""
    pytest.importorskip("psutil")
    out = subprocess.run(
        [sys.executable, "-c", RELEASE], capture_output=True, text=True, check=True
    )
    assert int(out.stdout.split()[-1]) > 300 << 20
