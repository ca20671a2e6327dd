"""YAML parsing that remembers where every key and list item came from.

:func:`parse_yaml` returns the plain Python document together with a
:class:`LineIndex` mapping each path (``("workflow", "steps", 2, "prompt")``) to
its 1-based line, so validation errors can name the line. Duplicate keys are
errors (YAML would silently keep the last), and alias expansion is bounded so a
"billion laughs" document is refused instead of exhausting memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from pipelines.errors import SpecError

__all__ = ["MAX_DOCUMENT_NODES", "LineIndex", "parse_yaml"]

Path = tuple[str | int, ...]

#: The largest document we accept, counted in nodes after alias expansion.
MAX_DOCUMENT_NODES = 200_000

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class LineIndex:
    """Lines of the keys and items of one document."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        probe = path
        while probe:
            line = self.lines.get(probe)
            if line is not None:
                return line
            probe = probe[:-1]
        return self.lines.get(())


def parse_yaml(text: str, *, source: str) -> tuple[Any, LineIndex]:
    """Parse one YAML document; raises ``SpecError`` naming ``source`` and the line."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise SpecError("the document is empty", file=source)
            index = LineIndex()
            _index(node, (), index, source, seen={}, counted=[0])
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", file=source, line=line) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise ValueError/OverflowError on values such as
        # impossible timestamps, and deep nesting exhausts the recursion limit.
        raise SpecError(f"invalid YAML: {type(exc).__name__}: {exc}", file=source) from None
    return data, index


def _index(
    node: yaml.Node,
    path: Path,
    index: LineIndex,
    source: str,
    *,
    seen: dict[int, int],
    counted: list[int],
) -> int:
    """Record lines below ``node``; return its expanded size (memoised per node)."""
    known = seen.get(id(node))
    if known is not None:
        _charge(known, counted, source, node)
        return known
    seen[id(node)] = 1  # provisional: guards against self-referencing aliases
    size = 1
    if isinstance(node, yaml.MappingNode):
        keys: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in keys and key != "<<":
                raise SpecError(
                    f"duplicate key {key!r} (first on line {keys[key]})",
                    file=source,
                    line=line,
                    key=str(key),
                )
            keys[key] = line
            child = (*path, str(key))
            index.lines.setdefault(child, line)
            size += _index(value_node, child, index, source, seen=seen, counted=counted)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            child = (*path, position)
            index.lines.setdefault(child, item.start_mark.line + 1)
            size += _index(item, child, index, source, seen=seen, counted=counted)
    seen[id(node)] = size
    _charge(1, counted, source, node)
    return size


def _charge(size: int, counted: list[int], source: str, node: yaml.Node) -> None:
    counted[0] += size
    if counted[0] > MAX_DOCUMENT_NODES:
        raise SpecError(
            f"document too large: more than {MAX_DOCUMENT_NODES} nodes after alias expansion",
            file=source,
            line=node.start_mark.line + 1,
        )
