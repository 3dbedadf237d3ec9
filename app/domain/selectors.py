"""Kubernetes label and field selectors, as `?labelSelector=` and `?fieldSelector=` on a list read them.

Label selectors have the API server's grammar: requirements joined by commas, each `key`, `!key`,
`key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>N` or `key<N` (N an
integer; a label whose value is not one does not match), all of which must hold.
Keys and values are checked as label keys and values are. Field selectors on a custom resource take
`metadata.name` and `metadata.namespace` with `=`, `==` or `!=`, as the API server allows for a CRD
without selectable fields. A selector that does not parse is a SelectorError, never ignored: a client
that lists "what matches" and then deletes it must not be handed everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = rf"({_PREFIX}/)?{_NAME}"
_VALUE_RE = rf"({_NAME})?"
_REQUIREMENT_RE = (
    rf"(!? *{_KEY_RE}"
    rf"|{_KEY_RE} *(==|=|!=) *{_VALUE_RE}"
    rf"|{_KEY_RE} *(>|<) *-?[0-9]{{1,19}}"
    rf"|{_KEY_RE} +(in|notin) *\( *{_NAME}( *, *{_VALUE_RE})* *\))"
)
LABEL_SELECTOR_PATTERN = rf"^ *({_REQUIREMENT_RE}( *, *{_REQUIREMENT_RE})*)? *$"
"""The grammar as one regular expression: the OpenAPI document states it, and the parser checks it first."""
_FIELD_TERM_RE = r" *(metadata\.name|metadata\.namespace) *(==|=|!=) *[^ ,=!]*"
FIELD_SELECTOR_PATTERN = rf"^({_FIELD_TERM_RE}( *, *{_FIELD_TERM_RE})*)? *$"

_SET = re.compile(r"^(?P<key>\S+) +(?P<op>in|notin) *\((?P<values>[^()]*)\)$")
_COMPARE = re.compile(r"^(?P<key>[^=! ]+) *(?P<op>==|=|!=) *(?P<value>[^ ]*)$")
_EXISTS = re.compile(r"^(?P<neg>!?) *(?P<key>[^=! ]+)$")
_ORDER = re.compile(r"^(?P<key>[^<> ]+) *(?P<op>[<>]) *(?P<value>-?[0-9]+)$")
_INT64 = range(-(2**63), 2**63)

FIELDS: Mapping[str, Callable[[Mapping[str, object]], str]] = {
    "metadata.name": lambda meta: str(meta.get("name") or ""),
    "metadata.namespace": lambda meta: str(meta.get("namespace") or ""),
}


_LABEL_SELECTOR = re.compile(LABEL_SELECTOR_PATTERN)
_FIELD_SELECTOR = re.compile(FIELD_SELECTOR_PATTERN)


class SelectorError(ValueError):
    """A selector the API server would refuse; the message says which part."""


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    op: str  # "=" (also `in`), "!=" (also `notin`), "exists", "!exists", ">", "<"
    values: frozenset[str] = frozenset()
    bound: int = 0  # of ">" and "<"

    def holds(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=":
                return present and labels[self.key] in self.values
            case ">" | "<":
                number = _integer(labels.get(self.key))
                return number is not None and (number > self.bound if self.op == ">" else number < self.bound)
            case _:  # "!=" (and `notin`) holds for a missing key too, as the API server has it
                return not present or labels[self.key] not in self.values


def _integer(value: str | None) -> int | None:
    """A label value as Go's strconv.ParseInt(value, 10, 64) reads it, or None."""
    if value is None or not re.fullmatch(r"[-+]?[0-9]+", value):
        return None
    number = int(value)
    return number if number in _INT64 else None


def _split(text: str) -> list[str]:
    """Requirements split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _requirement(part: str) -> _Requirement:
    """One requirement of a selector that matched LABEL_SELECTOR_PATTERN."""
    if found := _SET.match(part):
        values = frozenset(v.strip() for v in found["values"].split(","))
        return _Requirement(found["key"], "=" if found["op"] == "in" else "!=", values)
    if found := _ORDER.match(part):
        bound = int(found["value"])
        if bound not in _INT64:
            raise SelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {part!r}")
        return _Requirement(found["key"], found["op"], bound=bound)
    if found := _COMPARE.match(part):
        return _Requirement(found["key"], "!=" if found["op"] == "!=" else "=", frozenset({found["value"]}))
    found = _EXISTS.match(part)
    assert found is not None, part  # the pattern admits nothing else
    return _Requirement(found["key"], "!exists" if found["neg"] else "exists")


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[_Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        held = labels or {}
        return all(r.holds(held) for r in self.requirements)


def parse_label_selector(text: str) -> LabelSelector:
    """The selector in `text`; empty selects everything."""
    if not _LABEL_SELECTOR.fullmatch(text):
        raise SelectorError(f"unable to parse requirement: {text!r} is not a label selector")
    if not text.strip():
        return LabelSelector(())
    return LabelSelector(tuple(_requirement(part) for part in _split(text)))


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[tuple[str, bool, str], ...]  # field, equal?, value

    def matches(self, metadata: Mapping[str, object]) -> bool:
        return all((FIELDS[field](metadata) == value) == equal for field, equal, value in self.terms)


def parse_field_selector(text: str) -> FieldSelector:
    """The selector in `text` over `metadata.name` and `metadata.namespace`; empty selects everything."""
    terms = []
    for part in (p.strip() for p in text.split(",")) if text.strip() else ():
        found = _COMPARE.match(part)
        if found is None:
            raise SelectorError(f"invalid field selector: {part!r}")
        if found["key"] not in FIELDS:
            raise SelectorError(f"field label not supported: {found['key']}")
        terms.append((found["key"], found["op"] != "!=", found["value"]))
    if not _FIELD_SELECTOR.fullmatch(text):
        raise SelectorError(f"invalid field selector: {text!r}")
    return FieldSelector(tuple(terms))
