"""The process's open-files limit, raised to what it may be: each API connection, probe, peer query and
watch is a file descriptor, and the usual soft limit (1024) is far below the hard one (524288 under
systemd, 1048576 in most containers). Go's runtime does the same at start since 1.19 (so k8gb has it)."""

from __future__ import annotations

import logging
import resource
import sys

log = logging.getLogger("pygslb")


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # macOS refuses more than OPEN_MAX for an unlimited hard limit
            log.debug("open files limit %d not raised to %s: %s", soft, hard, exc)
            return soft
        log.debug("open files limit raised from %d to %d", soft, hard)
        return hard
    log.debug("open files limit %d (the hard limit)", soft)
    return soft
