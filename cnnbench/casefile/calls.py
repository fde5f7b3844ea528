"""The arguments of a call in the case format: keyword values (tensors by keyword among them), chain steps, and
the check that a reference models every argument it is given. Nothing here imports torch."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, ValidationInfo, WithJsonSchema

from cnnbench.casefile.fields import CALLABLE_OPS, SpecModel, name_in
from cnnbench.casefile.tensors import GENERATOR_KEYS, TensorSpec, literal_shape

__all__ = ["ArgValue", "ChainStep", "check_modelled", "expected_item"]


_TENSOR_ADAPTER: TypeAdapter[Any] = TypeAdapter(TensorSpec)


def expected_item(item: Any, info: ValidationInfo, where: str) -> Any:
    if item is None:
        return None
    if isinstance(item, dict):
        try:
            return _TENSOR_ADAPTER.validate_python(item, context=info.context)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            # The first part of the location is the union tag ("randn", "file", ...), not a key.
            keys = [str(p) for p in err["loc"][1:]]
            at = ".".join(p for p in (where, *keys) if p)
            if err["type"] == "extra_forbidden":
                message = f'unknown key "{keys[-1]}"'
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{at}: {message}" if at else message) from None
    try:
        literal_shape(item)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where else str(exc)) from None
    return item


def _argument(value: Any, info: ValidationInfo) -> Any:
    """An argument value: a mapping is a tensor passed by keyword (``weight: {randn: [4]}``), validated as one
    (no torch call takes a mapping); anything else is passed as written (lists become tuples when called)."""
    if isinstance(value, dict):
        return expected_item(value, info, "")
    return value


ArgValue = Annotated[
    Any,
    AfterValidator(_argument),
    WithJsonSchema(
        {
            "description": "a value as written (a list is passed as a tuple), or a tensor passed by keyword: "
            "a mapping with one of " + ", ".join(GENERATOR_KEYS) + " ({randn: [4], seed: 1}, {data: [1, 2]})"
        }
    ),
]
"""One keyword argument of a call: a value as written, or a tensor in one of its mapping forms."""


class ChainStep(SpecModel):
    """One step of a ``chain:``: a functional op called with the previous step's outputs (a tuple spread as
    positional arguments: max_pool2d's values and indices feed max_unpool2d), the first with the case's inputs."""

    op: Annotated[str, name_in("op", CALLABLE_OPS)]
    args: dict[str, ArgValue] = Field(default_factory=dict)


def check_modelled(what: str, op: str | None, module: str | None, args: dict[str, Any], mode: Any) -> None:
    """Every argument (value) of the call the reference computes must be one it models (cnnbench/ops/modelled.py):
    a module case is checked as the functional call it lowers to."""
    from cnnbench.ops.lowering import lower_module
    from cnnbench.ops.modelled import unmodelled

    where = op or ""
    if op is not None:
        target, call = op, args
    elif module is not None:
        try:
            lowered = lower_module(module, args, mode if mode in ("eval", "train") else "eval")
        except (ValueError, TypeError):
            return  # a module the constructor will refuse: PyTorch says why
        target, call = lowered.op, lowered.args
        where = f"{module} (as {target})"
    else:
        return
    problems = unmodelled(target, call)
    if problems:
        raise ValueError(
            f"{what}: the NumPy reference of {where} does not model "
            + "; ".join(problems)
            + ": leave the reference out (expect.output, shape, match) or use the arguments it models"
        )
