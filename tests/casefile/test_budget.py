"""The memory budget of a case (cnnbench.casefile.budget and its checks in spec): estimated from shapes, configurable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cnnbench.casefile.budget import DEFAULT_MAX_CASE_BYTES, format_bytes, parse_bytes, resolve_budget
from cnnbench.casefile.load import load_file, load_text
from cnnbench.cli import main
from cnnbench.errors import CaseFileError, UsageError

#: Three inputs of 2**24 elements: 128 MiB each at 8 bytes, 384 MiB together; no one alone is over 256 MiB.
THREE = """\
cases:
  - id: three
    op: cat
    devices: [cpu]
    inputs:
      a: {zeros: [4096, 4096]}
      b: {ones: [4096, 4096]}
      c: {randn: [4096, 4096]}
    expect: {shape: [12288, 4096]}
"""


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1073741824", 2**30),
        ("1e9", 10**9),
        ("512MiB", 512 * 2**20),
        ("512 mib", 512 * 2**20),
        ("2GB", 2 * 10**9),
        ("1.5g", 1_500_000_000),
        ("4KiB", 4096),
        ("1TiB", 2**40),
    ],
)
def test_parse_bytes(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-1", "0", "1.5.2G", "12XB", "inf"])
def test_parse_bytes_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_budget_comes_from_flag_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNBENCH_MAX_CASE_BYTES", raising=False)
    assert resolve_budget(None) == DEFAULT_MAX_CASE_BYTES == 2**30
    monkeypatch.setenv("CNNBENCH_MAX_CASE_BYTES", "2GiB")
    assert resolve_budget(None) == 2 * 2**30
    assert resolve_budget("1MiB") == 2**20
    monkeypatch.setenv("CNNBENCH_MAX_CASE_BYTES", "much")
    with pytest.raises(UsageError, match="CNNBENCH_MAX_CASE_BYTES: 'much' is not a size"):
        resolve_budget(None)


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (12, 1536, 2**30, 1.25 * 2**30, 2**60)] == [
        "12 B",
        "1.5 KiB",
        "1 GiB",
        "1.2 GiB",
        "1024 PiB",
    ]


def test_case_total_is_checked_across_tensors() -> None:
    assert load_text(THREE, "b.yaml").cases  # 384 MiB: within the default 1 GiB
    with pytest.raises(CaseFileError) as info:
        load_text(THREE, "b.yaml", max_case_bytes=300 * 2**20)
    (err,) = info.value.errors
    assert str(err) == (
        "b.yaml:2:5: cases[0]: the tensors of this case need 384 MiB at 8 bytes per element "
        "(inputs.a [4096, 4096], inputs.b [4096, 4096], inputs.c [4096, 4096]), over the memory budget of "
        "300 MiB per case; raise it with --max-case-bytes or CNNBENCH_MAX_CASE_BYTES"
    )


def test_state_layers_and_expected_values_count() -> None:
    text = """\
cases:
  - id: lin
    layers:
      - module: Linear
        args: {in_features: 1024, out_features: 1024}
        state: {weight: {ones: [1024, 1024]}}
    inputs: {input: {ones: [1, 1024]}}
    expect: {output: {zeros: [1, 1024]}, state: {0.weight: {ones: [1024, 1024]}}}
"""
    assert load_text(text, "s.yaml", max_case_bytes=17 * 2**20).cases
    with pytest.raises(
        CaseFileError, match=r"layers\[0\].state.weight \[1024, 1024\], expect.state.0.weight"
    ):
        load_text(text, "s.yaml", max_case_bytes=16 * 2**20)


def test_one_giant_tensor_is_refused_where_it_is_written() -> None:
    text = THREE.replace("{randn: [4096, 4096]}", "{randn: [4096, 4096, 4096]}")
    with pytest.raises(CaseFileError) as info:
        load_text(text, "b.yaml")
    (err,) = info.value.errors
    assert str(err).startswith(
        "b.yaml:8:11: cases[0].inputs.c.randn: a tensor of shape [4096, 4096, 4096] has"
    )
    assert "(512 GiB at 8 bytes each), over the memory budget of 1 GiB per case" in str(err)


def test_cli_flag_and_environment(
    write_case: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(write_case(THREE))
    monkeypatch.delenv("CNNBENCH_MAX_CASE_BYTES", raising=False)
    assert main(["validate", path]) == 0
    assert main(["validate", path, "--max-case-bytes", "256MiB"]) == 2
    assert "over the memory budget of 256 MiB per case" in capsys.readouterr().err
    assert main(["run", path, "--max-case-bytes", "256MiB", "--no-save"]) == 2
    assert "over the memory budget of 256 MiB per case" in capsys.readouterr().err
    monkeypatch.setenv("CNNBENCH_MAX_CASE_BYTES", "100MB")
    assert main(["validate", path]) == 2
    assert "over the memory budget of 95.4 MiB per case" in capsys.readouterr().err
    assert main(["validate", path, "--max-case-bytes", "1GiB"]) == 0  # the flag wins
    assert main(["validate", path, "--max-case-bytes", "big"]) == 2
    assert "--max-case-bytes: 'big' is not a size" in capsys.readouterr().err


def test_budget_reaches_the_isolated_worker(write_case: Callable[..., Path]) -> None:
    """The worker loads the case file again, with the parent's budget (not its own environment's default)."""
    from cnnbench.casefile.variants import expand
    from cnnbench.execution.isolation import IsolatedRunner

    big = THREE.replace("[4096, 4096]}", "[8192, 8192]}").replace("[12288, 4096]", "[24576, 8192]")
    path = write_case(big)
    (variant,) = expand(load_file(path, max_case_bytes=2 * 2**30).cases)
    with IsolatedRunner(max_case_bytes=2**30) as run:
        row = run(variant)
    assert row.status == "error" and "over the memory budget of 1 GiB per case" in row.message
