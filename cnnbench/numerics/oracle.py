"""Independent oracles for a variant: the float64 NumPy reference (computed and cached by reference_cache) and its
gradients, gradcheck, and the cross-checks (match: cpu, memory formats, determinism)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.autograd.gradcheck import GradcheckError

from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.variants import Variant
from cnnbench.numerics.checks import Check, check_close
from cnnbench.numerics.precision import variant_compute_precision
from cnnbench.numerics.reference_cache import Reference as _Reference
from cnnbench.numerics.reference_cache import clear_cache, finite_scale
from cnnbench.numerics.reference_cache import reference_call as _reference_call
from cnnbench.numerics.reference_cache import reference_for as _reference
from cnnbench.numerics.reference_cache import to_numpy as _numpy
from cnnbench.numerics.subject import (
    Builder,
    Subject,
    exact_plan,
    first_output,
)
from cnnbench.numerics.tolerance import ZERO, Tolerance, reference_tolerance, with_override
from cnnbench.ops.catalog import traits
from cnnbench.ops.exact import ExactPlan
from cnnbench.ops.lowering import (
    gradient_lengths,
    lower_module,
    parameter_shapes,
    reduction_length,
    spatial_dims,
)
from cnnbench.ops.precision import UNIT_ROUNDOFF, math_kind, narrows
from cnnbench.store.result import Result

__all__ = [
    "GRAD_OUTPUT_SEED",
    "MISTRUST_ZERO_FRACTION",
    "clear_cache",
    "mistrust",
    "oracle_checks",
    "skip_reason",
]

#: A passing check whose expected values are more than this fraction zero cannot tell a right kernel from one
#: that writes zeros: it is reported mistrusted. benchdnn's trust level for non-zero outputs is the same 0.3.
MISTRUST_ZERO_FRACTION = 0.3
#: Seed of the random grad_output a gradient check back-propagates (added to the case's seed).
GRAD_OUTPUT_SEED = 1234
#: gradcheck compares full Jacobians up to this many input elements, and random projections (fast mode) above.
_GRADCHECK_FULL_NUMEL = 2000


# ---------------------------------------------------------------------------------------------------------
# tolerances, trust and the float64 cross-check
# ---------------------------------------------------------------------------------------------------------


def _tolerance(
    spec: CaseSpec,
    plan: ExactPlan | None,
    op: str,
    dtype: str,
    k: int,
    scale: float,
    input_scale: float,
    compute_precision: str | None = None,
    term_norm: float | None = None,
) -> Tolerance:
    if dtype not in UNIT_ROUNDOFF:
        return ZERO
    if plan is not None and plan.zero_tolerance:
        base = ZERO
    else:
        base = reference_tolerance(
            op, dtype, k, scale, input_scale, compute_precision=compute_precision, term_norm=term_norm
        )
    return with_override(base, dtype, spec.tolerance)


def _term_norm(op: str, args: dict[str, Any], positional: Sequence[np.ndarray | None]) -> float | None:
    """The largest 2-norm of one output element's products |a_i w_i| of a convolution or linear call: the
    op applied in float64 to the squared input and weight (no bias), square-rooted; None for other ops."""
    from cnnbench.numerics.reference import REFERENCES

    if math_kind(op) == "none" or op not in REFERENCES or len(positional) < 2:
        return None
    x, w = positional[0], positional[1]
    if x is None or w is None:
        return None
    squares = np.asarray(REFERENCES[op](np.square(x), np.square(w), None, **args))
    finite = squares[np.isfinite(squares)]  # non-finite inputs are judged by their own rules, not this term
    return float(np.sqrt(finite.max())) if finite.size else 0.0


def _precision_terms(variant: Variant, op: str, ref: _Reference | None) -> tuple[str | None, float | None]:
    """The variant's compute precision, and its term norm where that precision narrows the dtype."""
    precision = variant_compute_precision(variant)
    if ref is None or not narrows(variant.dtype, precision):
        return precision, None
    return precision, _term_norm(op, ref.args, ref.positional)


def mistrust(expected: np.ndarray | torch.Tensor) -> str:
    """Why a comparison against expected cannot discriminate, or '' when it can.

    More than MISTRUST_ZERO_FRACTION zeros: a kernel that writes zeros passes most of it. All values equal: a
    kernel that broadcasts one value passes all of it.
    """
    if isinstance(expected, torch.Tensor):
        values = expected.detach().to("cpu", torch.float64).numpy()
    else:
        values = np.asarray(expected)
    if values.size == 0:
        return "the expected tensor is empty"
    zeros = float(np.count_nonzero(values == 0)) / values.size
    if zeros > MISTRUST_ZERO_FRACTION:
        return f"{zeros:.0%} of the expected values are zero"
    flat = values.reshape(-1)
    if flat.size > 1 and bool(np.all(flat == flat[0])):
        return f"every expected value equals {float(flat[0]):g}"
    return ""


def _outputs(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def _run(subject: Subject) -> Any:
    with torch.no_grad():
        return subject.fn(*subject.inputs)


def _diagnose(
    check: Check,
    got: torch.Tensor,
    ref: np.ndarray,
    dtype: str,
    build: Builder,
    tol64: Tolerance,
    result: Result | None,
) -> Check:
    """OpInfo's "reference was more accurate" check for a low-precision miss: run torch in float64 too."""
    if check.passed:
        return check
    if dtype == "float64":
        return dataclasses.replace(
            check, message=check.message + "\n  (float64: torch itself disagrees with the float64 reference)"
        )
    if dtype not in UNIT_ROUNDOFF:
        return check
    t64 = first_output(_run(build("cpu", "float64", "contiguous"))).detach().to("cpu", torch.float64)
    want = torch.from_numpy(ref)
    got64 = got.detach().to("cpu", torch.float64)
    torch_vs_ref = float((t64 - want).abs().max()) if t64.numel() and t64.shape == want.shape else math.inf
    low_vs_t64 = float((got64 - t64).abs().max()) if got64.numel() and got64.shape == t64.shape else math.inf
    low_vs_ref = check.max_abs_err if check.max_abs_err is not None else math.inf
    agree = check_close("torch float64", t64, want, tol64).passed
    if agree:
        verdict = f"torch in float64 agrees with the reference, so the {dtype} result is genuinely off"
    elif low_vs_t64 < low_vs_ref:
        verdict = (
            f"torch in float64 disagrees with the reference too, and the {dtype} result is closer to torch: "
            "the definitions differ (a bug in every dtype, or in the reference)"
        )
    else:
        verdict = "torch in float64 disagrees with the reference, and so does this result"
    if result is not None:
        result.metrics.update(
            torch_float64_vs_reference_max_abs_err=torch_vs_ref,
            vs_torch_float64_max_abs_err=low_vs_t64,
            vs_reference_max_abs_err=low_vs_ref,
            low_precision_genuinely_off=agree,
        )
    note = (
        f"\n  float64 cross-check: this {dtype} result is {low_vs_ref:.3g} from the reference and {low_vs_t64:.3g} "
        f"from torch float64; torch float64 is {torch_vs_ref:.3g} from the reference: {verdict}"
    )
    return dataclasses.replace(check, message=check.message + note)


def _check_indices(
    label: str, got: Any, values: Any, ref: np.ndarray, pooled: torch.Tensor, nd: int
) -> Check:
    """Pooling indices: equal to the reference's in float64; elsewhere (rounding can create ties) they must
    point at elements of the variant's own input holding the values returned."""
    if not isinstance(got, torch.Tensor):
        return Check(False, f"{label}: expected a tensor, got {type(got).__name__}")
    if pooled.dtype == torch.float64:
        return check_close(label, got, torch.from_numpy(ref), ZERO)
    flat_in = pooled.detach().flatten(start_dim=-nd)
    index = got.detach().to(flat_in.device).flatten(start_dim=-nd)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= flat_in.shape[-1]):
        return Check(False, f"{label}: an index is out of range [0, {flat_in.shape[-1]})")
    gathered = flat_in.gather(-1, index).reshape(values.shape)
    return check_close(f"{label} (the input at the indices)", gathered, values, ZERO)


# ---------------------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------------------


def _trusted(check: Check, label: str, expected: Any, spec: CaseSpec) -> Check:
    if spec.trust == "always" or not check.passed:
        return check
    note = mistrust(expected)
    return dataclasses.replace(check, mistrust=f"{label}: {note}") if note else check


def _reference_checks(
    variant: Variant, subject: Subject, out: Any, build: Builder, result: Result | None
) -> list[Check]:
    spec = variant.case.spec
    dtype = variant.dtype
    ref = _reference(spec, build)
    plan = exact_plan(spec, dtype)
    if result is not None:
        result.metrics["reduction_length"] = ref.k
        if plan is not None and plan.nonzeros is not None:
            result.metrics["exact_nonzeros"] = plan.nonzeros
    precision, term_norm = _precision_terms(variant, ref.op, ref)
    if result is not None and term_norm is not None:
        result.metrics["term_norm"] = term_norm
    got_all = _outputs(out)
    if len(got_all) != len(ref.outputs):
        return [
            Check(
                False,
                f"reference: the call returned {len(got_all)} tensors, the reference {len(ref.outputs)}",
            )
        ]
    checks = []
    for i, (got, want) in enumerate(zip(got_all, ref.outputs, strict=True)):
        label = "reference output" if len(got_all) == 1 else f"reference output[{i}]"
        if not isinstance(got, torch.Tensor):
            checks.append(Check(False, f"{label}: expected a tensor, got {type(got).__name__}"))
        elif not np.issubdtype(want.dtype, np.floating):
            checks.append(
                _check_indices(label, got, got_all[0], want, subject.inputs[0], spatial_dims(ref.op))
            )
        else:
            scale = finite_scale(want)
            tol = _tolerance(spec, plan, ref.op, dtype, ref.k, scale, ref.input_scale, precision, term_norm)
            check = check_close(label, got, torch.from_numpy(want), tol)
            tol64 = _tolerance(spec, None, ref.op, "float64", ref.k, scale, ref.input_scale)
            check = _diagnose(check, got, want, dtype, build, tol64, result)
            checks.append(_trusted(check, label, want, spec))
    for name, want in ref.state.items():
        got_state = _state_tensor(spec, subject, name)
        label = f"reference state {name}"
        if got_state is None:
            checks.append(Check(False, f"{label}: the call has no {name} to compare"))
            continue
        scale = finite_scale(want)
        tol = _tolerance(spec, None, ref.op, dtype, ref.k, scale, ref.input_scale)
        checks.append(check_close(label, got_state, torch.from_numpy(want), tol))
    return checks


def _state_tensor(spec: CaseSpec, subject: Subject, name: str) -> torch.Tensor | None:
    """A statistic the call updated: a module buffer, or an op's running_mean/running_var input."""
    if subject.module is not None:
        value = getattr(subject.module, name, None)
        return value if isinstance(value, torch.Tensor) else None
    position = {"running_mean": 1, "running_var": 2}[name]
    return subject.inputs[position] if len(subject.inputs) > position else None


def _positional_names(op: str) -> list[str]:
    from cnnbench.numerics.reference import REFERENCES

    return list(inspect.signature(REFERENCES[op]).parameters)


def _grad_reference_checks(variant: Variant, build: Builder, result: Result | None) -> list[Check]:
    from cnnbench.numerics.reference import GRADIENTS

    spec = variant.case.spec
    dtype = variant.dtype
    ref = _reference(spec, build)
    subject = build(variant.device, dtype, variant.memory_format)
    leaves: dict[str, torch.Tensor] = {}
    with torch.enable_grad():
        if subject.module is None:
            names = _positional_names(ref.op)
            for name, t in zip(names, subject.inputs, strict=False):
                # Running statistics are updated in place, not differentiated.
                if t.is_floating_point() and name not in ("running_mean", "running_var"):
                    t.requires_grad_(True)
                    leaves[name] = t
        else:
            subject.inputs[0].requires_grad_(True)
            leaves["input"] = subject.inputs[0]
            for name in ("weight", "bias"):
                param = getattr(subject.module, name, None)
                if isinstance(param, nn.Parameter) and param.requires_grad:
                    param.grad = None
                    leaves[name] = param
        out = first_output(subject.fn(*subject.inputs))
        gen = torch.Generator().manual_seed(GRAD_OUTPUT_SEED + spec.seed)
        grad_output = torch.randn(tuple(out.shape), generator=gen, dtype=torch.float64)
        out.backward(grad_output.to(device=out.device, dtype=out.dtype))
    positional = list(ref.positional)
    # The backward routes the gradient by comparing values (argmax, sign): the reference gradient is computed
    # from the variant's own rounded inputs, because rounding can create ties that change the route.
    if traits(ref.op).routes_gradient and dtype != "float64":
        positional[0] = _numpy(subject.inputs[0])
    work = [None if a is None else a.copy() for a in positional]
    expected = GRADIENTS[ref.op](grad_output.numpy(), *work, **ref.args)
    shapes = [None if a is None else tuple(a.shape) for a in positional]
    lengths = gradient_lengths(ref.op, ref.args, shapes, tuple(out.shape))
    checks = []
    for name, want in expected.items():
        label = f"gradient {name}"
        if name not in leaves:
            continue
        got = leaves[name].grad
        if got is None:
            checks.append(Check(False, f"{label}: torch computed no gradient"))
            continue
        scale = finite_scale(want)
        k = lengths.get(name, lengths.get("input", 1))
        tol = with_override(
            reference_tolerance(
                ref.op,
                dtype,
                k,
                scale,
                ref.input_scale * max(scale, 1.0),
                exact_data_movement=False,
                compute_precision=variant_compute_precision(variant),
            ),
            dtype,
            spec.tolerance,
        )
        check = check_close(label, got, torch.from_numpy(np.asarray(want)), tol)
        checks.append(_trusted(check, label, want, spec))
    if not checks:
        checks.append(Check(False, "gradient: the call has no floating input or parameter to differentiate"))
    if result is not None:
        result.metrics["gradient_lengths"] = {k: v for k, v in lengths.items() if k in leaves}
    return checks


def _gradcheck(variant: Variant, build: Builder) -> Check:
    subject = build(variant.device, "float64", variant.memory_format)
    inputs = subject.inputs
    if subject.module is None:
        floating = [i for i, t in enumerate(inputs) if t.is_floating_point()]

        def fn(*leaves: torch.Tensor) -> Any:
            args = list(inputs)
            for i, leaf in zip(floating, leaves, strict=True):
                args[i] = leaf
            return subject.fn(*args)

        leaves = tuple(inputs[i].detach().clone().requires_grad_(True) for i in floating)
    else:
        module = subject.module
        # The module's own parameters are gradcheck's inputs: it perturbs them in place and differentiates
        # with respect to them (torch.func.functional_call would re-bind them per call, ten times slower).
        params = tuple(p for p in module.parameters() if p.requires_grad)

        def fn(*leaves: torch.Tensor) -> Any:
            return module(leaves[0], *inputs[1:])

        leaves = (inputs[0].detach().clone().requires_grad_(True), *params)
    numel = sum(t.numel() for t in leaves)
    try:
        torch.autograd.gradcheck(fn, leaves, fast_mode=numel > _GRADCHECK_FULL_NUMEL)
    except GradcheckError as exc:
        lines = str(exc).strip().splitlines()
        return Check(False, "gradcheck: " + "\n  ".join(lines[:12]))
    return Check(True)


def _agree(
    label: str, got: Any, want: Any, variant: Variant, subject: Subject, build: Builder
) -> list[Check]:
    """Two torch results of the same case: equal within the dtype's scaled tolerance (zero with exact fill),
    widened for the variant's compute precision where it narrows the dtype (TF32 against the CPU's IEEE)."""
    spec, dtype = variant.case.spec, variant.dtype
    plan = exact_plan(spec, dtype)
    op, k = _call_length(spec, subject)
    precision, term_norm = variant_compute_precision(variant), None
    if narrows(dtype, precision) and (spec.op is not None or spec.module is not None):
        try:
            ref_op, ref_args, tensors, _ = _reference_call(spec, build("cpu", "float64", "contiguous"))
            term_norm = _term_norm(ref_op, ref_args, [_numpy(t) for t in tensors])
        except (ValueError, TypeError, KeyError):
            term_norm = None
    got_all, want_all = _outputs(got), _outputs(want)
    if len(got_all) != len(want_all):
        return [Check(False, f"{label}: {len(got_all)} outputs against {len(want_all)}")]
    checks = []
    for i, (g, w) in enumerate(zip(got_all, want_all, strict=True)):
        name = label if len(got_all) == 1 else f"{label} output[{i}]"
        if not isinstance(g, torch.Tensor) or not isinstance(w, torch.Tensor):
            continue
        w_cpu = w.detach().to("cpu")
        if not w_cpu.is_floating_point():
            checks.append(check_close(name, g, w_cpu, ZERO))
            continue
        scale = finite_scale(w_cpu.to(torch.float64).numpy())
        tol = _tolerance(spec, plan, op, dtype, k, scale, scale, precision, term_norm)
        checks.append(_trusted(check_close(name, g, w_cpu, tol), name, w_cpu, spec))
    return checks


def _call_length(spec: CaseSpec, subject: Subject) -> tuple[str, int]:
    """The op a case computes (its lowering for a module) and its reduction length; for layers, the sum of
    the layers' lengths (their errors add up through the stack)."""
    if spec.op is not None:
        return spec.op, reduction_length(spec.op, spec.args, [tuple(t.shape) for t in subject.inputs])
    layers = spec.layers if spec.layers is not None else []
    calls = [(layer.module, layer.args) for layer in layers] or [(spec.module or "", spec.args)]
    first_op, total = "", 0
    for module, args in calls:
        try:
            lowered = lower_module(module, args, spec.mode)
            shapes = parameter_shapes(module, args)
        except (ValueError, TypeError):
            total += 1
            continue
        first_op = first_op or lowered.op
        input_shape = tuple(subject.inputs[0].shape) if subject.inputs and not spec.layers else None
        total += reduction_length(lowered.op, lowered.args, [input_shape, shapes.get("weight")])
    op = first_op if spec.layers is None else "Sequential"
    return op or (spec.module or "Sequential"), max(total, 1)


def _bitwise(label: str, first: Any, second: Any) -> Check:
    """Equal bytes, output by output (NaNs with equal payloads compare equal)."""
    for i, (a, b) in enumerate(zip(_outputs(first), _outputs(second), strict=False)):
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            continue
        a_cpu, b_cpu = a.detach().to("cpu").contiguous(), b.detach().to("cpu").contiguous()
        same = a_cpu.shape == b_cpu.shape and a_cpu.dtype == b_cpu.dtype
        if same and a_cpu.numel():
            same = bool(torch.equal(a_cpu.reshape(-1).view(torch.uint8), b_cpu.reshape(-1).view(torch.uint8)))
        if not same:
            diff = ""
            if a_cpu.shape == b_cpu.shape and a_cpu.is_floating_point():
                delta = (a_cpu.double() - b_cpu.double()).abs()
                diff = f" ({int((delta > 0).sum())} elements differ, max abs diff {float(delta.max()):.3g})"
            return Check(False, f"{label}: output[{i}] of two runs is not bitwise equal{diff}")
    return Check(True)


def oracle_checks(
    variant: Variant, subject: Subject, out: Any, build: Builder, result: Result | None = None
) -> list[Check]:
    """Every oracle check the case asks for, on the variant's output out (its forward already ran)."""
    spec = variant.case.spec
    expect = spec.expect
    checks: list[Check] = []
    if expect.reference is not None:
        checks.extend(_reference_checks(variant, subject, out, build, result))
    if expect.grad == "reference":
        checks.extend(_grad_reference_checks(variant, build, result))
    elif expect.grad == "gradcheck":
        checks.append(_gradcheck(variant, build))
    if expect.match == "cpu" and variant.device.split(":")[0] != "cpu":
        cpu_out = _run(build("cpu", variant.dtype, variant.memory_format))
        checks.extend(_agree("match cpu", out, cpu_out, variant, subject, build))
    if variant.memory_format != "contiguous":
        if result is not None:
            result.metrics["memory_format"] = variant.memory_format
        base = _run(build(variant.device, variant.dtype, "contiguous"))
        checks.extend(_agree(f"{variant.memory_format} vs contiguous", out, base, variant, subject, build))
    if expect.deterministic:
        again = _run(build(variant.device, variant.dtype, variant.memory_format))
        checks.append(_bitwise("deterministic", out, again))
    return checks


def skip_reason(variant: Variant) -> str | None:
    """Why an oracle cannot run this variant at all, or None."""
    expect = variant.case.spec.expect
    if expect.grad == "gradcheck" and variant.dtype != "float64":
        return "grad: gradcheck runs in float64 only"
    if expect.grad == "reference" and variant.dtype not in UNIT_ROUNDOFF:
        return f"grad: reference needs a floating dtype, not {variant.dtype}"
    others = [k for k, v in expect if v not in (None, False) and k != "match"]
    on_cpu = variant.device.split(":")[0] == "cpu" and variant.memory_format == "contiguous"
    if expect.match == "cpu" and not others and on_cpu:
        return "match: cpu compares an accelerator with the CPU; this variant is the CPU baseline"
    return None
