"""The pooling and shape suites catch subtly wrong PyTorch numerics: tests/suite/test_mutations.py's patches (and one
more), each run against named cases of cases/pooling and cases/shapes in-process; they pass unpatched."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from mutation_support import MUTATIONS
from repo import REPO

from cnnbench.casefile.load import load_paths
from cnnbench.casefile.variants import Variant, expand
from cnnbench.execution.dispatch import run_variant
from cnnbench.numerics.oracle import clear_cache

SUITES = [REPO / "cases" / "pooling", REPO / "cases" / "shapes"]


def _patch_conv2d_ignores_dilation(mp: pytest.MonkeyPatch) -> None:
    original = F.conv2d

    def wrong(*args: Any, **kwargs: Any) -> torch.Tensor:
        return original(*args, **{**kwargs, "dilation": 1})

    mp.setattr(F, "conv2d", wrong)


def _patch_max_pool2d_keeps_window_past_input(mp: pytest.MonkeyPatch) -> None:
    """pytorch#45357 put back: in ceil mode, a last window starting past the input (or in the right padding)
    is kept, as a row or column of -inf."""
    original = F.max_pool2d

    def wrong(
        input: torch.Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> Any:
        out = original(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        if not ceil_mode or return_indices:
            return out
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
        sh, sw = pair(stride if stride not in (None, []) else kernel_size)
        sizes = [
            -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1
            for n, k, s, p, d in ((input.shape[-2], kh, sh, ph, dh), (input.shape[-1], kw, sw, pw, dw))
        ]
        grow = (0, sizes[1] - out.shape[-1], 0, sizes[0] - out.shape[-2])
        return F.pad(out, grow, value=float("-inf"))

    mp.setattr(F, "max_pool2d", wrong)


def _patch_max_pool1d_pads_with_zeros(mp: pytest.MonkeyPatch) -> None:
    """Padding taken as zeros (not -inf) in 1-D max pooling: a window over the padding never goes below 0."""
    original = F.max_pool1d

    def wrong(
        input: torch.Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, *args: Any, **kwargs: Any
    ) -> Any:
        pad = padding if isinstance(padding, int) else padding[0]
        return original(F.pad(input, (pad, pad)), kernel_size, stride, 0, *args, **kwargs)

    mp.setattr(F, "max_pool1d", wrong)


CEIL = "ceil_mode=true"
#: mutation -> (patch, cases of the pooling and shape suites that must catch it)
SUITE_MUTATIONS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "max_pool2d ignores ceil_mode": (
        MUTATIONS["max_pool2d ignores ceil_mode"][0],
        {
            "pytorch114216-maxpool2d-dilated-window-misses-input",
            f"maxpool2d-edges.kernel_size=3,stride=2,padding=0,dilation=1,{CEIL}",
            f"maxpool2d-edges.kernel_size=2,stride=3,padding=1,dilation=2,{CEIL}",
            f"maxpool2d-module-indices.kernel_size=3,stride=2,padding=0,dilation=1,{CEIL}",
        },
    ),
    "max_pool2d keeps a window starting past the input (pytorch#45357)": (
        _patch_max_pool2d_keeps_window_past_input,
        {
            "pytorch45357-maxpool2d-ceil-window-past-input",
            "pytorch57178-maxpool2d-module-ceil-kernel1",
            f"maxpool2d-edges.kernel_size=1,stride=2,padding=0,dilation=1,{CEIL}",
            f"maxpool2d-edges.kernel_size=2,stride=2,padding=1,dilation=1,{CEIL}",
        },
    ),
    "avg_pool2d divisor + 1": (
        MUTATIONS["avg_pool2d divisor + 1"][0],
        {
            "pytorch100987-avgpool2d-ceil-border-divisor",
            "pytorch116420-avgpool2d-ceil-last-window-in-padding",
            f"avgpool2d-edges.kernel_size=3,stride=2,padding=1,{CEIL},count_include_pad=false",
            "avgpool2d-divisor-override.kernel_size=2,padding=0,ceil_mode=false,divisor_override=3",
            "shapes.pool_ci_2d.regular.avg_include_pad",
        },
    ),
    "conv2d padding off by one": (
        MUTATIONS["conv2d padding off by one"][0],
        {
            "shapes.resnet_50.conv1",
            "shapes.resnet_50.res2a_branch2b",
            "shapes.mobilenet.conv2_1-dw",
            "shapes.deepbench_inference_server.ic1ih48iw480oc16kh3kw3sh1sw1ph1pw1",
        },
    ),
    "float32 conv2d 1e-4 relative error": (
        MUTATIONS["float32 conv2d 1e-4 relative error"][0],
        {"shapes.resnet_50.res2a_branch1", "shapes.mobilenet.conv11", "shapes.dilated_conv.1"},
    ),
    "conv2d ignores dilation": (
        _patch_conv2d_ignores_dilation,
        {"shapes.dilated_conv.1", "shapes.dilated_conv.12"},
    ),
    "max_pool1d pads with zeros": (
        _patch_max_pool1d_pads_with_zeros,
        {
            "maxpool1d-edges.kernel_size=2,stride=2,padding=1,dilation=1,ceil_mode=false",
            "shapes.pool_ci_1d.asymmetric.max",
        },
    ),
}


@functools.cache
def _cpu_variants() -> tuple[Variant, ...]:
    return tuple(v for v in expand(load_paths(SUITES)) if v.device == "cpu")


def _failing(variants: list[Variant]) -> dict[str, list[str]]:
    """case id -> the variant ids that failed or errored (skipped and xfailed ones are not counted)."""
    clear_cache()
    caught: dict[str, list[str]] = {}
    for variant in variants:
        result = run_variant(variant)
        if result.status in ("failed", "error"):
            caught.setdefault(variant.case.id, []).append(f"{variant.id}: {result.message[:200]}")
    return caught


@pytest.mark.parametrize("name", sorted(SUITE_MUTATIONS))
def test_pooling_and_shape_suites_catch_the_mutation(name: str) -> None:
    patch, must_catch = SUITE_MUTATIONS[name]
    variants = [v for v in _cpu_variants() if v.case.id in must_catch]
    assert {v.case.id for v in variants} == must_catch
    assert _failing(variants) == {}, "the unpatched op must pass every variant first"
    with pytest.MonkeyPatch.context() as mp:
        patch(mp)
        caught = _failing(variants)
    missed = must_catch - set(caught)
    assert not missed, f"{name}: not caught by {sorted(missed)}; caught by {sorted(caught)}"


def test_pinned_pytorch_issue_cases_pass() -> None:
    variants = [v for v in _cpu_variants() if v.case.file.endswith("pytorch_issues.yaml")]
    assert len(variants) == 40
    assert _failing(variants) == {}
