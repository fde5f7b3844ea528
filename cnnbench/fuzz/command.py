"""``cnnbench fuzz`` and ``cnnbench shrink``: options checked, the work done, a summary printed, an exit code."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from cnnbench.errors import UsageError

__all__ = ["FUZZ_DTYPES", "parse_duration", "run_fuzz", "run_shrink"]

EXIT_OK, EXIT_FOUND = 0, 1
#: The dtypes a fuzz may check in: those the float64 reference and its tolerances cover.
FUZZ_DTYPES = ("float32", "float64", "float16", "bfloat16")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds of a positive duration: 60, 60s, 1.5m, 500ms, 1h; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r}: expected a positive duration such as 60s, 2m or 500ms")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not seconds > 0:
        raise ValueError(f"{text!r}: expected a positive duration such as 60s, 2m or 500ms")
    return seconds


def _dtypes(dtypes: Sequence[str] | None) -> tuple[str, ...]:
    from cnnbench.casefile.select import check_filters

    chosen = tuple(dict.fromkeys(dtypes or ("float32",)))
    check_filters(dtypes=chosen)
    odd = [d for d in chosen if d not in FUZZ_DTYPES]
    if odd:
        raise UsageError(
            f"--dtype {odd[0]}: fuzz checks against the float reference in {', '.join(FUZZ_DTYPES)}"
        )
    return chosen


def _device(device: str | None) -> str:
    from cnnbench.casefile.select import check_filters
    from cnnbench.environment import device_available

    chosen = device or "cpu"
    check_filters(devices=[chosen])
    if not device_available(chosen):
        raise UsageError(f"--device {chosen}: not available on this machine")
    return chosen


def run_fuzz(
    targets: Sequence[str],
    budget: float,
    examples: int | None,
    device: str | None,
    dtypes: Sequence[str] | None,
    seed: int,
    output: str | None,
    reports: str,
    max_case_bytes: int,
    out: Console,
) -> int:
    """Fuzz the targets; exit 1 when a failure was found (and written), 0 when none was."""
    from cnnbench.fuzz.engine import FuzzOptions, fuzz, require_hypothesis, targets_summary
    from cnnbench.fuzz.found import DEFAULT_OUT, check_out_dir
    from cnnbench.fuzz.targets import check_targets
    from cnnbench.store.run import RunStore

    require_hypothesis()
    options = FuzzOptions(
        targets=tuple(check_targets(targets)),
        budget_s=budget,
        examples=examples,
        device=_device(device),
        dtypes=_dtypes(dtypes),
        seed=seed,
        out_dir=check_out_dir(output or DEFAULT_OUT),
        max_case_bytes=max_case_bytes,
    )
    outcome = fuzz(options, RunStore(reports))
    total = sum(max(n, 0) for n in outcome.checked.values())
    rate = total / outcome.elapsed_s if outcome.elapsed_s > 0 else 0.0
    out.print(
        f"fuzz: {total} configurations checked in {outcome.elapsed_s:.1f}s ({rate:.0f}/s): "
        f"{targets_summary(options.targets, outcome.checked)}",
        markup=False,
    )
    for found in outcome.found:
        kind = (
            "cnnbench bug (the reference raised)"
            if found.reference_bug
            else "crash"
            if found.crashed
            else "failure"
        )
        first = found.message.strip().splitlines()[0] if found.message.strip() else ""
        out.print(f"found {kind} in {found.target}: {first}", markup=False, style="red")
        out.print(f"  written to {_shown(found.path)}", markup=False)
    out.print(f"run stored in {outcome.run.path}", markup=False, style="dim")
    if not outcome.found:
        out.print("nothing found", markup=False)
        return EXIT_OK
    return EXIT_FOUND


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_shrink(
    variant_id: str, paths: Sequence[str], output: str | None, max_case_bytes: int, out: Console
) -> int:
    """Shrink a failing variant of a case file; write the smallest still-failing case under -o; exit 1 when
    it fails (and was written), 0 when it passes (nothing to shrink)."""
    from cnnbench.fuzz.found import DEFAULT_OUT, check_out_dir, write_case
    from cnnbench.fuzz.shrink import shrink_variant
    from cnnbench.numerics.repro import find_variant

    out_dir = check_out_dir(output or DEFAULT_OUT)
    variant = find_variant(variant_id, list(paths) or ["cases"])
    outcome = shrink_variant(variant, max_case_bytes)
    if outcome is None:
        out.print(f"{variant.id} does not fail: nothing to shrink", markup=False)
        return EXIT_OK
    command = f"cnnbench shrink {variant.id}"
    path = write_case(
        outcome.case, out_dir, command=command, message=outcome.message, checks=outcome.checks, minimal=True
    )
    out.print(f"{variant.id}: {outcome.summary}", markup=False)
    out.print(f"shrunk case written to {_shown(path)}", markup=False)
    return EXIT_FOUND
