"""Tensors stored in files beside a case file: safe path resolution, header-only inspection, pickle-free loading.

A case file may name ``{file: data/x.npy}`` (numpy.save) or ``{file: w.safetensors, key: weight}``. The path
must stay inside the case file's folder after every symlink is resolved, and neither format can hold code: a
.npy file whose dtype needs pickle is refused, and safetensors has no pickle at all. Only headers are read at
load time (shape and dtype, for the memory budget); the values are read when a variant runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from cnnbench.casefile.vocabulary import suggest
from cnnbench.errors import first_line

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SUFFIXES",
    "TensorFileError",
    "TensorSource",
    "check_tensor_path",
    "inspect_tensor_file",
    "read_tensor_file",
]

#: The formats read, by suffix. Both are plain data; .pt/.pth/.pkl/.npz are not (pickle, or a zip of them).
SUFFIXES = (".npy", ".safetensors")
#: Longest header read (numpy's own default for .npy; safetensors' reference reader allows 100 MB, but a
#: tensor table that large is not a test input).
_MAX_NPY_HEADER = 10_000
_MAX_SAFETENSORS_HEADER = 16 * 1024 * 1024
#: safetensors dtype names read, and their width in bytes.
_SAFETENSORS_DTYPES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
#: numpy dtype kinds read from .npy: bool, signed and unsigned integers, floats.
_NPY_KINDS = "biuf"


class TensorFileError(ValueError):
    """A tensor file that may not or cannot be read; the message says which rule it breaks."""


@dataclass(frozen=True)
class TensorSource:
    """A tensor file that passed every check: where it is, which tensor, and what its header promised."""

    base_dir: Path
    """The case file's folder, resolved; the file must stay inside it."""
    name: str
    """The path as written in the case file."""
    path: Path
    """The resolved path."""
    key: str | None
    shape: tuple[int, ...]
    dtype: str
    """The stored dtype: a numpy dtype string (``<f8``) or a safetensors one (``F32``)."""


def _check_name(name: str) -> None:
    if not name:
        raise TensorFileError("the file name is empty")
    if "\0" in name:
        raise TensorFileError("the file name contains a NUL character")
    if (
        PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
    ):
        raise TensorFileError(
            f'"{name}" is an absolute path; tensor files are named relative to the case file\'s folder'
        )
    if ".." in PureWindowsPath(name).parts or ".." in PurePosixPath(name).parts:
        raise TensorFileError(
            f'"{name}" goes up with ".."; tensor files must be inside the case file\'s folder'
        )
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise TensorFileError(
            f'"{name}": only .npy (numpy.save) and .safetensors files are read'
            + ("; pickle-based formats (.pt, .pth, .pkl, .npz) could run code" if suffix else "")
        )


def _resolve(base_dir: Path, name: str) -> tuple[Path, Path]:
    """The resolved folder and file; TensorFileError unless the file is a regular file inside the folder."""
    _check_name(name)
    base = base_dir.resolve()
    try:
        path = (base / name).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise TensorFileError(f'"{name}" cannot be resolved: {exc}') from None
    if not path.is_relative_to(base):
        raise TensorFileError(
            f'"{name}" resolves to {path}, outside the case file\'s folder {base} (a symlink out of it?)'
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        parent = path.parent
        siblings = [p.name for p in parent.iterdir()] if parent.is_dir() else []
        raise TensorFileError(f'"{name}": no such file{suggest(path.name, siblings)}') from None
    except OSError as exc:
        raise TensorFileError(f'"{name}": cannot read it ({exc.strerror})') from None
    if not stat.S_ISREG(mode):
        raise TensorFileError(f'"{name}" is not a regular file')
    return base, path


def _npy_header(path: Path, name: str) -> tuple[tuple[int, ...], str]:
    import numpy as np

    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
            else:
                raise TensorFileError(
                    f'"{name}": .npy format version {version} is not read (1.0 and 2.0 are)'
                )
        except TensorFileError:
            raise
        except (ValueError, OSError, SyntaxError, TypeError) as exc:
            raise TensorFileError(
                f'"{name}" is not a valid .npy file: {first_line(exc) or type(exc).__name__}'
            ) from None
        offset = f.tell()
    if dtype.hasobject:
        raise TensorFileError(
            f'"{name}" holds Python objects ({dtype}), which only pickle can read; '
            "tensor files must hold numbers (save a numeric array)"
        )
    if dtype.kind not in _NPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise TensorFileError(f'"{name}" holds {dtype}; expected bool, integer or floating-point numbers')
    shape = tuple(int(n) for n in shape)
    _check_size(path, name, offset, math.prod(shape) * dtype.itemsize)
    return shape, dtype.str


def _safetensors_header(path: Path, name: str, key: str | None) -> tuple[str, tuple[int, ...], str]:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise TensorFileError(f'"{name}" is not a valid .safetensors file: shorter than 8 bytes')
        size = int.from_bytes(head, "little")
        if size > _MAX_SAFETENSORS_HEADER:
            raise TensorFileError(f'"{name}" is not a valid .safetensors file: a {size}-byte header')
        raw = f.read(size)
    try:
        table = json.loads(raw)
        if not isinstance(table, dict):
            raise ValueError("the header is not a JSON object")
        tensors = {k: v for k, v in table.items() if k != "__metadata__"}
        infos = {k: (v["dtype"], tuple(v["shape"]), tuple(v["data_offsets"])) for k, v in tensors.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise TensorFileError(
            f'"{name}" is not a valid .safetensors file: {first_line(exc) or type(exc).__name__}'
        ) from None
    if key is None:
        if len(infos) != 1:
            names = ", ".join(sorted(infos)) or "none"
            raise TensorFileError(f'"{name}" holds {len(infos)} tensors ({names}); say which with key:')
        key = next(iter(infos))
    if key not in infos:
        raise TensorFileError(f'"{name}" has no tensor "{key}"{suggest(key, infos)}')
    dtype, shape, offsets = infos[key]
    if dtype not in _SAFETENSORS_DTYPES:
        raise TensorFileError(
            f'"{name}": tensor "{key}" has dtype {dtype}; read are {", ".join(_SAFETENSORS_DTYPES)}'
        )
    if not all(isinstance(n, int) and n >= 0 for n in (*shape, *offsets)) or len(offsets) != 2:
        raise TensorFileError(f'"{name}" is not a valid .safetensors file: bad shape or offsets for "{key}"')
    nbytes = math.prod(shape) * _SAFETENSORS_DTYPES[dtype]
    if offsets[1] - offsets[0] != nbytes:
        raise TensorFileError(
            f'"{name}": tensor "{key}" has {offsets[1] - offsets[0]} bytes, its shape needs {nbytes}'
        )
    _check_size(path, name, 8 + size + offsets[0], nbytes)
    if importlib.util.find_spec("safetensors") is None:
        raise TensorFileError(
            f'"{name}": reading .safetensors files needs the safetensors package '
            "(pip install 'cnnbench[safetensors]')"
        )
    return key, shape, dtype


def _check_size(path: Path, name: str, offset: int, nbytes: int) -> None:
    available = path.stat().st_size - offset
    if available < nbytes:
        raise TensorFileError(
            f'"{name}" is cut short: its header promises {nbytes} bytes of data, it has {available}'
        )


def inspect_tensor_file(base_dir: str | Path, name: str, key: str | None = None) -> TensorSource:
    """Check that name is a readable tensor file inside base_dir and read its header (not its data).

    Raises TensorFileError (a ValueError) naming the rule broken: absolute path, "..", a symlink out of the
    folder, not a regular file, an unread format, a pickled or non-numeric .npy, a file shorter than its header
    says, a missing or ambiguous safetensors key.
    """
    base, path = _resolve(Path(base_dir), name)
    if path.suffix.lower() == ".npy":
        if key is not None:
            raise TensorFileError(
                f'"{name}": key: applies to .safetensors files; a .npy file holds one array'
            )
        shape, dtype = _npy_header(path, name)
    else:
        key, shape, dtype = _safetensors_header(path, name, key)
    return TensorSource(base_dir=base, name=name, path=path, key=key, shape=shape, dtype=dtype)


def read_tensor_file(source: TensorSource) -> np.ndarray[Any, Any] | Any:
    """The values of a checked tensor file: a numpy array (.npy) or a torch tensor (.safetensors, which may hold
    bfloat16). The checks run again first, so a file swapped for a symlink or a pickle since loading is refused.
    """
    again = inspect_tensor_file(source.base_dir, source.name, source.key)
    if (again.path, again.shape, again.dtype) != (source.path, source.shape, source.dtype):
        raise TensorFileError(f'"{source.name}" changed since the case file was loaded')
    if again.path.suffix.lower() == ".npy":
        import numpy as np

        return np.load(again.path, allow_pickle=False)
    from safetensors import safe_open

    with safe_open(str(again.path), framework="pt") as f:
        return f.get_tensor(again.key)


def check_tensor_path(base_dir: str | Path, name: str) -> Path:
    """The resolved file name refers to, if every path rule holds (see inspect_tensor_file); its header is not
    read."""
    return _resolve(Path(base_dir), name)[1]
