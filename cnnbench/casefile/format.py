"""The case format as typed models: what every key of a case means, what it accepts, and how keys combine.

Validation lives in cnnbench.casefile (fields, tensors, this module, bench_format); cnnbench.casefile.load
turns YAML into these models and maps each validation error back to file:line. Nothing here imports torch.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cnnbench.casefile.budget import BYTES_PER_ELEMENT, format_bytes
from cnnbench.casefile.calls import ArgValue, ChainStep, check_modelled, expected_item
from cnnbench.casefile.fields import (
    CALLABLE_OPS,
    RAISE_BUDGET,
    Device,
    DType,
    MemoryFormat,
    Rules,
    RuleSpec,
    Shape,
    SpecModel,
    case_budget,
    check_id,
    check_regex,
    name_in,
)
from cnnbench.casefile.tensors import (
    RandnSpec,
    RandSpec,
    TensorSpec,
    literal_shape,
    tensor_args,
    tensor_shape,
)
from cnnbench.casefile.vocabulary import EXCEPTION_TYPES, MODULES

__all__ = [
    "DEFAULT_MAX_CASES",
    "MAX_TRAIN_STEPS",
    "MODULE_ONLY_EXPECT",
    "CaseSpec",
    "ChainStep",
    "DefaultsSpec",
    "ErrorSpec",
    "ExcludeSpec",
    "ExpectSpec",
    "LayerSpec",
    "RuleSpec",
    "SweepSpec",
    "ToleranceOverride",
    "ToleranceSpec",
    "TrainSpec",
    "case_tensors",
]


class ToleranceOverride(SpecModel):
    """Absolute and relative tolerance; a missing one takes the dtype's default."""

    atol: Annotated[float, Field(ge=0)] | None = None
    rtol: Annotated[float, Field(ge=0)] | None = None


def _tolerance_tag(value: Any) -> str:
    if isinstance(value, ToleranceOverride):
        return "flat"
    # Per dtype: every value is itself a mapping ({float16: {atol: ...}}); {atl: 1} is a flat one misspelt.
    if isinstance(value, dict) and value and not ({"atol", "rtol"} & set(value)):
        return "per_dtype" if all(isinstance(v, dict | ToleranceOverride) for v in value.values()) else "flat"
    return "flat"


ToleranceSpec = Annotated[
    Annotated[ToleranceOverride, Tag("flat")] | Annotated[dict[DType, ToleranceOverride], Tag("per_dtype")],
    Discriminator(_tolerance_tag),
]


class ErrorSpec(SpecModel):
    """The call must raise this exception type, with a message matching the regex (re.search)."""

    type: Annotated[str, name_in("exception type", EXCEPTION_TYPES)] = "Exception"
    match: Annotated[str, AfterValidator(check_regex)] | None = None


def _expected_output(value: Any, info: ValidationInfo) -> Any:
    """An expected output is one tensor literal, a tensor mapping, or a list of those (tuple outputs).

    Mappings become tensor specs here, so their keys are checked and their files located at load time.
    """
    if value is None:
        return None
    try:
        literal_shape(value)
        return value
    except ValueError as first:
        if isinstance(value, dict):
            return expected_item(value, info, "")
        if isinstance(value, list) and value and all(isinstance(v, list | dict) or v is None for v in value):
            return [expected_item(v, info, f"output[{i}]") for i, v in enumerate(value)]
        raise first


class ExpectSpec(SpecModel):
    """What the call must produce; every key given is checked."""

    output: Annotated[Any, AfterValidator(_expected_output)] = None
    shape: Shape | list[Shape] | None = None
    layer_shapes: list[Shape] | None = None
    state_shapes: dict[str, Shape] | None = None
    state: dict[str, TensorSpec] | None = None
    repr: str | None = None
    error: ErrorSpec | None = None
    dtype: DType | None = None
    reference: Annotated[
        Literal["numpy"] | None,
        Field(description="compare with the float64 NumPy reference (cnnbench/numerics/reference/)"),
    ] = None
    grad: Annotated[
        Literal["reference", "gradcheck"] | None,
        Field(description="check gradients: against the reference's backward, or torch.autograd.gradcheck"),
    ] = None
    match: Annotated[
        Literal["cpu"] | None, Field(description="an accelerator's result must agree with the CPU's")
    ] = None
    deterministic: Annotated[
        bool | None, Field(description="run twice; the outputs must be bitwise equal")
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> ExpectSpec:
        given = [k for k, v in self if v is not None]
        if not given:
            raise ValueError("expect is empty: give at least one of " + ", ".join(type(self).model_fields))
        if self.error is not None and len(given) > 1:
            raise ValueError(
                f"expect.error cannot be combined with {', '.join(k for k in given if k != 'error')}"
            )
        return self


#: The expectations a module (or layers) case without inputs may have: its build, not its call, shows them
#: (``error``: the constructor's own).
MODULE_ONLY_EXPECT = ("repr", "state_shapes", "state", "error")

#: Most optimiser steps a train: block may ask for: a training case is a check that must stay fast.
MAX_TRAIN_STEPS = 1000


class TrainSpec(SpecModel):
    """Optimiser steps run before the checks; ``expect.state`` then holds the learned parameters."""

    optimizer: Literal["SGD", "Adam", "RMSprop", "Adagrad"] = "SGD"
    lr: Annotated[float, Field(gt=0)]
    steps: Annotated[int, Field(ge=1, le=MAX_TRAIN_STEPS)]
    loss: Annotated[
        Literal["mse_sum", "mse", "cross_entropy"],
        Field(description="mse_sum: summed squared error; mse: its mean; cross_entropy: F.cross_entropy"),
    ] = "mse"
    target: TensorSpec
    momentum: Annotated[float, Field(ge=0)] | None = None
    weight_decay: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _momentum(self) -> TrainSpec:
        if self.momentum is not None and self.optimizer not in ("SGD", "RMSprop"):
            raise ValueError(f"momentum applies to SGD and RMSprop, not {self.optimizer}")
        return self


class LayerSpec(SpecModel):
    """One layer of a ``layers:`` stack (an nn.Sequential)."""

    module: Annotated[str, name_in("module", MODULES)]
    args: dict[str, Any] = Field(default_factory=dict)
    state: dict[str, TensorSpec] = Field(default_factory=dict)


class DefaultsSpec(SpecModel):
    """Keys merged into every case of the file; a case's own key wins, skip/xfail lists are concatenated."""

    devices: list[Device] | None = None
    dtypes: list[DType] | None = None
    tolerance: ToleranceSpec | None = None
    skip: Rules | None = None
    xfail: Rules | None = None
    mode: Literal["eval", "train"] | None = None
    seed: int | None = None
    source: str | None = None
    fill: Literal["exact"] | None = None
    trust: Literal["always"] | None = None
    memory_formats: list[MemoryFormat] | None = None


#: A sweep expands to at most this many combinations unless its case declares max_cases.
DEFAULT_MAX_CASES = 10_000


class ExcludeSpec(SpecModel):
    """A declared filter on a sweep: the combinations matching every where: value are left out, with a reason.

    With ``invalid: true`` it matches only combinations whose geometry PyTorch rejects (which otherwise become
    ``expect: {error: ...}`` cases).
    """

    where: Annotated[
        dict[str, Any], Field(description="sweep axis (as written in sweep:) -> one of its values")
    ] = Field(default_factory=dict)
    invalid: bool = False
    reason: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _selects(self) -> ExcludeSpec:
        if not self.where and not self.invalid:
            raise ValueError("an exclude rule needs where: {axis: value, ...}, invalid: true, or both")
        return self


class SweepSpec(SpecModel):
    """A case's sweep keys on their own, validated before the loader expands the sweep."""

    sweep: dict[str, list[Any]]
    max_cases: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MAX_CASES
    exclude: list[ExcludeSpec] = Field(default_factory=list)


class CaseSpec(SpecModel):
    """One declarative case: a call (op, module or layers), its inputs, and what it must produce."""

    id: Annotated[str, AfterValidator(check_id)]
    source: str | None = None
    note: str | None = None
    description: str | None = None
    op: Annotated[str, name_in("op", CALLABLE_OPS)] | None = None
    module: Annotated[str, name_in("module", (*MODULES, "Sequential"))] | None = None
    layers: Annotated[list[LayerSpec], Field(min_length=1)] | None = None
    chain: Annotated[
        list[ChainStep] | None,
        Field(min_length=1, description="functional ops in turn, each fed the previous one's outputs"),
    ] = None
    args: Annotated[
        dict[str, ArgValue],
        Field(
            description="keyword arguments of the op, or of the module's constructor; a tensor mapping "
            "({randn: [4]}, {data: [...]}) passes a tensor by keyword (op cases)"
        ),
    ] = Field(default_factory=dict)
    call_args: Annotated[
        dict[str, ArgValue],
        Field(description="keyword arguments of a module's forward call (ConvTranspose2d's output_size)"),
    ] = Field(default_factory=dict)
    inputs: dict[str, TensorSpec] = Field(default_factory=dict)
    state: dict[str, TensorSpec] = Field(default_factory=dict)
    mode: Literal["eval", "train"] = "eval"
    expect: ExpectSpec
    tolerance: ToleranceSpec | None = None
    skip: Rules = Field(default_factory=list)
    xfail: Rules = Field(default_factory=list)
    devices: Annotated[list[Device], Field(min_length=1)] = Field(default_factory=lambda: ["cpu", "cuda"])
    dtypes: Annotated[list[DType], Field(min_length=1)] = Field(default_factory=lambda: ["float32"])
    seed: int = 0
    # Expanded by the loader (cnnbench/casefile/sweep.py) into one case per combination; a loaded case has none of these.
    sweep: Annotated[
        dict[str, list[Any]] | None,
        Field(description="dotted key path into the case (args.kernel_size, inputs.input.randn) -> values"),
    ] = None
    max_cases: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    exclude: list[ExcludeSpec] | None = None
    fp32_precision: Annotated[
        Literal["ieee", "tf32", "default"] | None,
        Field(
            description="pin float32 convolutions and matmuls to IEEE or TF32 (default: the flags in force)"
        ),
    ] = None
    # The oracle keys (docs/case-format.md, "Independent oracles"); validated against the keys above.
    fill: Annotated[
        Literal["exact"] | None,
        Field(description="random inputs and parameters become integers whose every partial sum is exact"),
    ] = None
    trust: Annotated[
        Literal["always"] | None,
        Field(description="never report mistrusted (for ops where many zeros or equal values are the point)"),
    ] = None
    train: TrainSpec | None = None
    memory_formats: Annotated[
        list[MemoryFormat] | None,
        Field(min_length=1, description="one variant per format; channels_last must agree with contiguous"),
    ] = None

    @field_validator("expect")
    @classmethod
    def _oracle_exists(cls, value: ExpectSpec, info: ValidationInfo) -> ExpectSpec:
        """A reference or reference gradient asked for a call that has none: refused at load time."""
        from cnnbench.ops.catalog import MODULE_GAPS, traits
        from cnnbench.ops.lowering import GRADIENT_MODULES, GRADIENT_OPS, REFERENCE_MODULES, REFERENCE_OPS

        op, module = info.data.get("op"), info.data.get("module")
        for key, ops, modules, what in (
            ("reference", REFERENCE_OPS, REFERENCE_MODULES, "NumPy reference"),
            ("grad", GRADIENT_OPS, GRADIENT_MODULES, "reference gradient"),
        ):
            wanted = getattr(value, key)
            if wanted is None or (key == "grad" and wanted != "reference"):
                continue
            if info.data.get("layers") is not None or module == "Sequential":
                raise ValueError(f"{key}: {wanted} needs an op or a module case, not layers")
            if info.data.get("chain") is not None:
                raise ValueError(f"{key}: {wanted} needs an op or a module case, not a chain")
            if op is not None and op not in ops:
                why = traits(op).no_reference if key == "reference" else ""
                raise ValueError(
                    f'{key}: {wanted}: there is no {what} for op "{op}"'
                    + (f" ({why})" if why else f"; ops with one: {', '.join(sorted(ops))}")
                )
            if module is not None and module not in modules:
                why = MODULE_GAPS.get(module, "") if key == "reference" else ""
                raise ValueError(
                    f'{key}: {wanted}: there is no {what} for module "{module}"'
                    + (f" ({why})" if why else f"; modules with one: {', '.join(sorted(modules))}")
                )
            check_modelled(f"{key}: {wanted}", op, module, info.data.get("args") or {}, info.data.get("mode"))
        return value

    @field_validator("fill")
    @classmethod
    def _exact_possible(cls, value: str | None, info: ValidationInfo) -> str | None:
        """fill: exact that no density of non-zeros can make exact in one of the case's dtypes: refused."""
        if value is None or "expect" not in info.data or "dtypes" not in info.data:
            return value
        from cnnbench.casefile.exact import check_exact_fill

        data = info.data
        if data.get("chain") is not None:
            raise ValueError("fill: exact applies to an op, module or layers case, not a chain")
        check_exact_fill(
            data.get("op"),
            None if data.get("layers") is not None else data.get("module"),
            data.get("args") or {},
            data.get("inputs") or {},
            data.get("state") or {},
            data.get("mode") or "eval",
            data["dtypes"],
            data.get("devices") or (),
            data.get("fp32_precision"),
        )
        return value

    @model_validator(mode="after")
    def _oracle_keys(self) -> CaseSpec:
        if self.train is not None:
            if self.op is not None:
                raise ValueError("train: needs a module or layers case (an op has no parameters to learn)")
            mixed = [k for k in ("reference", "grad", "match", "deterministic") if getattr(self.expect, k)]
            if self.memory_formats is not None:
                mixed.append("memory_formats")
            if mixed or self.expect.error is not None:
                raise ValueError(f"train: cannot be combined with {', '.join(mixed) or 'expect.error'}")
        if self.memory_formats is not None and len(set(self.memory_formats)) != len(self.memory_formats):
            raise ValueError("memory_formats must not repeat")
        generated = [
            k for k, v in {**self.inputs, **self.state}.items() if isinstance(v, RandSpec | RandnSpec)
        ]
        if self.fill is not None and self.expect.output is not None and generated:
            raise ValueError(
                f"fill: exact replaces {', '.join(generated)}, so a written expect.output cannot hold; "
                "compare with reference: numpy instead"
            )
        return self

    @model_validator(mode="after")
    def _keyword_tensors(self) -> CaseSpec:
        """Tensors by keyword (args of an op, call_args of a module) and what they combine with."""
        if self.op is None and self.chain is None and tensor_args(self.args):
            names = ", ".join(tensor_args(self.args))
            raise ValueError(
                f"args: {names}: a module's constructor takes no tensors; set its parameters with state:"
            )
        if self.call_args and self.module in (None, "Sequential"):
            raise ValueError(
                "call_args: are the keyword arguments of a module's forward call; "
                + ("an op's keyword arguments go in args:" if self.op is not None else "layers: take none")
            )
        keyword = {**tensor_args(self.args), **tensor_args(self.call_args)}
        generated = [k for k, v in keyword.items() if isinstance(v, RandSpec | RandnSpec)]
        if self.fill is not None and generated:
            raise ValueError(
                f"fill: exact does not fill tensors passed by keyword ({', '.join(generated)}); "
                "pass them in inputs:, or write them as integer literals"
            )
        if self.expect.grad == "reference" and keyword:
            raise ValueError(
                f"grad: reference differentiates the positional inputs only; pass {', '.join(keyword)} "
                "in inputs: (in the op's order), or use grad: gradcheck"
            )
        if self.call_args and (self.expect.reference or self.expect.grad):
            raise ValueError(
                "reference and grad lower a module from its constructor arguments alone, which call_args "
                f"({', '.join(self.call_args)}) would change; compare with expect.output or shape instead"
            )
        return self

    @model_validator(mode="after")
    def _sweep_keys(self) -> CaseSpec:
        if self.sweep is None and (self.max_cases is not None or self.exclude is not None):
            raise ValueError("max_cases and exclude apply to a sweep: this case has no sweep")
        return self

    @model_validator(mode="after")
    def _one_callable(self) -> CaseSpec:
        if self.module == "Sequential" and self.layers is None:
            raise ValueError("module: Sequential needs its layers: list")
        given = [k for k in ("op", "module", "layers", "chain") if getattr(self, k) is not None]
        if given == ["module", "layers"] and self.module == "Sequential":
            given = ["layers"]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"a case needs exactly one of op, module, layers, chain (found: {found})")
        if self.expect.repr is not None and (self.op is not None or self.chain is not None):
            raise ValueError("expect.repr needs a module or layers, not a functional op")
        steps = self.layers if self.layers is not None else self.chain
        if self.expect.layer_shapes is not None and steps is None:
            raise ValueError("expect.layer_shapes needs layers: or chain:")
        shapes = self.expect.layer_shapes
        if shapes is not None and steps is not None and len(shapes) != len(steps):
            what = "layers" if self.layers is not None else "chain steps"
            raise ValueError(f"expect.layer_shapes has {len(shapes)} shapes for {len(steps)} {what}")
        if (self.op is not None or self.chain is not None) and self.state:
            raise ValueError("state: applies to module/layers cases; pass an op's tensors in inputs:")
        if self.chain is not None and (self.args or self.fill or self.train or self.expect.state_shapes):
            raise ValueError(
                "a chain's arguments go in each step's args:; fill, train and expect.state_shapes do not apply"
            )
        if not self.inputs:
            self._module_only()
        if len(set(self.devices)) != len(self.devices) or len(set(self.dtypes)) != len(self.dtypes):
            raise ValueError("devices and dtypes must not repeat")
        return self

    def _module_only(self) -> None:
        """A case without inputs builds its module and never calls it: only what a built module shows applies."""
        if self.op is not None or self.chain is not None:
            raise ValueError("inputs: is empty; an op or chain case needs at least one input tensor")
        called = [k for k, v in self.expect if v is not None and k not in MODULE_ONLY_EXPECT]
        extra = [k for k in ("train", "memory_formats") if getattr(self, k) is not None]
        extra += ["call_args"] if self.call_args else []
        if called or extra:
            keys = ", ".join([f"expect.{k}" for k in called] + extra)
            raise ValueError(
                f"inputs: is empty, so the module is built but never called; {keys} need(s) the call's input "
                f"(without inputs a case may expect only {', '.join(MODULE_ONLY_EXPECT)})"
            )

    @model_validator(mode="after")
    def _within_budget(self, info: ValidationInfo) -> CaseSpec:
        """All tensors of the case together within the memory budget, estimated from shapes alone."""
        budget = case_budget(info)
        tensors = case_tensors(self)
        total = sum(math.prod(shape) for _, shape in tensors) * BYTES_PER_ELEMENT
        if total > budget:
            biggest = sorted(tensors, key=lambda t: -math.prod(t[1]))
            listed = ", ".join(f"{name} {list(shape)}" for name, shape in biggest[:3])
            more = ", ..." if len(biggest) > 3 else ""
            raise ValueError(
                f"the tensors of this case need {format_bytes(total)} at {BYTES_PER_ELEMENT} bytes per element "
                f"({listed}{more}), over the memory budget of {format_bytes(budget)} per case" + RAISE_BUDGET
            )
        return self

    @property
    def target(self) -> str:
        """The name of what is called: the op, the module, or Sequential."""
        if self.layers is not None:
            return "Sequential"
        if self.chain is not None:
            return ">".join(step.op for step in self.chain)
        return self.op or self.module or "Sequential"


def _output_tensors(output: Any) -> list[tuple[str, Any]]:
    try:
        literal_shape(output)
    except ValueError:
        if isinstance(output, list):
            return [(f"expect.output[{i}]", item) for i, item in enumerate(output) if item is not None]
    return [("expect.output", output)]


def case_tensors(spec: CaseSpec) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor a validated case describes (inputs, state, expected values), by key path, with its shape."""
    named: list[tuple[str, Any]] = [(f"inputs.{k}", v) for k, v in spec.inputs.items()]
    named += [(f"args.{k}", v) for k, v in tensor_args(spec.args).items()]
    named += [(f"call_args.{k}", v) for k, v in tensor_args(spec.call_args).items()]
    named += [(f"state.{k}", v) for k, v in spec.state.items()]
    for i, layer in enumerate(spec.layers or []):
        named += [(f"layers[{i}].state.{k}", v) for k, v in layer.state.items()]
    for i, step in enumerate(spec.chain or []):
        named += [(f"chain[{i}].args.{k}", v) for k, v in tensor_args(step.args).items()]
    named += [(f"expect.state.{k}", v) for k, v in (spec.expect.state or {}).items()]
    if spec.train is not None:
        named.append(("train.target", spec.train.target))
    if spec.expect.output is not None:
        named += _output_tensors(spec.expect.output)
    return [(name, tensor_shape(value)) for name, value in named]
