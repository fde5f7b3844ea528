"""The op catalog is the one list of ops: the vocabulary, the reference, the lowering and the rules all agree with it."""

from __future__ import annotations

import pytest

from cnnbench.casefile.vocabulary import FUNCTIONAL_OPS, MODULES, TORCH_OPS
from cnnbench.numerics.reference import GRADIENTS, REFERENCES
from cnnbench.ops.arithmetic import expected_output_shape
from cnnbench.ops.catalog import FAMILIES, MODULE_OPS, OPS, is_op, module_op, ops_where, traits
from cnnbench.ops.exact import AVERAGE_OPS, SELECT_OPS, SUM_OPS
from cnnbench.ops.geometry import SHAPE_OPS
from cnnbench.ops.lowering import LOWERINGS, REFERENCE_OPS


def test_vocabulary_is_the_catalog() -> None:
    assert set(FUNCTIONAL_OPS) | set(TORCH_OPS) == set(OPS)
    assert not FUNCTIONAL_OPS & TORCH_OPS


def test_reference_flags_match_the_reference_registry() -> None:
    assert ops_where(lambda t: t.reference) == set(REFERENCES) == REFERENCE_OPS
    assert ops_where(lambda t: t.gradient) == set(GRADIENTS)


def test_every_lowered_module_is_in_the_vocabulary_and_lowers_to_a_reference_op() -> None:
    assert set(MODULE_OPS) == set(LOWERINGS)
    assert set(MODULE_OPS) <= set(MODULES)
    assert all(traits(op).reference for op in MODULE_OPS.values())
    assert module_op("Conv2d") == "conv2d" and module_op("Unflatten") is None and module_op(None) is None


def test_every_family_is_used_and_nd_ops_carry_their_dims() -> None:
    assert {t.family for t in OPS.values()} == set(FAMILIES)
    for name, t in OPS.items():
        if name.endswith(("1d", "2d", "3d")) and t.family != "activation":
            assert t.nd == int(name[-2]), name


def test_exactness_rules_partition_the_exact_fill_ops() -> None:
    assert {f"conv{n}d" for n in (1, 2, 3)} | {f"conv_transpose{n}d" for n in (1, 2, 3)} | {
        "linear"
    } == SUM_OPS
    assert not (SUM_OPS & SELECT_OPS) and not (SELECT_OPS & AVERAGE_OPS)
    assert "relu" in SELECT_OPS and "avg_pool2d" in AVERAGE_OPS and "sigmoid" not in SUM_OPS | SELECT_OPS
    assert all(traits(op).has_weight for op in SUM_OPS)


@pytest.mark.parametrize("op", sorted(ops_where(lambda t: t.shape_rule)))
def test_every_op_with_a_shape_rule_has_its_arithmetic(op: str) -> None:
    assert op in SHAPE_OPS
    nd = traits(op).nd
    shape = (1, 2, *([5] * nd))
    args: dict[str, object]
    if traits(op).family in ("conv", "conv_transpose"):
        args = {"weight_shape": (2, 2, *([3] * nd))}
    elif traits(op).family.startswith("adaptive"):
        args = {"output_size": 2}
    else:
        args = {"kernel_size": 2}
    out = expected_output_shape(op, shape, args)
    assert out is not None and len(out) == len(shape)


def test_unknown_names_claim_nothing() -> None:
    assert not is_op("conv4d") and not is_op(None)
    t = traits("conv4d")
    assert (t.family, t.nd, t.exactness, t.reference, t.shape_rule) == ("arithmetic", 0, None, False, False)
