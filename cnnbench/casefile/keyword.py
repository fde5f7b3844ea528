"""The ``-k`` grammar: pytest's keyword expressions (``and``, ``or``, ``not``, parentheses) over words that match
substrings, ignoring case.

    expr   := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | "(" expr ")" | WORD

Compiled once into a matcher; each variant is then matched against one haystack string (its id, its target and
its file name), so selecting n variants costs O(n) whatever the expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cnnbench.errors import UsageError

__all__ = ["Keyword"]

_TOKEN_RE = re.compile(r"\s*(\(|\)|[\w:+\-.\[\]\\/=,]+)")
_Matcher = Callable[[str], bool]


def _either(a: _Matcher, b: _Matcher) -> _Matcher:
    return lambda h: a(h) or b(h)


def _both(a: _Matcher, b: _Matcher) -> _Matcher:
    return lambda h: a(h) and b(h)


def _negate(a: _Matcher) -> _Matcher:
    return lambda h: not a(h)


def _word(word: str) -> _Matcher:
    return lambda h: word in h


def _tokens(expr: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            raise UsageError(f"-k {expr!r}: unexpected character {expr[pos:].strip()[0]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    if not tokens:
        raise UsageError("-k: empty expression")
    return tokens


class _Parser:
    """Recursive descent over the tokens of one expression."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokens(expr)
        self.i = 0

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> _Matcher:
        matcher = self._or()
        if self.i != len(self.tokens):
            raise UsageError(f"-k {self.expr!r}: unexpected {self.tokens[self.i]!r}")
        return matcher

    def _or(self) -> _Matcher:
        left = self._and()
        while self._peek() == "or":
            self.i += 1
            left = _either(left, self._and())
        return left

    def _and(self) -> _Matcher:
        left = self._not()
        while self._peek() == "and":
            self.i += 1
            left = _both(left, self._not())
        return left

    def _not(self) -> _Matcher:
        tok = self._peek()
        if tok is None:
            raise UsageError(f"-k {self.expr!r}: expression ends too early")
        self.i += 1
        if tok == "not":
            return _negate(self._not())
        if tok == "(":
            inner = self._or()
            if self._peek() != ")":
                raise UsageError(f"-k {self.expr!r}: missing closing parenthesis")
            self.i += 1
            return inner
        if tok in (")", "and", "or"):
            raise UsageError(f"-k {self.expr!r}: unexpected {tok!r}")
        return _word(tok.lower())


@dataclass(frozen=True)
class Keyword:
    """A compiled ``-k`` expression."""

    expr: str
    _matcher: _Matcher

    @classmethod
    def compile(cls, expr: str) -> Keyword:
        """Parse expr; UsageError naming the problem if it is not a keyword expression."""
        return cls(expr, _Parser(expr).parse())

    def matches(self, *names: str) -> bool:
        """Whether the expression holds for an item known by these names (id, target, file name, ...)."""
        return self._matcher(" ".join(names).lower())
