"""Bounds on what OpenTelemetry's propagators log about a caller's headers.

The W3C propagators warn about a header they drop, and some copy the header into the message: a 9 KB
`baggage` becomes a 9 KB WARNING line, on every request that sends one. Any caller can send that, so
the warnings from those loggers are cut to `MAX_CHARS` characters and at most `BURST` of them pass per
`WINDOW_S` seconds; the next one that passes says how many were held back. A warning still says what
was wrong, once in a while, at a size the log can take.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: The loggers through which the propagators echo caller-supplied headers (baggage, tracestate).
CALLER_HEADER_LOGGERS = (
    "opentelemetry.baggage.propagation",
    "opentelemetry.trace.propagation.tracecontext",
    "opentelemetry.trace.span",  # TraceState's parser
)
MAX_CHARS = 300
BURST = 20
WINDOW_S = 60.0


class BoundedWarnings(logging.Filter):
    """Cut each message to `max_chars` and pass at most `burst` records per `window_s` seconds."""

    def __init__(
        self,
        *,
        max_chars: int = MAX_CHARS,
        burst: int = BURST,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.max_chars = max_chars
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()  # records may come from any thread
        self._window_start = float("-inf")
        self._passed = 0
        self._held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.window_s:
                self._window_start, self._passed = now, 0
            if self._passed >= self.burst:
                self._held_back += 1
                return False
            self._passed += 1
            held_back, self._held_back = self._held_back, 0
        message = record.getMessage()
        if len(message) > self.max_chars:
            message = f"{message[: self.max_chars]}... (cut from {len(message)} characters)"
        if held_back:
            message += f" ({held_back} more such warnings were not logged)"
        record.msg, record.args = message, None
        return True


def bound_caller_header_warnings() -> None:
    """Install one `BoundedWarnings` on the propagators' loggers; calling it again changes nothing."""
    bound = BoundedWarnings()
    for name in CALLER_HEADER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, BoundedWarnings) for f in logger.filters):
            logger.addFilter(bound)
