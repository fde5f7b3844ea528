"""The ops ``cnnbench fuzz`` can target: those of the NumPy reference's registry whose family has a strategy."""

from __future__ import annotations

from collections.abc import Sequence

from cnnbench.errors import UsageError
from cnnbench.ops.catalog import traits

__all__ = ["FUZZ_FAMILIES", "NAMED_OPS", "NORM_OPS", "check_targets", "fuzz_targets"]

#: Op families with a generic strategy (every op of the family the reference covers can be fuzzed).
FUZZ_FAMILIES = frozenset(
    {
        "conv",
        "conv_transpose",
        "max_pool",
        "avg_pool",
        "adaptive_max_pool",
        "adaptive_avg_pool",
        "activation",
        "softmax",
    }
)
#: Normalisations each need their own strategy (their arguments differ): these have one.
NORM_OPS = frozenset({"batch_norm", "layer_norm", "group_norm", "instance_norm"})
#: Ops of other families with a strategy of their own (the resample family also holds pixel shuffle,
#: affine_grid and the upsample aliases, which interpolate's strategy does not generate).
NAMED_OPS = NORM_OPS | {"interpolate"}


def fuzz_targets() -> list[str]:
    """Every op the reference implements and a strategy can generate, sorted: derived from the registry, so an
    op added to the reference joins as soon as its family (or, for a norm or interpolate, its name) has a
    strategy."""
    from cnnbench.numerics.reference import REFERENCES

    return sorted(op for op in REFERENCES if traits(op).family in FUZZ_FAMILIES or op in NAMED_OPS)


def check_targets(targets: Sequence[str]) -> list[str]:
    """The targets, deduplicated in order; UsageError naming the valid ones for an unknown target."""
    valid = fuzz_targets()
    if not targets:
        raise UsageError("give one or more targets to fuzz; valid targets: " + ", ".join(valid))
    unknown = [t for t in targets if t not in valid]
    if unknown:
        raise UsageError(
            f"unknown fuzz target{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"valid targets: {', '.join(valid)}"
        )
    return list(dict.fromkeys(targets))
