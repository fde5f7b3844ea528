"""The YAML dialect of case files: safe loading of plain data only, with limits on depth, size and aliases.

Case files are written by many people and read unattended, so the loader refuses more than yaml.SafeLoader:
no ``!!binary``, ``!!set``, ``!!omap``, ``!!pairs`` or ``!!timestamp`` (and no implicit dates: ``2024-01-01`` is
a string), nothing nested deeper than MAX_DEPTH, no document over MAX_NODES nodes once aliases are expanded
(a "billion laughs" document is refused before anything is built from it), no alias that contains itself.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from yaml.constructor import ConstructorError

__all__ = ["MAX_DEPTH", "MAX_NODES", "CaseLoader", "FastCaseLoader", "LimitError"]

#: Deepest nesting of lists and mappings; a case file needs about 12 (cases, a case, inputs, a 6-d literal).
MAX_DEPTH = 64
#: Most nodes in a document, counting every alias as a copy of what it names: a 64 x 64 x 64 literal fits,
#: an alias bomb does not, and indexing and validating this many nodes takes about a second.
MAX_NODES = 500_000

_TAG = "tag:yaml.org,2002:"
#: Tags SafeLoader knows that are not plain data: they would build bytes, sets, dates and ordered pairs.
_REFUSED = frozenset(_TAG + t for t in ("binary", "set", "omap", "pairs", "timestamp"))


class LimitError(yaml.MarkedYAMLError):
    """A document over one of the loader's limits; problem says which, problem_mark where."""


class CaseLoader(yaml.SafeLoader):
    """yaml.SafeLoader restricted to JSON's data model, with limits on nesting, node count and aliases."""

    yaml_constructors: ClassVar[dict[Any, Any]] = {
        t: f for t, f in yaml.SafeLoader.yaml_constructors.items() if t not in _REFUSED
    }
    yaml_implicit_resolvers = {  # noqa: RUF012 (a class-level table, as in yaml.SafeLoader)
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REFUSED]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Count nodes and nesting while composing, so a huge or deep document stops early, with a mark."""
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LimitError(
                    problem=f"lists and mappings nest deeper than {MAX_DEPTH} levels",
                    problem_mark=self.peek_event().start_mark,
                )
            if self._nodes > MAX_NODES:
                raise LimitError(
                    problem=f"the document has more than {MAX_NODES:,} nodes",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:  # type: ignore[override]
        """The document's root node, once its size with every alias expanded is known to be within limits."""
        node: yaml.Node | None = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, set())
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An int, or a marked error for one with more digits than Python converts (4300)."""
        try:
            return super().construct_yaml_int(node)  # type: ignore[no-any-return]
        except ValueError:
            raise ConstructorError(
                None, None, f"the integer {node.value[:20]}... has too many digits", node.start_mark
            ) from None


CaseLoader.yaml_constructors[_TAG + "int"] = CaseLoader.construct_yaml_int
# YAML 1.1 (PyYAML) reads 1e-3 as a string because its float pattern needs a dot; tolerances are written that
# way, so follow YAML 1.2 and JSON here: a number with an exponent and no dot is a float.
CaseLoader.add_implicit_resolver(
    _TAG + "float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


_CParser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)  # libyaml (absent without it)

if _CParser is not None:

    class FastCaseLoader(CaseLoader, _CParser):  # type: ignore[misc]
        """CaseLoader with libyaml's C scanner and parser under the same Python composer, limits and
        constructors (about 5x faster on the bundled cases). Its marks carry line and column but no snippet, and
        its error texts are libyaml's: a file it refuses is parsed again by CaseLoader, which says why."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._depth = 0
            self._nodes = 0

        # The C parser's events under the Python composer: its own get_single_node would skip the limits.
        check_event = _CParser.check_event
        peek_event = _CParser.peek_event
        get_event = _CParser.get_event
        get_single_node = yaml.composer.Composer.get_single_node

else:  # pragma: no cover (PyYAML built without libyaml)
    FastCaseLoader = CaseLoader  # type: ignore[misc, assignment]


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """Nodes under node with aliases expanded (memoised, so a bomb costs its text, not its expansion)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise LimitError(
            problem="an alias refers to a list or mapping that contains it", problem_mark=node.start_mark
        )
    open_.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_)
            if size > MAX_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, sizes, open_)
            if size > MAX_NODES:
                break
    open_.discard(key)
    if size > MAX_NODES:
        raise LimitError(
            problem=f"the document has more than {MAX_NODES:,} nodes once its aliases are expanded "
            '(an alias bomb, or "billion laughs")',
            problem_mark=node.start_mark,
        )
    sizes[key] = size
    return size
