"""A generated configuration as a real case, checked by the runner that checks case files.

The case asks for ``reference: numpy`` (values against the float64 reference with the derived tolerances, the
output shape against the convolution arithmetic), or ``error:`` when the arithmetic (or the strategy) knows
PyTorch must reject the geometry. An error row whose cause is the reference itself raising is a cnnbench bug,
and is reported as such.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cnnbench.casefile.case_shape import case_output_shape
from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.variants import Case, Variant
from cnnbench.errors import CnnbenchError
from cnnbench.ops.geometry import GeometryError
from cnnbench.store.result import FAILING, Result

__all__ = ["FUZZ_FILE", "REFERENCE_BUG", "Checked", "case_dict", "check_case", "config_id", "reference_error"]

#: The file column of a generated configuration's row (it lives in no file until it is written).
FUZZ_FILE = "<fuzz>"
#: How a row whose reference raised starts its message.
REFERENCE_BUG = "cnnbench bug: the NumPy reference raised"
#: Case args the reference does not take (they change how torch returns a result, not what it computes).
_NOT_REFERENCE_ARGS = frozenset({"dtype", "inplace"})


class FuzzError(CnnbenchError):
    """A strategy produced a configuration the case format refuses: a bug in cnnbench's fuzzer."""


@dataclass(frozen=True)
class Checked:
    """One configuration as checked: its case dict, variant and row."""

    case: dict[str, Any]
    variant: Variant
    result: Result

    @property
    def failed(self) -> bool:
        """The row failed or errored (the fuzz found something)."""
        return self.result.status in FAILING

    @property
    def reference_bug(self) -> bool:
        """The failure is the reference raising: cnnbench's bug, not PyTorch's."""
        return self.result.message.startswith(REFERENCE_BUG)


def config_id(op: str, case: dict[str, Any]) -> str:
    """``fuzz-<op>-<12 hex digits>``: a stable id from the configuration's content."""
    body = {k: v for k, v in case.items() if k not in ("id", "note", "expect")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"fuzz-{op.replace('_', '-')}-{digest}"


def case_dict(call: Any, device: str) -> dict[str, Any]:
    """The case (as a case file writes it) of a strategies.Call on device, expecting the reference."""
    case: dict[str, Any] = {
        "id": "",
        "source": "fuzz",
        "op": call.op,
        "args": dict(call.args),
        "inputs": {k: dict(v) for k, v in call.inputs.items()},
        "seed": call.seed,
        "devices": [device],
        "dtypes": [call.dtype],
    }
    if call.exact:
        case["fill"] = "exact"
    if call.memory_format != "contiguous":
        case["memory_formats"] = [call.memory_format]
    case["expect"] = {"error": {"type": call.reject}} if call.reject else {"reference": "numpy"}
    case["id"] = config_id(call.op, case)
    return case


def _validate(case: dict[str, Any], max_case_bytes: int) -> CaseSpec:
    return CaseSpec.model_validate(case, context={"base_dir": None, "max_case_bytes": max_case_bytes})


def _rejecting(case: dict[str, Any], error_type: str, why: str) -> dict[str, Any]:
    out = {k: v for k, v in case.items() if k != "fill"}
    out["expect"] = {"error": {"type": error_type}}
    out["note"] = f"PyTorch must reject this geometry ({why})"
    return out


def resolve_case(case: dict[str, Any], max_case_bytes: int) -> tuple[dict[str, Any], CaseSpec]:
    """The case as it must be checked, and its spec: fill: exact dropped where no density makes it exact, and
    an error expected where the convolution arithmetic rejects the geometry (as a sweep does)."""
    try:
        spec = _validate(case, max_case_bytes)
    except ValidationError as exc:
        if "fill" not in case:
            raise FuzzError(f"the fuzzer generated a case the format refuses: {exc}\n{case}") from None
        case = {k: v for k, v in case.items() if k != "fill"}
        return resolve_case(case, max_case_bytes)
    if spec.expect.error is not None:
        return case, spec
    try:
        case_output_shape(spec)
    except GeometryError as exc:
        case = _rejecting(case, exc.error_type, str(exc))
        return case, _validate(case, max_case_bytes)
    return case, spec


def reference_error(spec: CaseSpec, dtype: str) -> str | None:
    """What the reference raises on the case's float64 inputs (the very values of the variant), or None."""
    from cnnbench.numerics.reference import REFERENCES
    from cnnbench.numerics.subject import case_inputs

    if spec.op is None or spec.op not in REFERENCES or spec.expect.reference is None:
        return None
    try:
        arrays = [t.detach().to("cpu").numpy().copy() for t in case_inputs(spec, "float64", "cpu", dtype)]
        args = {k: v for k, v in spec.args.items() if k not in _NOT_REFERENCE_ARGS}
        REFERENCES[spec.op](*arrays, **args)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_case(case: dict[str, Any], max_case_bytes: int, file: str = FUZZ_FILE) -> Checked:
    """Run the case's one variant through numerics.runner.run_check; an error that is the reference raising
    is re-labelled as cnnbench's bug (naming the reference), never blamed on PyTorch."""
    from cnnbench.numerics.runner import run_check

    case, spec = resolve_case(case, max_case_bytes)
    fmt = spec.memory_formats[0] if spec.memory_formats else "contiguous"
    variant = Variant(Case(spec, file, 1), spec.devices[0], spec.dtypes[0], fmt)
    result = run_check(variant)
    if result.status == "error":
        raised = reference_error(spec, variant.dtype)
        if raised is not None:
            result.message = (
                f"{REFERENCE_BUG} (cnnbench.numerics.reference.{spec.op}): {raised}; "
                f"PyTorch is not at fault\n{result.message}"
            )
            result.metrics["reference_error"] = True
    return Checked(case, variant, result)
