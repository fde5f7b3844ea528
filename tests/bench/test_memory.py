"""Tests of cnnbench.bench.memory: peak device memory and the peak RSS of a child process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from cnnbench.bench import memory

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error raised when CUDA is missing")


@needs_no_cuda
def test_peak_memory_fails_cleanly_without_cuda() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        memory.peak_memory_bytes(lambda: None, "cuda")


@needs_cuda
def test_peak_memory_on_cuda() -> None:
    nbytes = 64 * 2**20

    def fn() -> None:
        t = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        t.fill_(1)

    peak = memory.peak_memory_bytes(fn, "cuda")
    assert peak is not None
    assert peak >= nbytes


def test_peak_memory_is_none_on_cpu() -> None:
    assert memory.peak_memory_bytes(lambda: None, "cpu") is None


_CHILD_MODULE = """
def allocate(mb):
    buf = bytearray(b"\\x01") * (mb * 1024 * 1024)  # written, so every page is resident
    return len(buf)

def fail():
    raise ValueError("boom")
"""


@pytest.fixture
def child_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "cnnbench_rss_child.py").write_text(_CHILD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # the child inherits sys.path
    return "cnnbench_rss_child"


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
def test_cpu_peak_rss_of_child(child_module: str) -> None:
    rss = memory.cpu_peak_rss_bytes(f"{child_module}:allocate", {"mb": 200})
    assert rss.baseline_bytes > 0
    assert rss.peak_bytes >= rss.baseline_bytes
    assert rss.increment_bytes >= 200_000_000  # 200 MB (the child allocates 200 MiB)
    # the child's figures must not include this (much bigger, torch-importing) process
    assert rss.baseline_bytes < 200_000_000


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
def test_cpu_peak_rss_errors(child_module: str) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        memory.cpu_peak_rss_bytes(f"{child_module}:fail")
    for bad in ("os.system", "os:system;rm", "__import__('os'):x", ":f"):
        with pytest.raises(ValueError):
            memory.cpu_peak_rss_bytes(bad)
    with pytest.raises(ValueError):
        memory.cpu_peak_rss_bytes(f"{child_module}:allocate", {"mb": object()})
