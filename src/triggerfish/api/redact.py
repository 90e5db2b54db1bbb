"""Server paths out of what clients read.

An error from the store, the bus or the filesystem often names a file of the server's
machine (``SQLite bus at /srv/triggerfish/bus.db failed: ...``). A client has no use
for it and should not learn the layout of the server, so every error answer goes
through ``without_paths``, which keeps the file's name only (``.../bus.db``). The server's
own log keeps the whole message.

A path is told from a URL path (``/v1/topics/...``) by its first folder: one that
exists at the root of this machine's filesystem (``/home``, ``/var``, ``/tmp`` ...).
"""

from __future__ import annotations

import functools
import os
import re

_END = r"[^\s'\"`,;()\[\]{}<>]*"


@functools.cache
def _pattern() -> re.Pattern[str]:
    try:
        roots = sorted(
            (entry.name for entry in os.scandir("/") if entry.is_dir()), key=len, reverse=True
        )
    except OSError:  # pragma: no cover - a root that cannot be listed
        roots = []
    names = "|".join(re.escape(root) for root in roots) or "(?!)"
    # An optional URL scheme (``sqlite:////var/...``), slashes, a root folder, the rest.
    return re.compile(rf"(?<![\w.~/-])(?:[A-Za-z][\w+.-]*:)?/+(?:{names})(?=/|\b){_END}")


def without_paths(text: str) -> str:
    """``text`` with every path of this machine cut to its last part (``.../bus.db``)."""
    if "/" not in text:
        return text
    return _pattern().sub(_short, text)


def _short(match: re.Match[str]) -> str:
    name = match.group(0).rstrip("/").rsplit("/", 1)[-1]
    return f".../{name}" if name else "..."
