"""Log lines as k8gb's zerolog writes them, so what reads k8gb's logs reads pygslb's.

LOG_FORMAT=json is zerolog's JSON on stdout: one object per line whatever a message holds, with
`level` (trace, debug, info, warn, error, fatal), `time` (RFC 3339, UTC, seconds), `caller`
(`app/controller/runner.py:227`), `logger`, `message`, and for an exception `error` (its type and message)
and `stack` (the Python traceback: zerolog's field name, as text). LOG_FORMAT=simple is zerolog's
ConsoleWriter as k8gb's chart runs it (NO_COLOR) on stderr: `time LVL caller > message key=value...`, the
level as TRC, DBG, INF, WRN, ERR or FTL. Its message has control characters escaped, so a string a
caller chose (a Gslb's host name) cannot end the line and forge the next; a traceback follows on indented
lines, which no forged line can start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
from functools import lru_cache
from typing import Literal

Format = Literal["simple", "json"]

#: zerolog's level names (WARNING is `warn`); below DEBUG is trace, CRITICAL is fatal.
_LEVELS: tuple[tuple[int, str], ...] = (
    (logging.CRITICAL, "fatal"),
    (logging.ERROR, "error"),
    (logging.WARNING, "warn"),
    (logging.INFO, "info"),
    (logging.DEBUG, "debug"),
)
#: ConsoleWriter's level tokens.
TOKENS = {"trace": "TRC", "debug": "DBG", "info": "INF", "warn": "WRN", "error": "ERR", "fatal": "FTL"}

#: C0 and C1 controls, DEL, the Unicode line and paragraph separators, lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INDENT = "    "


def level_name(levelno: int) -> str:
    return next((name for floor, name in _LEVELS if levelno >= floor), "trace")


def rfc3339(created: float) -> str:
    """zerolog's default TimeFieldFormat (time.RFC3339, k8gb keeps it), in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))


def escape(text: str) -> str:
    """`text` on one line: every control character written as an escape (`\\n`, `\\x1b`, `\\u2028`)."""
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@lru_cache(maxsize=512)
def _source(pathname: str) -> str:
    """A source file as its import path shows it (`app/runtime.py`, `uvicorn/server.py`): zerolog's
    ConsoleWriter trims the working directory off the same way."""
    # pygslb's own root too: an editable install (scripts/serve) imports app/ through a finder, with the
    # checkout on no sys.path entry, and the caller was then the whole absolute path.
    entries = [*sys.path, os.path.dirname(_PACKAGE_DIR)]
    roots = sorted((os.path.abspath(p or ".") for p in entries), key=len, reverse=True)
    for root in roots:
        if pathname.startswith(root + os.sep):
            return pathname[len(root) + 1 :]
    return pathname


def caller(record: logging.LogRecord) -> str:
    return f"{_source(record.pathname)}:{record.lineno}"


def _error(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """(error, stack) of a record: the exception's type and message, and its traceback."""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        error = "".join(traceback.format_exception_only(exc)).strip()
        return error, "".join(traceback.format_exception(exc)).rstrip("\n")
    return None, record.stack_info


class JsonFormatter(logging.Formatter):
    """One JSON object per record, ASCII only, fields as zerolog names them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": level_name(record.levelno),
            "time": rfc3339(record.created),
            "caller": caller(record),
            "logger": record.name,
        }
        error, stack = _error(record)
        if error is not None:
            entry["error"] = error
        if stack is not None:
            entry["stack"] = stack
        entry["message"] = record.getMessage()
        return json.dumps(entry, separators=(",", ":"))  # ASCII: no U+2028 or lone surrogate


class ConsoleFormatter(logging.Formatter):
    """zerolog's ConsoleWriter without colour; the traceback, if any, on indented lines below."""

    def format(self, record: logging.LogRecord) -> str:
        level = TOKENS[level_name(record.levelno)]
        line = f"{rfc3339(record.created)} {level} {caller(record)} > {escape(record.getMessage())}"
        error, stack = _error(record)
        if error is not None:
            line += f" error={_value(error)}"
        line += f" logger={_value(record.name)}"
        if stack is not None:
            line += "".join(f"\n{_INDENT}{escape(part)}" for part in stack.split("\n"))
        return line


def _value(text: str) -> str:
    """A field value as ConsoleWriter writes it: bare when plain, else quoted with escapes."""
    plain = text and all("\x20" < c < "\x7f" and c not in '\\"' for c in text)
    return text if plain else json.dumps(text)


def install(level: int | str, fmt: Format) -> None:
    """Send every logger's records through one handler: json to stdout, simple to stderr, as k8gb."""
    handler = logging.StreamHandler(sys.stdout if fmt == "json" else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a library's warnings.warn is a log line too, in the same format


def format_in_use() -> Format:
    """The format `install` set up, for a process started to log as this one does (DNS workers)."""
    json_handlers = (h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    return "json" if any(json_handlers) else "simple"
