"""Reading YAML for capsim: YAML 1.2 (ruamel), bounded, turned into plain Python values.

Every YAML that capsim reads (scenario files, ``--set`` values, ``--slo`` files, sweep
values) goes through this module, and every read is bounded: at most ``MAX_BYTES`` of
input, ``MAX_DEPTH`` levels of nesting, ``MAX_VALUES`` values once aliases are expanded
(a "billion laughs" document stops at its first alias past the limit), no recursive
aliases, no tags beyond YAML's core ones (``!!str``, ``!!int``, ...) and no whole numbers
of more than ``MAX_DIGITS`` digits. A document that breaks a bound, or is not YAML,
raises ``YAMLProblem`` with its line and column.
"""
from __future__ import annotations

from datetime import date

from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from ruamel.yaml.reader import ReaderError

__all__ = ["plain", "read_plain", "read_tree", "read_bounded", "YAMLProblem", "MAX_BYTES", "MAX_DEPTH",
           "MAX_VALUES", "MAX_DIGITS"]

MAX_BYTES = 10 * 2 ** 20        # 10 MiB: a scenario with a long empirical distribution is far smaller
MAX_DEPTH = 64                  # scenarios nest about 8 levels
MAX_VALUES = 1_000_000          # values once aliases are expanded
MAX_DIGITS = 100                # a whole number longer than this means nothing here
_CORE = "tag:yaml.org,2002:"
_TAGS = {None, "!"} | {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}


class YAMLProblem(YAMLError):
    """Not YAML, or beyond a bound: ``message`` at ``line``/``col`` (1-based; None: no place)."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


def _fail(message: str, mark) -> None:
    raise YAMLProblem(message, mark.line + 1, mark.column + 1) if mark is not None else YAMLProblem(message)


class _BoundedComposer(Composer):
    """ruamel's composer, counting depth and expanded size, refusing recursion and odd tags."""

    def __init__(self, loader=None):
        super().__init__(loader)
        self._level, self._open, self._sizes = 0, set(), {}

    def compose_node(self, parent, index):
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                _fail(f"recursive alias *{event.anchor}: the anchor &{event.anchor} contains itself", event.start_mark)
            return super().compose_node(parent, index)
        self._check(event)
        self._level += 1
        if event.anchor is not None:
            self._open.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._level -= 1
            self._open.discard(event.anchor)
        self._measure(node)
        return node

    def _check(self, event) -> None:
        if self._level >= MAX_DEPTH:
            _fail(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        if isinstance(event, (ScalarEvent, SequenceStartEvent, MappingStartEvent)) and event.tag not in _TAGS:
            _fail(f"unknown tag {event.tag}: scenario files use plain YAML values (no tags)", event.start_mark)
        if isinstance(event, ScalarEvent) and event.style is None and len(event.value) > MAX_DIGITS \
                and event.value.lstrip("+-").isdigit():
            _fail(f"a whole number of {len(event.value)} digits (at most {MAX_DIGITS})", event.start_mark)

    def _measure(self, node) -> None:
        """Values ``node`` stands for once every alias in it is expanded."""
        value = node.value if isinstance(node.value, list) else []
        children = [c for item in value for c in (item if isinstance(item, tuple) else (item,))]
        size = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        self._sizes[id(node)] = size
        if size > MAX_VALUES:
            _fail(f"expands to more than {MAX_VALUES:,} values once its aliases are expanded", node.start_mark)


class _PlacedConstructor(RoundTripConstructor):
    """ruamel's round-trip constructor; a value it cannot build (a timestamp 2026-13-45, a core
    tag on the wrong value) is an error at that value's line and column."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (YAMLError, RecursionError):
            raise
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            shown = node.value if isinstance(node.value, str) else type(node).__name__
            detail = f"not a {str(node.tag).rsplit(':', 1)[-1]}" if isinstance(exc, KeyError) else str(exc)
            _fail(f"cannot read the value {shown[:40]!r}: {detail}", node.start_mark)


def _yaml() -> YAML:
    y = YAML()                  # round trip: mappings and sequences keep their line and column
    y.Composer = _BoundedComposer
    y.Constructor = _PlacedConstructor
    return y


def read_tree(text: str):
    """The round-trip tree of one YAML 1.2 document (None when it is empty or only comments)."""
    if len(text) > MAX_BYTES:
        raise YAMLProblem(f"larger than {MAX_BYTES // 2 ** 20} MiB ({len(text):,} characters)")
    try:
        return _yaml().load(text)
    except YAMLProblem:
        raise
    except ReaderError as exc:                   # a character YAML does not allow (NUL, ...)
        pos = exc.position or 0
        line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        raise YAMLProblem(f"not YAML text: character #x{ord(exc.character) if isinstance(exc.character, str) else 0:04x} "
                          "is not allowed", line, col) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context
        raise YAMLProblem(f"YAML syntax error: {problem}", *((mark.line + 1, mark.column + 1) if mark else ())) from None
    except YAMLError as exc:
        raise YAMLProblem(f"YAML syntax error: {exc}") from None
    except (ValueError, KeyError, TypeError, OverflowError) as exc:   # a core tag on a value it cannot take
        raise YAMLProblem(f"cannot read a value: {exc}") from None


def read_bounded(path) -> str:
    """A file's text, reading at most ``MAX_BYTES`` (``/dev/zero`` stops there)."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YAMLProblem(f"larger than {MAX_BYTES // 2 ** 20} MiB: not a scenario file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLProblem(f"not UTF-8 text (byte {exc.start}): not a scenario file") from None


def plain(node):
    """ruamel containers and scalars -> dict, list, str, int, float, bool, None (dates -> ISO text)."""
    if isinstance(node, dict):
        return {plain(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, TaggedScalar):          # !!str: the text as written
        return str(node.value)
    for kind in (bool, int, float, str):   # bool first: ruamel's ScalarBoolean is an int
        if isinstance(node, kind):
            return kind(node)
    return node.isoformat() if isinstance(node, date) else node


def read_plain(text: str):
    """A YAML 1.2 document as plain values ('100' -> 100, 'hpa' -> 'hpa', '{a: 1}' -> {'a': 1})."""
    return plain(read_tree(text))
