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
