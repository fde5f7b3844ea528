"""Kernel bugs of each class issue 17 names (half-precision accumulation, careless softmax, wrong norms and
activations, ties, non-integer scales, flush-to-zero, nondeterminism, an NHWC batch-norm kernel), injected below
the Python API by tests/kernel_faults.py in a subprocess: the bundled cases must pass unpatched and at least two
independent cases must catch each fault."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repo import REPO

TESTS = Path(__file__).resolve().parents[1]

#: fault (tests/kernel_faults.py FAULTS) -> bundled cases that must catch it
MUST_CATCH: dict[str, set[str]] = {
    "half conv accumulates in its dtype": {"acc-conv2d-k9216-ones", "acc-conv1d-k4096-pointwise"},
    "half linear accumulates in its dtype": {"acc-linear-k4096-ones", "acc-linear-k9216-ones"},
    "softmax without max subtraction": {
        "hard-softmax-large-logits",
        "hard-log-softmax-large-logits",
        "hard-softmax-reference-overflow-range",
        "fwd-cross-entropy-large-logits",
        "fwd-softmin-large",
    },
    "layer_norm eps outside the sqrt": {"fwd-layer-norm-large-eps", "fwd-module-layernorm-2d-large-eps"},
    "group_norm normalises per channel": {
        "fwd-group-norm-two-groups",
        "fwd-module-groupnorm-affine-eps",
        "fwd-module-groupnorm-one-group",
    },
    "gelu ignores approximate": {"fwd-gelu-erf", "fwd-module-gelu-both"},
    "hardtanh/relu6 no upper clamp": {
        "fwd-relu6-beyond-bounds",
        "fwd-hardtanh-default-bounds",
        "fwd-hardtanh-custom-bounds",
        "fwd-module-relu6",
        "fwd-module-hardtanh",
    },
    "max_pool2d picks the last tied max": {
        "ties-maxpool2d-indices",
        "ties-maxpool2d-grad",
        "ties-module-maxpool2d-grad-batch",
    },
    "conv weight grad of the first sample": {
        "grad-conv2d-weight-batch4",
        "grad-module-conv1d-weight-batch3",
        "ref-grad-conv2d",
    },
    "upsample ignores a non-integer scale": {
        "scale-nearest-1.3",
        "scale-bilinear-1.5",
        "scale-bilinear-down-0.6",
        "scale-module-upsample-nearest-1.7",
    },
    "pool/relu flush denormals": {
        "hard-maxpool-subnormals",
        "hard-relu-avgpool-subnormals",
        "hard-relu-subnormals-half",
    },
    "conv float32 nondeterministic": {"det-conv1d", "det-conv2d-strided", "ref-cross-conv2d-formats"},
    "channels_last batch norm ignores eps": {
        "cross-batchnorm-eval-formats-eps",
        "cross-batchnorm-train-formats-eps",
    },
}
#: Cases run beside the fault that must keep passing: the fault is exactly the bug, not any change.
MUST_PASS: dict[str, set[str]] = {
    "upsample ignores a non-integer scale": {"scale-nearest-1.3-recompute", "scale-bilinear-1.5-recompute"},
    "gelu ignores approximate": {"fwd-gelu-tanh", "fwd-module-gelu-tanh"},
}


@functools.cache
def _report(tmp: str) -> dict[str, Any]:
    spec = {
        "paths": [str(REPO / "cases" / "reference")],
        "faults": {name: sorted(ids | MUST_PASS.get(name, set())) for name, ids in MUST_CATCH.items()},
    }
    path = Path(tmp) / "spec.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, str(TESTS / "kernel_faults.py"), str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _report(str(tmp_path_factory.mktemp("kernel_faults")))


@pytest.mark.parametrize("fault", sorted(MUST_CATCH))
def test_at_least_two_cases_catch_the_kernel_fault(fault: str, report: dict[str, Any]) -> None:
    must_catch = MUST_CATCH[fault]
    result = report[fault]
    assert set(result["found"]) == must_catch | MUST_PASS.get(fault, set()), "every named case exists"
    assert result["clean"] == {}, f"unpatched torch must pass: {result['clean']}"
    caught = set(result["faulty"])
    assert len(must_catch) >= 2
    missed = must_catch - caught
    assert not missed, f"{fault}: not caught by {sorted(missed)}; caught: {result['faulty']}"
    assert not caught & MUST_PASS.get(fault, set()), (
        f"{fault}: cases that must pass failed: {result['faulty']}"
    )
