"""The output shape every conv/pool variant is checked against (cnnbench.ops.geometry and the runner's hook)."""

from __future__ import annotations

import itertools
import random
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import expand
from cnnbench.execution.dispatch import run_variant
from cnnbench.ops.geometry import SHAPE_MODULES, GeometryError, call_output_shape

LABEL = "output shape vs convolution arithmetic"


def torch_outcome(fn: Any) -> tuple[str, tuple[int, ...] | str]:
    """("ok", shape) or (exception type, message) for a torch call."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "ok", tuple((out[0] if isinstance(out, tuple) else out).shape)


def geometry_outcome(**kwargs: Any) -> tuple[str, tuple[int, ...] | str | None]:
    try:
        return "ok", call_output_shape(**kwargs)
    except GeometryError as exc:
        return exc.error_type, str(exc)


def agree(fn: Any, **kwargs: Any) -> None:
    got = torch_outcome(fn)
    want = geometry_outcome(**kwargs)
    assert got[0] == want[0], (kwargs, got, want)
    if got[0] == "ok":
        assert got[1] == want[1], (kwargs, got, want)


POOL_GRID = list(
    itertools.product([1, 2], [1, 2, 3, 4], [1, 2, 3], [0, 1, 2], [1, 2], [False, True], [4, 5, 7])
)


@pytest.mark.parametrize(("nd", "k", "s", "p", "d", "ceil", "size"), POOL_GRID)
def test_pooling_shapes_and_rejections_match_torch(
    nd: int, k: int, s: int, p: int, d: int, ceil: bool, size: int
) -> None:
    x = torch.zeros(1, 2, *[size] * nd)
    args = {"kernel_size": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": ceil}
    max_pool = getattr(F, f"max_pool{nd}d")
    agree(lambda: max_pool(x, **args), op=f"max_pool{nd}d", args=args, input_shapes=[x.shape])
    agree(
        lambda: getattr(nn, f"MaxPool{nd}d")(**args)(x),
        module=f"MaxPool{nd}d",
        args=args,
        input_shapes=[x.shape],
    )
    if d == 1:
        avg = {k_: v for k_, v in args.items() if k_ != "dilation"}
        agree(
            lambda: getattr(F, f"avg_pool{nd}d")(x, **avg),
            op=f"avg_pool{nd}d",
            args=avg,
            input_shapes=[x.shape],
        )


def test_avg_pool3d_refuses_an_input_smaller_than_the_kernel() -> None:
    x = torch.zeros(1, 1, 2, 6, 6)
    args = {"kernel_size": 3, "padding": 1}
    agree(lambda: F.avg_pool3d(x, **args), op="avg_pool3d", args=args, input_shapes=[x.shape])
    assert torch_outcome(lambda: F.max_pool3d(x, **args))[0] == "ok"  # max_pool3d has no such check


def random_conv_configs(n: int) -> list[dict[str, Any]]:
    rng = random.Random(3)
    configs = []
    while len(configs) < n:
        nd = rng.choice([1, 2, 3])
        c_in, c_out, groups = rng.choice([1, 2, 4, 6]), rng.choice([1, 2, 3, 4]), rng.choice([1, 2, 3])
        configs.append(
            {
                "nd": nd,
                "size": [rng.randint(1, 7) for _ in range(nd)],
                "c_in": c_in,
                "c_out": c_out,
                "groups": groups,
                "k": rng.randint(1, 4),
                "s": rng.randint(1, 3),
                "p": rng.randint(0, 3),
                "d": rng.randint(1, 3),
                "op": rng.randint(0, 2),
            }
        )
    return configs


@pytest.mark.parametrize("c", random_conv_configs(300))
def test_conv_shapes_and_rejections_match_torch(c: dict[str, Any]) -> None:
    nd, groups = c["nd"], c["groups"]
    x = torch.zeros(1, c["c_in"], *c["size"])
    conv_args = {"stride": c["s"], "padding": c["p"], "dilation": c["d"], "groups": groups}
    w = torch.zeros(c["c_out"], max(1, c["c_in"] // groups), *[c["k"]] * nd)
    conv = getattr(F, f"conv{nd}d")
    agree(lambda: conv(x, w, **conv_args), op=f"conv{nd}d", args=conv_args, input_shapes=[x.shape, w.shape])
    module_args = {"in_channels": c["c_in"], "out_channels": c["c_out"], "kernel_size": c["k"], **conv_args}
    agree(
        lambda: getattr(nn, f"Conv{nd}d")(**module_args)(x),
        module=f"Conv{nd}d",
        args=module_args,
        input_shapes=[x.shape],
    )
    t_args = {**conv_args, "output_padding": c["op"]}
    wt = torch.zeros(c["c_in"], max(1, c["c_out"] // groups), *[c["k"]] * nd)
    outcome = torch_outcome(lambda: getattr(F, f"conv_transpose{nd}d")(x, wt, **t_args))
    if outcome[0] == "ok" and 0 in outcome[1]:
        # PyTorch returns an empty tensor when some (not all) output sizes are 0; the arithmetic, like
        # PyTorch's other checks, calls an output under one element invalid.
        return
    agree(
        lambda: getattr(F, f"conv_transpose{nd}d")(x, wt, **t_args),
        op=f"conv_transpose{nd}d",
        args=t_args,
        input_shapes=[x.shape, wt.shape],
    )


@pytest.mark.parametrize(
    ("module", "args", "error"),
    [
        ("Conv2d", {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 3}, "ValueError"),
        ("Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 4}, "ValueError"),
        (
            "Conv2d",
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": "same"},
            "ValueError",
        ),
        (
            "Conv2d",
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding_mode": "mirror"},
            "ValueError",
        ),
        (
            "ConvTranspose2d",
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding_mode": "reflect"},
            "ValueError",
        ),
        ("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, "RuntimeError"),
        ("Conv2d", {"in_channels": 4, "out_channels": 4, "kernel_size": 6}, "RuntimeError"),
        (
            "Conv2d",
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": "same", "dilation": 2},
            "ok",
        ),
        (
            "ConvTranspose2d",
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2, "output_padding": 2},
            "RuntimeError",
        ),
    ],
)
def test_module_construction_and_call_errors(module: str, args: dict[str, Any], error: str) -> None:
    x = torch.zeros(1, 4, 5, 5)
    agree(lambda: getattr(nn, module)(**args)(x), module=module, args=args, input_shapes=[x.shape])
    assert geometry_outcome(module=module, args=args, input_shapes=[x.shape])[0] == error


def test_calls_the_arithmetic_does_not_model_are_left_alone() -> None:
    assert call_output_shape(op="relu", args={}, input_shapes=[(1, 2)]) is None
    assert call_output_shape(op="max_pool2d", args={"kernel_size": 2.5}, input_shapes=[(1, 1, 4, 4)]) is None
    assert call_output_shape(op="max_pool2d", args={}, input_shapes=[(1, 1, 4, 4)]) is None
    assert call_output_shape(op="conv2d", args={}, input_shapes=[(1, 1, 4, 4)]) is None  # no weight
    assert call_output_shape(module="Linear", args={"in_features": 2}, input_shapes=[(1, 2)]) is None
    assert set(SHAPE_MODULES.values()) <= {
        *(f"{k}{n}d" for k in ("conv", "conv_transpose", "max_pool", "avg_pool") for n in (1, 2, 3)),
        *(f"adaptive_{k}_pool{n}d" for k in ("avg", "max") for n in (1, 2, 3)),
    }


def run(body: str) -> tuple[str, str]:
    text = f"defaults:\n  devices: [cpu]\n  dtypes: [float32]\ncases:\n{body}"
    (variant,) = expand(load_text(text, "g.yaml").cases)
    result = run_variant(variant)
    return result.status, result.message


POOL_CASE = """\
  - id: pool
    op: max_pool2d
    args: {kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}
    inputs: {input: {randn: [1, 1, 6, 6]}}
    expect: {dtype: float32}
"""


def test_every_pooling_variant_checks_its_shape_and_passes_unpatched() -> None:
    assert run(POOL_CASE) == ("passed", "")


def test_a_wrong_sized_output_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = F.max_pool2d

    def ceil_mode_ignored(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return real(x, *args, **{**kwargs, "ceil_mode": False})

    monkeypatch.setattr(F, "max_pool2d", ceil_mode_ignored)
    status, message = run(POOL_CASE)
    assert status == "failed"
    assert message == f"{LABEL}: expected [1, 1, 4, 4], got [1, 1, 3, 3]"


def test_modules_and_tuple_outputs_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
  - id: pool
    module: MaxPool2d
    args: {kernel_size: 3, stride: 2, ceil_mode: true, return_indices: true}
    inputs: {input: {randn: [1, 1, 6, 6]}}
    expect: {repr: "MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=True)"}
"""
    assert run(body)[0] == "passed"
    real = F.max_pool2d

    def one_row_short(*args: Any, **kwargs: Any) -> Any:
        values, indices = real(*args, **kwargs)
        return values[..., :-1, :], indices

    monkeypatch.setattr(F, "max_pool2d", one_row_short)
    status, message = run(body)
    assert status == "failed"
    assert f"{LABEL}: expected [1, 1, 3, 3], got [1, 1, 2, 3], [1, 1, 3, 3]" in message


def test_conv_padding_off_by_one_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
  - id: conv
    op: conv2d
    args: {padding: 1}
    inputs: {input: {randn: [1, 2, 5, 5]}, weight: {randn: [3, 2, 3, 3]}}
    expect: {dtype: float32}
"""
    assert run(body)[0] == "passed"
    real = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda x, w, **kw: real(x, w, **{**kw, "padding": kw["padding"] + 1}))
    assert run(body) == ("failed", f"{LABEL}: expected [1, 3, 5, 5], got [1, 3, 7, 7]")


def test_a_geometry_the_arithmetic_rejects_but_the_call_accepts_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = """\
  - id: pool
    op: avg_pool2d
    args: {kernel_size: 2, padding: 2}
    inputs: {input: {randn: [1, 1, 4, 4]}}
    expect: {dtype: float32}
"""
    monkeypatch.setattr(F, "avg_pool2d", lambda x, **kw: torch.zeros(1, 1, 4, 4))
    status, message = run(body)
    assert status == "failed"
    assert message.startswith(
        f"{LABEL}: the arithmetic rejects this geometry (pooling padding must be at most"
    )
    assert message.endswith("but the call returned [1, 1, 4, 4]")


def test_layers_and_unmodelled_ops_get_no_shape_check(monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
  - id: seq
    layers:
      - {module: MaxPool2d, args: {kernel_size: 2}}
    inputs: {input: {randn: [1, 1, 4, 4]}}
    expect: {layer_shapes: [[1, 1, 2, 2]]}
"""
    assert run(body) == ("passed", "")
    monkeypatch.setattr(F, "relu", lambda x, **kw: x[..., :1])
    body = "  - id: r\n    op: relu\n    inputs: {input: {randn: [2, 3]}}\n    expect: {dtype: float32}\n"
    assert run(body) == ("passed", "")


CONVT = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": [2, 3], "padding": 1}


@pytest.mark.parametrize("input_shape", [(1, 2, 3, 4), (2, 3, 4)])
def test_conv_transpose_output_size_matches_torch_over_every_request(input_shape: tuple[int, ...]) -> None:
    """ConvTranspose2d.forward(x, output_size=...) against torch, over requests in and out of range, with and
    without the leading (N, C) dims, and a module output_padding the request overrides."""
    args = {**CONVT, "output_padding": 1}
    module = nn.ConvTranspose2d(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    x = torch.zeros(input_shape)
    lead = list(input_shape[:-2])
    for h, w in itertools.product(range(3, 9), range(8, 14)):
        for request in ([h, w], [*lead[:-1], 3, h, w]):
            kind, got = torch_outcome(lambda r=request: module(x, output_size=r))  # type: ignore[misc]
            try:
                ours: Any = call_output_shape(
                    module="ConvTranspose2d",
                    args=args,
                    input_shapes=[input_shape],
                    call_args={"output_size": request},
                )
            except GeometryError as exc:
                assert kind == exc.error_type == "ValueError", (request, kind, got, exc)
                continue
            assert kind == "ok" and tuple(got) == ours, (request, got, ours)


def test_call_args_the_arithmetic_does_not_model_make_it_step_aside() -> None:
    shapes = [(1, 2, 3, 4)]
    assert (
        call_output_shape(module="ConvTranspose2d", args=CONVT, input_shapes=shapes, call_args={"x": 1})
        is None
    )
    assert (
        call_output_shape(module="Conv2d", args=CONVT, input_shapes=shapes, call_args={"output_size": [5, 5]})
        is None
    )
    assert (
        call_output_shape(module="ConvTranspose2d", args={**CONVT, "unknown": 1}, input_shapes=shapes) is None
    )
    weight = (2, 3, 3, 3)
    assert (
        call_output_shape(op="conv_transpose2d", args={"stride": 2}, input_shapes=[shapes[0], weight])
        is not None
    )
    given = {"stride": 2, "output_size": [8, 8]}
    assert call_output_shape(op="conv_transpose2d", args=given, input_shapes=[shapes[0], weight]) is None
    assert (
        call_output_shape(op="max_pool2d", args={"kernel_size": 2, "new_arg": 1}, input_shapes=shapes) is None
    )


OUTPUT_SIZE_CASE = """
defaults: {{devices: [cpu]}}
cases:
  - id: convt-output-size
    module: ConvTranspose2d
    args: {{in_channels: 1, out_channels: 1, kernel_size: 3, stride: 2}}
    call_args: {{output_size: {request}}}
    inputs: {{input: {{randn: [1, 1, 2, 2]}}}}
    expect: {{shape: [1, 1, 6, 6]}}
"""


def test_a_conv_transpose_output_size_variant_passes_the_arithmetic() -> None:
    (variant,) = expand(load_text(OUTPUT_SIZE_CASE.format(request="[6, 6]"), "t.yaml").cases)
    row = run_variant(variant)
    assert row.status == "passed", row.message


def test_an_output_size_out_of_range_becomes_a_sweep_error_case() -> None:
    text = OUTPUT_SIZE_CASE.format(request="[6, 6]").replace(
        "    expect:", "    sweep: {call_args.output_size: [[6, 6], [7, 7]]}\n    expect:"
    )
    cases = load_text(text, "t.yaml").cases
    assert [c.spec.expect.error.type if c.spec.expect.error else None for c in cases] == [None, "ValueError"]
    assert all(run_variant(v).status == "passed" for v in expand(cases))
