"""Tensors in files beside a case file (cnnbench.casefile.tensorfile, FileSpec, fill): inside the folder, never pickled."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbench.casefile.load import load_file, load_text
from cnnbench.casefile.tensorfile import TensorFileError, check_tensor_path, inspect_tensor_file
from cnnbench.casefile.variants import expand
from cnnbench.errors import CaseFileError
from cnnbench.execution.dispatch import run_variant


def _case(inputs: str, expect: str = "{shape: [2, 3]}", dtypes: str = "[float64, float32]") -> str:
    return (
        f"cases:\n  - id: t\n    op: relu\n    devices: [cpu]\n    dtypes: {dtypes}\n"
        f"    inputs: {{input: {inputs}}}\n    expect: {expect}\n"
    )


def _errors(path: Path) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    return [str(e) for e in info.value.errors]


class _Evil:
    """Unpickling this creates a marker file: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.mkdir, (str(self.marker),))


def _evil_npy(path: Path, marker: Path) -> None:
    array = np.empty(1, dtype=object)
    array[0] = _Evil(marker)
    np.save(path, array, allow_pickle=True)


def test_npy_values_load_at_run_time_and_compare(tmp_path: Path, write_case: Callable[..., Path]) -> None:
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.array([[-1.5, 2.0, 0.25], [3.0, -4.0, 5.0]], dtype=">f4"))
    np.save(tmp_path / "data" / "want.npy", np.array([[0.0, 2.0, 0.25], [3.0, 0.0, 5.0]]))
    path = write_case(_case("{file: data/x.npy}", "{output: {file: data/want.npy}, shape: [2, 3]}"))
    rows = [run_variant(v) for v in expand(load_file(path).cases)]
    assert [(r.status, r.message) for r in rows] == [("passed", "")] * 2


@pytest.mark.parametrize(
    ("array", "pinned", "dtype"),
    [
        (np.arange(6, dtype=np.int16).reshape(2, 3), "", torch.int64),
        (np.array([[True, False, True]] * 2), "", torch.int64),
        (np.array([[True, False, True]] * 2), ", dtype: bool", torch.bool),
        (np.arange(6, dtype=np.uint8).reshape(2, 3), ", dtype: float16", torch.float16),
    ],
)
def test_npy_integer_and_bool_arrays(
    tmp_path: Path, write_case: Callable[..., Path], array: np.ndarray, pinned: str, dtype: torch.dtype
) -> None:
    from cnnbench.numerics.fill import make_tensor

    np.save(tmp_path / "a.npy", array)
    path = write_case(_case(f"{{file: a.npy{pinned}}}", dtypes="[int64]"))
    (case,) = load_file(path).cases
    tensor = make_tensor(case.spec.inputs["input"], "int64")  # the variant's dtype, unless the spec pins one
    assert tensor.dtype == dtype
    assert tensor.tolist() == array.astype(int).tolist()


def test_safetensors_by_key_including_bfloat16(tmp_path: Path, write_case: Callable[..., Path]) -> None:
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    weight = torch.tensor([[1.0, -2.5], [3.0, 0.5]], dtype=torch.bfloat16)
    save_file({"weight": weight, "bias": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
    path = write_case(
        _case(
            "{file: w.safetensors, key: weight}", "{output: [[1.0, 0.0], [3.0, 0.5]]}", "[bfloat16, float32]"
        )
    )
    rows = [run_variant(v) for v in expand(load_file(path).cases)]
    assert [r.status for r in rows] == ["passed", "passed"], [r.message for r in rows]
    bad = write_case(_case("{file: w.safetensors, key: wieght}"), "bad.yaml")
    (message,) = _errors(bad)
    assert 'has no tensor "wieght" (did you mean "weight"?)' in message


def test_a_pickle_is_never_loaded(tmp_path: Path, write_case: Callable[..., Path]) -> None:
    marker = tmp_path / "pwned"
    _evil_npy(tmp_path / "evil.npy", marker)
    with pytest.raises(
        ValueError
    ):  # what the payload would do if unpickled: numpy itself refuses without pickle
        np.load(tmp_path / "evil.npy", allow_pickle=False)
    (message,) = _errors(write_case(_case("{file: evil.npy}")))
    assert "cases.yaml:6:22: cases[0].inputs.input.file:" in message and "holds Python objects" in message
    assert not marker.exists()


def test_files_swapped_after_loading_are_checked_again(
    tmp_path: Path, write_case: Callable[..., Path]
) -> None:
    marker = tmp_path / "pwned"
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    np.save(tmp_path.parent / f"{tmp_path.name}-outside.npy", np.ones((2, 3)))
    variants = list(expand(load_file(write_case(_case("{file: x.npy}"))).cases))
    _evil_npy(tmp_path / "x.npy", marker)  # replaced by a pickle after validation
    row = run_variant(variants[0])
    assert row.status == "error" and "holds Python objects" in row.message
    (tmp_path / "x.npy").unlink()
    (tmp_path / "x.npy").symlink_to(tmp_path.parent / f"{tmp_path.name}-outside.npy")  # now a link out
    row = run_variant(variants[1])
    assert row.status == "error" and "outside the case file's folder" in row.message
    assert not marker.exists()


def test_budget_applies_to_file_shapes_before_reading(
    tmp_path: Path, write_case: Callable[..., Path]
) -> None:
    # A 3.2 GB array that takes no disk: the header says so, the file is sparse, and nothing reads it.
    with open(tmp_path / "big.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (20000, 20000)}
        )
        f.truncate(f.tell() + 20000 * 20000 * 8)
    (message,) = _errors(write_case(_case("{file: big.npy}")))
    assert "a tensor of shape [20000, 20000] has 400,000,000 elements (3 GiB at 8 bytes each)" in message
    assert load_file(tmp_path / "cases.yaml", max_case_bytes=4 * 2**30).cases[0].spec.inputs[
        "input"
    ].shape == (
        20000,
        20000,
    )


def test_symlink_inside_the_folder_is_fine(tmp_path: Path, write_case: Callable[..., Path]) -> None:
    (tmp_path / "real").mkdir()
    np.save(tmp_path / "real" / "x.npy", np.ones((2, 3)))
    (tmp_path / "alias.npy").symlink_to("real/x.npy")
    (case,) = load_file(write_case(_case("{file: alias.npy}"))).cases
    assert case.spec.inputs["input"].shape == (2, 3)


def test_text_without_a_folder_cannot_name_files() -> None:
    with pytest.raises(CaseFileError) as info:
        load_text(_case("{file: x.npy}"), "t.yaml")
    (err,) = info.value.errors
    assert str(err).startswith("t.yaml:6:22: cases[0].inputs.input.file:") and "not read from one" in str(err)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("C:\\data\\x.npy", "absolute path"),
        ("\\\\server\\share\\x.npy", "absolute path"),
        ("data\\..\\..\\x.npy", 'goes up with ".."'),
        ("a/../x.npy", 'goes up with ".."'),
        ("", "the file name is empty"),
        ("x.pkl", "pickle-based formats"),
        ("x.npz", "pickle-based formats"),
        ("x", "only .npy (numpy.save) and .safetensors files are read"),
        ("loop.npy", "cannot be resolved"),
    ],
)
def test_path_rules(tmp_path: Path, name: str, fragment: str) -> None:
    (tmp_path / "loop.npy").symlink_to("loop.npy")
    with pytest.raises(TensorFileError) as info:
        check_tensor_path(tmp_path, name)
    assert fragment in str(info.value)


def test_npy_key_and_bad_headers(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones(2))
    with pytest.raises(TensorFileError, match=r"key: applies to \.safetensors files"):
        inspect_tensor_file(tmp_path, "x.npy", "weight")
    (tmp_path / "junk.npy").write_bytes(b"not an npy file at all")
    with pytest.raises(TensorFileError, match=r"is not a valid \.npy file"):
        inspect_tensor_file(tmp_path, "junk.npy")
    np.save(tmp_path / "c.npy", np.ones(2, dtype=np.complex64))
    with pytest.raises(TensorFileError, match="expected bool, integer or floating-point numbers"):
        inspect_tensor_file(tmp_path, "c.npy")
    (tmp_path / "p.npy").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(TensorFileError, match=r"is not a valid \.npy file"):
        inspect_tensor_file(tmp_path, "p.npy")
    (tmp_path / "s.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(TensorFileError, match=r"is not a valid \.safetensors file"):
        inspect_tensor_file(tmp_path, "s.safetensors")
