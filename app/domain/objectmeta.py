"""The API server's checks on labels and annotations (apimachinery's ValidateObjectMeta).

Kubernetes applies them to custom resources too, so a Gslb written here must pass them to be writable
to a cluster. They are pure functions returning Status causes, called on the write path only: the
`Gslb` model also parses stored objects, and an object stored before these checks must stay readable
(and deletable, and fixable by a patch). The messages follow apimachinery's `validation` package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from app.domain.status import StatusCause

TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * 1024
"""Keys plus values, in bytes, as apimachinery's TotalAnnotationSizeLimitB."""
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
# The same rules as JSON Schema patterns (for the OpenAPI document): a key is an optional DNS-subdomain
# prefix and '/', then a name part of at most 63 characters; annotation keys are checked lower-cased.
_NAME_PART = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
# `$(?![\s\S])`: the end of the text, also for Python's `re.search` (jsonschema, hypothesis), where a
# bare `$` would let a final newline through.
_END = r"$(?![\s\S])"
LABEL_KEY_PATTERN = f"^({_SUBDOMAIN}/)?{_NAME_PART}{_END}"
ANNOTATION_KEY_PATTERN = f"^({_SUBDOMAIN.replace('a-z0-9', 'A-Za-z0-9')}/)?{_NAME_PART}{_END}"
LABEL_VALUE_PATTERN = f"^({_NAME_PART})?{_END}"
KEY_MAX_LENGTH = DNS1123_SUBDOMAIN_MAX_LENGTH + 1 + QUALIFIED_NAME_MAX_LENGTH
# Go's regexp anchors `^...$` at the ends of the text; Python's fullmatch does the same.
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, spacing included ("'MyName',  or 'my.name', ...")."""
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _size(text: str) -> int:
    """Go's len(): bytes, not characters."""
    return len(text.encode())


def _dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: an optional DNS-subdomain prefix and '/', then a name part of at most 63."""
    name_error = _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {name_error} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    errors = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {error}" for error in _dns1123_subdomain(prefix))
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif _size(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append(f"name part {_max_len_error(QUALIFIED_NAME_MAX_LENGTH)}")
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(f"name part {name_error}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """IsValidLabelValue: empty, or a name part of at most 63 characters."""
    errors = []
    if _size(value) > LABEL_VALUE_MAX_LENGTH:
        errors.append(_max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _invalid(field: str, value: str, message: str) -> StatusCause:
    """field.Invalid's body: `Invalid value: "a b": <message>` (the value quoted as Go's %q would)."""
    quoted = json.dumps(value, ensure_ascii=False)
    return StatusCause(reason="FieldValueInvalid", field=field, message=f"Invalid value: {quoted}: {message}")


def label_causes(labels: Mapping[str, str] | None, field: str = "metadata.labels") -> list[StatusCause]:
    """ValidateLabels: every key a qualified name, every value a label value."""
    causes: list[StatusCause] = []
    for key, value in (labels or {}).items():
        causes.extend(_invalid(field, key, error) for error in qualified_name_errors(key))
        causes.extend(_invalid(field, value, error) for error in label_value_errors(value))
    return causes


def annotation_causes(
    annotations: Mapping[str, str] | None, field: str = "metadata.annotations"
) -> list[StatusCause]:
    """ValidateAnnotations: keys are qualified names in any case; all keys and values at most 256 KiB."""
    causes: list[StatusCause] = []
    for key in annotations or {}:
        causes.extend(_invalid(field, key, error) for error in qualified_name_errors(key.lower()))
    total = sum(_size(key) + _size(value) for key, value in (annotations or {}).items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES:
        message = f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT_BYTES} bytes"
        causes.append(StatusCause(reason="FieldValueTooLong", field=field, message=message))
    return causes


def metadata_causes(
    labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None
) -> list[StatusCause]:
    """Labels then annotations, in the order ValidateObjectMeta reports them."""
    return [*label_causes(labels), *annotation_causes(annotations)]
