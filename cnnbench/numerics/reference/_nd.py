"""NdOp: an op written once for n spatial dims and bound to 1, 2 or 3 of them (conv1d, conv2d, conv3d, ...)."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["NdGradient", "NdOp"]


class NdOp:
    """Base of an op family whose 1d/2d/3d variants differ only in the number of spatial dims.

    A subclass sets `pattern` (torch's name with {nd}), writes its docstring with {nd} and {op} in it and
    implements `__call__` once, typing overloads included. Its instances are the public ops: they carry the
    name and the formatted docstring, and inspect.signature reads `__call__`, so to the registries, to
    inspect and to mypy they are the functions torch has (a plain function per dim would write the
    signature, and any overloads, three times).
    """

    pattern: ClassVar[str]
    suffix: ClassVar[str] = ""

    def __init__(self, nd: int) -> None:
        self.nd = nd
        self.op = self.pattern.format(nd=nd)
        """torch's name of the forward op (the one error messages name)."""
        self.__name__ = self.__qualname__ = self.op + self.suffix
        self.__doc__ = (type(self).__doc__ or "").format(nd=nd, op=self.op)

    def __repr__(self) -> str:
        return f"<reference {self.__name__}>"


class NdGradient(NdOp):
    """Base of the vector-Jacobian products of an NdOp family: named `<op>_backward`."""

    suffix = "_backward"
