"""JUnit XML for CI systems: a testsuite per case file and a testcase per variant, named as pytest names them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from cnnbench.report.tables import repro_command
from cnnbench.store.result import Result
from cnnbench.store.run import Run

__all__ = ["NUMERICS_PROPERTIES", "classname", "junit_counts", "render_junit"]

#: Characters XML 1.0 cannot hold at all (not even escaped): torch messages may carry ANSI escapes.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Environment entries copied into each testsuite's properties.
_PROPERTIES = (
    "torch_version",
    "torch_git_version",
    "cuda_version",
    "python_version",
    "cpu_model",
    "num_threads",
)


def _text(value: Any) -> str:
    return _ILLEGAL_XML.sub("\ufffd", str(value))


def classname(file: str) -> str:
    """pytest's classname for an item of file: the path with / as dots (``cases.seeds.a.yaml``)."""
    return file.replace("\\", "/").replace("/", ".")


def junit_counts(results: list[Result]) -> Counter[str]:
    """tests, failures, errors and skipped as JUnit counts them (an xfail is a skip, as in pytest)."""
    counts: Counter[str] = Counter(tests=len(results))
    for r in results:
        if r.status == "failed":
            counts["failures"] += 1
        elif r.status == "error":
            counts["errors"] += 1
        elif r.status in ("skipped", "xfail"):
            counts["skipped"] += 1
    return counts


def _set_counts(element: ET.Element, results: list[Result]) -> None:
    counts = junit_counts(results)
    for key in ("tests", "failures", "errors", "skipped"):
        element.set(key, str(counts[key]))
    element.set("time", f"{sum(r.duration_s for r in results):.3f}")


def _testcase(suite: ET.Element, r: Result) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_text(classname(r.file)),
        name=_text(r.variant_id),
        file=_text(r.file),
        line=str(r.line),
        time=f"{r.duration_s:.3f}",
    )
    message = r.message.strip()
    first = message.splitlines()[0] if message else r.status
    if r.status in ("failed", "error"):
        tag = "failure" if r.status == "failed" else "error"
        body = f"{r.file}:{r.line}: {r.variant_id} {r.status}\n{message}\nrepro: {repro_command(r)}"
        element = ET.SubElement(case, tag, message=_text(first), type=r.status)
        element.text = _text(body)
    elif r.status == "skipped":
        ET.SubElement(case, "skipped", message=_text(r.reason or first), type="pytest.skip")
    elif r.status == "xfail":
        ET.SubElement(case, "skipped", message=_text(f"xfail: {r.reason}"), type="pytest.xfail")
    if r.kind == "bench" and r.metrics:
        props = ET.SubElement(case, "properties")
        for key, value in sorted(r.metrics.items()):
            if isinstance(value, int | float | str | bool):
                ET.SubElement(props, "property", name=_text(key), value=_text(value))
    elif r.kind == "check":
        _numerics_properties(case, r)
    if r.status in ("xpass", "mistrusted") and message:
        ET.SubElement(case, "system-out").text = _text(f"{r.status}: {message}")


#: The measured error columns of a check row shown as testcase properties (those the row recorded).
NUMERICS_PROPERTIES = (
    "max_abs_err",
    "max_rel_err",
    "budget_used",
    "ulps_max",
    "ulps_p99",
    "compute_precision",
)


def _numerics_properties(case: ET.Element, r: Result) -> None:
    """A check row's errors, budget used and ulps as properties; nothing for a row that measured none."""
    values = {name: getattr(r, name) for name in NUMERICS_PROPERTIES if getattr(r, name) is not None}
    if not values:
        return
    props = ET.Element("properties")
    case.insert(0, props)  # first, where pytest --junitxml puts a testcase's properties
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=_text(value))


def render_junit(run: Run) -> str:
    """The run as JUnit XML (the schema Jenkins, GitLab and GitHub test reporters read)."""
    root = ET.Element("testsuites", name="cnnbench")
    _set_counts(root, run.results)
    by_file: dict[str, list[Result]] = {}
    for r in run.results:
        by_file.setdefault(r.file, []).append(r)
    env = run.meta.get("environment") or {}
    timestamp = str(run.meta.get("started_at") or "")
    hostname = str(env.get("hostname") or "")
    for file, results in by_file.items():
        suite = ET.SubElement(
            root, "testsuite", name=_text(file), timestamp=timestamp, hostname=_text(hostname)
        )
        _set_counts(suite, results)
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="run_id", value=_text(run.run_id))
        for key in _PROPERTIES:
            if env.get(key) is not None:
                ET.SubElement(props, "property", name=key, value=_text(env[key]))
        for r in results:
            _testcase(suite, r)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
